package fleet

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// ResetSeq forgets the stored seq of each device, in one transaction, so
// the next report of the device is stored whatever its seq: for a device
// pinned by a seq from the future stored before MaxSeqAhead was checked,
// or one whose counter went back. Its stored report and its audit log are
// kept; the log is renumbered so that later events sort after it. An id
// that never reported fails with ErrNotFound, and nothing is reset.
func (s *Store) ResetSeq(ctx context.Context, ids ...string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		devs, hist := tx.Bucket(bucketDevices), tx.Bucket(bucketHistory)
		for _, id := range ids {
			key := []byte(id)
			old := record(devs.Get(key))
			if !old.valid() {
				return fmt.Errorf("device %q: %w: it never reported to this collector (list devices with 'lampi-pkg fleet devices')", id, ErrNotFound)
			}
			r := bytes.Clone(old)
			binary.BigEndian.PutUint64(r[0:8], 0)
			if err := devs.Put(key, r); err != nil {
				return err
			}
			if err := renumberHistory(hist, id); err != nil {
				return err
			}
			if err := forgetBoots(tx, key); err != nil {
				return err
			}
		}
		return nil
	})
}

// renumberHistory gives a device's events, in their order, the keys of
// seq 0 (numbered 0, 1, …), below every seq a later report can have. The
// events keep their own seq.
func renumberHistory(hist *bolt.Bucket, id string) error {
	prefix := historyPrefix(id)
	var events [][]byte
	var keys [][]byte
	c := hist.Cursor()
	for k, v := c.Seek(prefix); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
		keys = append(keys, bytes.Clone(k))
		events = append(events, bytes.Clone(v))
	}
	for _, k := range keys {
		if err := hist.Delete(k); err != nil {
			return err
		}
	}
	if len(events) > 1<<16 {
		events = events[len(events)-1<<16:] // the key numbers 16 bits: the newest
	}
	for n, e := range events {
		key := append(bytes.Clone(prefix), make([]byte, 8)...)
		key = binary.BigEndian.AppendUint16(key, uint16(n))
		if err := hist.Put(key, e); err != nil {
			return err
		}
	}
	return nil
}
