package sigv4

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrUnknownKey is returned by a KeyLookup when the access key does not
// exist or has been revoked. Verify reports it to the client as
// UnrecognizedClientException; any other lookup error is treated as an
// internal failure and returned wrapped, not as an *Error.
var ErrUnknownKey = errors.New("sigv4: unknown access key")

// Error codes, as AWS JSON 1.1 services return them in "__type".
const (
	CodeMissingAuthenticationToken = "MissingAuthenticationTokenException"
	CodeIncompleteSignature        = "IncompleteSignatureException"
	CodeUnrecognizedClient         = "UnrecognizedClientException"
	CodeInvalidSignature           = "InvalidSignatureException"
)

// Messages AWS uses verbatim. Clients and humans grep for these, so they are
// reproduced exactly rather than paraphrased.
const (
	msgMissingToken     = "Missing Authentication Token"
	msgUnrecognized     = "The security token included in the request is invalid."
	msgSignatureInvalid = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)

// Error is an authentication failure to be returned to the client. Code is
// the AWS error type name, Status the HTTP status to answer with. Message is
// safe to show to the caller: it never contains secrets or derived keys.
type Error struct {
	Code    string
	Message string
	Status  int
}

func (e *Error) Error() string {
	return fmt.Sprintf("sigv4: %s: %s", e.Code, e.Message)
}

func missingToken() *Error {
	return &Error{Code: CodeMissingAuthenticationToken, Message: msgMissingToken, Status: http.StatusForbidden}
}

func incomplete(format string, args ...any) *Error {
	return &Error{Code: CodeIncompleteSignature, Message: fmt.Sprintf(format, args...), Status: http.StatusForbidden}
}

func unrecognized() *Error {
	return &Error{Code: CodeUnrecognizedClient, Message: msgUnrecognized, Status: http.StatusForbidden}
}

func invalidSignature(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidSignature, Message: fmt.Sprintf(format, args...), Status: http.StatusForbidden}
}

func signatureMismatch() *Error {
	return &Error{Code: CodeInvalidSignature, Message: msgSignatureInvalid, Status: http.StatusForbidden}
}
