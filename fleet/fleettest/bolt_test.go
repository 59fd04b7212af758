package fleettest

import (
	"path/filepath"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/fleet"
)

// TestBoltStore runs the suite against the bbolt store, which one
// process writes: the second writer is the same store.
func TestBoltStore(t *testing.T) {
	Run(t, func(t *testing.T, o Options) (Store, func() Store) {
		s, err := fleet.Open(filepath.Join(t.TempDir(), "fleet.db"), fleet.StoreOptions{Now: o.Now, HistoryLimit: o.HistoryLimit, NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, func() Store { return s }
	})
}
