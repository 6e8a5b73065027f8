package modelcheck

import "testing"

func TestMessages(t *testing.T) {
	tests := []struct {
		v    *Violation
		want string
	}{
		{RequiredViolation("applicationName", "applicationName", "ApplicationName"),
			"1 validation error detected: Value null at 'applicationName' failed to satisfy constraint: Member must not be null"},
		{EnumViolation(Join(Join("revision", "s3Location"), "bundleType"), "bundleType", "BundleType", "Foo", "[tar, tgz, zip, YAML, JSON]"),
			"1 validation error detected: Value 'Foo' at 'revision.s3Location.bundleType' failed to satisfy constraint: Member must satisfy enum value set: [tar, tgz, zip, YAML, JSON]"},
		{MaxLengthViolation("applicationName", "applicationName", "ApplicationName", "x", 100),
			"1 validation error detected: Value 'x' at 'applicationName' failed to satisfy constraint: Member must have length less than or equal to 100"},
		{MinValueViolation("maxResults", "maxResults", "MaxResults", 0, 1),
			"1 validation error detected: Value '0' at 'maxResults' failed to satisfy constraint: Member must have value greater than or equal to 1"},
	}
	for _, tt := range tests {
		if tt.v.Message != tt.want {
			t.Errorf("got  %s\nwant %s", tt.v.Message, tt.want)
		}
	}
}

func TestPaths(t *testing.T) {
	if got := Join(Index(Join("", "tags"), 2), "Key"); got != "tags[2].Key" {
		t.Errorf("got %q", got)
	}
	if got := Key("targetFilters", "TargetStatus"); got != `targetFilters["TargetStatus"]` {
		t.Errorf("got %q", got)
	}
}

func TestExceptionForTopLevel(t *testing.T) {
	// A nested violation falls back to the top-level member's exception.
	v := Violation{Path: "revision.s3Location.bundleType", Member: "bundleType", Shape: "BundleType", Kind: Enum}
	if got := ExceptionFor([]string{"InvalidRevisionException"}, v); got != "InvalidRevisionException" {
		t.Errorf("got %s", got)
	}
	v = Violation{Path: "tags[0]", Member: "tags", Shape: "Tag", Kind: Required}
	if got := ExceptionFor([]string{"TagsRequiredException"}, v); got != "TagsRequiredException" {
		t.Errorf("got %s", got)
	}
}
