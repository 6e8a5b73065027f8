package awstime

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestUnmarshal(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
	}{
		{"1.446744190402E9", time.UnixMilli(1446744190402)},
		{"1.446744190402e+9", time.UnixMilli(1446744190402)},
		{"1446744188.711", time.UnixMilli(1446744188711)},
		{"1446744188", time.Unix(1446744188, 0)},
		{"-1.5", time.UnixMilli(-1500)},
		{"0", time.Unix(0, 0)},
	}
	for _, tt := range tests {
		var got Time
		if err := json.Unmarshal([]byte(tt.in), &got); err != nil {
			t.Errorf("Unmarshal(%s): %v", tt.in, err)
			continue
		}
		if !got.Equal(tt.want) {
			t.Errorf("Unmarshal(%s) = %v, want %v", tt.in, got.Time, tt.want)
		}
	}
}

func TestUnmarshalRejects(t *testing.T) {
	for _, in := range []string{`"1446744188.711"`, `"2015-11-05T17:23:08Z"`, `true`, `{}`, `[1]`, `1e300`, `-1e300`} {
		var got Time
		if err := json.Unmarshal([]byte(in), &got); err == nil {
			t.Errorf("Unmarshal(%s) = %v, want error", in, got.Time)
		}
	}
	var got Time
	if err := json.Unmarshal([]byte(`"1"`), &got); !errors.Is(err, ErrNotNumber) {
		t.Errorf("Unmarshal string: err = %v, want ErrNotNumber", err)
	}
}

func TestUnmarshalNull(t *testing.T) {
	var v struct{ T *Time }
	if err := json.Unmarshal([]byte(`{"T":null}`), &v); err != nil || v.T != nil {
		t.Errorf("null: got %v, %v", v.T, err)
	}
}

func TestMarshal(t *testing.T) {
	tests := []struct {
		in   time.Time
		want string
	}{
		{time.UnixMilli(1446744188711), "1446744188.711"},
		{time.Unix(1446744188, 0), "1446744188.000"},
		{time.Unix(1446744188, 5_000_000), "1446744188.005"},
		{time.Unix(1446744188, 999_999_999), "1446744188.999"}, // truncated, not rounded
		{time.UnixMilli(-1500), "-1.500"},
		{time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), "253402300799.000"},
	}
	for _, tt := range tests {
		b, err := json.Marshal(New(tt.in))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(b); got != tt.want {
			t.Errorf("Marshal(%v) = %s, want %s", tt.in, got, tt.want)
		}
		if strings.ContainsAny(string(b), "eE") {
			t.Errorf("Marshal(%v) = %s uses exponent form", tt.in, b)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	in := Time{time.UnixMilli(1446744190402)}
	b, err := json.Marshal(&in)
	if err != nil {
		t.Fatal(err)
	}
	var out Time
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !out.Equal(in.Time) {
		t.Errorf("round trip %s: got %v, want %v", b, out.Time, in.Time)
	}
}
