// Package deb reads and writes Debian binary packages (.deb) and the
// data formats around them.
//
// # Basics
//
// A .deb is an ar archive with exactly three members, in this order:
// "debian-binary" (the text "2.0\n"), "control.tar[.gz|.xz|.zst]" and
// "data.tar[.gz|.xz|.zst]". The control tarball holds the control file
// (a deb822 paragraph, see [Paragraph]), md5sums, conffiles and the
// maintainer scripts; the data tarball holds the files to install.
//
// [Build] turns a directory tree laid out as for "dpkg-deb --build" (a
// DEBIAN/ directory with control and scripts, everything else payload)
// into a .deb without root: entries keep every mode bit of the tree and
// are owned by root:root unless [Owners] (see [ParseOwners]) declare
// otherwise, entries are sorted, directories are explicit and
// modification times are clamped to a given time, so two builds of the
// same tree are byte-identical. md5sums lists every name of hard links.
//
// [Version] parses and compares versions exactly as dpkg does.
//
// [Reader] streams an existing .deb: [NewReader] checks the ar magic and
// debian-binary, Control returns the control member, Next and Read walk the
// data member without holding it in memory. [Inspect] and [Contents] are
// what "dpkg-deb --info" and "--contents" print; [Extract] unpacks the
// payload through an os.Root, so nothing is ever written outside the
// destination. [MemberReader] is the lower layer that gives the exact
// bytes of each ar member, for signatures over them. Every archive is
// treated as hostile: structural problems are errors that name the member
// and entry, and decompression is bounded where the reader holds data in
// memory.
//
// # Caveats
//
// Compression with zstd is only understood by dpkg ≥ 1.21.18 (Debian 12)
// and is never the default. Build never follows symbolic links in the
// source tree: they are stored as links. Build compresses xz with the
// pure-Go encoder of internal/xzenc (optimal parsing, within about 2 % of
// "xz -6"), its match finding shared out between the workers, in blocks
// of three dictionaries (as "xz -T" does), and gzip in parallel as one
// member; the output never depends on the number of workers. Build keeps
// group and other write permission as the tree has it: BuildOptions.Umask
// clears bits for trees checked out with a loose umask. Extract refuses
// device nodes and FIFOs, and keeps ownership only when run as root.
package deb
