package db

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/json"
	"errors"
	"time"
)

// idempotencyKey is a validated client key with the hash of the request it came with.
type idempotencyKey struct {
	key  string
	hash []byte
}

// newIdempotencyKey validates key (nil: no key) and hashes the operation's input.
func newIdempotencyKey(key *string, field []string, operation string, input any) (*idempotencyKey, error) {
	if key == nil {
		return nil, nil
	}
	if n := len([]rune(*key)); n == 0 || n > 255 {
		return nil, refuse(CodeInvalidInput, field, "idempotencyKey must be 1 to 255 characters")
	}
	body, err := json.Marshal(input)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(append([]byte(operation+"\x00"), body...))
	return &idempotencyKey{key: *key, hash: sum[:]}, nil
}

// replay looks the key up for viewer, under the viewer's member lock. It decodes the
// first call's response into out and returns true when the key was used within
// IdempotencyTTL with the same request; it returns CodeInvalidInput when the key was
// used with a different request, and false when the key is new or stale.
func (k *idempotencyKey) replay(ctx context.Context, tx *Tx, viewer int64, now time.Time, out any) (bool, error) {
	if k == nil {
		return false, nil
	}
	var row struct {
		Hash     []byte          `db:"request_hash"`
		Response json.RawMessage `db:"response"`
	}
	err := tx.GetContext(ctx, &row, `
SELECT request_hash, response FROM idempotency_keys
 WHERE member_id = $1 AND key = $2 AND created_at > $3
   FOR UPDATE`, viewer, k.key, now.Add(-IdempotencyTTL))
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if string(row.Hash) != string(k.hash) {
		return false, refuse(CodeInvalidInput, []string{"input", "idempotencyKey"},
			"this idempotencyKey was already used with a different input")
	}
	return true, json.Unmarshal(row.Response, out)
}

// save records the response of the call that used the key, in the call's transaction.
func (k *idempotencyKey) save(ctx context.Context, tx *Tx, viewer int64, now time.Time, response any) error {
	if k == nil {
		return nil
	}
	body, err := json.Marshal(response)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `
INSERT INTO idempotency_keys (member_id, key, request_hash, response, created_at)
VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (member_id, key) DO UPDATE
   SET request_hash = EXCLUDED.request_hash, response = EXCLUDED.response, created_at = EXCLUDED.created_at`,
		viewer, k.key, k.hash, body, now)
	return err
}
