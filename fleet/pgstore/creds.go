package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lampi-pkg/lampi-pkg/fleet"
)

// IssueCredentials creates one credential per id with a random secret,
// in one transaction: all or none. An id that already has a credential
// fails with fleet.ErrExists (remove it first to rotate).
func (s *Store) IssueCredentials(ctx context.Context, role string, ids ...string) ([]fleet.Issued, error) {
	now := s.opts.Now()
	creds := make([]fleet.Credential, 0, len(ids))
	out := make([]fleet.Issued, 0, len(ids))
	for _, id := range ids {
		c, iss, err := fleet.NewCredential(id, role, now)
		if err != nil {
			return nil, err
		}
		creds, out = append(creds, c), append(out, iss)
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		for _, c := range creds {
			_, err := tx.Exec(ctx, `INSERT INTO credentials (id, role, created, salt, hash) VALUES ($1, $2, $3, $4, $5)`,
				c.ID, c.Role, c.Created, c.Salt, c.Hash)
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "23505" {
				return fmt.Errorf("credential %q: %w: remove it first to issue a new secret ('lampi-pkg device remove %s')", c.ID, fleet.ErrExists, c.ID)
			}
			if err != nil {
				return fmt.Errorf("fleet database %s: credential %s: %w", s.name, c.ID, err)
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
func (s *Store) Credentials(ctx context.Context) ([]fleet.Credential, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, role, created FROM credentials ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("fleet database %s: %w", s.name, err)
	}
	out := []fleet.Credential{}
	for rows.Next() {
		var c fleet.Credential
		if err := rows.Scan(&c.ID, &c.Role, &c.Created); err != nil {
			rows.Close()
			return nil, fmt.Errorf("fleet database %s: %w", s.name, err)
		}
		c.Created = c.Created.UTC()
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("fleet database %s: %w", s.name, err)
	}
	return out, nil
}

// RemoveCredential deletes a credential; the device can no longer log
// in (a live connection stays until it reconnects).
func (s *Store) RemoveCredential(ctx context.Context, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM credentials WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("fleet database %s: %w", s.name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("credential %q: %w (list them with 'lampi-pkg device list')", id, fleet.ErrNotFound)
	}
	return nil
}

// Authenticate checks a username and secret and returns the role; ok is
// false for an unknown user, a wrong secret, or a database that cannot
// be read.
func (s *Store) Authenticate(user, secret string) (role string, ok bool) {
	var c fleet.Credential
	err := s.pool.QueryRow(context.Background(), `SELECT role, salt, hash FROM credentials WHERE id = $1`, user).Scan(&c.Role, &c.Salt, &c.Hash)
	if err != nil || !fleet.CheckSecret(c, secret) {
		return "", false
	}
	return c.Role, true
}
