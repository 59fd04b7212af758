package testutil

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TreeSum describes everything under the given top-level entries of base
// (directories or files): each file by name, mode and SHA-256, each
// directory by name, each symlink by its target. Two calls give the same
// string exactly when nothing there changed: the "bad input leaves the
// repository untouched" checks compare them.
func TreeSum(t testing.TB, base string, dirs ...string) string {
	t.Helper()
	var lines []string
	for _, d := range dirs {
		filepath.WalkDir(filepath.Join(base, d), func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return nil
			}
			rel, _ := filepath.Rel(base, p)
			switch {
			case e.Type()&fs.ModeSymlink != 0:
				target, _ := os.Readlink(p)
				lines = append(lines, rel+" -> "+target)
			case e.IsDir():
				lines = append(lines, rel+"/")
			default:
				info, _ := e.Info()
				data, _ := os.ReadFile(p)
				h := sha256.Sum256(data)
				lines = append(lines, fmt.Sprintf("%s %v %s", rel, info.Mode(), hex.EncodeToString(h[:])))
			}
			return nil
		})
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
