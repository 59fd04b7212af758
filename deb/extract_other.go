//go:build !unix

package deb

import (
	"os"
	"time"
)

// lchtimes is a no-op where symbolic link times cannot be set.
func lchtimes(root *os.Root, name string, t time.Time) error { return nil }
