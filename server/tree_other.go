//go:build !linux

package server

import (
	"io/fs"
	"os"
)

// fastDir is Linux-only; elsewhere os.Root does the work.
type fastDir struct{}

func openFastDir(string) fastDir                    { return fastDir{} }
func (fastDir) open(string) (*os.File, bool, error) { return nil, false, nil }
func (fastDir) close()                              {}

// noBlock would be O_NONBLOCK; the server is made for Linux, and this
// keeps it building elsewhere.
const noBlock = 0

func (fastDir) is(fs.FileInfo) bool { return true }
