// Command mktree writes the benchmark package tree: about 2,000 files and
// 50 MB of mixed text and binary data, the same bytes on every run (seeded).
//
//	go run ./scripts/mktree DIR
package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

var words = []string{"lamp", "light", "brightness", "color", "hue", "saturation", "mqtt", "broker", "device",
	"update", "package", "version", "install", "config", "service", "bluetooth", "protocol", "kernel",
	"firmware", "the", "a", "of", "and", "to", "in", "is", "for", "with", "on", "return", "func", "if",
	"else", "self", "import", "def", "class", "0x1f", "42", "true", "false", "None", "=", "(", ")", ":"}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: mktree DIR")
		os.Exit(2)
	}
	if err := write(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "mktree:", err)
		os.Exit(1)
	}
}

func write(dir string) error {
	rng := rand.New(rand.NewPCG(2026, 11))
	ctl := "Package: bench-tree\nVersion: 1.0\nArchitecture: all\nMaintainer: Bench <bench@example.org>\n" +
		"Section: misc\nPriority: optional\nDescription: benchmark tree\n"
	if err := os.MkdirAll(filepath.Join(dir, "DEBIAN"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "DEBIAN", "control"), []byte(ctl), 0o644); err != nil {
		return err
	}
	var total int64
	for i := 0; i < 2000; i++ {
		sub := filepath.Join(dir, "usr", "share", "bench", fmt.Sprintf("d%02d", i%40), fmt.Sprintf("s%d", i%7))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return err
		}
		var size int
		var kind string
		switch {
		case i%4 == 3: // binary: random (incompressible) or structured
			size, kind = 8<<10+rng.IntN(48<<10), "bin"
		default:
			size, kind = 1<<10+rng.IntN(42<<10), "txt"
		}
		f, err := os.Create(filepath.Join(sub, fmt.Sprintf("f%04d.%s", i, kind)))
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		n := 0
		for n < size {
			switch {
			case kind == "txt":
				s := words[rng.IntN(len(words))]
				if rng.IntN(12) == 0 {
					s += "\n"
				} else {
					s += " "
				}
				m, _ := w.WriteString(s)
				n += m
			case i%8 == 3:
				w.WriteByte(byte(rng.Uint32()))
				n++
			default:
				// structured binary: little-endian counters with noise
				v := uint32(n/4) ^ uint32(rng.IntN(4))
				w.Write([]byte{byte(v), byte(v >> 8), 0, 0})
				n += 4
			}
		}
		total += int64(n)
		if err := w.Flush(); err != nil {
			return err
		}
		if err := f.Close(); err != nil {
			return err
		}
	}
	fmt.Printf("mktree: %s: 2000 files, %d bytes\n", dir, total)
	return nil
}
