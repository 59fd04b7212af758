package signing

import (
	"bytes"
	"errors"
	"testing"

	"github.com/lampi-pkg/lampi-pkg/deb"
)

// Fuzz targets for the .deb signature paths: the ar scan around the
// signature, the _gpgorigin member, and the rewrite. Whatever the input: no
// panic, every error wraps a sentinel of this package or of deb, and
// "good" only for data our key signed.

// isDebSentinel reports whether err wraps a sentinel a .deb verifier may
// return.
func isDebSentinel(err error) bool {
	return isSentinel(err) || errors.Is(err, deb.ErrNotDeb) || errors.Is(err, deb.ErrTruncated) || errors.Is(err, deb.ErrCompression)
}

// signedContent returns debian-binary ‖ control ‖ data of a package, or
// nil if it is not one.
func signedContent(pkg []byte) []byte {
	ms, err := scanDeb(bytes.NewReader(pkg), int64(len(pkg)))
	if err != nil {
		return nil
	}
	var b bytes.Buffer
	for _, m := range ms {
		if m.Kind != deb.KindIgnored {
			b.Write(pkg[m.Offset : m.Offset+m.Size])
		}
	}
	return b.Bytes()
}

// fuzzPackage returns the key, an unsigned package and the package signed.
func fuzzPackage(f *testing.F) (*Key, []byte, []byte) {
	key := readFixture(f, "lampi-test.sec.asc")
	pkg := buildHi(f, deb.CompressGzip)
	var out bytes.Buffer
	if _, err := SignDeb(bg, mustSigner(f, key, testNow), &out, bytes.NewReader(pkg), int64(len(pkg))); err != nil {
		f.Fatal(err)
	}
	return key, pkg, out.Bytes()
}

// FuzzVerifyDeb feeds arbitrary bytes as a signed .deb.
func FuzzVerifyDeb(f *testing.F) {
	key, pkg, signed := fuzzPackage(f)
	kr := NewKeyring(key)
	want := signedContent(pkg)
	f.Add(signed)
	f.Add(pkg)
	f.Add(signed[:len(signed)-1])
	f.Add([]byte(arMagic))
	f.Fuzz(func(t *testing.T, data []byte) {
		sig, err := VerifyDeb(bg, kr, bytes.NewReader(data), int64(len(data)), VerifyOptions{Now: at(testNow)})
		if err != nil {
			if !isDebSentinel(err) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if sig == nil || sig.Fingerprint != key.Fingerprint() {
			t.Fatalf("good signature by %+v", sig)
		}
		if !bytes.Equal(signedContent(data), want) {
			t.Fatal("a good signature over changed package content")
		}
	})
}

// FuzzDebOrigin feeds arbitrary bytes as the _gpgorigin member of a fixed
// package.
func FuzzDebOrigin(f *testing.F) {
	key, pkg, signed := fuzzPackage(f)
	kr := NewKeyring(key)
	ms, err := scanDeb(bytes.NewReader(signed), int64(len(signed)))
	if err != nil {
		f.Fatal(err)
	}
	last := ms[len(ms)-1]
	sig := signed[last.Offset : last.Offset+last.Size]
	f.Add(sig)
	f.Add(armorEncode(armorSignature, sig))
	f.Add([]byte{0x88, 0x00})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, sig []byte) {
		h, err := arHeader(DebOriginMember, int64(len(sig)), testNow)
		if err != nil {
			t.Skip()
		}
		in := append(append(append([]byte{}, pkg...), h...), sig...)
		got, err := VerifyDeb(bg, kr, bytes.NewReader(in), int64(len(in)), VerifyOptions{Now: at(testNow)})
		if err != nil {
			if !isDebSentinel(err) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if got.Fingerprint != key.Fingerprint() {
			t.Fatalf("good signature by %+v", got)
		}
	})
}

// FuzzSignDeb signs arbitrary bytes as a .deb: an error wrapping a deb
// sentinel, or a package with exactly one _gpgorigin that verifies and
// keeps the signed content.
func FuzzSignDeb(f *testing.F) {
	key, pkg, signed := fuzzPackage(f)
	s, kr := mustSigner(f, key, testNow), NewKeyring(key)
	f.Add(pkg)
	f.Add(signed)
	f.Add(pkg[:len(pkg)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		res, err := SignDeb(bg, s, &out, bytes.NewReader(data), int64(len(data)))
		if err != nil {
			if !isDebSentinel(err) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if res.Size != int64(out.Len()) {
			t.Fatalf("result says %d bytes, wrote %d", res.Size, out.Len())
		}
		ms, err := scanDeb(bytes.NewReader(out.Bytes()), int64(out.Len()))
		if err != nil {
			t.Fatalf("signed output is not a package: %v", err)
		}
		n := 0
		for _, m := range ms {
			if m.Name == DebOriginMember {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d _gpgorigin members", n)
		}
		if _, err := VerifyDeb(bg, kr, bytes.NewReader(out.Bytes()), int64(out.Len()), VerifyOptions{Now: at(testNow)}); err != nil {
			t.Fatalf("our signature does not verify: %v", err)
		}
		if !bytes.Equal(signedContent(out.Bytes()), signedContent(data)) {
			t.Fatal("signing changed the package content")
		}
	})
}
