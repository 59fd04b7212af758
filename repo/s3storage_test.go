package repo

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/repo/storage"
)

// TestMain stops the MinIO the tests share (testutil.SharedMinIO). The
// tests mostly wait — on apt-get, reprepro and child processes, and on the
// publish rule's whole seconds (storage.DateAfter) — so more of them run
// at once than there are cores (testutil.WaitBoundParallel).
func TestMain(m *testing.M) {
	testutil.WaitBoundParallel()
	code := m.Run()
	testutil.StopSharedMinIO()
	os.Exit(code)
}

// s3Target makes a public-read bucket on the shared MinIO and a target
// for it under prefix "apt/lampi"; it returns the base URL apt uses.
func s3Target(t testing.TB) (*storage.PublishTarget, string, *testutil.MinIO) {
	t.Helper()
	m := testutil.SharedMinIO(t)
	bucket := m.NewBucket(t, true)
	cfg := storage.TargetConfig{Name: "minio", URL: "s3://" + bucket + "/apt/lampi", Endpoint: m.Endpoint, PathStyle: true, Insecure: true}
	pt, err := storage.OpenTarget(cfg, storage.S3Credentials{AccessKeyID: testutil.MinIOUser, SecretAccessKey: testutil.MinIOPassword})
	if err != nil {
		t.Fatal(err)
	}
	if err := pt.Check(context.Background(), 10*time.Second); err != nil {
		t.Fatal(err)
	}
	return pt, m.URL + "/" + bucket + "/apt/lampi", m
}

