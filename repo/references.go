package repo

import (
	"context"
	"sort"
	"strings"

	bolt "go.etcd.io/bbolt"
)

// Reference says that Holder needs the pool file File: a package list
// ("bookworm|main|amd64") or, with Tracking, a tracked source version,
// written as reprepro writes it ("bookworm hello 2.9-1").
type Reference struct {
	Holder string `json:"holder"`
	File   string `json:"file"`
}

// References lists every reference of the database, as "reprepro
// dumpreferences": by file, then by holder.
func (r *Repo) References(ctx context.Context) ([]Reference, error) {
	var out []Reference
	err := r.view(func(tx *bolt.Tx) error {
		if tx == nil {
			return nil
		}
		return bucket(tx, bRefs).ForEach(func(k, _ []byte) error {
			file, holder, ok := strings.Cut(string(k), "\x00")
			if !ok {
				return nil
			}
			if codename, rest, ok := strings.Cut(holder, "|#track|"); ok {
				holder = codename + " " + strings.Replace(rest, "|", " ", 1)
			}
			out = append(out, Reference{Holder: holder, File: file})
			return nil
		})
	})
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].File != out[j].File {
			return out[i].File < out[j].File
		}
		return out[i].Holder < out[j].Holder
	})
	return out, err
}
