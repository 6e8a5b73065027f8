// Command gen generates Go types, validators, an operation table and a typed
// dispatcher from a botocore-style AWS service model.
//
// Usage:
//
//	gen -spec FILE -pkg NAME -out FILE -iface NAME [-paginators FILE]
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/format"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

const (
	modelcheckPkg = "github.com/cutoverhq/cutover/internal/model/modelcheck"
	awstimePkg    = "github.com/cutoverhq/cutover/internal/model/awstime"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

type config struct {
	spec, paginators, pkg, out, iface string
}

func run(args []string) error {
	var c config
	fs := flag.NewFlagSet("gen", flag.ContinueOnError)
	fs.StringVar(&c.spec, "spec", "", "service model `file` (botocore JSON)")
	fs.StringVar(&c.paginators, "paginators", "", "optional paginators `file`")
	fs.StringVar(&c.pkg, "pkg", "", "Go package `name`")
	fs.StringVar(&c.out, "out", "", "output `file`")
	fs.StringVar(&c.iface, "iface", "Service", "service interface `name`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.spec == "" || c.pkg == "" || c.out == "" || c.iface == "" {
		return errors.New("-spec, -pkg, -out and -iface are required")
	}
	src, err := generate(c)
	if err != nil {
		return err
	}
	return os.WriteFile(c.out, src, 0o644)
}

// Model types mirror the subset of the botocore format the generator uses.
type model struct {
	Operations map[string]*operation `json:"operations"`
	Shapes     map[string]*shape     `json:"shapes"`
}

type ref struct {
	Shape      string `json:"shape"`
	Deprecated bool   `json:"deprecated"`
}

type operation struct {
	Name              string `json:"name"`
	Input             *ref   `json:"input"`
	Output            *ref   `json:"output"`
	Errors            []ref  `json:"errors"`
	Deprecated        bool   `json:"deprecated"`
	DeprecatedMessage string `json:"deprecatedMessage"`
}

type shape struct {
	Type              string          `json:"type"`
	Members           map[string]*ref `json:"members"`
	Required          []string        `json:"required"`
	Enum              []string        `json:"enum"`
	Min               *json.Number    `json:"min"`
	Max               *json.Number    `json:"max"`
	Pattern           string          `json:"pattern"`
	Deprecated        bool            `json:"deprecated"`
	DeprecatedMessage string          `json:"deprecatedMessage"`
	Exception         bool            `json:"exception"`
	Fault             bool            `json:"fault"`
	Member            *ref            `json:"member"`
	Key               *ref            `json:"key"`
	Value             *ref            `json:"value"`

	order []string // member names in declaration order
}

// paginator fields may be a string or a list of strings in botocore.
type paginator struct {
	InputToken  stringOrList `json:"input_token"`
	OutputToken stringOrList `json:"output_token"`
	ResultKey   stringOrList `json:"result_key"`
}

type stringOrList string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = stringOrList(one)
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("want string or list of strings: %w", err)
	}
	*s = stringOrList(strings.Join(many, ","))
	return nil
}

