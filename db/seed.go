package db

import (
	"context"
	"fmt"
)

// SeedOptions size a generated network.
type SeedOptions struct {
	// Members and Invitations are how many to create (Invitations is approximate:
	// every sender's count is rounded).
	Members     int
	Invitations int
	// Progress, if set, is called after each batch of senders with the invitations
	// written so far.
	Progress func(done, total int)
}

// seedBatch is how many senders one statement generates invitations for.
const seedBatch = 500

// Seed generates a realistic network for benchmarks into an empty database: members
// (5% PREMIUM), and invitations with a heavy tail — 1% of members send hundreds to
// 2,400 each, the rest a handful — sent over the last 200 days in every status, a third
// with a note, accepted ones connected. It never breaks a rule it would enforce: each
// sender's invitations are evenly spaced, so no 7-day window holds more than 84; each
// sender invites distinct members, never one that invited them (recipients are the next
// k members in id order, k < Members/2), so there is one live invitation per pair and no
// invitation between connected members. Errors: the database already has members, or
// the sizes are out of range.
func (s *Store) Seed(ctx context.Context, o SeedOptions) error {
	if o.Members < 10 || o.Invitations < 0 {
		return fmt.Errorf("seed: at least 10 members and no negative invitation count")
	}
	var existing int
	if err := s.db.GetContext(ctx, &existing, `SELECT count(*) FROM members`); err != nil {
		return translate(err)
	}
	if existing > 0 {
		return fmt.Errorf("seed: the database already has %d members; seed an empty one", existing)
	}
	now := s.Now()
	_, err := s.db.ExecContext(ctx, `
INSERT INTO members (handle, name, headline, plan, created_at)
SELECT 'm' || g, 'Member ' || g, 'Seeded member', CASE WHEN g % 20 = 0 THEN 'PREMIUM' ELSE 'STANDARD' END, $2
  FROM generate_series(1, $1) g`, o.Members, now.Add(-400*Day))
	if err != nil {
		return translate(err)
	}
	var first int64
	if err := s.db.GetContext(ctx, &first, `SELECT min(id) FROM members`); err != nil {
		return translate(err)
	}
	// Per-sender counts: heavy senders (every 100th) get 300..2,400; the others share
	// the rest in proportion to a pseudo-random weight from 1 to 9.
	maxK := min(2400, (o.Members-1)/2-1)
	heavy := o.Members / 100
	heavyTotal := 0
	for i := 0; i < heavy; i++ {
		heavyTotal += min(maxK, 300+(i*7919)%2101)
	}
	lightTotal := max(o.Invitations-heavyTotal, 0)
	weightSum := 0
	for i := 0; i < o.Members; i++ {
		if i%100 != 99 {
			weightSum += 1 + (i*2654435761)%9
		}
	}
	// One connection without the statement timeout the server's pool sets: a batch is
	// a long statement by design.
	conn, err := s.db.Connx(ctx)
	if err != nil {
		return translate(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SET statement_timeout = 0`); err != nil {
		return translate(err)
	}
	done := 0
	for lo := 0; lo < o.Members; lo += seedBatch {
		hi := min(lo+seedBatch, o.Members)
		res, err := conn.ExecContext(ctx, seedInvitations, first, o.Members, lo, hi, maxK, lightTotal, weightSum, now, now.Add(-s.limits.TTL))
		if err != nil {
			return translate(err)
		}
		n, _ := res.RowsAffected()
		done += int(n)
		if o.Progress != nil {
			o.Progress(done, o.Invitations)
		}
	}
	_, err = conn.ExecContext(ctx, `
INSERT INTO connections (member_a, member_b, since)
SELECT LEAST(sender_id, recipient_id), GREATEST(sender_id, recipient_id), responded_at
  FROM invitations WHERE status = 'ACCEPTED'
ON CONFLICT DO NOTHING;
UPDATE members m SET connection_count = c.n
  FROM (SELECT id, count(*) AS n FROM (SELECT member_a AS id FROM connections UNION ALL SELECT member_b FROM connections) x GROUP BY id) c
 WHERE m.id = c.id;
ANALYZE members; ANALYZE invitations; ANALYZE connections`)
	return translate(err)
}

// seedInvitations writes the invitations of senders lo..hi-1 (0-based positions in id
// order). $1 first member id, $2 members, $5 largest per-sender count, $6 invitations
// shared by light senders, $7 sum of their weights, $8 now, $9 now − lifetime. Pseudo-random choices come
// from hashes of (position, j), so a seed is reproducible.
const seedInvitations = `
WITH senders AS (
  SELECT p, $1::bigint + p AS id,
         CASE WHEN p % 100 = 99 THEN LEAST($5::int, 300 + ((p / 100) * 7919) % 2101)
              ELSE LEAST($5::int, round($6::numeric * (1 + (p::bigint * 2654435761) % 9) / $7)::int) END AS k
    FROM generate_series($3::int, $4::int - 1) p
), rows AS (
  SELECT s.id AS sender_id,
         $1::bigint + (s.p + j) % $2 AS recipient_id,
         $8::timestamptz - (j - 0.5)::float8 * (interval '200 days' / s.k) AS sent_at,
         (s.p + 1) % 20 = 0 AS premium,
         -- STANDARD: a note on every m-th invitation, m spanning 6.2 days, so no calendar
         -- month holds more than 5.
         j % greatest(1, ceil(6.2 * s.k / 200.0)::int) = 0 AS note_slot,
         abs(hashtext(s.p || ':' || j)) % 100 AS r,
         abs(hashtext(j || ':' || s.p)) % 1000 AS r2
    FROM senders s, generate_series(1, s.k) j
   WHERE s.k > 0
), classified AS (
  SELECT *, CASE
           WHEN sent_at > $8::timestamptz - interval '14 days' THEN
             CASE WHEN r < 70 THEN 'PENDING' WHEN r < 85 THEN 'ACCEPTED' WHEN r < 90 THEN 'IGNORED' ELSE 'WITHDRAWN' END
           ELSE
             CASE WHEN r < 45 THEN 'ACCEPTED' WHEN r < 60 THEN 'WITHDRAWN' WHEN r < 75 THEN 'IGNORED' ELSE 'PENDING' END
         END AS stored,
         LEAST(sent_at + r2 * interval '15 minutes', $8::timestamptz) AS answered
    FROM rows
)
INSERT INTO invitations (sender_id, recipient_id, message, source, status, sent_at, responded_at, withdrawn_at)
SELECT sender_id, recipient_id,
       CASE WHEN (premium AND r2 % 3 = 0) OR (NOT premium AND note_slot) THEN 'Hello, I would like to add you to my network.' END,
       (ARRAY['PROFILE', 'SEARCH', 'SUGGESTION', 'ADDRESS_BOOK', 'OTHER'])[1 + r2 % 5],
       CASE WHEN stored IN ('PENDING', 'IGNORED') AND sent_at <= $9::timestamptz THEN 'EXPIRED' ELSE stored END,
       sent_at,
       CASE WHEN stored IN ('ACCEPTED', 'IGNORED') THEN answered END,
       CASE WHEN stored = 'WITHDRAWN' THEN answered END
  FROM classified`
