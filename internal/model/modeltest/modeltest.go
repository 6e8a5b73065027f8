// Package modeltest builds inputs for tests of code generated from AWS
// models: the smallest request body that passes a model's validation, used
// to seed fuzz targets and to check every operation is reachable.
package modeltest

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"github.com/cutoverhq/cutover/internal/model/modelcheck"
)

// MinimalInput returns the smallest JSON body for an input of type typ that
// validate accepts, found by starting from {} and repairing whatever
// violation validate reports. validate returns nil when the body is valid.
func MinimalInput(typ reflect.Type, validate func(body []byte) *modelcheck.Violation) ([]byte, error) {
	doc := map[string]any{}
	for range 100 {
		body, err := json.Marshal(doc)
		if err != nil {
			return nil, err
		}
		v := validate(body)
		if v == nil {
			return body, nil
		}
		if err := repair(doc, typ, *v); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("no valid input found for %s", typ)
}

func repair(doc map[string]any, typ reflect.Type, v modelcheck.Violation) error {
	parts := strings.Split(v.Path, ".")
	for i, p := range parts {
		for typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		f, ok := fieldByTag(typ, p)
		if !ok {
			return fmt.Errorf("cannot follow path %s", v.Path)
		}
		typ = f.Type
		if i < len(parts)-1 {
			next, ok := doc[p].(map[string]any)
			if !ok {
				return fmt.Errorf("path %s is not an object", v.Path)
			}
			doc = next
			continue
		}
		val, err := fix(typ, v)
		if err != nil {
			return err
		}
		doc[p] = val
	}
	return nil
}

func fieldByTag(typ reflect.Type, name string) (reflect.StructField, bool) {
	for i := range typ.NumField() {
		f := typ.Field(i)
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func fix(typ reflect.Type, v modelcheck.Violation) (any, error) {
	limit := func() int {
		n, _ := strconv.Atoi(v.Message[strings.LastIndexByte(v.Message, ' ')+1:])
		return n
	}
	switch v.Kind {
	case modelcheck.Enum:
		set := v.Message[strings.LastIndexByte(v.Message, '[')+1 : len(v.Message)-1]
		first, _, _ := strings.Cut(set, ", ")
		return first, nil
	case modelcheck.Length:
		return strings.Repeat("a", limit()), nil
	case modelcheck.Range:
		return limit(), nil
	case modelcheck.Required:
		if typ.Kind() == reflect.Pointer {
			typ = typ.Elem()
		}
		switch typ.Kind() {
		case reflect.String:
			return "a", nil
		case reflect.Slice:
			return []any{}, nil
		case reflect.Map:
			return map[string]any{}, nil
		case reflect.Bool:
			return false, nil
		case reflect.Int32, reflect.Int64, reflect.Float64:
			return 1, nil
		case reflect.Struct:
			if typ.Name() == "Time" {
				return 1446744188.711, nil
			}
			return map[string]any{}, nil
		}
	}
	return nil, fmt.Errorf("cannot repair %+v", v)
}
