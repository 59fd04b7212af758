package fleet

import (
	"encoding/json"
	"slices"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucketDuplicates holds, per device id, the seq ranges of its recent boot
// ids and the duplicate evidence (dupRecord JSON).
var bucketDuplicates = []byte("duplicates")

// bucketDuplicated indexes the ids that have duplicate evidence (Dup set),
// so a report lists them without reading every device's boot ranges.
var bucketDuplicated = []byte("duplicated")

// DuplicateWindow is how long a device stays listed as a duplicate after
// the last report that showed two devices behind its id: once each clone
// has its own id, the old id drops off the lists after this long.
const DuplicateWindow = 7 * 24 * time.Hour

// maxBoots bounds the boot ids remembered per device.
const maxBoots = 4

// Duplicate is the evidence that two or more devices report under one
// id — clones of one SD image share /etc/machine-id, the default device
// id, and so an id, credentials and a phasing draw. lampi-agent reports
// the kernel's boot id (state.State.BootID), which no two machines share.
// A device's seq grows across its reboots, so the reports of successive
// boots occupy disjoint seq ranges, whatever order they arrive in; two
// boot ids whose seq ranges interleave are two machines reporting at the
// same time.
type Duplicate struct {
	// Boots are the boot ids whose reports interleave.
	Boots []string `json:"boots"`
	// First and Last are when the evidence was first and last seen
	// (receive times).
	First time.Time `json:"first"`
	Last  time.Time `json:"last"`
	// Reports counts the reports that showed it.
	Reports uint64 `json:"reports"`
}

// Active reports whether the evidence is recent (within DuplicateWindow
// of now).
func (d *Duplicate) Active(now time.Time) bool {
	return d != nil && now.Sub(d.Last) < DuplicateWindow
}

// bootRange is the seq range of one boot id's reports.
type bootRange struct {
	ID   string `json:"id"`
	Min  uint64 `json:"min"`
	Max  uint64 `json:"max"`
	Seen int64  `json:"seen"` // last receive time, unix ns
}

type dupRecord struct {
	Boots []bootRange `json:"boots"`
	Dup   *Duplicate  `json:"duplicate,omitempty"`
}

// noteBoot records a state report's boot id and seq (stored or stale:
// an interleaved stream shows in the stale reports too) and updates the
// duplicate evidence of the device.
func noteBoot(tx *bolt.Tx, id, boot string, seq uint64, recv int64) error {
	if boot == "" {
		return nil
	}
	b := tx.Bucket(bucketDuplicates)
	var rec dupRecord
	if v := b.Get([]byte(id)); v != nil {
		if json.Unmarshal(v, &rec) != nil {
			rec = dupRecord{}
		}
	}
	i := slices.IndexFunc(rec.Boots, func(r bootRange) bool { return r.ID == boot })
	if i < 0 {
		if len(rec.Boots) >= maxBoots {
			oldest := 0
			for j, r := range rec.Boots {
				if r.Seen < rec.Boots[oldest].Seen {
					oldest = j
				}
			}
			rec.Boots = slices.Delete(rec.Boots, oldest, oldest+1)
		}
		rec.Boots = append(rec.Boots, bootRange{ID: boot, Min: seq, Max: seq})
		i = len(rec.Boots) - 1
	}
	r := &rec.Boots[i]
	r.Min, r.Max, r.Seen = min(r.Min, seq), max(r.Max, seq), max(r.Seen, recv)
	for j, o := range rec.Boots {
		if j == i || !(r.Min < o.Max && o.Min < r.Max) {
			continue
		}
		t := time.Unix(0, recv).UTC()
		if rec.Dup == nil {
			rec.Dup = &Duplicate{First: t}
		}
		for _, id := range []string{o.ID, r.ID} {
			if !slices.Contains(rec.Dup.Boots, id) {
				rec.Dup.Boots = append(rec.Dup.Boots, id)
			}
		}
		if len(rec.Dup.Boots) > maxBoots {
			rec.Dup.Boots = rec.Dup.Boots[len(rec.Dup.Boots)-maxBoots:]
		}
		rec.Dup.Last = t
		rec.Dup.Reports++
		break
	}
	v, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if rec.Dup != nil {
		if err := tx.Bucket(bucketDuplicated).Put([]byte(id), nil); err != nil {
			return err
		}
	}
	return b.Put([]byte(id), v)
}

// duplicatedIDs returns the ids with recent duplicate evidence.
func duplicatedIDs(tx *bolt.Tx, now time.Time) []string {
	b := tx.Bucket(bucketDuplicated)
	if b == nil {
		return nil
	}
	var ids []string
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		if duplicateOf(tx, k).Active(now) {
			ids = append(ids, string(k))
		}
	}
	return ids
}

// forgetBoots drops a device's boot ranges and duplicate evidence: after
// ResetSeq its seq starts again, and the old ranges would overlap the new.
func forgetBoots(tx *bolt.Tx, id []byte) error {
	for _, name := range [][]byte{bucketDuplicates, bucketDuplicated} {
		if b := tx.Bucket(name); b != nil {
			if err := b.Delete(id); err != nil {
				return err
			}
		}
	}
	return nil
}

// duplicateOf reads a device's duplicate evidence (nil: none, or a
// database from before the bucket).
func duplicateOf(tx *bolt.Tx, id []byte) *Duplicate {
	b := tx.Bucket(bucketDuplicates)
	if b == nil {
		return nil
	}
	v := b.Get(id)
	if v == nil {
		return nil
	}
	var rec dupRecord
	if json.Unmarshal(v, &rec) != nil {
		return nil
	}
	return rec.Dup
}
