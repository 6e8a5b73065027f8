package deploy

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// parseDir parses a package's non-test files.
func parseDir(t *testing.T, dir string) []*ast.File {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	return files
}

// implementers returns the types of the engine that declare method (the
// unexported marker method of a sealed interface: only the engine can).
func implementers(t *testing.T, method string) []string {
	var out []string
	for _, f := range parseDir(t, "../engine") {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Recv == nil || fd.Name.Name != method {
				continue
			}
			if id, ok := fd.Recv.List[0].Type.(*ast.Ident); ok {
				out = append(out, id.Name)
			}
		}
	}
	slices.Sort(out)
	if len(out) == 0 {
		t.Fatalf("no engine type declares %s", method)
	}
	return out
}

// switchCases returns the engine types named by the cases of the type
// switches in function fn.
func switchCases(t *testing.T, fn string) []string {
	var out []string
	found := false
	for _, f := range parseDir(t, ".") {
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Name.Name != fn || fd.Body == nil {
				continue
			}
			found = true
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				ts, ok := n.(*ast.TypeSwitchStmt)
				if !ok {
					return true
				}
				for _, s := range ts.Body.List {
					for _, e := range s.(*ast.CaseClause).List {
						if sel, ok := e.(*ast.SelectorExpr); ok {
							if x, ok := sel.X.(*ast.Ident); ok && x.Name == "engine" {
								out = append(out, sel.Sel.Name)
							}
						}
					}
				}
				return true
			})
		}
	}
	if !found {
		t.Fatalf("no function %s in package deploy", fn)
	}
	slices.Sort(out)
	return out
}

// TestEveryActionHasAHandler checks that each engine action has its one
// handler, and each engine event its one wire encoding, so that a new
// action or event cannot be forgotten.
func TestEveryActionHasAHandler(t *testing.T) {
	for _, tc := range []struct{ marker, fn string }{
		{"isAction", "handlerOf"},
		{"isEvent", "encodeEvent"},
	} {
		want, got := implementers(t, tc.marker), switchCases(t, tc.fn)
		if !slices.Equal(want, got) {
			t.Errorf("%s handles %v; the engine's types with %s are %v", tc.fn, got, tc.marker, want)
		}
	}
}

// TestStorageKindsOwned checks that deploy reads and writes only the store
// kinds it declares: the records of other packages (applications, groups,
// instances, active-deployment markers of api) go through their owner's
// functions, so one package owns each storage layout.
func TestStorageKindsOwned(t *testing.T) {
	files := parseDir(t, ".")
	own := map[string]bool{}
	for _, f := range files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, s := range gd.Specs {
				for _, n := range s.(*ast.ValueSpec).Names {
					if strings.HasPrefix(n.Name, "kind") {
						own[n.Name] = true
					}
				}
			}
		}
	}
	calls := 0
	for _, f := range files {
		imported := map[string]bool{}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			name := p[strings.LastIndex(p, "/")+1:]
			if im.Name != nil {
				name = im.Name.Name
			}
			imported[name] = true
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) < 2 {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			kind := call.Args[1]
			switch sel.Sel.Name {
			case "Put", "Get", "Delete", "Scan":
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == "store" {
					if len(call.Args) < 3 {
						return true
					}
					kind = call.Args[2] // store.Get(ctx, s, kind, key)
				}
			default:
				return true
			}
			calls++
			switch k := kind.(type) {
			case *ast.Ident:
				if !own[k.Name] {
					t.Errorf("%s uses store kind %s, not one of deploy's", f.Name.Name, k.Name)
				}
			case *ast.BasicLit:
				t.Errorf("store kind %s written as a literal: declare it, or use its owner's functions", k.Value)
			case *ast.SelectorExpr:
				if x, ok := k.X.(*ast.Ident); ok && imported[x.Name] {
					t.Errorf("store kind %s.%s belongs to another package: use its functions", x.Name, k.Sel.Name)
				}
			}
			return true
		})
	}
	if calls < 10 {
		t.Fatalf("found only %d store calls: the check no longer sees them", calls)
	}
}
