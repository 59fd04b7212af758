package mqttconn

import (
	"bufio"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
)

// TestConnKeepsPacketsWhole writes framed "packets" in three
// pieces each from many goroutines, as paho does, and reads them back
// whole and all there, including what was pending at Close.
func TestConnKeepsPacketsWhole(t *testing.T) {
	t.Run("flush-in-unlock", func(t *testing.T) { testConnKeepsPacketsWhole(t, func(c net.Conn) net.Conn { return New(c, 4<<10) }) })
	t.Run("background-flush", func(t *testing.T) {
		testConnKeepsPacketsWhole(t, func(c net.Conn) net.Conn { return NewBatching(c, 4<<10) })
	})
}

func testConnKeepsPacketsWhole(t *testing.T, wrap func(net.Conn) net.Conn) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	const writers, each = 16, 500
	got := make(chan map[uint32]int, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		seen := map[uint32]int{}
		r := bufio.NewReader(c)
		for {
			var hdr [8]byte
			if _, err := io.ReadFull(r, hdr[:]); err != nil {
				break
			}
			id, n := binary.BigEndian.Uint32(hdr[:4]), binary.BigEndian.Uint32(hdr[4:])
			body := make([]byte, n)
			if _, err := io.ReadFull(r, body); err != nil {
				break
			}
			for _, b := range body {
				if b != byte(id) {
					seen[^uint32(0)]++ // a torn packet
					break
				}
			}
			seen[id>>16]++
		}
		got <- seen
	}()
	raw, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := wrap(raw)
	locker := c.(sync.Locker)
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				id := uint32(w)<<16 | uint32(i)
				body := make([]byte, 1+i%300)
				for k := range body {
					body[k] = byte(id)
				}
				var hdr [8]byte
				binary.BigEndian.PutUint32(hdr[:4], id)
				binary.BigEndian.PutUint32(hdr[4:], uint32(len(body)))
				locker.Lock()
				_, err1 := c.Write(hdr[:4])
				_, err2 := c.Write(hdr[4:])
				_, err3 := c.Write(body)
				locker.Unlock()
				if err1 != nil || err2 != nil || err3 != nil {
					t.Error(err1, err2, err3)
					return
				}
			}
		}()
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	seen := <-got
	if seen[^uint32(0)] != 0 {
		t.Errorf("%d torn packets", seen[^uint32(0)])
	}
	for w := uint32(0); w < writers; w++ {
		if seen[w] != each {
			t.Errorf("writer %d: %d packets arrived, want %d", w, seen[w], each)
		}
	}
	if _, err := c.Write([]byte("x")); err == nil {
		t.Error("write after Close succeeded")
	}
}