func loadModel(file string) (*model, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var m model
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", file, err)
	}
	// Go maps lose member order, which validation needs to report the first
	// violation the way the service does, so recover it from the raw JSON.
	var raw struct {
		Shapes map[string]struct {
			Members json.RawMessage `json:"members"`
		} `json:"shapes"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", file, err)
	}
	for name, s := range raw.Shapes {
		if len(s.Members) == 0 {
			continue
		}
		order, err := objectKeys(s.Members)
		if err != nil {
			return nil, fmt.Errorf("shape %s members: %w", name, err)
		}
		m.Shapes[name].order = order
	}
	return &m, nil
}

func objectKeys(b []byte) ([]string, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		return nil, err
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nil, err
		}
		k, ok := t.(string)
		if !ok {
			return nil, fmt.Errorf("unexpected token %v", t)
		}
		keys = append(keys, k)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

type generator struct {
	c      config
	m      *model
	pages  map[string]paginator
	names  map[string]string // struct shape name -> Go type name
	taken  map[string]bool   // package-level identifiers in use
	needs  map[string]bool   // structure shape -> Validate has checks
	buf    bytes.Buffer
	usesRe bool
}

func generate(c config) ([]byte, error) {
	m, err := loadModel(c.spec)
	if err != nil {
		return nil, err
	}
	g := &generator{c: c, m: m, pages: map[string]paginator{}, names: map[string]string{}, taken: map[string]bool{}, needs: map[string]bool{}}
	if c.paginators != "" {
		b, err := os.ReadFile(c.paginators)
		if err != nil {
			return nil, err
		}
		var p struct {
			Pagination map[string]paginator `json:"pagination"`
		}
		if err := json.Unmarshal(b, &p); err != nil {
			return nil, fmt.Errorf("parsing %s: %w", c.paginators, err)
		}
		g.pages = p.Pagination
	}
	if err := g.check(); err != nil {
		return nil, err
	}
	g.assignNames()
	g.emit()
	src, err := format.Source(g.buf.Bytes())
	if err != nil {
		return nil, fmt.Errorf("formatting generated code: %w\n%s", err, g.buf.Bytes())
	}
	return src, nil
}

// check rejects models the generator would otherwise mistranslate.
func (g *generator) check() error {
	for _, name := range sortedKeys(g.m.Shapes) {
		s := g.m.Shapes[name]
		switch s.Type {
		case "structure", "string", "integer", "long", "boolean", "timestamp", "double", "blob":
		case "list":
			if s.Member == nil {
				return fmt.Errorf("list shape %s has no member", name)
			}
		case "map":
			if s.Key == nil || s.Value == nil {
				return fmt.Errorf("map shape %s lacks key or value", name)
			}
		default:
			return fmt.Errorf("shape %s: unsupported type %q", name, s.Type)
		}
		if s.Pattern != "" {
			if _, err := regexp.Compile(s.Pattern); err != nil {
				return fmt.Errorf("shape %s pattern: %w", name, err)
			}
		}
		var refs []*ref
		for _, r := range s.Members {
			refs = append(refs, r)
		}
		refs = append(refs, s.Member, s.Key, s.Value)
		for _, r := range refs {
			if r != nil && g.m.Shapes[r.Shape] == nil {
				return fmt.Errorf("shape %s refers to unknown shape %s", name, r.Shape)
			}
		}
		for _, req := range s.Required {
			if s.Members[req] == nil {
				return fmt.Errorf("shape %s requires unknown member %s", name, req)
			}
		}
	}
	for name, op := range g.m.Operations {
		for _, r := range append([]*ref{op.Input, op.Output}, refsOf(op.Errors)...) {
			if r == nil {
				continue
			}
			if s := g.m.Shapes[r.Shape]; s == nil || s.Type != "structure" {
				return fmt.Errorf("operation %s refers to %s, which is not a structure", name, r.Shape)
			}
		}
	}
	return nil
}

func refsOf(rs []ref) []*ref {
	out := make([]*ref, len(rs))
	for i := range rs {
		out[i] = &rs[i]
	}
	return out
}

// fixed lists the identifiers the generator itself declares.
func (g *generator) fixed() []string {
	return []string{g.c.iface, "Unimplemented", "OperationInfo", "Operations", "Dispatch", "NewInput",
		"ExceptionNames", "IsFault", "ExceptionFor", "ErrUnknownOperation", "DecodeError",
		"ValidationFailure", "Violation", "ViolationKind"}
}

func (g *generator) claim(name string) string {
	for g.taken[name] || token(name) {
		name += "_"
	}
	g.taken[name] = true
	return name
}

// token reports whether name is a Go keyword or predeclared identifier;
// shape names are exported so this only guards against odd models.
func token(name string) bool {
	switch name {
	case "break", "case", "chan", "const", "continue", "default", "defer", "else", "fallthrough",
		"for", "func", "go", "goto", "if", "import", "interface", "map", "package", "range",
		"return", "select", "struct", "switch", "type", "var":
		return true
	}
	return false
}

func (g *generator) assignNames() {
	for _, n := range g.fixed() {
		g.taken[n] = true
	}
	for _, name := range sortedKeys(g.m.Shapes) {
		if g.m.Shapes[name].Type == "structure" {
			g.names[name] = g.claim(name)
		}
	}
	for _, name := range sortedKeys(g.m.Shapes) {
		g.needsValidate(name, map[string]bool{})
	}
}

// needsValidate reports whether values of the named shape carry any
// constraint, so Validate can skip building paths for inert members.
func (g *generator) needsValidate(name string, visiting map[string]bool) bool {
	if v, ok := g.needs[name]; ok {
		return v
	}
	if visiting[name] {
		return false
	}
	visiting[name] = true
	defer delete(visiting, name)
	s := g.m.Shapes[name]
	v := len(s.Enum) > 0 || s.Min != nil || s.Max != nil || s.Pattern != ""
	switch s.Type {
	case "structure":
		v = v || len(s.Required) > 0
		for _, r := range s.Members {
			if g.needsValidate(r.Shape, visiting) {
				v = true
			}
		}
	case "list":
		v = g.needsValidate(s.Member.Shape, visiting) || v
	case "map":
		v = g.needsValidate(s.Key.Shape, visiting) || v
		v = g.needsValidate(s.Value.Shape, visiting) || v
	}
	g.needs[name] = v
	return v
}

func (g *generator) p(format string, args ...any) {
	fmt.Fprintf(&g.buf, format, args...)
	g.buf.WriteByte('\n')
}

// goType returns the Go type of a value of the named shape; elem is true
// for list elements and map values, which are stored by value.
func (g *generator) goType(name string, elem bool) string {
	s := g.m.Shapes[name]
	ptr := "*"
	if elem {
		ptr = ""
	}
	switch s.Type {
	case "structure":
		return ptr + g.names[name]
	case "string":
		return ptr + "string"
	case "integer":
		return ptr + "int32"
	case "long":
		return ptr + "int64"
	case "boolean":
		return ptr + "bool"
	case "double":
		return ptr + "float64"
	case "timestamp":
		return ptr + "awstime.Time"
	case "blob":
		return "[]byte"
	case "list":
		return "[]" + g.goType(s.Member.Shape, true)
	case "map":
		return "map[string]" + g.goType(s.Value.Shape, true)
	}
	panic("unreachable: checked shape type " + s.Type)
}

func fieldName(member string) string {
	r := []rune(member)
	r[0] = unicode.ToUpper(r[0])
	name := string(r)
	if name == "Validate" {
		name += "_"
	}
	return name
}

func (g *generator) emit() {
	ops := sortedKeys(g.m.Operations)
	shapes := sortedKeys(g.m.Shapes)

	g.emitStructs(shapes)
	g.emitEnums(shapes)
	g.emitExceptions(shapes)
	g.emitValidators(shapes)
	g.emitOperations(ops)
	g.emitService(ops)
	g.emitDispatch(ops)
	body := bytes.Clone(g.buf.Bytes())
	g.buf.Reset()

	g.p("// Code generated by internal/model/gen from %s; DO NOT EDIT.", baseName(g.c.spec))
	g.p("")
	g.p("package %s", g.c.pkg)
	g.p("")
	g.p("import (")
	std := []string{"context"}
	if g.usesRe {
		std = append(std, "regexp")
	}
	if bytes.Contains(body, []byte("utf8.")) {
		std = append(std, "unicode/utf8")
	}
	if bytes.Contains(body, []byte("slices.")) {
		std = append(std, "maps", "slices")
	}
	slices.Sort(std)
	for _, imp := range std {
		g.p("%q", imp)
	}
	g.p("")
	if bytes.Contains(body, []byte("awstime.")) {
		g.p("%q", awstimePkg)
	}
	g.p("%q", modelcheckPkg)
	g.p(")")
	g.buf.Write(body)
}

func baseName(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

func deprecation(msg string) string {
	if msg == "" {
		return "// Deprecated: deprecated in the service model."
	}
	return "// Deprecated: " + msg
}

func (g *generator) emitStructs(shapes []string) {
	for _, name := range shapes {
		s := g.m.Shapes[name]
		if s.Type != "structure" {
			continue
		}
		g.p("")
		g.p("// %s is the %s shape.", g.names[name], name)
		if s.Deprecated {
			g.p("//")
			g.p("%s", deprecation(s.DeprecatedMessage))
		}
		g.p("type %s struct {", g.names[name])
		for _, mn := range s.order {
			r := s.Members[mn]
			target := g.m.Shapes[r.Shape]
			switch {
			case r.Deprecated:
				g.p("%s", deprecation(""))
			case target.Deprecated:
				g.p("%s", deprecation(target.DeprecatedMessage))
			}
			// omitzero, not omitempty: an absent (nil) member is left out,
			// but a list or map the server set to empty is sent as [] or {},
			// as AWS does (clients index into list results).
			g.p("%s %s `json:%q`", fieldName(mn), g.goType(r.Shape, false), mn+",omitzero")
		}
		g.p("}")
	}
}

// enumIdent turns an enum value into the suffix of a Go identifier.
func enumIdent(v string) string {
	var b strings.Builder
	upper := true
	for _, r := range v {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			upper = true
			continue
		}
		if upper {
			r = unicode.ToUpper(r)
			upper = false
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (g *generator) emitEnums(shapes []string) {
	for _, name := range shapes {
		s := g.m.Shapes[name]
		if len(s.Enum) == 0 {
			continue
		}
		g.p("")
		g.p("// Values of the %s enum.", name)
		if s.Deprecated {
			g.p("//")
			g.p("%s", deprecation(s.DeprecatedMessage))
		}
		g.p("const (")
		for _, v := range s.Enum {
			g.p("%s = %q", g.claim(name+enumIdent(v)), v)
		}
		g.p(")")
		g.p("")
		fn := g.claim("Valid" + name)
		g.p("// %s reports whether s is a value of the %s enum.", fn, name)
		g.p("func %s(s string) bool {", fn)
		g.p("switch s {")
		g.p("case %s:", quoteList(s.Enum))
		g.p("return true")
		g.p("}")
		g.p("return false")
		g.p("}")
	}
}

func quoteList(vs []string) string {
	q := make([]string, len(vs))
	for i, v := range vs {
		q[i] = strconv.Quote(v)
	}
	return strings.Join(q, ", ")
}

func (g *generator) emitExceptions(shapes []string) {
	var exc, faults []string
	for _, name := range shapes {
		s := g.m.Shapes[name]
		if s.Exception {
			exc = append(exc, name)
		}
		if s.Fault {
			faults = append(faults, name)
		}
	}
	g.p("")
	g.p("// ExceptionNames lists the exception shapes of the model, sorted.")
	g.p("var ExceptionNames = []string{")
	for _, e := range exc {
		g.p("%q,", e)
	}
	g.p("}")
	g.p("")
	g.p("// IsFault reports whether the named exception is a server fault")
	g.p("// rather than a client error.")
	g.p("func IsFault(name string) bool {")
	if len(faults) > 0 {
		g.p("switch name {")
		g.p("case %s:", quoteList(faults))
		g.p("return true")
		g.p("}")
	}
	g.p("return false")
	g.p("}")
}

func (g *generator) emitValidators(shapes []string) {
	for _, name := range shapes {
		s := g.m.Shapes[name]
		if s.Pattern != "" {
			g.usesRe = true
			g.p("")
			g.p("var re%s = regexp.MustCompile(%q)", name, s.Pattern)
		}
	}
	for _, name := range shapes {
		s := g.m.Shapes[name]
		if s.Type != "structure" {
			continue
		}
		tn := g.names[name]
		g.p("")
		g.p("// Validate checks s against the model constraints and returns the first")
		g.p("// violation in member order; path prefixes the reported member paths.")
		g.p("func (s *%s) Validate(path string) *modelcheck.Violation {", tn)
		if !g.needs[name] {
			g.p("return nil")
			g.p("}")
			continue
		}
		g.p("if s == nil {")
		g.p("return nil")
		g.p("}")
		for _, mn := range s.order {
			r := s.Members[mn]
			required := slices.Contains(s.Required, mn)
			if !required && !g.needs[r.Shape] {
				continue
			}
			field := "s." + fieldName(mn)
			pathExpr := fmt.Sprintf("modelcheck.Join(path, %q)", mn)
			if required {
				g.p("if %s == nil {", field)
				g.p("return modelcheck.RequiredViolation(%s, %q, %q)", pathExpr, mn, r.Shape)
				g.p("}")
			}
			g.checkValue(field, r.Shape, false, pathExpr, mn, 0)
		}
		g.p("return nil")
		g.p("}")
	}
}

// checkValue emits checks for expr, a value of shape name. elem is true when
// expr is a list element or map entry, held by value in an addressable
// variable or slice element rather than behind a pointer.
func (g *generator) checkValue(expr, name string, elem bool, pathExpr, member string, depth int) {
	if !g.needs[name] {
		return
	}
	s := g.m.Shapes[name]
	if s.Type == "structure" {
		g.p("if v := %s.Validate(%s); v != nil {", expr, pathExpr)
		g.p("return v")
		g.p("}")
		return
	}
	x := expr
	if !elem {
		x = fmt.Sprintf("x%d", depth)
		g.p("if %s := %s; %s != nil {", x, expr, x)
		defer g.p("}")
	}
	val := x
	if !elem && s.Type != "list" && s.Type != "map" {
		val = "*" + x
	}
	switch s.Type {
	case "string":
		if len(s.Enum) > 0 {
			g.p("if !Valid%s(%s) {", name, val)
			g.p("return modelcheck.EnumViolation(%s, %q, %q, %s, %q)", pathExpr, member, name, val, "["+strings.Join(s.Enum, ", ")+"]")
			g.p("}")
		}
		g.limits("utf8.RuneCountInString("+val+")", "Length", pathExpr, member, name, val, s)
		if s.Pattern != "" {
			g.p("if !re%s.MatchString(%s) {", name, val)
			g.p("return modelcheck.PatternViolation(%s, %q, %q, %s, %q)", pathExpr, member, name, val, s.Pattern)
			g.p("}")
		}
	case "integer", "long", "double":
		g.limits(val, "Value", pathExpr, member, name, val, s)
	case "list":
		g.limits("len("+val+")", "Length", pathExpr, member, name, val, s)
		if g.needs[s.Member.Shape] {
			i := fmt.Sprintf("i%d", depth)
			g.p("for %s := range %s {", i, val)
			g.checkValue(val+"["+i+"]", s.Member.Shape, true, fmt.Sprintf("modelcheck.Index(%s, %s)", pathExpr, i), member, depth+1)
			g.p("}")
		}
	case "map":
		g.limits("len("+val+")", "Length", pathExpr, member, name, val, s)
		if g.needs[s.Key.Shape] || g.needs[s.Value.Shape] {
			// Sorted keys make the reported violation deterministic.
			k, e := fmt.Sprintf("k%d", depth), fmt.Sprintf("e%d", depth)
			g.p("for _, %s := range slices.Sorted(maps.Keys(%s)) {", k, val)
			g.checkValue(k, s.Key.Shape, true, pathExpr, member, depth+1)
			if g.needs[s.Value.Shape] {
				g.p("%s := %s[%s]", e, val, k)
				g.checkValue(e, s.Value.Shape, true, fmt.Sprintf("modelcheck.Key(%s, %s)", pathExpr, k), member, depth+1)
			}
			g.p("}")
		}
	}
}

// limits emits the min/max checks of s against measure, the length or value
// being constrained; what is "Length" or "Value".
func (g *generator) limits(measure, what, pathExpr, member, name, val string, s *shape) {
	if (s.Min == nil || (what == "Length" && s.Min.String() == "0")) && s.Max == nil {
		return
	}
	kw := "if n := " + measure + ";"
	// A zero minimum length cannot fail; emitting it would be dead code.
	if s.Min != nil && !(what == "Length" && s.Min.String() == "0") {
		g.p("%s n < %s {", kw, s.Min)
		g.p("return modelcheck.Min%sViolation(%s, %q, %q, %s, %s)", what, pathExpr, member, name, val, s.Min)
		kw = "} else if"
	}
	if s.Max != nil {
		g.p("%s n > %s {", kw, s.Max)
		g.p("return modelcheck.Max%sViolation(%s, %q, %q, %s, %s)", what, pathExpr, member, name, val, s.Max)
	}
	g.p("}")
}

func (g *generator) emitOperations(ops []string) {
	g.p("")
	g.p("// OperationInfo describes one operation of the model.")
	g.p("type OperationInfo struct {")
	g.p("Name, Input, Output string")
	g.p("Errors []string // modeled exception shapes, in model order")
	g.p("Deprecated bool")
	g.p("Paginated bool")
	g.p("InputToken, OutputToken, ResultKey string")
	g.p("}")
	g.p("")
	g.p("// Operations describes every operation of the model by name.")
	g.p("// It is read-only.")
	g.p("var Operations = map[string]OperationInfo{")
	for _, name := range ops {
		op := g.m.Operations[name]
		g.p("%q: {", name)
		g.p("Name: %q,", name)
		if op.Input != nil {
			g.p("Input: %q,", op.Input.Shape)
		}
		if op.Output != nil {
			g.p("Output: %q,", op.Output.Shape)
		}
		if len(op.Errors) > 0 {
			errs := make([]string, len(op.Errors))
			for i, e := range op.Errors {
				errs[i] = e.Shape
			}
			g.p("Errors: []string{%s},", quoteList(errs))
		}
		if op.Deprecated {
			g.p("Deprecated: true,")
		}
		if pg, ok := g.pages[name]; ok {
			g.p("Paginated: true,")
			g.p("InputToken: %q, OutputToken: %q, ResultKey: %q,", pg.InputToken, pg.OutputToken, pg.ResultKey)
		}
		g.p("},")
	}
	g.p("}")
	g.p("")
	g.p("// ExceptionFor names the modeled exception that op reports for v, or")
	g.p("// ValidationException when op models no specific one.")
	g.p("func ExceptionFor(op string, v modelcheck.Violation) string {")
	g.p("return modelcheck.ExceptionFor(Operations[op].Errors, v)")
	g.p("}")
}

func (g *generator) inType(op *operation) string {
	if op.Input == nil {
		return "struct{}"
	}
	return g.names[op.Input.Shape]
}

func (g *generator) signature(name string) string {
	op := g.m.Operations[name]
	sig := fmt.Sprintf("%s(ctx context.Context, in *%s)", name, g.inType(op))
	if op.Output == nil {
		return sig + " error"
	}
	return fmt.Sprintf("%s (*%s, error)", sig, g.names[op.Output.Shape])
}

func (g *generator) emitService(ops []string) {
	g.p("")
	g.p("// %s is implemented by a backend serving the model's operations.", g.c.iface)
	g.p("type %s interface {", g.c.iface)
	for i, name := range ops {
		op := g.m.Operations[name]
		if op.Deprecated {
			if i > 0 {
				g.p("")
			}
			g.p("%s", deprecation(op.DeprecatedMessage))
		}
		g.p("%s", g.signature(name))
	}
	g.p("}")
	g.p("")
	g.p("// Unimplemented implements %s by returning Err(op) from every method.", g.c.iface)
	g.p("// Embed it and override the operations a backend supports. Err must be set.")
	g.p("type Unimplemented struct{ Err func(op string) error }")
	g.p("")
	g.p("var _ %s = Unimplemented{}", g.c.iface)
	for _, name := range ops {
		op := g.m.Operations[name]
		g.p("")
		g.p("// %s returns u.Err(%q).", name, name)
		g.p("func (u Unimplemented) %s {", g.signature(name))
		if op.Output == nil {
			g.p("return u.Err(%q)", name)
		} else {
			g.p("return nil, u.Err(%q)", name)
		}
		g.p("}")
	}
}

func (g *generator) emitDispatch(ops []string) {
	g.p("")
	g.p("// ErrUnknownOperation is returned by Dispatch for an operation that is not")
	g.p("// in the model. It is modelcheck.ErrUnknownOperation, shared by all models.")
	g.p("var ErrUnknownOperation = modelcheck.ErrUnknownOperation")
	g.p("")
	g.p("// DecodeError is returned by Dispatch for a body that is not JSON or does")
	g.p("// not fit the input shape; answer it with SerializationException.")
	g.p("type DecodeError = modelcheck.DecodeError")
	g.p("")
	g.p("// ValidationFailure is returned by Dispatch for an input that violates a")
	g.p("// model constraint; see ExceptionFor for the exception to answer with.")
	g.p("type ValidationFailure = modelcheck.ValidationFailure")
	g.p("")
	g.p("// NewInput returns a new zero input for op, or nil if op is unknown.")
	g.p("func NewInput(op string) any {")
	g.p("switch op {")
	for _, name := range ops {
		g.p("case %q:", name)
		g.p("return new(%s)", g.inType(g.m.Operations[name]))
	}
	g.p("}")
	g.p("return nil")
	g.p("}")
	g.p("")
	g.p("// Dispatch decodes body as the input of op, validates it and calls the")
	g.p("// matching method of svc. It returns ErrUnknownOperation, *DecodeError or")
	g.p("// *ValidationFailure before calling svc, and otherwise whatever svc")
	g.p("// returns. out is nil for operations without output.")
	g.p("func Dispatch(ctx context.Context, svc %s, op string, body []byte) (out any, err error) {", g.c.iface)
	g.p("switch op {")
	for _, name := range ops {
		op := g.m.Operations[name]
		g.p("case %q:", name)
		g.p("in := new(%s)", g.inType(op))
		g.p("if err := modelcheck.Decode(body, in); err != nil {")
		g.p("return nil, err")
		g.p("}")
		if op.Input != nil {
			g.p("if v := in.Validate(\"\"); v != nil {")
			g.p("return nil, &ValidationFailure{Op: op, Violation: *v}")
			g.p("}")
		}
		if op.Output == nil {
			g.p("return nil, svc.%s(ctx, in)", name)
		} else {
			g.p("o, err := svc.%s(ctx, in)", name)
			g.p("if err != nil || o == nil {")
			g.p("return nil, err")
			g.p("}")
			g.p("return o, nil")
		}
	}
	g.p("}")
	g.p("return nil, ErrUnknownOperation")
	g.p("}")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
