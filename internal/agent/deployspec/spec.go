package deployspec

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// Revision types. S3 and GitHub are the CodeDeploy ones; String and
// AppSpecContent are Cutover extensions that carry the appspec inline.
const (
	RevisionS3             = "S3"
	RevisionGitHub         = "GitHub"
	RevisionString         = "String"
	RevisionAppSpecContent = "AppSpecContent"
)

// Deployment types and creators that change which revision a hook uses.
const (
	DeploymentTypeInPlace   = "IN_PLACE"
	DeploymentTypeBlueGreen = "BLUE_GREEN"
	CreatorRollback         = "codeDeployRollback"
)

// DefaultAppSpecFilename is used when the spec names none.
const DefaultAppSpecFilename = "appspec.yml"

// Spec is a validated deployment specification.
type Spec struct {
	// DeploymentID has any ARN prefix stripped; it is a directory name.
	DeploymentID        string
	DeploymentGroupID   string
	DeploymentGroupName string
	ApplicationName     string
	DeploymentCreator   string // default "user"
	DeploymentType      string // default IN_PLACE
	AppSpecFilename     string // default appspec.yml
	// FileExistsBehavior is the agent override, upper-cased; "" if unset.
	FileExistsBehavior string
	Revision           Revision
	GitHubAccessToken  string
}

// Revision describes where the bundle comes from.
type Revision struct {
	Type    string
	S3      *S3Revision
	GitHub  *GitHubRevision
	Content *InlineContent // String and AppSpecContent
}

// S3Revision is Revision.S3Revision.
type S3Revision struct {
	Bucket, Key, BundleType, Version, ETag string
}

// GitHubRevision is Revision.GitHubRevision.
type GitHubRevision struct {
	Account, Repository, CommitID, BundleType string
}

// InlineContent is the appspec text of a String or AppSpecContent revision.
type InlineContent struct {
	Content string
	Sha256  string // hex; optional
}

// IsBlueGreenRollback reports whether hook events use the swapped revision
// table of §8.2.
func (s *Spec) IsBlueGreenRollback() bool {
	return s.DeploymentCreator == CreatorRollback && s.DeploymentType == DeploymentTypeBlueGreen
}

type wireSpec struct {
	DeploymentID         *string `json:"DeploymentId"`
	DeploymentGroupID    *string `json:"DeploymentGroupId"`
	DeploymentGroupName  *string `json:"DeploymentGroupName"`
	ApplicationName      *string `json:"ApplicationName"`
	DeploymentCreator    *string `json:"DeploymentCreator"`
	DeploymentType       *string `json:"DeploymentType"`
	AppSpecFilename      *string `json:"AppSpecFilename"`
	GitHubAccessToken    *string `json:"GitHubAccessToken"`
	AgentActionOverrides *struct {
		AgentOverrides *struct {
			FileExistsBehavior *string `json:"FileExistsBehavior"`
		} `json:"AgentOverrides"`
	} `json:"AgentActionOverrides"`
	Revision *struct {
		RevisionType *string `json:"RevisionType"`
		S3Revision   *struct {
			Bucket     *string `json:"Bucket"`
			Key        *string `json:"Key"`
			BundleType *string `json:"BundleType"`
			Version    *string `json:"Version"`
			ETag       *string `json:"ETag"`
		} `json:"S3Revision"`
		GitHubRevision *struct {
			Account    *string `json:"Account"`
			Repository *string `json:"Repository"`
			CommitID   *string `json:"CommitId"`
			BundleType *string `json:"BundleType"`
		} `json:"GitHubRevision"`
		StringRevision *inlineWire `json:"StringRevision"`
		AppSpecContent *inlineWire `json:"AppSpecContent"`
	} `json:"Revision"`
}

