package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/cutoverhq/cutover/internal/access"
	"github.com/cutoverhq/cutover/internal/awsjson"
	"github.com/cutoverhq/cutover/internal/dashboard"
	"github.com/cutoverhq/cutover/internal/hooklog"
	"github.com/cutoverhq/cutover/internal/keys"
	"github.com/cutoverhq/cutover/internal/sigv4"
	"github.com/cutoverhq/cutover/internal/traffic"
	"github.com/cutoverhq/cutover/internal/trigger"
)

// hookLogService builds the hook log store: the agent's PutHookLog lands
// there, authorized for the calling host's own current command.
func (s *Server) hookLogService() *hooklog.Service {
	return &hooklog.Service{
		Store: s.Store, Now: s.cfg.Now, Logger: s.log,
		Instance: s.API.InstanceOfCaller,
		Command:  s.Runner.CurrentCommand,
	}
}

// startHookLogs serves PutHookLog and prunes logs past their retention.
func (s *Server) startHookLogs() awsjson.Route {
	s.HookLogs = s.hookLogService()
	retention := s.cfg.HookLogRetention
	if retention <= 0 {
		retention = hooklog.DefaultRetention
	}
	p := s.HookLogs.StartPruner(retention, min(retention/4, time.Hour))
	s.closers = append(s.closers, p.Close)
	return awsjson.Route{Prefix: hooklog.TargetPrefix, SigningNames: []string{SigningCommands, SigningCommandsSecured}, Service: s.HookLogs}
}

// newDashboard builds /ui. Every read and action it makes goes through
// the same guard as the CodeDeploy API route (role, scope, audit), as the
// signed-in key: a key may do there exactly what it may over the API.
func (s *Server) newDashboard(auth authenticator) *dashboard.Handler {
	var members func(ctx context.Context, tg string) ([]traffic.MemberStatus, error)
	if s.Traffic != nil {
		// A deployment names target groups by name only: another
		// account's target group of that name shows nothing of its
		// backends (a group stored before target groups had owners).
		members = func(ctx context.Context, tg string) ([]traffic.MemberStatus, error) {
			c, _ := awsjson.CallerFrom(ctx)
			if cfg, ok := s.targetGroups[tg]; ok && !cfg.OwnedBy(c.Account, c.Region) {
				return nil, fmt.Errorf("target group %s is not a target group of account %s in %s", tg, c.Account, c.Region)
			}
			return s.Traffic.Members(ctx, tg)
		}
	}
	codedeploy, admin := s.guard(access.CodeDeploy, s.API.Serve), s.guard(access.AdminAPI, s.serveAdmin)
	return dashboard.New(dashboard.Config{
		Serve: func(ctx context.Context, op string, body []byte) (any, error) {
			// The fleet is an admin read: the guard checks it as the
			// CodeDeploy reads (adminReads), so read-only keys see it.
			if adminReads[op] {
				return admin(ctx, op, body)
			}
			return codedeploy(ctx, op, body)
		},
		Lookup: func(ctx context.Context, id string) (awsjson.Caller, string, error) {
			c, err := s.lookupKey(ctx, id)
			if errors.Is(err, sigv4.ErrUnknownKey) {
				return awsjson.Caller{}, "", dashboard.ErrUnknownKey
			}
			if err != nil {
				return awsjson.Caller{}, "", err
			}
			return awsjson.Caller{AccessKeyID: c.AccessKeyID, Account: c.Account, Principal: c.PrincipalARN}, c.SecretAccessKey, nil
		},
		Signed: func(r *http.Request) (awsjson.Caller, error) {
			check, err := auth.Authenticate(r.Context(), r)
			if err != nil {
				return awsjson.Caller{}, err
			}
			c, err := check(nil) // the event stream is a GET: no body
			if err == nil && c.Service != SigningCodeDeploy {
				return awsjson.Caller{}, awsjson.Errorf("InvalidSignatureException", "Credential should be scoped to correct service: '%s'.", SigningCodeDeploy)
			}
			return c, err
		},
		Store: s.Store, Feed: s.Changes, Logs: s.HookLogs,
		Waits: func(ctx context.Context, id string) (any, error) {
			return s.Runner.WaitsOf(ctx, id)
		},
		Members: members,
		// The rates are those of the router counters /metrics exports.
		Rates: s.Metrics.RouterRates,
		// The log is read from the store: deliveries recorded before a
		// restart without the triggers configuration still show.
		Deliveries: func(ctx context.Context, id string, limit int) ([]trigger.Delivery, error) {
			return trigger.Deliveries(ctx, s.Store, id, limit)
		},
		Visible: func(ctx context.Context, id string) (bool, error) {
			c, _ := awsjson.CallerFrom(ctx)
			_, _, ok, err := s.Runner.DeploymentGroupOf(ctx, c.Account, c.Region, id)
			return ok, err
		},
		KeyTopic:        keys.Kind,
		DeploymentTopic: "deployment", MemberTopic: "tgmember", DeliveryTopic: trigger.DeliveryKind,
		Secure: s.cfg.TLSCert != "", Now: s.cfg.Now, Logger: s.log,
	})
}
