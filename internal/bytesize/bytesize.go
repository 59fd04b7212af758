// Package bytesize reads and writes sizes such as "200MB" and "64MiB", with
// one meaning wherever lampi-pkg and lampi-agent take a size (serve
// --max-upload, max_index_size and max_deb_size in agent.conf):
//
//	B or no unit   bytes
//	kB  MB  GB     10³, 10⁶, 10⁹ bytes (SI)
//	KiB MiB GiB    2¹⁰, 2²⁰, 2³⁰ bytes (IEC)
//	K   M   G      2¹⁰, 2²⁰, 2³⁰ bytes, as in systemd and GNU coreutils
//
// So 200MB is 200,000,000 bytes and 64MiB (or 64M) is 67,108,864 bytes,
// everywhere. Units are case-insensitive, may follow the number after
// blanks, and the number may have a decimal fraction if the result is a
// whole number of bytes (1.5GB, 0.5KiB; not 1.5B).
//
// It is a leaf package: it imports nothing of lampi-pkg, so that the agent
// can use it without the repository or server packages.
package bytesize

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"strings"
)

// Units lists the units Parse accepts, for messages.
const Units = "B, kB, MB, GB, KiB, MiB, GiB"

var (
	// ErrSyntax is returned (wrapped) when a string is not a size.
	ErrSyntax = errors.New("not a size")
	// ErrRange is returned (wrapped) when a size does not fit in an
	// int64 or is not a whole number of bytes.
	ErrRange = errors.New("size out of range")
)

// units maps a lower-case unit to its number of bytes.
var units = map[string]int64{
	"": 1, "b": 1,
	"kb": 1e3, "mb": 1e6, "gb": 1e9,
	"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30,
	"k": 1 << 10, "m": 1 << 20, "g": 1 << 30,
}

// sizeError is an error of Parse: its message is complete, and errors.Is
// matches its sentinel.
type sizeError struct {
	msg      string
	sentinel error
}

func (e *sizeError) Error() string { return e.msg }
func (e *sizeError) Unwrap() error { return e.sentinel }

// Parse reads a size in bytes. Leading and trailing blanks are ignored.
// Errors wrap ErrSyntax or ErrRange and quote s ("\"20 0MB\" is not a
// size: use a number with B, kB, …"); callers say what was being read
// ("--max-upload: …").
func Parse(s string) (int64, error) {
	t := strings.Trim(s, " \t")
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.') {
		i++
	}
	num, unit := t[:i], strings.ToLower(strings.TrimLeft(t[i:], " \t"))
	mult, ok := units[unit]
	whole, frac, dot := strings.Cut(num, ".")
	if !ok || whole == "" || strings.Contains(frac, ".") || dot && frac == "" {
		return 0, &sizeError{fmt.Sprintf("%q is not a size: use a number with %s", s, Units), ErrSyntax}
	}
	tooLarge := &sizeError{fmt.Sprintf("%q is too large: the largest size is %d bytes", s, int64(math.MaxInt64)), ErrRange}
	notWhole := &sizeError{fmt.Sprintf("%q is not a whole number of bytes", s), ErrRange}
	// Past 19 digits before the point nothing fits in an int64, and past
	// 30 after it (trailing zeros aside) no unit up to 2³⁰ makes bytes
	// whole: stop before big numbers are built from a long string.
	whole, frac = strings.TrimLeft(whole, "0"), strings.TrimRight(frac, "0")
	if len(whole) > 19 {
		return 0, tooLarge
	}
	if len(frac) > 30 {
		return 0, notWhole
	}
	// n = whole.frac × mult, exactly.
	n, _ := new(big.Rat).SetString("0" + whole + "." + frac + "0")
	n.Mul(n, new(big.Rat).SetInt64(mult))
	if !n.IsInt() {
		return 0, notWhole
	}
	if !n.Num().IsInt64() {
		return 0, tooLarge
	}
	return n.Num().Int64(), nil
}

// Format writes n (at least 0) as a whole number of the largest unit that
// divides it (200000000 → "200MB", 67108864 → "64MiB", 1536 → "1536B"),
// in words that Parse reads back to n.
func Format(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"GB", 1e9}, {"MiB", 1 << 20}, {"MB", 1e6}, {"KiB", 1 << 10}, {"kB", 1e3}} {
		if n != 0 && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.name)
		}
	}
	return fmt.Sprintf("%dB", n)
}
