package localfs

import "errors"

// ErrNotRegular is returned by [Files.ReadSmall] when the path names
// something other than a regular file (a directory, a device, a FIFO).
var ErrNotRegular = errors.New("not a regular file")
