package fleet

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/lampi-pkg/lampi-pkg/agent/state"
)

// Roles of a broker credential.
const (
	// RoleDevice may publish only its own <prefix>/<id>/state and
	// <prefix>/<id>/status, and subscribe to nothing.
	RoleDevice = "device"
	// RoleCollector may subscribe to every device's state and status
	// (also through shared subscriptions) and publish nothing.
	RoleCollector = "collector"
)

// Credential is a broker login as stored: the secret itself is never
// kept, only a salted SHA-256 of it. Secrets are 256 random bits, so a
// fast hash is as strong as a slow one and lets thousands of devices
// reconnect at once.
type Credential struct {
	ID      string    `json:"id"`
	Role    string    `json:"role"`
	Created time.Time `json:"created"`
	Salt    []byte    `json:"salt,omitempty"`
	Hash    []byte    `json:"hash,omitempty"`
}

// Issued is a new credential with its secret, which is shown once.
type Issued struct {
	ID     string `json:"id"`
	Role   string `json:"role"`
	Secret string `json:"secret"`
}

func hashSecret(salt []byte, secret string) []byte {
	h := sha256.New()
	h.Write(salt)
	h.Write([]byte(secret))
	return h.Sum(nil)
}

// IssueCredentials creates one credential per id with a random secret, in
// one transaction: all or none. An id that already has a credential fails
// with ErrExists (remove it first to rotate).
func (s *Store) IssueCredentials(ctx context.Context, role string, ids ...string) ([]Issued, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if role != RoleDevice && role != RoleCollector {
		return nil, fmt.Errorf("credential role %q: use %q or %q", role, RoleDevice, RoleCollector)
	}
	out := make([]Issued, 0, len(ids))
	creds := make([][]byte, 0, len(ids))
	now := s.opts.Now().UTC()
	for _, id := range ids {
		if state.ValidDeviceID(id) != nil {
			return nil, fmt.Errorf("credential %q: not a valid device id: use 1 to %d letters, digits, '.', '-' or '_', starting with a letter, digit or '_'", id, state.MaxIDLen)
		}
		raw := make([]byte, 32)
		salt := make([]byte, 16)
		rand.Read(raw)
		rand.Read(salt)
		secret := base64.RawURLEncoding.EncodeToString(raw)
		b, err := json.Marshal(Credential{ID: id, Role: role, Created: now, Salt: salt, Hash: hashSecret(salt, secret)})
		if err != nil {
			return nil, err
		}
		out = append(out, Issued{ID: id, Role: role, Secret: secret})
		creds = append(creds, b)
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCredentials)
		for i, id := range ids {
			if b.Get([]byte(id)) != nil {
				return fmt.Errorf("credential %q: %w: remove it first to issue a new secret ('lampi-pkg device remove %s')", id, ErrExists, id)
			}
			if err := b.Put([]byte(id), creds[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Credentials lists the issued credentials (without secrets) by id.
func (s *Store) Credentials(ctx context.Context) ([]Credential, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []Credential{}
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketCredentials).ForEach(func(k, v []byte) error {
			var c Credential
			if err := json.Unmarshal(v, &c); err != nil {
				return fmt.Errorf("credential %s: %w: %w", k, ErrDatabase, err)
			}
			c.Salt, c.Hash = nil, nil
			out = append(out, c)
			return nil
		})
	})
	return out, err
}

// RemoveCredential deletes a credential; the device can no longer log in
// (a live connection stays until it reconnects).
func (s *Store) RemoveCredential(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCredentials)
		if b.Get([]byte(id)) == nil {
			return fmt.Errorf("credential %q: %w (list them with 'lampi-pkg device list')", id, ErrNotFound)
		}
		return b.Delete([]byte(id))
	})
}

// Authenticate checks a username and secret and returns the role; ok is
// false for an unknown user or a wrong secret.
func (s *Store) Authenticate(user, secret string) (role string, ok bool) {
	var c Credential
	err := s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketCredentials).Get([]byte(user))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &c)
	})
	if err != nil {
		return "", false
	}
	if subtle.ConstantTimeCompare(hashSecret(c.Salt, secret), c.Hash) != 1 {
		return "", false
	}
	return c.Role, true
}
