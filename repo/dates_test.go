package repo

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/repo/storage"
)

// datedNames lists the files under dists/ that clients fetch by name
// (not by-hash, not the suite's link), relative to root, with their
// modification times.
func datedNames(t testing.TB, root string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	err := filepath.WalkDir(filepath.Join(root, "dists"), func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if e.IsDir() || e.Type()&fs.ModeSymlink != 0 || !storage.RevalidatedByDate(rel) {
			return nil
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		out[rel] = fi.ModTime()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// checkLater fails unless every name in after that differs in content
// from before (or is new) is dated a whole second later than before.
func checkLater(t testing.TB, step, root string, before, after map[string]time.Time, content map[string]string) {
	t.Helper()
	for name, mt := range after {
		data := readFile(t, filepath.Join(root, name))
		old, had := before[name]
		if had && content[name] != data && mt.Unix() <= old.Unix() {
			t.Errorf("%s: %s changed but is dated %s, not after the file it replaced (%s)", step, name, mt.Format(time.RFC3339Nano), old.Format(time.RFC3339Nano))
		}
		content[name] = data
	}
}

// TestPublishDatesEveryReplacement: back-to-back publishes — includes,
// a removal that brings an index back to an earlier generation's content
// (its by-hash file, linked into place, carries that generation's time),
// and one after a file dated an hour ahead — give every changed file that
// apt fetches by name a modification time strictly later, in whole
// seconds, than the file it replaced, in the repository and in a file://
// publish target. The hour ahead is not waited for.
func TestPublishDatesEveryReplacement(t *testing.T) {
	t.Parallel()
	mirror := t.TempDir()
	r, _, _ := mirrorRepo(t, &storage.DirStorage{Root: mirror}, storage.TargetConfig{Name: "copy", URL: "file://" + mirror})
	debs := t.TempDir()
	ctx := context.Background()
	roots := []string{r.Base, mirror}
	mustInclude(t, r, "bookworm", buildDeb(t, debs, pkgSpec{name: "base", version: "1"}))
	before := map[string]map[string]time.Time{}
	content := map[string]map[string]string{}
	for _, root := range roots {
		before[root], content[root] = datedNames(t, root), map[string]string{}
		checkLater(t, "start", root, nil, before[root], content[root])
	}
	step := func(name string, publish func()) {
		t.Helper()
		publish()
		for _, root := range roots {
			after := datedNames(t, root)
			checkLater(t, name, root, before[root], after, content[root])
			before[root] = after
		}
	}
	for i := range 5 {
		step(fmt.Sprintf("include %d", i), func() {
			mustInclude(t, r, "bookworm", buildDeb(t, debs, pkgSpec{name: fmt.Sprintf("p%d", i), version: "1"}))
		})
	}
	// Back to the content the indices had after the first include: every
	// by-hash file of that generation is still there (and older).
	step("remove", func() {
		if _, err := r.Remove(ctx, "bookworm", Selection{}, []string{"p0", "p1", "p2", "p3", "p4"}); err != nil {
			t.Fatal(err)
		}
	})
	// A file dated ahead of the clock (set back since): the next one is
	// dated a second after it, without an hour's wait.
	ahead := time.Now().Add(time.Hour).Truncate(time.Second)
	inRelease := filepath.Join(r.Base, "dists", "bookworm", "InRelease")
	if err := os.Chtimes(inRelease, ahead, ahead); err != nil {
		t.Fatal(err)
	}
	before[r.Base] = datedNames(t, r.Base)
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	step("after a file dated ahead", func() {
		if _, err := r.IncludeDeb(ctx, "bookworm", []string{buildDeb(t, debs, pkgSpec{name: "late", version: "1"})}, IncludeOptions{}); err != nil {
			t.Fatal(err)
		}
	})
	if fi, err := os.Stat(inRelease); err != nil || !fi.ModTime().Equal(ahead.Add(time.Second)) {
		t.Errorf("InRelease after one dated %s: %v %v, want dated a second later", ahead, fi.ModTime(), err)
	}
	for name := range before[r.Base] {
		if strings.Contains(name, "/by-hash/") {
			t.Fatalf("by-hash file listed: %s", name)
		}
	}
}

// TestS3DatesEveryReplacement: an object under dists/ replaced by an
// upload, a file upload or a server-side copy right after the one before
// gets a Last-Modified (as MinIO serves it, whole seconds) strictly later;
// by-hash and pool objects are written once, without waiting.
func TestS3DatesEveryReplacement(t *testing.T) {
	t.Parallel()
	pt, _, _ := s3Target(t)
	st := pt.Storage.(*storage.S3Storage)
	ctx := t.Context()
	const name = "dists/bookworm/InRelease"
	var last time.Time
	check := func(step string) {
		t.Helper()
		info, err := st.Stat(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if !last.IsZero() && info.LastModified.Unix() <= last.Unix() {
			t.Fatalf("%s: Last-Modified %s, not after the object it replaced (%s)", step, info.LastModified, last)
		}
		last = info.LastModified
	}
	if err := st.WriteFile(ctx, "dists/bookworm/main/by-hash/SHA256/00", []byte("index\n")); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := st.WriteFile(ctx, name, []byte(fmt.Sprintf("upload %d\n", i))); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("upload %d", i))
		src := filepath.Join(t.TempDir(), "InRelease")
		if err := os.WriteFile(src, []byte(fmt.Sprintf("file upload %d\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := st.PutFile(ctx, name, src); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("file upload %d", i))
		if err := st.Copy(ctx, "dists/bookworm/main/by-hash/SHA256/00", name); err != nil {
			t.Fatal(err)
		}
		check(fmt.Sprintf("copy %d", i))
	}
}
