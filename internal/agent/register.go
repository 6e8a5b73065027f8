package agent

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/codedeploy"
	cdtypes "github.com/aws/aws-sdk-go-v2/service/codedeploy/types"
	"github.com/aws/smithy-go"

	"github.com/cutoverhq/cutover/internal/agent/protocol"
)

// Cutover admin API used to mint a host's access key.
const (
	adminTargetPrefix = "CutoverAdmin_20261122"
	adminSigningName  = "codedeploy"
)

// RegisterRequest describes a host to register with a Cutover server.
type RegisterRequest struct {
	Endpoint         string // Cutover server base URL
	Region           string
	AdminCredentials aws.CredentialsProvider // an administrator's key
	InstanceName     string
	Tags             map[string]string
	HTTPClient       *http.Client // nil: http.DefaultClient
}

// Register creates a host access key for the instance through Cutover's admin API,
// registers the on-premises instance under that key's ARN and tags it, and
// returns the config file the agent should run with (write it with
// WriteOnPremConfig).
func Register(ctx context.Context, r RegisterRequest) (OnPremConfig, error) {
	if r.Endpoint == "" || r.Region == "" || r.InstanceName == "" || r.AdminCredentials == nil {
		return OnPremConfig{}, errors.New("register: Endpoint, Region, InstanceName and AdminCredentials are required")
	}
	admin := &protocol.Client{
		Endpoint:     r.Endpoint,
		Region:       r.Region,
		Credentials:  r.AdminCredentials,
		HTTPClient:   r.HTTPClient,
		TargetPrefix: adminTargetPrefix,
		SigningName:  adminSigningName,
	}
	opts := codedeploy.Options{
		Region:       r.Region,
		Credentials:  r.AdminCredentials,
		BaseEndpoint: aws.String(r.Endpoint),
	}
	if r.HTTPClient != nil {
		// Only when set: a nil *http.Client in the interface field would
		// not be replaced by the SDK default.
		opts.HTTPClient = r.HTTPClient
	}
	cd := codedeploy.New(opts)
	// Refuse a taken name before making a key that would stay unused.
	// (A deregistered name may be registered again, as on AWS.)
	if got, err := cd.GetOnPremisesInstance(ctx, &codedeploy.GetOnPremisesInstanceInput{InstanceName: aws.String(r.InstanceName)}); err == nil {
		if i := got.InstanceInfo; i != nil && i.DeregisterTime == nil {
			return OnPremConfig{}, fmt.Errorf("register: InstanceNameAlreadyRegisteredException: the on-premises instance name %s is already registered (%s); nothing was created: deregister it first (aws deploy deregister-on-premises-instance --instance-name %s) or choose another name",
				r.InstanceName, aws.ToString(i.IamUserArn)+aws.ToString(i.IamSessionArn), r.InstanceName)
		}
	} else if ae := (smithy.APIError)(nil); !errors.As(err, &ae) || ae.ErrorCode() != "InstanceNotRegisteredException" {
		return OnPremConfig{}, fmt.Errorf("register: GetOnPremisesInstance: %w", err)
	}

	var key struct {
		AccessKeyID     string `json:"AccessKeyId"`
		SecretAccessKey string `json:"SecretAccessKey"`
		Arn             string `json:"Arn"`
	}
	// The key is a host key bound to this instance: the agent protocol
	// for it alone, nothing else.
	in := struct {
		UserName     string `json:"UserName"`
		Role         string `json:"Role"`
		InstanceName string `json:"InstanceName"`
	}{r.InstanceName, "host", r.InstanceName}
	if err := admin.Call(ctx, "CreateAccessKey", in, &key); err != nil {
		return OnPremConfig{}, fmt.Errorf("register: create access key: %w", err)
	}
	if key.AccessKeyID == "" || key.SecretAccessKey == "" || key.Arn == "" {
		return OnPremConfig{}, errors.New("register: create access key: incomplete answer (need AccessKeyId, SecretAccessKey, Arn)")
	}
	// From here a failure takes the key back (and the registration, when
	// tagging fails), so that a retry starts clean.
	undo := func(err error, deregister bool) error {
		// The caller's ctx may be what failed; the clean-up gets its own.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if deregister {
			if _, derr := cd.DeregisterOnPremisesInstance(cctx, &codedeploy.DeregisterOnPremisesInstanceInput{InstanceName: aws.String(r.InstanceName)}); derr != nil {
				return fmt.Errorf("%w (instance %s stays registered and access key %s stays: deregister failed: %v)", err, r.InstanceName, key.AccessKeyID, derr)
			}
		}
		del := struct {
			AccessKeyID string `json:"AccessKeyId"`
		}{key.AccessKeyID}
		if derr := admin.Call(cctx, "DeleteAccessKey", del, nil); derr != nil {
			return fmt.Errorf("%w (access key %s was created and could not be deleted: %v)", err, key.AccessKeyID, derr)
		}
		return err
	}

	if _, err := cd.RegisterOnPremisesInstance(ctx, &codedeploy.RegisterOnPremisesInstanceInput{
		InstanceName: aws.String(r.InstanceName),
		IamUserArn:   aws.String(key.Arn),
	}); err != nil {
		return OnPremConfig{}, undo(fmt.Errorf("register: RegisterOnPremisesInstance: %w", err), false)
	}
	if len(r.Tags) > 0 {
		tags := make([]cdtypes.Tag, 0, len(r.Tags))
		for _, k := range slices.Sorted(maps.Keys(r.Tags)) {
			tags = append(tags, cdtypes.Tag{Key: aws.String(k), Value: aws.String(r.Tags[k])})
		}
		if _, err := cd.AddTagsToOnPremisesInstances(ctx, &codedeploy.AddTagsToOnPremisesInstancesInput{
			InstanceNames: []string{r.InstanceName},
			Tags:          tags,
		}); err != nil {
			return OnPremConfig{}, undo(fmt.Errorf("register: AddTagsToOnPremisesInstances: %w", err), true)
		}
	}
	return OnPremConfig{
		IAMUserARN:         key.Arn,
		AWSAccessKeyID:     key.AccessKeyID,
		AWSSecretAccessKey: key.SecretAccessKey,
		Region:             r.Region,
		CutoverEndpoint:    r.Endpoint,
	}, nil
}