type inlineWire struct {
	Content *string `json:"Content"`
	Sha256  *string `json:"Sha256"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Parse decodes and validates the spec JSON (§4.2).
func Parse(data []byte) (*Spec, error) {
	var w wireSpec
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, fmt.Errorf("parse deployment specification: %w", err)
	}
	s := &Spec{
		DeploymentID:        stripARN(str(w.DeploymentID)),
		DeploymentGroupID:   str(w.DeploymentGroupID),
		DeploymentGroupName: str(w.DeploymentGroupName),
		ApplicationName:     str(w.ApplicationName),
		DeploymentCreator:   str(w.DeploymentCreator),
		DeploymentType:      str(w.DeploymentType),
		AppSpecFilename:     str(w.AppSpecFilename),
		GitHubAccessToken:   str(w.GitHubAccessToken),
	}
	if s.DeploymentCreator == "" {
		s.DeploymentCreator = "user"
	}
	if s.DeploymentType == "" {
		s.DeploymentType = DeploymentTypeInPlace
	}
	if s.AppSpecFilename == "" {
		s.AppSpecFilename = DefaultAppSpecFilename
	}
	if o := w.AgentActionOverrides; o != nil && o.AgentOverrides != nil {
		s.FileExistsBehavior = strings.ToUpper(str(o.AgentOverrides.FileExistsBehavior))
	}
	for _, f := range []struct{ name, v string }{
		{"DeploymentId", s.DeploymentID},
		{"DeploymentGroupId", s.DeploymentGroupID},
		{"DeploymentGroupName", s.DeploymentGroupName},
		{"ApplicationName", s.ApplicationName},
	} {
		if f.v == "" {
			return nil, fmt.Errorf("deployment specification: missing %s", f.name)
		}
	}
	// Both ids become path components under the root dir; the official agent
	// trusts them blindly, Cutover does not.
	for _, f := range []struct{ name, v string }{
		{"DeploymentId", s.DeploymentID},
		{"DeploymentGroupId", s.DeploymentGroupID},
	} {
		if !safeName(f.v) {
			return nil, fmt.Errorf("deployment specification: %s %q is not a safe file name", f.name, f.v)
		}
	}
	if err := checkRelative(s.AppSpecFilename); err != nil {
		return nil, fmt.Errorf("deployment specification: AppSpecFilename: %w", err)
	}
	switch s.FileExistsBehavior {
	case "", "DISALLOW", "OVERWRITE", "RETAIN":
	default:
		return nil, fmt.Errorf("deployment specification: unknown FileExistsBehavior %q", s.FileExistsBehavior)
	}
	if err := parseRevision(&w, s); err != nil {
		return nil, fmt.Errorf("deployment specification: %w", err)
	}
	return s, nil
}

func parseRevision(w *wireSpec, s *Spec) error {
	if w.Revision == nil || str(w.Revision.RevisionType) == "" {
		return fmt.Errorf("missing Revision.RevisionType")
	}
	r := w.Revision
	s.Revision.Type = *r.RevisionType
	switch s.Revision.Type {
	case RevisionS3:
		if r.S3Revision == nil {
			return fmt.Errorf("missing Revision.S3Revision")
		}
		w := r.S3Revision
		if w.Bucket == nil || w.Key == nil || w.BundleType == nil {
			return fmt.Errorf("S3Revision requires Bucket, Key and BundleType")
		}
		if !validBundleType(*w.BundleType, "tar", "tgz", "zip") {
			return fmt.Errorf("S3Revision: unsupported BundleType %q", *w.BundleType)
		}
		s.Revision.S3 = &S3Revision{Bucket: *w.Bucket, Key: *w.Key, BundleType: *w.BundleType, Version: str(w.Version), ETag: str(w.ETag)}
	case RevisionGitHub:
		if r.GitHubRevision == nil {
			return fmt.Errorf("missing Revision.GitHubRevision")
		}
		w := r.GitHubRevision
		g := &GitHubRevision{Account: str(w.Account), Repository: str(w.Repository), CommitID: str(w.CommitID), BundleType: str(w.BundleType)}
		if g.Account == "" || g.Repository == "" || g.CommitID == "" {
			return fmt.Errorf("GitHubRevision requires Account, Repository and CommitId")
		}
		for _, part := range []string{g.Account, g.Repository, g.CommitID} {
			// They are URL path segments.
			if !safeName(part) {
				return fmt.Errorf("GitHubRevision: %q is not a valid path segment", part)
			}
		}
		if g.BundleType == "" {
			g.BundleType = "tar"
		}
		if !validBundleType(g.BundleType, "tar", "zip") {
			return fmt.Errorf("GitHubRevision: unsupported BundleType %q", g.BundleType)
		}
		s.Revision.GitHub = g
	case RevisionString, RevisionAppSpecContent:
		in := r.StringRevision
		if s.Revision.Type == RevisionAppSpecContent {
			in = r.AppSpecContent
		}
		if in == nil || in.Content == nil {
			return fmt.Errorf("%s revision requires Content", s.Revision.Type)
		}
		s.Revision.Content = &InlineContent{Content: *in.Content, Sha256: strings.ToLower(str(in.Sha256))}
	default:
		// Local File / Local Directory are accepted by the Ruby daemon as a
		// quirk; they would let a server read arbitrary host paths, so the
		// Cutover agent refuses them.
		return fmt.Errorf("unsupported RevisionType %q", s.Revision.Type)
	}
	return nil
}

func validBundleType(t string, allowed ...string) bool {
	for _, a := range allowed {
		if t == a {
			return true
		}
	}
	return false
}

// stripARN keeps the resource name of an ARN-form deployment id (§3).
func stripARN(id string) string {
	if !strings.HasPrefix(id, "arn:") {
		return id
	}
	parts := strings.SplitN(id, ":", 6)
	if len(parts) < 6 {
		return id
	}
	if _, after, ok := strings.Cut(parts[5], "/"); ok {
		return after
	}
	return parts[5]
}

func safeName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\\\x00")
}

func checkRelative(p string) error {
	if strings.HasPrefix(p, "/") || strings.ContainsRune(p, 0) {
		return fmt.Errorf("%q must be a relative path", p)
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return fmt.Errorf("%q leaves the revision directory", p)
		}
	}
	return nil
}

func readFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificate: %w", err)
	}
	return b, nil
}