// TestS3AptInstallAndUpgrade: a real apt-get reads the repository from
// MinIO (public-read bucket, path-style URL), installs hi, and upgrades
// it after a newer version was included; check finds the bucket clean.
// The second include goes through IncludePublish (release and the upload
// API).
func TestS3AptInstallAndUpgrade(t *testing.T) {
	t.Parallel()
	pt, base, _ := s3Target(t)
	r, pub := signedRepo(t, time.Now)
	r.opts.Mirror = &MirrorOptions{Targets: []*storage.PublishTarget{pt}}
	ctx := context.Background()
	debs := t.TempDir()
	mustInclude(t, r, "bookworm", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"}))

	// The suite's name, as devices have it: dists/stable is a link locally
	// and a copy in the bucket.
	apt := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ stable main\n", pub, base))
	apt.Update()
	apt.MustRun("install", "hi")
	if got := readFile(t, filepath.Join(apt.Root, "usr/share/hi/data")); got != "hi 0.1\n" {
		t.Fatalf("installed data %q", got)
	}

	if _, err := r.IncludePublish(ctx, "bookworm", []string{buildDeb(t, debs, pkgSpec{name: "hi", version: "0.2"})}, PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	apt.Update()
	out := apt.MustRun("install", "--only-upgrade", "hi")
	if got := readFile(t, filepath.Join(apt.Root, "usr/share/hi/data")); got != "hi 0.2\n" {
		t.Fatalf("after upgrade data %q\n%s", got, out)
	}
	rep, err := r.CheckTarget(ctx, pt, false)
	if err != nil || !rep.Clean() {
		t.Fatalf("check: %+v %v", rep, err)
	}
	// The superseded pool file is gone from the bucket too.
	if ok, err := pt.Storage.Exists(ctx, "pool/main/h/hi/hi_0.1_all.deb"); err != nil || ok {
		t.Fatalf("hi 0.1 still in the bucket: %v %v", ok, err)
	}
}

// TestS3CheckRepair: check finds a deleted and a corrupted object in the
// bucket, repair uploads them again.
func TestS3CheckRepair(t *testing.T) {
	t.Parallel()
	pt, _, m := s3Target(t)
	r, _ := signedRepo(t, nil)
	r.opts.Mirror = &MirrorOptions{Targets: []*storage.PublishTarget{pt}}
	ctx := context.Background()
	debs := t.TempDir()
	mustInclude(t, r, "bookworm", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"}))
	s3 := pt.Storage.(*storage.S3Storage)
	if err := m.Client.RemoveObject(ctx, s3.Bucket(), "apt/lampi/pool/main/h/hi/hi_0.1_all.deb", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := s3.WriteFile(ctx, "dists/bookworm/main/binary-amd64/Packages.gz", []byte("not gzip")); err != nil {
		t.Fatal(err)
	}
	rep, err := r.CheckTarget(ctx, pt, false)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(rep.Missing, ",") != "pool/main/h/hi/hi_0.1_all.deb" ||
		strings.Join(rep.Different, ",") != "dists/bookworm/main/binary-amd64/Packages.gz" || len(rep.Extra) != 0 {
		t.Fatalf("check: %+v", rep)
	}
	if rep, err = r.CheckTarget(ctx, pt, true); err != nil || rep.Repaired != 2 {
		t.Fatalf("repair: %+v %v", rep, err)
	}
	if rep, err = r.CheckTarget(ctx, pt, false); err != nil || !rep.Clean() {
		t.Fatalf("after repair: %+v %v", rep, err)
	}
}

// aptFetch does what apt does with a repository: read InRelease, then
// every index it lists by hash, verifying the hash. It returns the
// problems it found ("" when none).
func aptFetch(client *http.Client, base, codename string) string {
	get := func(p string) ([]byte, int, error) {
		resp, err := client.Get(base + "/" + p)
		if err != nil {
			return nil, 0, err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		return data, resp.StatusCode, err
	}
	rel, code, err := get("dists/" + codename + "/InRelease")
	if err != nil || code != 200 {
		return fmt.Sprintf("InRelease: %d %v", code, err)
	}
	var problems []string
	sc := bufio.NewScanner(bytes.NewReader(rel))
	in := false
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, " ") {
			in = line == "SHA256:"
			continue
		}
		f := strings.Fields(line)
		if !in || len(f) != 3 || !strings.Contains(f[2], "Packages.") {
			continue
		}
		dir := f[2][:strings.LastIndex(f[2], "/")]
		data, code, err := get("dists/" + codename + "/" + dir + "/by-hash/SHA256/" + f[0])
		if err != nil || code != 200 {
			problems = append(problems, fmt.Sprintf("%s: %d %v", f[2], code, err))
			continue
		}
		h := sha256.Sum256(data)
		if hex.EncodeToString(h[:]) != f[0] {
			problems = append(problems, "hash mismatch "+f[2])
		}
	}
	return strings.Join(problems, "; ")
}

// TestS3PublishWhileClientsFetch: while 12 releases are published to
// MinIO, 8 real apt clients loop apt-get update against the bucket and 8
// Go clients fetch as apt does (InRelease, then the indices by hash): no
// hash mismatch, no missing index, no warning.
func TestS3PublishWhileClientsFetch(t *testing.T) {
	t.Parallel()
	pt, base, _ := s3Target(t)
	r, pub := signedRepo(t, time.Now)
	r.opts.Mirror = &MirrorOptions{Targets: []*storage.PublishTarget{pt}}
	debs := t.TempDir()
	mustInclude(t, r, "bookworm", buildDeb(t, debs, pkgSpec{name: "hi", version: "0.1"}))
	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		mu       sync.Mutex
		problems []string
		fetches  atomic.Int64
		updates  atomic.Int64
	)
	// 8 real apt clients loop apt-get update against the bucket: any
	// warning or error (a hash sum mismatch, a bad signature, a missing
	// index) is a failure.
	for range 8 {
		apt := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ bookworm main\n", pub, base))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				out, err := apt.Run("update")
				for _, l := range strings.Split(out, "\n") {
					if err != nil || strings.HasPrefix(l, "W:") || strings.HasPrefix(l, "E:") || strings.Contains(l, "Hash Sum mismatch") {
						mu.Lock()
						problems = append(problems, fmt.Sprintf("apt-get update (%v): %s", err, l))
						mu.Unlock()
					}
				}
				updates.Add(1)
			}
		}()
	}
	// And 8 Go clients doing apt's fetches (InRelease, then every index
	// by hash) many times more often.
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 10 * time.Second}
			for !stop.Load() {
				if p := aptFetch(client, base, "bookworm"); p != "" {
					mu.Lock()
					problems = append(problems, p)
					mu.Unlock()
				}
				fetches.Add(1)
			}
		}()
	}
	for i := 1; i <= 12; i++ {
		mustInclude(t, r, "bookworm", buildDeb(t, debs, pkgSpec{name: fmt.Sprintf("p%d", i%4), version: fmt.Sprintf("1.%d", i), arch: "amd64"}))
	}
	// Let the clients see the last generation too.
	for n, u := fetches.Load(), updates.Load(); fetches.Load() < n+16 || updates.Load() < u+8; {
		time.Sleep(10 * time.Millisecond)
	}
	stop.Store(true)
	wg.Wait()
	if len(problems) > 0 {
		t.Fatalf("%d of %d fetches failed, e.g. %s", len(problems), fetches.Load(), problems[0])
	}
	t.Logf("%d apt-get updates and %d fetches, all consistent", updates.Load(), fetches.Load())
}

