//go:build !linux

package server

import "net"

// writeHead writes a response head.
func writeHead(c *net.TCPConn, b []byte, _ bool) error {
	_, err := c.Write(b)
	return err
}
