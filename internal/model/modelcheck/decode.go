package modelcheck

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strconv"
	"strings"

	"github.com/cutoverhq/cutover/internal/model/awstime"
)

// Decode unmarshals a request body into in, a pointer to a generated input
// shape, the way AWS JSON services read it: member names match exactly
// (encoding/json would also take "ApplicationName" for "applicationName",
// letting a wrong spelling win over the right one), unknown members are
// ignored, null is an absent member, and an empty body is an empty object.
//
// Errors are *DecodeError whose message names the member and the kind of
// value it expects and never mentions Go types: clients see it as the
// SerializationException message.
func Decode(body []byte, in any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return syntaxError(err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return failf("Malformed request body: data after the top-level JSON object")
	}
	dst := reflect.ValueOf(in)
	if dst.Kind() != reflect.Pointer || dst.IsNil() {
		return fmt.Errorf("modelcheck.Decode: need a non-nil pointer, got %T", in)
	}
	if v == nil {
		return nil
	}
	if _, ok := v.(map[string]any); !ok {
		return failf("Malformed request body: expected a structure (JSON object), found %s", found(v))
	}
	return assign(dst.Elem(), v, "")
}

func syntaxError(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return failf("Malformed request body: %s at offset %d", se.Error(), se.Offset)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return failf("Malformed request body: unexpected end of JSON input")
	}
	// Decoding into an any fails only on syntax or reading, and those
	// errors name no Go type.
	return failf("Malformed request body: %v", err)
}

var timeType = reflect.TypeFor[awstime.Time]()

// assign stores the decoded JSON value v into dst, whose type is a
// generated shape, a pointer to one, or a list or map of them.
func assign(dst reflect.Value, v any, path string) error {
	if v == nil {
		return nil
	}
	t := dst.Type()
	if t.Kind() == reflect.Pointer {
		p := reflect.New(t.Elem())
		if err := assign(p.Elem(), v, path); err != nil {
			return err
		}
		dst.Set(p)
		return nil
	}
	if t == timeType {
		n, ok := v.(json.Number)
		if !ok {
			return mismatch(path, t, v)
		}
		var tm awstime.Time
		if err := tm.UnmarshalJSON([]byte(n)); err != nil {
			return mismatch(path, t, v)
		}
		dst.Set(reflect.ValueOf(tm))
		return nil
	}
	switch t.Kind() {
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			return mismatch(path, t, v)
		}
		dst.SetString(s)
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return mismatch(path, t, v)
		}
		dst.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(json.Number)
		if !ok {
			return mismatch(path, t, v)
		}
		i, err := strconv.ParseInt(string(n), 10, t.Bits())
		if err != nil {
			return mismatch(path, t, v)
		}
		dst.SetInt(i)
	case reflect.Float32, reflect.Float64:
		n, ok := v.(json.Number)
		if !ok {
			return mismatch(path, t, v)
		}
		f, err := strconv.ParseFloat(string(n), t.Bits())
		if err != nil {
			return mismatch(path, t, v)
		}
		dst.SetFloat(f)
	case reflect.Slice:
		l, ok := v.([]any)
		if !ok {
			return mismatch(path, t, v)
		}
		s := reflect.MakeSlice(t, len(l), len(l))
		for i, e := range l {
			if err := assign(s.Index(i), e, Index(path, i)); err != nil {
				return err
			}
		}
		dst.Set(s)
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok || t.Key().Kind() != reflect.String {
			return mismatch(path, t, v)
		}
		out := reflect.MakeMapWithSize(t, len(m))
		for k, e := range m {
			ev := reflect.New(t.Elem()).Elem()
			if err := assign(ev, e, Key(path, k)); err != nil {
				return err
			}
			out.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), ev)
		}
		dst.Set(out)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return mismatch(path, t, v)
		}
		// Walk the members, not the body, so the first error reported is
		// the first member in model order whatever order the client used.
		for i := range t.NumField() {
			f := t.Field(i)
			name := memberName(f)
			if name == "" {
				continue
			}
			if e, ok := m[name]; ok {
				if err := assign(dst.Field(i), e, Join(path, name)); err != nil {
					return err
				}
			}
		}
	default:
		return fmt.Errorf("modelcheck.Decode: unsupported type %s at %s", t, path)
	}
	return nil
}

// decodeMessage is the client-facing text of a DecodeError.
type decodeMessage string

func (m decodeMessage) Error() string { return string(m) }

func failf(format string, args ...any) error {
	return &DecodeError{Err: decodeMessage(fmt.Sprintf(format, args...))}
}

// memberName is the wire name of a generated struct field: its json tag.
func memberName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag := f.Tag.Get("json")
	if tag == "-" {
		return ""
	}
	name, _, _ := strings.Cut(tag, ",")
	if name == "" {
		return f.Name
	}
	return name
}

func mismatch(path string, t reflect.Type, v any) error {
	return failf("Invalid value for member '%s': expected %s, found %s", path, expected(t), found(v))
}

// expected names the kind of value a member takes, in the model's terms.
func expected(t reflect.Type) string {
	if t == timeType {
		return "a timestamp (seconds since the epoch)"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("an integer (%d-bit)", t.Bits())
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice:
		return "a list"
	case reflect.Map:
		return "a map"
	case reflect.Struct:
		return "a structure"
	}
	return "a value"
}

// found describes what the client sent, quoting scalars briefly.
func found(v any) string {
	switch v := v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case json.Number:
		s := string(v)
		if len(s) > 32 {
			s = s[:32] + "..."
		}
		return "the number " + s
	case []any:
		return "a list"
	case map[string]any:
		return "a structure or map"
	}
	return "null"
}
