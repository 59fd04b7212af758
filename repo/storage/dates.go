package storage

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/lampi-pkg/lampi-pkg/internal/localfs"
)

// Last-Modified of what apt fetches by name.
//
// apt revalidates InRelease (and, without by-hash, the indices it fetches
// by name) with If-Modified-Since alone, and Last-Modified has whole
// seconds: a file replaced within the second of the file before it looks
// unchanged to apt behind any static server, S3 or CDN, and the device
// keeps the old release until the next publish. So every replacement of
// such a name gets a modification time strictly later, in whole seconds,
// than the file it replaces.
//
// The publisher waits for the next second rather than dating the file
// ahead: a Last-Modified later than the response's Date breaks RFC 9110
// (§8.8.2.1), and servers that follow it (Apache clamps such times to the
// request's) would answer 304 again; S3 sets an object's Last-Modified
// itself, at the upload, so there waiting is the only way; and the
// Release file's Date: must not be in the future either (apt refuses a
// Release dated ahead, and ignores one dated before the release it has).
// The wait is measured on the storage's own clock — the file system's
// timestamps, the object store's Last-Modified — never on repo.Options.Now
// (which tests fix, and which need not be the clock the server sees). It
// costs at most a second, and only for a publish within the same second
// as the one before.

// RevalidatedByDate tells the names of a published tree that clients
// fetch by name and revalidate with If-Modified-Since: everything under
// dists/ but the content-addressed by-hash files (whose name changes with
// their content). A replacement of such a name must be dated later (see
// Storage); the update server dates their versions itself.
func RevalidatedByDate(name string) bool {
	return strings.HasPrefix(name, "dists/") && !strings.Contains(name, "/by-hash/")
}

// maxDateWait bounds the wait for the clock to pass the time of the file
// being replaced. A longer wait means that file is dated ahead of the
// clock (the clock was set back since, or a file copied in kept a future
// time): waiting could take hours, so the new file is dated one second
// after it instead.
const maxDateWait = 2 * time.Second

// clockSlack is added to a computed wait: the file system takes its
// timestamps from a coarse clock, a tick behind the timer's.
const clockSlack = 10 * time.Millisecond

// DateAfter makes the local file tmp, about to be renamed over dst, carry
// a modification time strictly later, in whole seconds, than dst's (when
// dst exists). A fresh file usually does already; one that does not — a
// new file within dst's second, a hard link to an older file, a moved
// spool file — is touched once the file system's clock has passed dst's
// second.
func DateAfter(ctx context.Context, tmp, dst string) error {
	old, err := os.Stat(dst)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("date %s: %w", dst, err)
	}
	want := old.ModTime().Unix() + 1 // the first second allowed
	cur, err := os.Stat(tmp)
	if err != nil {
		return fmt.Errorf("date %s: %w", dst, err)
	}
	if cur.ModTime().Unix() >= want {
		return nil
	}
	for {
		// The file system's "now": a hard link or a moved file carries an
		// older time than that.
		if err := localfs.TouchNow(tmp); err != nil {
			return fmt.Errorf("date %s: %w", dst, err)
		}
		if cur, err = os.Stat(tmp); err != nil {
			return fmt.Errorf("date %s: %w", dst, err)
		}
		if cur.ModTime().Unix() >= want {
			return nil
		}
		gap := time.Unix(want, 0).Sub(cur.ModTime())
		if gap > maxDateWait {
			t := time.Unix(want, 0)
			if err := os.Chtimes(tmp, t, t); err != nil {
				return fmt.Errorf("date %s: %w", dst, err)
			}
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("date %s: %w", dst, ctx.Err())
		case <-time.After(gap + clockSlack):
		}
	}
}
