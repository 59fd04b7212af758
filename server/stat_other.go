//go:build !linux

package server

import "io/fs"

// statIdentity is Linux-only; elsewhere size and mtime identify a version.
func statIdentity(fs.FileInfo) (dev, ino uint64, ctime int64) { return 0, 0, 0 }
