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
// into a .deb without root: every entry is owned by root:root, entries are
// sorted, directories are explicit and modification times are clamped to a
// given time, so two builds of the same tree are byte-identical.
//
// [Version] parses and compares versions exactly as dpkg does.
//
// [Reader] streams an existing .deb; it treats every archive as hostile.
//
// # Caveats
//
// Compression with zstd is only understood by dpkg ≥ 1.21.18 (Debian 12)
// and is never the default. Build never follows symbolic links in the
// source tree: they are stored as links.
package deb
