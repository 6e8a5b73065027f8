// Package awstime implements the timestamp encoding of the AWS JSON 1.1
// protocol: a JSON number of seconds since the Unix epoch.
package awstime

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
)

// Time is a time.Time that encodes as epoch seconds with a millisecond
// fraction, the form AWS SDKs expect in JSON 1.1 responses.
type Time struct{ time.Time }

// The accepted range is years 1 through 9999, which keeps every value
// representable both as a time.Time and as microseconds in an int64.
const (
	minSeconds = -62135596800
	maxSeconds = 253402300799
)

// ErrNotNumber is returned when a timestamp is not encoded as a JSON number.
var ErrNotNumber = errors.New("awstime: timestamp must be a JSON number of epoch seconds")

// New returns t wrapped as a Time.
func New(t time.Time) Time { return Time{t} }

// MarshalJSON encodes t as epoch seconds with exactly three fractional
// digits. It never uses exponent notation, which some clients reject.
func (t Time) MarshalJSON() ([]byte, error) {
	ms := t.UnixMilli()
	var b []byte
	if ms < 0 {
		b = append(b, '-')
		ms = -ms
	}
	b = strconv.AppendInt(b, ms/1000, 10)
	b = append(b, '.')
	frac := ms % 1000
	b = append(b, byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	return b, nil
}

// UnmarshalJSON decodes any JSON number, including the exponent form
// (1.446744190402E9) that Java-based services emit. Strings are rejected
// because the protocol never sends them and accepting them would hide
// client bugs.
func (t *Time) UnmarshalJSON(data []byte) error {
	s := string(data)
	if s == "null" {
		return nil
	}
	if s == "" || (s[0] != '-' && (s[0] < '0' || s[0] > '9')) {
		return fmt.Errorf("%w, got %.32s", ErrNotNumber, s)
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return fmt.Errorf("awstime: parsing %q: %w", s, err)
	}
	if math.IsNaN(f) || f < minSeconds || f > maxSeconds {
		return fmt.Errorf("awstime: timestamp %s out of range", s)
	}
	// A float64 near the current epoch carries about 0.2µs of precision,
	// so rounding to microseconds recovers the exact decimal that was sent.
	t.Time = time.UnixMicro(int64(math.Round(f * 1e6))).UTC()
	return nil
}
