// Package storage holds a published apt tree — pool/ and dists/ — for
// the repository package: a [Storage] interface, its implementations in
// a local directory ([DirStorage]) and in an S3-compatible bucket
// ([S3Storage]), and the publish targets that mirror a repository into
// either ([TargetConfig], [OpenTarget], [PublishTarget]).
//
// # Basics
//
// Names are slash-separated and relative to the storage's root
// ("pool/main/h/hi/hi_0.1_all.deb", "dists/stable/InRelease"); anything
// else is refused with [ErrInvalidName]. Every write is atomic per name:
// a reader sees the old content or the new, never a mix. [DirStorage]
// writes to a temporary name in the target directory and renames it into
// place (pool files nothing references yet are created in place with
// [DirStorage.CreateNew]); [S3Storage] relies on a PUT being atomic.
//
//	st := &storage.DirStorage{Root: "/srv/repo"}
//	err := st.WriteFile(ctx, "dists/stable/Release", data)
//
//	t, err := storage.OpenTarget(storage.TargetConfig{URL: "s3://apt/lampi",
//		Endpoint: "minio:9000", PathStyle: true}, creds)
//	err = t.Check(ctx, 15*time.Second)
//
// apt revalidates what it fetches by name (everything under dists/ but
// by-hash/: [RevalidatedByDate]) with If-Modified-Since alone, and
// Last-Modified has whole seconds. So both storages give a replaced
// such name a modification time strictly later, in whole seconds, than
// the content it replaces, waiting (at most about two seconds) for the
// storage's own clock — the file system's timestamps, the object
// store's Last-Modified — rather than dating anything ahead (see
// dates.go).
//
// The package reads neither the environment nor the clock: S3
// credentials come in through [S3Options] or [OpenTarget] (the command
// line reads them with minio-go's credential providers), and every wait
// is measured on the storage's clock.
//
// # Caveats
//
// [DirStorage] makes its small-file operations (create a pool file, make
// its directory) as raw system calls, which suit local file systems only;
// set [DirStorage].PlainIO for a root on NFS, SMB or FUSE. Its Sync
// flushes the files it wrote one by one, or after many writes the whole
// file system (syncfs(2)) holding Root.
//
// S3 has no rename: the order in which a publisher writes objects is the
// publisher's business (indices before the Release that names them). A
// multipart upload (64 MiB and more) interrupted half way leaves parts
// that are invisible but billed: give the bucket a lifecycle rule that
// aborts incomplete multipart uploads.
package storage
