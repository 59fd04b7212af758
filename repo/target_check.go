package repo

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/lampi-pkg/lampi-pkg/repo/storage"
)

// check --targets: compare a target with the repository object by
// object, and repair it.

// TargetReport is what CheckTarget found.
type TargetReport struct {
	Target string `json:"target"`
	URL    string `json:"url"`
	// Missing and Different list objects the target lacks or holds in
	// another version; Extra lists objects under pool/ and dists/ the
	// repository does not publish.
	Missing   []string `json:"missing"`
	Different []string `json:"different"`
	Extra     []string `json:"extra"`
	// Behind: the last sync did not complete.
	Behind bool `json:"behind"`
	// Repaired counts the objects uploaded by a repair.
	Repaired int `json:"repaired"`
	// Checked counts the objects the repository publishes there.
	Checked int `json:"checked"`
}

// Clean tells whether the target holds exactly what it should.
func (t *TargetReport) Clean() bool {
	return len(t.Missing) == 0 && len(t.Different) == 0 && len(t.Extra) == 0 && !t.Behind
}

// remoteObject is an object as the target lists it.
type remoteObject struct {
	size int64
	etag string // MD5 for objects uploaded in one piece
}

// listRemote lists pool/ and dists/ on the target.
func listRemote(ctx context.Context, st storage.Storage) (map[string]remoteObject, error) {
	out := map[string]remoteObject{}
	for _, dir := range []string{"pool", "dists"} {
		switch s := st.(type) {
		case *storage.S3Storage:
			objs, err := s.ListObjects(ctx, dir)
			if err != nil {
				return nil, err
			}
			for _, o := range objs {
				out[o.Name] = remoteObject{o.Size, o.ETag}
			}
		default:
			names, err := st.List(ctx, dir)
			if err != nil {
				return nil, err
			}
			for _, n := range names {
				rc, err := st.Open(ctx, n)
				if err != nil {
					return nil, err
				}
				h := md5.New()
				size, err := io.Copy(h, rc)
				rc.Close()
				if err != nil {
					return nil, err
				}
				out[n] = remoteObject{size, hex.EncodeToString(h.Sum(nil))}
			}
		}
	}
	return out, nil
}

func isPlainMD5(etag string) bool {
	if len(etag) != 32 {
		return false
	}
	_, err := hex.DecodeString(etag)
	return err == nil
}

// CheckTarget compares what target t holds (by listing it) with what the
// repository publishes: objects missing, different (size, MD5 ETag, or
// the SHA256 recorded in the object's metadata for multipart uploads) or
// extra. With repair it uploads the missing and different objects, in
// the safe order, and records them.
func (r *Repo) CheckTarget(ctx context.Context, t *storage.PublishTarget, repair bool) (*TargetReport, error) {
	rep := &TargetReport{Target: t.Config.Name, URL: t.Config.URL, Missing: []string{}, Different: []string{}, Extra: []string{}}
	want, _, behind, err := r.targetPlan(ctx, r.view, t)
	if err != nil {
		return nil, err
	}
	rep.Behind = behind
	remote, err := listRemote(ctx, t.Storage)
	if err != nil {
		return nil, fmt.Errorf("%s: list: %w", t.Config.Where(), err)
	}
	rep.Checked = len(want)
	var fix []mirrorObject
	for name, o := range want {
		ro, ok := remote[name]
		if !ok {
			rep.Missing = append(rep.Missing, name)
			fix = append(fix, o)
			continue
		}
		diff, err := r.differs(ctx, t, o, ro)
		if err != nil {
			return nil, err
		}
		if diff {
			rep.Different = append(rep.Different, name)
			fix = append(fix, o)
		}
	}
	for name := range remote {
		if _, ok := want[name]; !ok {
			rep.Extra = append(rep.Extra, name)
		}
	}
	sort.Strings(rep.Missing)
	sort.Strings(rep.Different)
	sort.Strings(rep.Extra)
	if !repair || len(fix) == 0 {
		return rep, nil
	}
	return rep, r.repairTarget(ctx, t, fix, rep)
}

// differs tells whether the target's object ro is another version than
// o: by size, by the ETag when it is a plain MD5, else by the SHA-256 the
// upload put in the object's metadata.
func (r *Repo) differs(ctx context.Context, t *storage.PublishTarget, o mirrorObject, ro remoteObject) (bool, error) {
	if o.sha256 == "" { // by-hash: hash the local file
		data, err := r.readLocal(ctx, o.name)
		if err != nil {
			return false, err
		}
		o.sha256, o.md5 = sumsOf(data)
	}
	diff := ro.size != o.size
	if !diff && o.md5 != "" && isPlainMD5(ro.etag) {
		diff = !strings.EqualFold(ro.etag, o.md5)
	} else if !diff && !isPlainMD5(ro.etag) {
		if s3, ok := t.Storage.(*storage.S3Storage); ok {
			info, err := s3.Stat(ctx, o.name)
			if err != nil {
				return false, err
			}
			if sha := info.UserMetadata["Sha256"]; sha != "" {
				diff = sha != o.sha256
			}
		}
	}
	return diff, nil
}

// repairTarget uploads the objects of fix, stage by stage, under the
// repository lock, counting them in rep.Repaired.
func (r *Repo) repairTarget(ctx context.Context, t *storage.PublishTarget, fix []mirrorObject, rep *TargetReport) error {
	w, err := r.lockWrite(ctx)
	if err != nil {
		return err
	}
	defer w.close()
	rec := &recorder{db: w.db, bucket: targetBucketName(t.ID()), now: r.opts.Now}
	var stages [numStages][]mirrorObject
	for _, o := range fix {
		stages[o.stage] = append(stages[o.stage], o)
	}
	prog := r.newProgress(t, stages[:])
	for _, objs := range stages {
		sort.Slice(objs, func(i, j int) bool { return objs[i].name < objs[j].name })
		n, copied, _, err := r.uploadStage(ctx, t, objs, rec, prog)
		rep.Repaired += n + copied
		if ferr := rec.flush(); err == nil {
			err = ferr
		}
		if err != nil {
			return fmt.Errorf("%s: repair: %w", t.Config.Where(), err)
		}
	}
	return nil
}
