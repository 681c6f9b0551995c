package sqldb_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// owners are the packages that own tables: each holds its migrations (in
// migrations/ beside its code) and is the only one whose code names them.
var owners = []string{"storage/index", "heatmap", "journey", "accounts", "audit", "assets", "render", "cluster"}

// connection may import database/sql and the drivers without owning tables.
var connection = map[string]bool{"storage/sqldb": true, "internal/pgtest": true}

var (
	createTable = regexp.MustCompile(`(?i)CREATE\s+(?:VIRTUAL\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([a-z_][a-z0-9_]*)`)
	tableRef    = regexp.MustCompile(`(?i)\b(?:FROM|JOIN|INTO|UPDATE|DELETE\s+FROM|TABLE|ON)\s+([a-z_][a-z0-9_]*)`)
	sqlVerb     = regexp.MustCompile(`(?i)\b(SELECT\s.+\sFROM|INSERT\s+(?:OR\s+\w+\s+)?INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM)\b`)
)

// TestOwnership checks STYLE rule 4 over the whole module: no package but a
// table's owner names that table in SQL, and only owners (and the connection
// package) import database/sql or a driver, or write SQL at all. Test files
// are exempt: tests check rows across owners on purpose.
func TestOwnership(t *testing.T) {
	root := moduleRoot(t)
	tables := map[string]string{} // table -> owner
	for _, o := range owners {
		files, _ := filepath.Glob(filepath.Join(root, o, "migrations", "*.sql"))
		for _, f := range files {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range createTable.FindAllStringSubmatch(string(body), -1) {
				name := strings.ToLower(m[1])
				if prev, ok := tables[name]; ok && prev != o {
					t.Errorf("table %s created by %s and %s", name, prev, o)
				}
				tables[name] = o
			}
		}
	}
	if len(tables) == 0 {
		t.Fatal("no tables found in any owner's migrations")
	}
	isOwner := map[string]bool{}
	for _, o := range owners {
		isOwner[o] = true
	}

	var problems []string
	err := filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == "node_modules" || n == "testdata" || (strings.HasPrefix(n, ".") && path != root) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		pkg := filepath.ToSlash(filepath.Dir(rel))
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		if !isOwner[pkg] && !connection[pkg] {
			for _, imp := range f.Imports {
				p, _ := strconv.Unquote(imp.Path.Value)
				if p == "database/sql" || strings.Contains(p, "go-sqlite3") || strings.Contains(p, "jackc/pgx") {
					problems = append(problems, rel+": imports "+p+" but owns no table")
				}
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			lit, ok := n.(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(lit.Value)
			if err != nil {
				return true
			}
			if !isOwner[pkg] && !connection[pkg] && sqlVerb.MatchString(s) {
				problems = append(problems, rel+": SQL text in a package that owns no table: "+short(s))
				return true
			}
			for _, m := range tableRef.FindAllStringSubmatch(s, -1) {
				name := strings.ToLower(m[1])
				if owner, ok := tables[name]; ok && owner != pkg && isSQL(s) {
					problems = append(problems, rel+": names "+owner+"'s table "+name+": "+short(s))
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(problems)
	for _, p := range problems {
		t.Error(p)
	}
}

// isSQL tells SQL text from prose that happens to say "from sessions".
func isSQL(s string) bool {
	return sqlVerb.MatchString(s) || regexp.MustCompile(`(?i)^\s*(JOIN|FROM|WHERE|AND|OR|LEFT|SELECT|WITH)\b`).MatchString(s) ||
		regexp.MustCompile(`(?i)\b(JOIN|WHERE|EXISTS\s*\()`).MatchString(s)
}

func short(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 90 {
		s = s[:90] + "…"
	}
	return s
}

func moduleRoot(t *testing.T) string {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}
