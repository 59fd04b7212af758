package repo

import (
	"context"
	"fmt"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Pin is a package version the repository keeps whatever Limit says,
// until it is unpinned: a rollout pins the last good version, which a
// forward-only revert republishes.
type Pin struct {
	Codename string `json:"codename"`
	Package  string `json:"package"`
	Version  string `json:"version"`
	// Reason says who holds the pin ("rollout bookworm/hi/0.2").
	Reason string `json:"reason"`
}

func pinKey(codename, pkg, version string) []byte {
	return []byte(codename + "\x00" + pkg + "\x00" + version)
}

// Pin keeps codename's pkg at version through later includes, whatever
// the distribution's Limit. Pinning a version again replaces its reason.
func (r *Repo) Pin(ctx context.Context, p Pin) error {
	if _, err := r.Conf.Distribution(p.Codename); err != nil {
		return err
	}
	return r.updateDB(ctx, func(tx *bolt.Tx) error {
		return bucket(tx, bPins).Put(pinKey(p.Codename, p.Package, p.Version), []byte(p.Reason))
	})
}

// Unpin lets Limit apply to the version again (it goes with the next
// include that exceeds Limit). Unpinning a version that is not pinned is
// not an error.
func (r *Repo) Unpin(ctx context.Context, codename, pkg, version string) error {
	return r.updateDB(ctx, func(tx *bolt.Tx) error {
		return bucket(tx, bPins).Delete(pinKey(codename, pkg, version))
	})
}

// Pins lists the pinned versions, sorted.
func (r *Repo) Pins(ctx context.Context) ([]Pin, error) {
	var out []Pin
	err := r.view(func(tx *bolt.Tx) error {
		if tx == nil {
			return nil
		}
		b := tx.Bucket([]byte(bPins))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			f := strings.SplitN(string(k), "\x00", 3)
			if len(f) != 3 {
				return fmt.Errorf("%w: pin key %q", ErrState, k)
			}
			out = append(out, Pin{Codename: f[0], Package: f[1], Version: f[2], Reason: string(v)})
			return nil
		})
	})
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		return a.Codename+"\x00"+a.Package+"\x00"+a.Version < b.Codename+"\x00"+b.Package+"\x00"+b.Version
	})
	return out, err
}

// pinned tells whether codename's pkg at version is pinned.
func pinned(tx *bolt.Tx, codename, pkg, version string) bool {
	b := tx.Bucket([]byte(bPins))
	return b != nil && b.Get(pinKey(codename, pkg, version)) != nil
}

// overLimit returns the versions of have (sorted oldest first) that adding
// one more version pushes beyond d's Limit; pinned versions stay and do
// not count.
func overLimit(tx *bolt.Tx, d *Distribution, name string, have []existing) []existing {
	if d.Limit <= 0 {
		return nil
	}
	var free []existing
	for _, e := range have {
		if !pinned(tx, d.Codename, name, e.version.String()) {
			free = append(free, e)
		}
	}
	if n := len(free) + 1 - d.Limit; n > 0 {
		return free[:n]
	}
	return nil
}

// updateDB runs fn in a write transaction under the writers' lock,
// without exporting anything.
func (r *Repo) updateDB(ctx context.Context, fn func(tx *bolt.Tx) error) error {
	w, err := r.lockWrite(ctx)
	if err != nil {
		return err
	}
	if err := w.db.Update(fn); err != nil {
		w.close()
		return err
	}
	return w.close()
}
