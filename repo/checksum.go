package repo

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"sync"
)

// Checksums are a file's size and digests, as the Packages and Release
// files list them (lowercase hex).
type Checksums struct {
	Size                      int64
	MD5, SHA1, SHA256, SHA512 string
}

// encode is the form stored in the state database.
func (c Checksums) encode() []byte {
	return []byte(fmt.Sprintf("%d %s %s %s %s", c.Size, c.MD5, c.SHA1, c.SHA256, c.SHA512))
}

func decodeChecksums(b []byte) (Checksums, error) {
	f := strings.Fields(string(b))
	if len(f) != 5 {
		return Checksums{}, fmt.Errorf("%w: malformed checksum record %q", ErrState, shorten(string(b)))
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return Checksums{}, fmt.Errorf("%w: malformed size in checksum record %q", ErrState, shorten(string(b)))
	}
	return Checksums{Size: n, MD5: f[1], SHA1: f[2], SHA256: f[3], SHA512: f[4]}, nil
}

// hasher computes Checksums of what is written to it.
type hasher struct {
	n                         int64
	md5, sha1, sha256, sha512 hash.Hash
}

func newHasher() *hasher {
	return &hasher{md5: md5.New(), sha1: sha1.New(), sha256: sha256.New(), sha512: sha512.New()}
}

func (h *hasher) Write(p []byte) (int, error) {
	h.n += int64(len(p))
	h.md5.Write(p)
	h.sha1.Write(p)
	h.sha256.Write(p)
	h.sha512.Write(p)
	return len(p), nil
}

func (h *hasher) sums() Checksums {
	return Checksums{
		Size:   h.n,
		MD5:    hex.EncodeToString(h.md5.Sum(nil)),
		SHA1:   hex.EncodeToString(h.sha1.Sum(nil)),
		SHA256: hex.EncodeToString(h.sha256.Sum(nil)),
		SHA512: hex.EncodeToString(h.sha512.Sum(nil)),
	}
}

// newDigests returns the four digests of Checksums, in their order.
func newDigests() [4]hash.Hash {
	return [4]hash.Hash{md5.New(), sha1.New(), sha256.New(), sha512.New()}
}

// parallelHashMin is the size from which sumBytes hashes on several cores.
const parallelHashMin = 256 << 10

// sumBytes returns the checksums of data, computing the four digests
// concurrently for large inputs.
func sumBytes(data []byte) Checksums {
	if len(data) < parallelHashMin {
		h := newHasher()
		h.Write(data)
		return h.sums()
	}
	c, _ := sumParallel(int64(len(data)), func(h hash.Hash) error {
		h.Write(data)
		return nil
	})
	return c
}

// sumParallel computes the four digests of what feed writes, each on its
// own goroutine (feed is called once per digest); size is the content's
// size.
func sumParallel(size int64, feed func(hash.Hash) error) (Checksums, error) {
	hs := newDigests()
	out := make([]string, len(hs))
	errs := make([]error, len(hs))
	var wg sync.WaitGroup
	for i, h := range hs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = feed(h)
			out[i] = hex.EncodeToString(h.Sum(nil))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return Checksums{}, err
	}
	return Checksums{Size: size, MD5: out[0], SHA1: out[1], SHA256: out[2], SHA512: out[3]}, nil
}
