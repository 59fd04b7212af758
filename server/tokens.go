package server

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// tokenPrefix starts every secret, so that secret scanners recognise one.
const tokenPrefix = "lampi_"

var bTokens = []byte("tokens")

// Token describes an upload token (never its secret).
type Token struct {
	ID      string     `json:"id"`
	Name    string     `json:"name"`
	Scopes  []string   `json:"scopes"`
	Created time.Time  `json:"created"`
	Revoked *time.Time `json:"revoked,omitempty"`
}

// Allows reports whether the token may upload to the distribution with
// the given codename and suite: a scope "upload:CODENAME",
// "upload:SUITE" or "upload:*".
func (t *Token) Allows(codename, suite string) bool {
	for _, s := range t.Scopes {
		what, ok := strings.CutPrefix(s, "upload:")
		if ok && (what == "*" || what == codename || suite != "" && what == suite) {
			return true
		}
	}
	return false
}

// tokenRecord is what the store keeps: the SHA-256 of the secret part.
type tokenRecord struct {
	Token
	Hash string `json:"sha256"`
	// Seq orders tokens by creation.
	Seq uint64 `json:"seq"`
}

// TokenStore keeps upload tokens in their own bbolt file (by default
// REPO/db/tokens.db, next to but separate from the repository state).
// Only the SHA-256 of each secret is stored; the secret is shown once, by
// Create. The file is opened for each operation and closed again, so
// "lampi-pkg token create" works while a server is running.
type TokenStore struct {
	// Path of the bbolt file.
	Path string
	// Now dates created and revoked tokens. Required for Create and Revoke.
	Now func() time.Time
	// Rand is the source of secrets; nil is crypto/rand.
	Rand io.Reader
	// Timeout is how long to wait for another process holding the file.
	Timeout time.Duration
}

// CheckScope validates a scope: "upload:CODENAME", "upload:*",
// ScopeDevices ("devices": manage the fleet's device credentials) or
// ScopeRollouts ("rollouts": manage rollouts).
func CheckScope(s string) error {
	if s == ScopeDevices || s == ScopeRollouts {
		return nil
	}
	what, ok := strings.CutPrefix(s, "upload:")
	if !ok || what == "" {
		return fmt.Errorf("%w: %q; use upload:CODENAME, upload:SUITE, upload:*, %s or %s", ErrScope, s, ScopeDevices, ScopeRollouts)
	}
	if what == "*" {
		return nil
	}
	for _, c := range what {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(".+-_~/", c)) {
			return fmt.Errorf("%w: %q contains %q; a codename or suite has letters, digits and . + - _ ~ /", ErrScope, s, c)
		}
	}
	return nil
}

func (s *TokenStore) open(readOnly bool) (*bolt.DB, error) {
	timeout := s.Timeout
	if timeout == 0 {
		timeout = 5 * time.Second
	}
	if !readOnly {
		if err := os.MkdirAll(filepath.Dir(s.Path), 0o700); err != nil {
			return nil, err
		}
	}
	db, err := bolt.Open(s.Path, 0o600, &bolt.Options{Timeout: timeout, ReadOnly: readOnly})
	if err != nil {
		return nil, fmt.Errorf("open token store %s: %w", s.Path, err)
	}
	return db, nil
}

