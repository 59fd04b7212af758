package storage

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// TestDirStorageSync: Sync flushes what was written since the last Sync
// (files and their directories), copes with files removed meanwhile, and
// starts afresh afterwards; many files go through one syncfs.
func TestDirStorageSync(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := &DirStorage{Root: t.TempDir()}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.WriteFile(ctx, "dists/c/Release", []byte("r")))
	must(s.WriteFile(ctx, "pool/main/h/hi/hi_1_all.deb", []byte("d")))
	must(s.Copy(ctx, "dists/c/Release", "dists/c/by-hash/x"))
	if _, err := s.CreateNew(ctx, "pool/main/h/hi/hi_2_all.deb", []byte("e")); err != nil {
		t.Fatal(err)
	}
	must(s.Remove(ctx, "pool/main/h/hi/hi_1_all.deb"))
	must(s.Remove(ctx, "pool/main/h/hi/hi_2_all.deb")) // its directory goes too
	root := s.Root
	want := map[string]bool{
		filepath.Join(root, "dists/c/Release"):             true,
		filepath.Join(root, "dists/c/by-hash/x"):           true,
		filepath.Join(root, "pool/main/h/hi/hi_1_all.deb"): true,
		filepath.Join(root, "pool/main/h/hi/hi_2_all.deb"): true,
	}
	if len(s.pendFiles) != len(want) {
		t.Fatalf("pending files %v, want %v", s.pendFiles, want)
	}
	for p := range want {
		if _, ok := s.pendFiles[p]; !ok {
			t.Errorf("%s not pending", p)
		}
	}
	for _, d := range []string{"dists/c", "dists/c/by-hash", "pool/main/h/hi"} {
		if _, ok := s.pendDirs[filepath.Join(root, d)]; !ok {
			t.Errorf("directory %s not pending", d)
		}
	}
	must(s.Sync(ctx))
	if len(s.pendFiles)+len(s.pendDirs) != 0 {
		t.Fatalf("still pending after Sync: %v %v", s.pendFiles, s.pendDirs)
	}
	for i := range syncAllAbove + 1 {
		must(s.WriteFile(ctx, fmt.Sprintf("pool/main/p/p/p_%d_all.deb", i), nil))
	}
	if !s.syncAll || s.pendFiles != nil {
		t.Fatalf("%d files pending: want a whole-file-system Sync and no list", len(s.pendFiles))
	}
	must(s.Sync(ctx))
	if s.syncAll || len(s.pendFiles) != 0 {
		t.Fatal("still pending after a whole-file-system Sync")
	}
}