// TestS3KillDuringUpload kills the real lampi-pkg (SIGKILL) at random
// moments while it includes packages and uploads them to MinIO. After
// each kill the bucket still reads consistently (InRelease and the
// indices it names by hash match); the next command completes the
// upload, and check --publish-to finds the bucket clean at the end.
func TestS3KillDuringUpload(t *testing.T) {
	testutil.Heavy(t, "compiles lampi-pkg and kills it with SIGKILL while it uploads to a real MinIO")
	t.Parallel()
	bin := buildBinary(t)
	pt, base, m := s3Target(t)
	r, pub := signedRepo(t, time.Now)
	r.opts.Mirror = &MirrorOptions{Targets: []*storage.PublishTarget{pt}}
	debs := t.TempDir()
	const trials = 12
	var files []string
	for i := 0; i <= trials; i++ {
		// A larger payload makes uploads take a moment.
		files = append(files, buildDeb(t, debs, pkgSpec{name: fmt.Sprintf("k%d", i%5), version: fmt.Sprintf("1.%d", i),
			payload: strings.Repeat(fmt.Sprintf("%d random-ish payload\n", i*7919), 20000)}))
	}
	mustInclude(t, r, "bookworm", files[0])
	env := append(os.Environ(), "AWS_ACCESS_KEY_ID="+testutil.MinIOUser, "AWS_SECRET_ACCESS_KEY="+testutil.MinIOPassword)
	args := func(verb ...string) []string {
		return append([]string{"repo", "-b", r.Base, "--publish-to", pt.Config.URL, "--s3-endpoint", m.Endpoint,
			"--s3-path-style", "--s3-insecure"}, verb...)
	}
	t0 := time.Now()
	cmd := exec.Command(bin, args("export")...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	span := time.Since(t0) * 2
	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 2))
	t.Logf("seed %d, kills within %v", seed, span)
	client := &http.Client{Timeout: 10 * time.Second}
	apt := newAptRoot(t, fmt.Sprintf("deb [signed-by=%s] %s/ bookworm main\n", pub, base))
	apt.Update()
	kills, midUpload := 0, 0
	for trial := 1; trial <= trials; trial++ {
		cmd := exec.Command(bin, args("includedeb", "bookworm", files[trial])...)
		cmd.Env = env
		out, done := startCmd(t, cmd)
		// Odd trials: kill as soon as the new pool file is in the bucket
		// (the upload is under way); even ones at a random moment.
		trigger := time.After(time.Duration(rng.Int64N(int64(span))))
		if trial%2 == 1 {
			pool := fmt.Sprintf("pool/main/k/k%d/k%d_1.%d_all.deb", trial%5, trial%5, trial)
			ch := make(chan time.Time, 1)
			stopPoll := make(chan struct{})
			go func() {
				for {
					select {
					case <-stopPoll:
						return
					default:
					}
					if ok, _ := pt.Storage.Exists(context.Background(), pool); ok {
						ch <- time.Now()
						return
					}
					time.Sleep(2 * time.Millisecond)
				}
			}()
			defer close(stopPoll)
			trigger = ch
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("trial %d: %v\n%s", trial, err, out.String())
			}
		case <-trigger:
			cmd.Process.Signal(syscall.SIGKILL)
			if err := <-done; err == nil {
				break // it had finished
			}
			kills++
			if trial%2 == 1 {
				midUpload++ // killed after its first upload
			}
		}
		if p := aptFetch(client, base, "bookworm"); p != "" {
			t.Fatalf("trial %d: bucket inconsistent after the kill: %s", trial, p)
		}
		if trial%4 == 1 {
			apt.Update() // a real apt client, holding the previous lists
		}
	}
	t.Logf("%d of %d commands killed, %d of them while uploading", kills, trials, midUpload)
	if midUpload == 0 {
		t.Errorf("no kill landed while uploading")
	}
	cmd = exec.Command(bin, args("export")...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("export after kills: %v\n%s", err, out)
	}
	cmd = exec.Command(bin, args("check")...)
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "ok") {
		t.Fatalf("check --publish-to: %v\n%s", err, out)
	}
	if p := aptFetch(client, base, "bookworm"); p != "" {
		t.Fatal(p)
	}
	apt.Update()
	apt.MustRun("install", "k0") // included before the trials: always there
}
