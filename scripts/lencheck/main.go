// Command lencheck reports the functions longer than -func lines and the
// files longer than -file lines among the module's Go sources (tests
// excluded), and fails unless each is named in the allowlist with a reason.
// make test runs it as a gate; -v lists the allowed exceptions too.
//
//	go run ./scripts/lencheck [-v] [-func 80] [-file 600] [-allow scripts/lencheck/allow.txt] [DIR]
//
// An allowlist line is "path reason" for a file or "path:Func reason" for a
// function (a method is Type.Method); '#' starts a comment. An entry that no
// longer matches anything long is reported too, so the list only shrinks.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	maxFunc := flag.Int("func", 80, "longest allowed function, in lines")
	maxFile := flag.Int("file", 600, "longest allowed file, in lines")
	allowPath := flag.String("allow", "scripts/lencheck/allow.txt", "allowlist of justified exceptions")
	verbose := flag.Bool("v", false, "list the allowed exceptions too")
	flag.Parse()
	root := "."
	if flag.NArg() > 0 {
		root = flag.Arg(0)
	}
	allow, err := readAllow(*allowPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lencheck:", err)
		os.Exit(2)
	}
	long, err := scan(root, *maxFunc, *maxFile)
	if err != nil {
		fmt.Fprintln(os.Stderr, "lencheck:", err)
		os.Exit(2)
	}
	if bad := report(os.Stdout, long, allow, *maxFunc, *maxFile, *verbose); bad > 0 {
		os.Exit(1)
	}
}

// item is one long function or file: key is "path" or "path:Func".
type item struct {
	key   string
	lines int
}

// readAllow reads the allowlist into key → reason.
func readAllow(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open allowlist: %w", err)
	}
	defer f.Close()
	allow := map[string]string{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, reason, _ := strings.Cut(line, " ")
		if strings.TrimSpace(reason) == "" {
			return nil, fmt.Errorf("%s:%d: %q has no reason: write why it stays long", path, n, key)
		}
		allow[key] = strings.TrimSpace(reason)
	}
	return allow, sc.Err()
}

// scan walks root and returns every long function and file, sorted by key.
func scan(root string, maxFunc, maxFile int) ([]item, error) {
	var long []item
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return fmt.Errorf("parse %s: %w", rel, err)
		}
		if n := fset.File(f.Pos()).LineCount(); n > maxFile {
			long = append(long, item{rel, n})
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			n := fset.Position(fn.End()).Line - fset.Position(fn.Pos()).Line + 1
			if n > maxFunc {
				long = append(long, item{rel + ":" + funcName(fn), n})
			}
		}
		return nil
	})
	sort.Slice(long, func(i, j int) bool { return long[i].key < long[j].key })
	return long, err
}

// funcName is Func for a function and Type.Method for a method.
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	t := fn.Recv.List[0].Type
	for {
		switch x := t.(type) {
		case *ast.StarExpr:
			t = x.X
			continue
		case *ast.IndexExpr:
			t = x.X
			continue
		case *ast.IndexListExpr:
			t = x.X
			continue
		case *ast.Ident:
			return x.Name + "." + fn.Name.Name
		}
		return fn.Name.Name
	}
}

// report prints what is long and not allowed (with verbose, the allowed
// too) and the allowlist entries that match nothing long any more; it
// returns the number of failures.
func report(w io.Writer, long []item, allow map[string]string, maxFunc, maxFile int, verbose bool) int {
	bad := 0
	seen := map[string]bool{}
	for _, it := range long {
		limit := maxFunc
		if !strings.Contains(it.key, ":") {
			limit = maxFile
		}
		if reason, ok := allow[it.key]; ok {
			seen[it.key] = true
			if !verbose {
				continue
			}
			fmt.Fprintf(w, "allowed  %4d lines (> %d) %s: %s\n", it.lines, limit, it.key, reason)
			continue
		}
		bad++
		fmt.Fprintf(w, "TOO LONG %4d lines (> %d) %s: split it into named steps, or add it to the allowlist with a reason\n", it.lines, limit, it.key)
	}
	var stale []string
	for key := range allow {
		if !seen[key] {
			stale = append(stale, key)
		}
	}
	sort.Strings(stale)
	for _, key := range stale {
		bad++
		fmt.Fprintf(w, "STALE    %s is in the allowlist but no longer long: remove the line\n", key)
	}
	return bad
}
