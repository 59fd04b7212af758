package repo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"
)

// Freshness. A Release file with Valid-Until (ValidFor in
// conf/distributions) stops being accepted by apt once that time has
// passed, so a mirror, cache or attacker that keeps serving an old
// InRelease ("freeze attack") is noticed by the devices instead of
// keeping them on old packages silently. The other side of it: the
// publisher must re-sign the Release before it expires, even when
// nothing changed. Renew does that; lampi-pkg serve runs it on a timer,
// and "lampi-pkg repo export --renew" from cron does it for static and
// object-storage deployments.

// DefaultValidFor is the ValidFor that Init writes for a new
// distribution, in conf/distributions syntax.
const DefaultValidFor = "7d"

// renewFraction: a Release is renewed once less than 1/renewFraction of
// its validity is left, so that a publisher that is down (or a cron job
// that fails) for up to half of ValidFor costs the devices nothing.
const renewFraction = 2

// RenewOptions refine Renew.
type RenewOptions struct {
	// Force renews every published distribution named, due or not.
	Force bool
}

// Renewal reports what Renew found, and did, for one distribution.
type Renewal struct {
	Codename string `json:"codename"`
	// Renewed is set when Renew published a new Release.
	Renewed bool `json:"renewed"`
	// Date and ValidUntil are those of the Release now published; both
	// are zero when the distribution is not published, ValidUntil alone
	// when the Release has none.
	Date       time.Time `json:"date,omitzero"`
	ValidUntil time.Time `json:"valid_until,omitzero"`
	// Due is the time from which Renew renews the Release; zero when it
	// never does (no Valid-Until, and none asked for).
	Due time.Time `json:"due,omitzero"`
}

// Renew re-signs the Release files of the named distributions (all when
// none is named) whose validity runs out: less than half of ValidFor
// left, or already passed; or ValidFor set in conf/distributions while
// the published Release has no Valid-Until (and, the other way round,
// a Valid-Until that ValidFor no longer asks for is dropped at the same
// point). Distributions never published are left alone.
//
// A renewal is an ordinary publish of the distribution, under the lock
// and through the same signed, atomic path as every export: Release,
// Release.gpg and InRelease get a new Date and Valid-Until, and nothing
// else changes — unless package lists changed since the last publish
// (ExportNever) or conf/distributions was edited: those changes are then
// published too, as any export would publish them. The publish targets
// (Options.Mirror) receive the new files.
//
// Deciding needs only the published Release files: when nothing is due
// Renew takes no lock, so it can be run often.
func (r *Repo) Renew(ctx context.Context, o RenewOptions, codenames ...string) ([]Renewal, error) {
	dists, err := r.pick(codenames)
	if err != nil {
		return nil, err
	}
	out := make([]Renewal, len(dists))
	var due []int
	for i, d := range dists {
		if out[i], err = r.renewal(ctx, d); err != nil {
			return nil, err
		}
		if r.renewDue(out[i], o) {
			due = append(due, i)
		}
	}
	if len(due) == 0 {
		return out, nil
	}
	w, err := r.lockWrite(ctx)
	if err != nil {
		return out, err
	}
	defer w.close()
	renewed := false
	for _, i := range due {
		d := dists[i]
		// Another process may have published since.
		if out[i], err = r.renewal(ctx, d); err != nil {
			return out, err
		}
		if !r.renewDue(out[i], o) {
			continue
		}
		if _, err := r.exportDist(ctx, w.db, d, false, true); err != nil {
			return out, fmt.Errorf("renew %s: %w", d.Codename, err)
		}
		renewed = true
		if out[i], err = r.renewal(ctx, d); err != nil {
			return out, err
		}
		out[i].Renewed = true
	}
	if !renewed {
		return out, nil
	}
	return out, r.syncTargets(ctx, w.db)
}

// renewDue tells whether Renew publishes a distribution now.
func (r *Repo) renewDue(n Renewal, o RenewOptions) bool {
	if n.Date.IsZero() {
		return false // not published
	}
	return o.Force || !n.Due.IsZero() && !r.opts.Now().Before(n.Due)
}

// renewal reads the published Release of d and says when it is due.
func (r *Repo) renewal(ctx context.Context, d *Distribution) (Renewal, error) {
	n := Renewal{Codename: d.Codename}
	rel, err := r.publishedRelease(ctx, d)
	if err != nil || rel.date.IsZero() {
		return n, err
	}
	n.Date, n.ValidUntil = rel.date, rel.validUntil
	switch {
	case !rel.validUntil.IsZero():
		window := d.ValidFor
		if window <= 0 { // ValidFor was removed: drop Valid-Until in time
			window = rel.validUntil.Sub(rel.date)
		}
		n.Due = rel.validUntil.Add(-window / renewFraction)
	case d.ValidFor > 0: // ValidFor was added: due at once
		n.Due = rel.date
	}
	return n, nil
}

// releaseTimes are the Date and Valid-Until of a Release file.
type releaseTimes struct {
	date, validUntil time.Time
}

// publishedRelease reads the times of dists/<codename>/Release; zero
// times when it is not published.
func (r *Repo) publishedRelease(ctx context.Context, d *Distribution) (releaseTimes, error) {
	name := "dists/" + d.Codename + "/Release"
	rc, err := r.storage.Open(ctx, name)
	if errors.Is(err, fs.ErrNotExist) {
		return releaseTimes{}, nil
	}
	if err != nil {
		return releaseTimes{}, fmt.Errorf("read %s: %w", name, err)
	}
	defer rc.Close()
	t, err := readReleaseTimes(rc)
	if err != nil {
		return t, fmt.Errorf("%s: %w", name, err)
	}
	return t, nil
}

// readReleaseTimes reads Date and Valid-Until from the fields of a
// Release file (before its checksum lists).
func readReleaseTimes(rd io.Reader) (releaseTimes, error) {
	var t releaseTimes
	sc := bufio.NewScanner(rd)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), ":")
		if !ok || strings.HasPrefix(name, " ") {
			continue
		}
		var dst *time.Time
		switch name {
		case "Date":
			dst = &t.date
		case "Valid-Until":
			dst = &t.validUntil
		case "MD5Sum", "SHA1", "SHA256", "SHA512":
			return t, nil // the lists: no more fields
		default:
			continue
		}
		v, err := parseReleaseTime(strings.TrimSpace(value))
		if err != nil {
			return t, fmt.Errorf("%s: %w", name, err)
		}
		*dst = v
	}
	return t, sc.Err()
}

// parseReleaseTime reads a Date or Valid-Until as releaseDate writes it
// (and reprepro and apt's own tools do): RFC 1123 with "UTC" or a
// numeric zone.
func parseReleaseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC1123, s)
	if err != nil {
		if t, err2 := time.Parse(time.RFC1123Z, s); err2 == nil {
			return t, nil
		}
		return time.Time{}, fmt.Errorf("%q is not a date like %q", s, releaseDate(time.Unix(0, 0)))
	}
	return t, nil
}
