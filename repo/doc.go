// Package repo manages an apt repository the way reprepro does — same
// configuration, same published layout, same verbs — with its state in
// bbolt and an atomic, signed publish.
//
// # Basics
//
// A repository is a base directory holding:
//
//	conf/distributions   reprepro's own file (or directory of *.conf):
//	                     Codename, Suite, Architectures, Components,
//	                     SignWith, DebIndices, Limit, ValidFor, …
//	conf/options         reprepro's options file (optional)
//	db/lampi.db          the state: packages per distribution, component
//	                     and architecture; pool files with checksums and
//	                     who references them; what was published
//	db/lampi.lock        the writers' lock
//	db/pool-writing      the pool files a writer is writing (while it runs)
//	pool/, dists/        the published tree, laid out as reprepro lays it out
//
// [Open] reads the configuration; each method is one command:
// [Repo.IncludeDeb], [Repo.Remove], [Repo.RemoveFilter], [Repo.List]
// (with a [Filter] for listfilter), [Repo.Ls], [Repo.Copy], [Repo.Move],
// [Repo.CopyMatching] (copy/move filter and matched, with [GlobMatch]),
// [Repo.ClearVanished], [Repo.Export], [Repo.Check],
// [Repo.CheckPool], [Repo.DumpUnreferenced], [Repo.DeleteUnreferenced],
// [Repo.CreateSymlinks], [Repo.Phase] and [Repo.Renew]. [Init] writes a new
// conf/distributions.
//
// Source packages (distributions whose Architectures list "source"):
// [Repo.IncludeDsc], [Repo.IncludeChanges] (a whole upload),
// [Repo.RemoveSource], [Repo.CopySource]; [Repo.DumpTracks] reads the
// records of a Tracking field. A source entry lives in its component's
// source target and references several pool files ([Entry.Files]).
// [Repo.ProcessIncoming] includes the uploads of an incoming queue
// (conf/incoming, [Config.LoadIncoming]); IncludeChanges and it honour a
// distribution's Uploaders file, checking signatures against the keys in
// Options.KeyDir.
//
//	r, err := repo.Open("/srv/repo", repo.Options{Now: time.Now, LockTimeout: time.Minute})
//	res, err := r.IncludeDeb(ctx, "bookworm", []string{"hi_0.2_all.deb"}, repo.IncludeOptions{})
//
// Every modifying command is one bbolt transaction: it checks all its
// input first, so a bad file, an unknown architecture or a version clash
// leaves dists/, pool/ and db/ untouched. (A large batch into empty
// package lists — taking a repository over — builds the new lists in
// several transactions that nothing reads, then makes them visible in
// one: still all or nothing, with a fraction of the memory.) The version
// rules: the same file again is a no-op; a newer version replaces the
// older one (the newest Limit versions are kept, 1 by default); the same
// name, version and architecture with other bytes is refused
// (ErrVersionClash); an older version is refused (ErrOlderVersion) —
// unless Options.RepreproRules asks for reprepro's rules, under which it
// is skipped when Limit newer versions are there and added otherwise, and
// copy and move may downgrade. Versions of a name are listed newest
// first, as dpkg orders them. A distribution's Archive field names
// another distribution that receives the versions Limit pushes out,
// under its own Limit (reprepro 5.4's archive distributions).
//
// Publishing is incremental and ordered so that apt never sees a
// half-updated repository: only the indices whose package lists changed
// are regenerated (from the database; nothing re-reads the pool) — and
// when the commands that changed them listed the changed packages, the
// published Packages and Packages.gz are patched instead, to the same
// bytes (index_patch.go: Packages.gz is compressed in chunks cut at
// stanzas chosen by their key, and only the chunks holding changed
// packages are read and compressed anew) — each is
// written first under by-hash/SHA256 and by-hash/SHA512 (content
// addressed, never overwritten), then renamed into place under its name,
// then Release, Release.gpg and InRelease last. The Release file says
// Acquire-By-Hash: yes, so a client holding the previous InRelease fetches
// the previous indices by hash; superseded by-hash files are kept for
// Options.ByHashRetention (and the previous generation always). Pool
// files that lose their last reference are deleted after the new indices
// are live.
//
// Freshness: with ValidFor (which [Init] sets to [DefaultValidFor]) the
// Release carries a Valid-Until, and apt refuses a Release that a mirror
// or cache kept serving past it, so a frozen repository is noticed.
// [Repo.Renew] re-signs the Release files that have less than half of
// their validity left — through the ordinary publish, changing only Date
// and Valid-Until — and takes no lock when nothing is due, so that a
// server or cron can call it often.
//
// apt revalidates InRelease (and the indices it fetches by name) with
// If-Modified-Since alone, and Last-Modified has whole seconds: a file
// replaced within the second of the one a device holds looks unchanged to
// it behind any static server, S3 or CDN. So every file a publish
// replaces under such a name (under dists/, outside by-hash/) gets a
// modification time strictly later, in whole seconds, than the file it
// replaces — in the directory, on every publish target (an S3 object's
// Last-Modified) and when a failed release is rolled back. The publish
// waits for the next second when it must (at most one; measured on the
// storage's own clock: the file system's timestamps, the object store's
// Last-Modified — never Options.Now) rather than date files ahead: a
// Last-Modified later than the response's Date breaks RFC 9110 and
// servers that follow it clamp it, S3 dates an object itself at its
// upload, and the Release file's Date: must not be in the future either.
// A file being replaced that is dated more than two seconds ahead of the
// clock (the clock was set back since) is not waited for: the new one is
// dated a second after it.
//
// Everything published goes through a [storage.Storage] (package
// repo/storage): [storage.DirStorage] for a local directory,
// [storage.S3Storage] for a bucket; publish targets mirror the tree into
// either. Small package files are read and pool files created with raw
// system calls (internal/localfs), for local file systems only:
// Options.PlainFileIO (conf/options: plain-file-io) turns that off for a
// repository on a network file system. Signing goes
// through a [Signer] (see [KeyDirSigners] for SignWith key files), so a
// remote signer can plug in. The package never reads the clock or the
// environment: Options.Now dates Release files and signatures.
//
// One writer at a time holds db/lampi.lock (flock, released by the kernel
// if the process dies); others wait up to Options.LockTimeout (reprepro's
// --waitforlock). Readers (List, Check) take no lock: they wait at most
// for a writer's commit, never for its whole command.
//
// # Caveats
//
// Contents files, override files and the other reprepro fields
// docs/repo.md lists as refused stop every command with the file and
// line (conf_refuse.go) rather than being ignored. An existing reprepro database
// (db/*.db, Berkeley DB) is not read; instead, the first writing command
// adopts every distribution the state database does not know yet from its
// published indices (dists/…/Packages), after checking each pool file
// against its index entry, so taking over a reprepro repository loses no
// package. Until then, List shows such a distribution as empty.
//
// Differences from reprepro 5.3, on purpose: without
// Options.RepreproRules an older version is an error, not a skip, and a
// name remove or copy does not find fails the command; a batch with one
// bad file changes nothing
// (reprepro adds the good ones); the Packages stanzas also carry SHA512,
// and the Release file SHA512 and Acquire-By-Hash; listfilter compares
// Version as dpkg does (reprepro compares it alphabetically); multi-line
// Description fields in conf/distributions are written as proper
// continuation lines.
//
// Crash safety relies on rename(2) being atomic and on the kernel dropping
// flock locks of dead processes; durability across power loss on one
// syncfs(2) before the database commit and another before Release is
// written. Stale temporary files of interrupted commands are removed by
// the next writer. A command killed while writing new pool files leaves
// files (some partial) that no index and no database record names; it
// named them in db/pool-writing first, and the next writer deletes them.
// What that journal misses (it is not synced: a power loss; or files of
// older versions) DumpUnreferenced finds by listing the pool and
// DeleteUnreferenced deletes. Nothing that an index published under dists/
// names is deleted, for any distribution there: a pool shared with
// distributions published by other tools keeps their files. Several state
// databases writing into one pool (several base directories with one
// --outdir) are not supported: DeleteUnreferenced of one would take the
// other's files that are not published yet for orphans. Object storage
// may keep the parts of a big upload (64 MiB and more) interrupted half
// way, invisible but billed: give the bucket a lifecycle rule that aborts
// incomplete multipart uploads.
package repo
