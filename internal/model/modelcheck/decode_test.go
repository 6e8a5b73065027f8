package modelcheck

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cutoverhq/cutover/internal/model/awstime"
)

// Shapes as the generator writes them: pointer members with json tags.
type location struct {
	Bucket     *string `json:"bucket,omitzero"`
	BundleType *string `json:"bundleType,omitzero"`
}

type input struct {
	ApplicationName *string             `json:"applicationName,omitzero"`
	Count           *int32              `json:"count,omitzero"`
	Ratio           *float64            `json:"ratio,omitzero"`
	Enabled         *bool               `json:"enabled,omitzero"`
	Since           *awstime.Time       `json:"since,omitzero"`
	Location        *location           `json:"location,omitzero"`
	Locations       []location          `json:"locations,omitzero"`
	Filters         map[string][]string `json:"filters,omitzero"`
}

func TestDecode(t *testing.T) {
	s := func(v string) *string { return &v }
	for _, c := range []struct {
		name, body string
		want       input
	}{
		{"empty body", "  ", input{}},
		{"null body", "null", input{}},
		{"exact", `{"applicationName":"app","count":3,"ratio":0.5,"enabled":true,"since":1.7e9}`, input{
			ApplicationName: s("app"), Count: new(int32(3)), Ratio: new(0.5), Enabled: new(true),
			Since: &awstime.Time{Time: time.Unix(1.7e9, 0).UTC()},
		}},
		{"wrong case is an unknown member", `{"ApplicationName":"app"}`, input{}},
		{"wrong case never wins, after", `{"applicationName":"right","ApplicationName":"wrong"}`, input{ApplicationName: s("right")}},
		{"wrong case never wins, before", `{"APPLICATIONNAME":"wrong","applicationName":"right"}`, input{ApplicationName: s("right")}},
		{"nested wrong case", `{"location":{"Bucket":"b","bundleType":"zip"}}`, input{Location: &location{BundleType: s("zip")}}},
		{"list of structures", `{"locations":[{"bucket":"a"},{"BUCKET":"x","bucket":"b"}]}`, input{Locations: []location{{Bucket: s("a")}, {Bucket: s("b")}}}},
		{"map keys kept as sent", `{"filters":{"Status":["Failed"],"status":["x"]}}`, input{Filters: map[string][]string{"Status": {"Failed"}, "status": {"x"}}}},
		{"null member is absent", `{"applicationName":null,"location":null}`, input{}},
		{"unknown members of any type", `{"x":{"y":[1,{"z":null}]},"Count":"nan"}`, input{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var got input
			if err := Decode([]byte(c.body), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`{"applicationName":42}`, "Invalid value for member 'applicationName': expected a string, found the number 42"},
		{`{"applicationName":{"a":1}}`, "Invalid value for member 'applicationName': expected a string, found a structure or map"},
		{`{"count":"3"}`, "Invalid value for member 'count': expected an integer (32-bit), found a string"},
		{`{"count":1.5}`, "Invalid value for member 'count': expected an integer (32-bit), found the number 1.5"},
		{`{"count":4294967296}`, "Invalid value for member 'count': expected an integer (32-bit), found the number 4294967296"},
		{`{"enabled":"true"}`, "Invalid value for member 'enabled': expected a boolean, found a string"},
		{`{"since":"yesterday"}`, "Invalid value for member 'since': expected a timestamp (seconds since the epoch), found a string"},
		{`{"since":1e300}`, "Invalid value for member 'since': expected a timestamp (seconds since the epoch), found the number 1e300"},
		{`{"location":[]}`, "Invalid value for member 'location': expected a structure, found a list"},
		{`{"location":{"bucket":true}}`, "Invalid value for member 'location.bucket': expected a string, found a boolean"},
		{`{"locations":[{"bucket":"a"},{"bundleType":7}]}`, "Invalid value for member 'locations[1].bundleType': expected a string, found the number 7"},
		{`{"filters":{"Status":"Failed"}}`, `Invalid value for member 'filters["Status"]': expected a list, found a string`},
		{`{"ratio":` + strings.Repeat("9", 400) + `}`, "Invalid value for member 'ratio': expected a number, found the number " + strings.Repeat("9", 32) + "..."},
		{`[]`, "Malformed request body: expected a structure (JSON object), found a list"},
		{`"app"`, "Malformed request body: expected a structure (JSON object), found a string"},
		{`{"applicationName":`, "Malformed request body: unexpected end of JSON input"},
		{`{"applicationName":"a"}{}`, "Malformed request body: data after the top-level JSON object"},
		{`{"applicationName" "a"}`, "Malformed request body: invalid character '\"' after object key at offset 20"},
	} {
		t.Run(c.body[:min(len(c.body), 40)], func(t *testing.T) {
			var in input
			err := Decode([]byte(c.body), &in)
			var de *DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("err = %v, want a DecodeError", err)
			}
			if got := de.Err.Error(); got != c.want {
				t.Errorf("message\n got %s\nwant %s", got, c.want)
			}
			for _, leak := range []string{"Go ", "struct field", "input.", "*", "int32", "json:", "unmarshal"} {
				if strings.Contains(de.Err.Error(), leak) {
					t.Errorf("message %q exposes %q", de.Err.Error(), leak)
				}
			}
		})
	}
}
