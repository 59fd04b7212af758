package bytesize

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for in, want := range map[string]int64{
		"0": 0, "1": 1, "1048576": 1 << 20, "512B": 512, "512 b": 512,
		// SI: powers of ten
		"1kB": 1000, "1KB": 1000, "1kb": 1000, "200MB": 200e6, "200 MB": 200e6, "1GB": 1e9, "1.5GB": 15e8, "0.5kB": 500,
		// IEC: powers of two
		"1KiB": 1024, "1kib": 1024, "64MiB": 64 << 20, "1GiB": 1 << 30, "0.5KiB": 512, "1.25MiB": 1310720,
		// the short forms systemd and coreutils use are IEC too
		"512k": 512 << 10, "64M": 64 << 20, "64m": 64 << 20, "1G": 1 << 30,
		// blanks around; leading zeros; a fraction with trailing zeros
		" 2MB\t": 2e6, "007kB": 7000, "1.000000000000000000000000000000000000B": 1,
		"9223372036854775807": math.MaxInt64, "8589934591GiB": 8589934591 << 30,
	} {
		got, err := Parse(in)
		if err != nil || got != want {
			t.Errorf("Parse(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}

// TestOneMeaning is issue 13 §6: "64MB" meant 64 MiB in agent.conf and
// 64·10⁶ bytes for serve --max-upload.
func TestOneMeaning(t *testing.T) {
	mb, _ := Parse("64MB")
	mib, _ := Parse("64MiB")
	if mb != 64_000_000 || mib != 64*1024*1024 {
		t.Errorf("64MB = %d, 64MiB = %d", mb, mib)
	}
}

func TestParseErrors(t *testing.T) {
	for in, want := range map[string]error{
		"": ErrSyntax, "MB": ErrSyntax, "lots": ErrSyntax, "20 0MB": ErrSyntax, "-1": ErrSyntax, "+1": ErrSyntax,
		"1e6": ErrSyntax, "1,000": ErrSyntax, "1_000": ErrSyntax, ".5MB": ErrSyntax, "5.MB": ErrSyntax, "1.2.3": ErrSyntax,
		"1TB": ErrSyntax, "1 MiB B": ErrSyntax, "1MBs": ErrSyntax, "0x10": ErrSyntax, "١٢": ErrSyntax, "1\nMB": ErrSyntax,
		"1.5B": ErrRange, "0.1KiB": ErrRange, "9223372036854775808": ErrRange, "8589934592GiB": ErrRange,
		"99999999999999999999999999999999999999999999GB": ErrRange, "0.0000000000000000000000000000000000001GiB": ErrRange,
	} {
		n, err := Parse(in)
		if !errors.Is(err, want) {
			t.Errorf("Parse(%q) = %d, %v; want %v", in, n, err, want)
		}
	}
	_, err := Parse("20 0MB")
	if got := err.Error(); got != `"20 0MB" is not a size: use a number with B, kB, MB, GB, KiB, MiB, GiB` {
		t.Errorf("message %q", got)
	}
}

func TestFormat(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 1: "1B", 1536: "1536B", 1000: "1kB", 1024: "1KiB", 200e6: "200MB", 200 << 20: "200MiB", 1 << 30: "1GiB", 2e9: "2GB", 1e12: "1000GB"} {
		if got := Format(n); got != want {
			t.Errorf("Format(%d) = %q, want %q", n, got, want)
		}
	}
}

// FuzzParse: Parse never panics, accepts only what it documents (digits,
// at most one point, blanks, a known unit) and gives a size that Format
// writes in words that read back to it.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"200MB", "64MiB", "1.5GB", "0.5KiB", " 7 k ", "20 0MB", "9223372036854775807", "1.000B", "lots"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrRange) {
				t.Fatalf("%q: error without a sentinel: %v", s, err)
			}
			if !strings.Contains(err.Error(), "\""+strings.ReplaceAll(s, "\"", "\\\"")) && !strings.ContainsAny(s, "\\\x00\x7f\n\r\t") && isPrintableASCII(s) {
				t.Fatalf("%q: the error does not quote the input: %v", s, err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("%q = %d", s, n)
		}
		unit := strings.ToLower(strings.TrimLeft(strings.Trim(s, " \t"), "0123456789. \t"))
		if _, ok := units[unit]; !ok {
			t.Fatalf("%q accepted with unit %q", s, unit)
		}
		back, err := Parse(Format(n))
		if err != nil || back != n {
			t.Fatalf("%q = %d, written %q, read back %d, %v", s, n, Format(n), back, err)
		}
	})
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}
