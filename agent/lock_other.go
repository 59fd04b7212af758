//go:build !unix

package agent

// lockFree always reports a free lock where fcntl locks do not exist.
func lockFree(adminDir string) (bool, error) { return true, nil }
