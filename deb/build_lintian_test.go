package deb_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/deb"
	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
)

// lintianTags runs the real lintian once on several packages and returns
// the tags it reports (E: and W:) by package name.
func lintianTags(pkgs ...string) (map[string][]string, error) {
	out, err := exec.Command("lintian", append([]string{"--no-cfg", "--tag-display-limit", "0"}, pkgs...)...).CombinedOutput()
	if err != nil {
		// lintian exits 1 when it reports errors; a crash prints no tags.
		if _, ok := err.(*exec.ExitError); !ok || !strings.Contains(string(out), ": ") {
			return nil, fmt.Errorf("lintian: %v\n%s", err, out)
		}
	}
	re := regexp.MustCompile(`(?m)^([EW]): ([^:\s]+): (\S+)`)
	tags := map[string][]string{}
	for _, m := range re.FindAllStringSubmatch(string(out), -1) {
		tags[m[2]] = append(tags[m[2]], m[1]+": "+m[3])
	}
	for _, v := range tags {
		sort.Strings(v)
	}
	return tags, nil
}

// referenceLintianTags is lintianTags for reference packages, whose
// verdict does not change between runs (the real Debian packages): the
// tags of each are kept in testutil.CacheDir()/lintian under the SHA-256
// of lintian's version and the package's bytes, and lintian runs only on
// the packages not seen before. What the cache holds is lintian's own
// output for those very bytes, so a hit says what a new run would; a new
// lintian or a new package is judged afresh.
func referenceLintianTags(pkgs ...string) (map[string][]string, error) {
	version, err := exec.Command("lintian", "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("lintian --version: %v", err)
	}
	dir := filepath.Join(testutil.CacheDir(), "lintian")
	tags := map[string][]string{}
	var missing []string
	files := map[string]string{} // package → its cache file
	for _, p := range pkgs {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		h.Write(version)
		h.Write(data)
		files[p] = filepath.Join(dir, hex.EncodeToString(h.Sum(nil))+".json")
		var hit struct {
			Name string
			Tags []string
		}
		if b, err := os.ReadFile(files[p]); err == nil && json.Unmarshal(b, &hit) == nil && hit.Name != "" {
			if len(hit.Tags) > 0 {
				tags[hit.Name] = hit.Tags
			}
			continue
		}
		missing = append(missing, p)
	}
	if len(missing) == 0 {
		return tags, nil
	}
	got, err := lintianTags(missing...)
	if err != nil {
		return nil, err
	}
	for _, p := range missing {
		name, _, _ := strings.Cut(filepath.Base(p), "_")
		if len(got[name]) > 0 {
			tags[name] = got[name]
		}
		b, _ := json.Marshal(struct {
			Name string
			Tags []string
		}{name, got[name]})
		// Best effort: a cache that cannot be written costs time only.
		if os.MkdirAll(dir, 0o755) == nil {
			tmp := files[p] + ".tmp" + strconv.Itoa(os.Getpid())
			if os.WriteFile(tmp, b, 0o644) == nil {
				os.Rename(tmp, files[p])
			}
		}
	}
	return tags, nil
}

// builderTags are the lintian tags a package builder causes (as opposed
// to what the package author put in the tree).
var builderTags = regexp.MustCompile(`wrong-file-owner|bad-owner|bad-permissions|md5sum|conffile|control-file|tar-errors|malformed-deb|unknown-control|ancient-file|non-standard-(file|dir|executable)-perm|world-writable|installed-size`)

// TestLintianNoBuilderErrors judges our packages with lintian: nothing a
// builder causes is reported, and nothing is reported that lintian does
// not also report for dpkg-deb's own build of the same tree.
func TestLintianNoBuilderErrors(t *testing.T) {
	testutil.Heavy(t, "builds packages with lampi-pkg and dpkg-deb and runs lintian on them")
	t.Parallel()
	testutil.RequireTool(t, "lintian")
	testutil.RequireTool(t, "dpkg-deb")
	var ours, refs []string
	for _, fixture := range []string{"hi", "lampi-service"} {
		src := filepath.Join("..", "fixtures", fixture)
		p, _ := buildDir(t, src, deb.BuildOptions{Mtime: time.Unix(1700000000, 0)})
		ours = append(ours, p)
		ref := filepath.Join(t.TempDir(), fixture+".deb")
		mustRun(t, "env", "SOURCE_DATE_EPOCH=1700000000", "dpkg-deb", "--root-owner-group", "--build", src, ref)
		refs = append(refs, ref)
	}
	// Two lintian processes side by side: the packages have the same names.
	var (
		refTags map[string][]string
		refErr  error
	)
	done := make(chan struct{})
	go func() { defer close(done); refTags, refErr = lintianTags(refs...) }()
	ourTags, err := lintianTags(ours...)
	<-done
	if err != nil || refErr != nil {
		t.Fatal(err, refErr)
	}
	// lintian does report content problems of the fixtures (no changelog):
	// proof that its output is read at all.
	if len(ourTags["lampi-service"]) == 0 {
		t.Fatalf("lintian reported nothing for lampi-service; expected at least no-changelog")
	}
	for pkg, tags := range ourTags {
		seen := map[string]bool{}
		for _, tag := range refTags[pkg] {
			seen[tag] = true
		}
		for _, tag := range tags {
			if builderTags.MatchString(tag) {
				t.Errorf("%s: lintian reports a builder problem: %s", pkg, tag)
			}
			if !seen[tag] {
				t.Errorf("%s: lintian reports %s for our build but not for dpkg-deb's", pkg, tag)
			}
		}
	}
}
