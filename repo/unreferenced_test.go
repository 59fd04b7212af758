package repo

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestInterruptedDeletion recreates what a process killed while deleting
// unreferenced pool files leaves behind (its journal, and files gone
// that the database still knows): checkpool does not call that damage,
// and the next writer forgets the files that are gone and keeps those
// still there.
func TestInterruptedDeletion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	r := newTestRepo(t, "Codename: c\nArchitectures: amd64\nComponents: main\n", Options{KeepUnreferenced: true})
	debs := t.TempDir()
	for _, v := range []string{"0.1", "0.2"} {
		mustInclude(t, r, "c", buildDeb(t, debs, pkgSpec{name: "hi", version: v}))
	}
	const old1, old2 = "pool/main/h/hi/hi_0.1_all.deb", "pool/main/h/hi/hi_0.2_all.deb"
	journal := filepath.Join(r.Base, "db", "deleting")

	// Killed after removing 0.1, before forgetting it.
	if err := os.Remove(filepath.Join(r.Base, old1)); err != nil {
		t.Fatal(err)
	}
	if problems, err := r.CheckPool(ctx, false); err == nil || len(problems) != 1 || !strings.HasPrefix(problems[0], old1) {
		t.Fatalf("without a journal, a missing known file is damage: %v %v", problems, err)
	}
	if err := os.WriteFile(journal, []byte(old1+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if problems, err := r.CheckPool(ctx, false); err != nil {
		t.Fatalf("checkpool after an interrupted deletion: %v %v", problems, err)
	}

	// The next writer finishes the deletion.
	mustInclude(t, r, "c", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.3"}))
	if _, err := os.Stat(journal); !os.IsNotExist(err) {
		t.Errorf("journal left: %v", err)
	}
	un, err := r.DumpUnreferenced(ctx)
	if err != nil || strings.Join(un, " ") != old2 {
		t.Fatalf("unreferenced after the next writer: %v %v", un, err)
	}
	if problems, err := r.CheckPool(ctx, false); err != nil {
		t.Fatalf("checkpool: %v %v", problems, err)
	}

	// Killed before removing 0.2: the file stays known (unreferenced)
	// and is deleted like any other.
	if err := os.WriteFile(journal, []byte(old2+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := r.DeleteUnreferenced(ctx)
	if err != nil || strings.Join(res.Deleted, " ") != old2 {
		t.Fatalf("deleteunreferenced: %+v %v", res, err)
	}
	if _, err := os.Stat(filepath.Join(r.Base, old2)); !os.IsNotExist(err) {
		t.Errorf("%s still there: %v", old2, err)
	}
	if problems, err := r.CheckPool(ctx, false); err != nil {
		t.Fatalf("checkpool: %v %v", problems, err)
	}
}
