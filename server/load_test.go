package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/testutil"
	"github.com/lampi-pkg/lampi-pkg/server/upload"
	"github.com/lampi-pkg/lampi-pkg/signing"
)

// releaseIndex is an index file listed in a Release file's SHA256 list.
type releaseIndex struct {
	sum  string
	size int64
}

// parseRelease returns the SHA256 entries and whether Acquire-By-Hash is on.
func parseRelease(text string) (map[string]releaseIndex, bool) {
	out := map[string]releaseIndex{}
	byHash := false
	in := false
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		l := sc.Text()
		switch {
		case l == "Acquire-By-Hash: yes":
			byHash = true
		case strings.HasPrefix(l, "SHA256:"):
			in = true
		case in && strings.HasPrefix(l, " "):
			var ix releaseIndex
			var name string
			if _, err := fmt.Sscan(l, &ix.sum, &ix.size, &name); err == nil {
				out[name] = ix
			}
		default:
			in = false
		}
	}
	return out, byHash
}

// TestPublishUnderReadLoad: 8 clients loop as apt does — InRelease
// (signature checked), then each Packages index by hash, checked against
// InRelease — while 50 packages are uploaded and published. No client
// may ever see a hash or size mismatch, a bad signature or a missing
// index.
func TestPublishUnderReadLoad(t *testing.T) {
	testutil.Heavy(t, "publishes 50 packages while clients keep reading the repository")
	t.Parallel()
	tr := newTestRepo(t)
	ts := newTokens(t, tr.dir)
	tok := mustToken(t, ts, "ci", "upload:stable")
	_, hs := startServer(t, Options{Dir: tr.dir, Tokens: ts})
	kr := signing.NewKeyring(tr.key)
	base := hs.URL + "/dists/stable/"

	var stop atomic.Bool
	var rounds, checked atomic.Int64
	var mu sync.Mutex
	var problems []string
	problem := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(format, a...))
		}
	}
	fetch := func(c *http.Client, url string) ([]byte, int, error) {
		resp, err := c.Get(url)
		if err != nil {
			return nil, 0, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return b, resp.StatusCode, err
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2}}
			for !stop.Load() {
				raw, code, err := fetch(c, base+"InRelease")
				if err != nil || code != 200 {
					problem("InRelease: %d %v", code, err)
					continue
				}
				_, text, err := signing.VerifyClearsigned(context.Background(), kr, bytes.NewReader(raw), signing.VerifyOptions{Now: time.Now})
				if err != nil {
					problem("InRelease signature: %v", err)
					continue
				}
				idx, byHash := parseRelease(string(text))
				if !byHash {
					problem("Release does not say Acquire-By-Hash: yes")
				}
				for _, name := range []string{"main/binary-amd64/Packages", "main/binary-armhf/Packages", "main/binary-amd64/Packages.gz"} {
					ix, ok := idx[name]
					if !ok {
						problem("InRelease lists no %s", name)
						continue
					}
					dir := name[:strings.LastIndex(name, "/")]
					body, code, err := fetch(c, base+dir+"/by-hash/SHA256/"+ix.sum)
					if err != nil || code != 200 {
						problem("%s by hash: %d %v", name, code, err)
						continue
					}
					sum := sha256.Sum256(body)
					if hex.EncodeToString(sum[:]) != ix.sum || int64(len(body)) != ix.size {
						problem("%s: Hash Sum mismatch (%d bytes, want %d)", name, len(body), ix.size)
					}
					checked.Add(1)
				}
				rounds.Add(1)
				time.Sleep(10 * time.Millisecond) // keep the CPU for the publisher too
			}
		}()
	}

	c := &upload.Client{BaseURL: hs.URL, Token: tok}
	for i := 1; i <= 50; i++ {
		name := []string{"hi", "lamp"}[i%2]
		v := fmt.Sprintf("1.%d", i)
		if _, err := c.Upload(context.Background(), "stable", name+"_"+v+"_all.deb", bytes.NewReader(buildDeb(t, name, v, ""))); err != nil {
			stop.Store(true)
			wg.Wait()
			t.Fatalf("upload %d: %v", i, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if len(problems) > 0 {
		t.Fatalf("clients saw %d+ problems (%d rounds):\n%s", len(problems), rounds.Load(), strings.Join(problems, "\n"))
	}
	if rounds.Load() < 8 {
		t.Fatalf("only %d client rounds ran during the uploads", rounds.Load())
	}
	_, pk := get(t, nil, base+"main/binary-amd64/Packages")
	if !strings.Contains(string(pk), "Version: 1.50") || !strings.Contains(string(pk), "Version: 1.49") {
		t.Fatalf("final Packages lacks the last uploads:\n%s", pk)
	}
	t.Logf("%d client rounds, %d indices checked", rounds.Load(), checked.Load())
}
