// Package modelcheck holds the validation and dispatch types shared by the
// packages generated from AWS service models.
package modelcheck

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cutoverhq/cutover/internal/awsjson"
)

// ViolationKind classifies a failed model constraint.
type ViolationKind int

// Violation kinds, one per constraint trait in the model.
const (
	Required ViolationKind = iota + 1
	Enum
	Length
	Range
	Pattern
)

func (k ViolationKind) String() string {
	switch k {
	case Required:
		return "Required"
	case Enum:
		return "Enum"
	case Length:
		return "Length"
	case Range:
		return "Range"
	case Pattern:
		return "Pattern"
	}
	return fmt.Sprintf("ViolationKind(%d)", int(k))
}

// Violation describes the first constraint an input failed.
type Violation struct {
	Path    string // e.g. "revision.s3Location.bundleType" or "tags[2].Key"
	Member  string // leaf member name, e.g. "bundleType"
	Shape   string // the member's target shape, e.g. "BundleType"
	Kind    ViolationKind
	Message string // AWS ValidationException wording
}

func (v *Violation) Error() string { return v.Message }

// ErrUnknownOperation is returned by generated dispatchers for operations
// that are not in the model.
var ErrUnknownOperation = errors.New("unknown operation")

// DecodeError reports a request body that is not valid JSON or does not
// match the input shape; servers answer it with SerializationException.
type DecodeError struct{ Err error }

func (e *DecodeError) Error() string { return "decoding request: " + e.Err.Error() }
func (e *DecodeError) Unwrap() error { return e.Err }

// ValidationFailure reports an input that decoded but violates the model.
type ValidationFailure struct {
	Op        string
	Violation Violation
}

func (e *ValidationFailure) Error() string { return e.Op + ": " + e.Violation.Message }

// Join appends a member name to a path.
func Join(path, member string) string {
	if path == "" {
		return member
	}
	return path + "." + member
}

// Index appends a list index to a path.
func Index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// Key appends a map key to a path.
func Key(path, key string) string { return fmt.Sprintf("%s[%q]", path, awsjson.Echo(key)) }

func newViolation(path, member, shape string, kind ViolationKind, value, constraint string) *Violation {
	return &Violation{
		Path:    path,
		Member:  member,
		Shape:   shape,
		Kind:    kind,
		Message: fmt.Sprintf("1 validation error detected: Value %s at '%s' failed to satisfy constraint: Member must %s", value, path, constraint),
	}
}

// quote renders a client's value for a message, shortened: an oversized
// input must not come back whole in the answer.
func quote(v any) string { return "'" + awsjson.Echo(fmt.Sprint(v)) + "'" }

// RequiredViolation reports a missing required member.
func RequiredViolation(path, member, shape string) *Violation {
	return newViolation(path, member, shape, Required, "null", "not be null")
}

// EnumViolation reports a value outside the enum; allowed is the
// preformatted value set, e.g. "[tar, tgz, zip]".
func EnumViolation(path, member, shape, value, allowed string) *Violation {
	return newViolation(path, member, shape, Enum, quote(value), "satisfy enum value set: "+allowed)
}

// MinLengthViolation reports a string, list or map shorter than min.
func MinLengthViolation(path, member, shape string, value any, min int) *Violation {
	return newViolation(path, member, shape, Length, quote(value), fmt.Sprintf("have length greater than or equal to %d", min))
}

// MaxLengthViolation reports a string, list or map longer than max.
func MaxLengthViolation(path, member, shape string, value any, max int) *Violation {
	return newViolation(path, member, shape, Length, quote(value), fmt.Sprintf("have length less than or equal to %d", max))
}

// MinValueViolation reports a number below its minimum.
func MinValueViolation(path, member, shape string, value, min any) *Violation {
	return newViolation(path, member, shape, Range, quote(value), fmt.Sprintf("have value greater than or equal to %v", min))
}

// MaxValueViolation reports a number above its maximum.
func MaxValueViolation(path, member, shape string, value, max any) *Violation {
	return newViolation(path, member, shape, Range, quote(value), fmt.Sprintf("have value less than or equal to %v", max))
}

// PatternViolation reports a string that does not match its pattern.
func PatternViolation(path, member, shape, value, pattern string) *Violation {
	return newViolation(path, member, shape, Pattern, quote(value), "satisfy regular expression pattern: "+pattern)
}

// ExceptionFor picks the modeled exception an operation with the error
// list errs reports for v, mirroring how CodeDeploy names its per-member
// exceptions. It falls back to ValidationException, which every AWS JSON
// service may return.
func ExceptionFor(errs []string, v Violation) string {
	m := upperFirst(v.Member)
	top, _, _ := strings.Cut(v.Path, ".")
	top, _, _ = strings.Cut(top, "[")
	t := upperFirst(top)
	var candidates []string
	if v.Kind == Required {
		candidates = []string{m + "RequiredException", t + "RequiredException"}
	} else {
		candidates = []string{"Invalid" + m + "Exception", "Invalid" + t + "Exception", "Invalid" + v.Shape + "Exception"}
	}
	for _, c := range candidates {
		if slices.Contains(errs, c) {
			return c
		}
	}
	return "ValidationException"
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