// Create makes a token with the given name and scopes and returns its
// secret (shown once: only its hash is stored).
func (s *TokenStore) Create(name string, scopes []string) (string, *Token, error) {
	if name == "" || strings.ContainsAny(name, " \t\n/") {
		return "", nil, fmt.Errorf("token name %q: use a short name without spaces or '/' (e.g. ci)", name)
	}
	if len(scopes) == 0 {
		return "", nil, fmt.Errorf("%w: a token needs at least one scope (e.g. upload:stable)", ErrScope)
	}
	for _, sc := range scopes {
		if err := CheckScope(sc); err != nil {
			return "", nil, err
		}
	}
	rnd := s.Rand
	if rnd == nil {
		rnd = rand.Reader
	}
	raw := make([]byte, 6+32)
	if _, err := io.ReadFull(rnd, raw); err != nil {
		return "", nil, fmt.Errorf("create token: %w", err)
	}
	id := hex.EncodeToString(raw[:6])
	secret := base64.RawURLEncoding.EncodeToString(raw[6:])
	sum := sha256.Sum256([]byte(secret))
	rec := tokenRecord{
		Token: Token{ID: id, Name: name, Scopes: append([]string(nil), scopes...), Created: s.Now().UTC().Truncate(time.Second)},
		Hash:  hex.EncodeToString(sum[:]),
	}
	db, err := s.open(false)
	if err != nil {
		return "", nil, err
	}
	defer db.Close()
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bTokens)
		if err != nil {
			return err
		}
		if err := b.ForEach(func(_, v []byte) error {
			var r tokenRecord
			if json.Unmarshal(v, &r) == nil && r.Name == name && r.Revoked == nil {
				return fmt.Errorf("%w: %q (ID %s); revoke it first or choose another name", ErrTokenExists, name, r.ID)
			}
			return nil
		}); err != nil {
			return err
		}
		if rec.Seq, err = b.NextSequence(); err != nil {
			return err
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		return b.Put([]byte(id), data)
	})
	if err != nil {
		return "", nil, err
	}
	return tokenPrefix + id + "_" + secret, &rec.Token, nil
}

// List returns every token (revoked ones too), oldest first.
func (s *TokenStore) List() ([]Token, error) {
	if _, err := os.Stat(s.Path); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	db, err := s.open(true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var recs []tokenRecord
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bTokens)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var r tokenRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("token store %s: damaged record: %w", s.Path, err)
			}
			recs = append(recs, r)
			return nil
		})
	})
	sort.Slice(recs, func(i, j int) bool { return recs[i].Seq < recs[j].Seq })
	out := make([]Token, len(recs))
	for i, r := range recs {
		out[i] = r.Token
	}
	return out, err
}

// Revoke marks the token with the given ID or name revoked (the record
// is kept, so that its uses are answered "revoked", not "unknown").
func (s *TokenStore) Revoke(nameOrID string) (*Token, error) {
	db, err := s.open(false)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var done *Token
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bTokens)
		if b == nil {
			return fmt.Errorf("%w: %q (the store is empty)", ErrTokenNotFound, nameOrID)
		}
		var key []byte
		var rec tokenRecord
		b.ForEach(func(k, v []byte) error {
			var r tokenRecord
			if json.Unmarshal(v, &r) != nil {
				return nil
			}
			if r.ID == nameOrID || r.Name == nameOrID && (key == nil || r.Revoked == nil) {
				key, rec = append([]byte(nil), k...), r
			}
			return nil
		})
		if key == nil {
			return fmt.Errorf("%w: %q; see lampi-pkg token list", ErrTokenNotFound, nameOrID)
		}
		if rec.Revoked == nil {
			t := s.Now().UTC().Truncate(time.Second)
			rec.Revoked = &t
		}
		data, err := json.Marshal(rec)
		if err != nil {
			return err
		}
		done = &rec.Token
		return b.Put(key, data)
	})
	return done, err
}

// Authenticate checks a bearer secret and returns its token. Unknown or
// malformed secrets are ErrTokenInvalid, revoked ones ErrTokenRevoked.
// The secret's hash is compared in constant time.
func (s *TokenStore) Authenticate(secret string) (*Token, error) {
	rest, ok := strings.CutPrefix(secret, tokenPrefix)
	id, sec, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(id) != 12 || sec == "" {
		return nil, ErrTokenInvalid
	}
	if _, err := os.Stat(s.Path); errors.Is(err, os.ErrNotExist) {
		return nil, ErrTokenInvalid
	}
	db, err := s.open(true)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	var rec tokenRecord
	found := false
	err = db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bTokens)
		if b == nil {
			return nil
		}
		if v := b.Get([]byte(id)); v != nil {
			found = true
			return json.Unmarshal(v, &rec)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(sec))
	want, _ := hex.DecodeString(rec.Hash)
	if len(want) != len(sum) {
		want = make([]byte, len(sum)) // compare anyway: same time as a miss
	}
	match := subtle.ConstantTimeCompare(sum[:], want) == 1
	if !found || !match {
		return nil, ErrTokenInvalid
	}
	if rec.Revoked != nil {
		return &rec.Token, ErrTokenRevoked
	}
	return &rec.Token, nil
}
