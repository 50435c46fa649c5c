package db

import (
	"context"
	"strings"
	"time"
)

const memberColumns = `id, handle, name, headline, plan, connection_count, created_at`

// MemberByHandle returns the member with this handle (compared case-insensitively),
// or nil when there is none. It is the first query of every authenticated request, so
// it waits for a pooled connection only briefly: an exhausted pool answers
// CodeServiceBusy at once rather than when the client gives up.
func (s *Store) MemberByHandle(ctx context.Context, handle string) (*Member, error) {
	m, err := queryRow[Member](ctx, s, `SELECT `+memberColumns+` FROM members WHERE handle = $1`, strings.ToLower(strings.TrimSpace(handle)))
	return m, translate(err)
}

// MembersByID returns the members with these ids, in no particular order; ids with no
// member are left out.
func (s *Store) MembersByID(ctx context.Context, ids []int64) ([]*Member, error) {
	in1, ids1 := oneOf(ids)
	ms, err := queryRows[Member](ctx, s, nil, `SELECT `+memberColumns+` FROM members WHERE id `+in1, ids1)
	return ms, translate(err)
}

// ConnectionStatuses returns how each member relates to viewer (ConnConnected,
// ConnInvitationSent, ConnInvitationReceived or ConnNone), keyed by member id, in one
// statement. An invitation the viewer ignored reads as ConnNone; one the member
// ignored still reads as ConnInvitationSent, as the sender must not learn of it.
func (s *Store) ConnectionStatuses(ctx context.Context, viewer int64, ids []int64) (map[int64]string, error) {
	// One member (a profile's status) reads from VALUES: PostgreSQL plans unnest() of
	// a short array anew on every call.
	from, arg := `unnest($2::bigint[]) AS m(id)`, any(ids)
	if len(ids) == 1 {
		from, arg = `(VALUES ($2::bigint)) AS m(id)`, ids[0]
	}
	q := `
SELECT m.id,
       EXISTS (SELECT 1 FROM connections c
                WHERE c.member_a = LEAST(m.id, $1) AND c.member_b = GREATEST(m.id, $1)) AS connected,
       EXISTS (SELECT 1 FROM invitations i
                WHERE i.sender_id = $1 AND i.recipient_id = m.id
                  AND i.status IN ('PENDING', 'IGNORED') AND i.sent_at > $3) AS sent,
       EXISTS (SELECT 1 FROM invitations i
                WHERE i.sender_id = m.id AND i.recipient_id = $1
                  AND i.status = 'PENDING' AND i.sent_at > $3) AS received
  FROM ` + from
	now := s.Now()
	rows, err := s.db.QueryContext(ctx, q, viewer, arg, now.Add(-s.limits.TTL))
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := make(map[int64]string, len(ids))
	for rows.Next() {
		var id int64
		var connected, sent, received bool
		if err := rows.Scan(&id, &connected, &sent, &received); err != nil {
			return nil, translate(err)
		}
		switch {
		case id == viewer:
			out[id] = ConnNone
		case connected:
			out[id] = ConnConnected
		case sent:
			out[id] = ConnInvitationSent
		case received:
			out[id] = ConnInvitationReceived
		default:
			out[id] = ConnNone
		}
	}
	return out, translate(rows.Err())
}

// lockMembers locks the members' rows in ascending id order (the first step of the
// global lock order) and returns them keyed by id; missing ids are absent from the map.
// FOR NO KEY UPDATE leaves foreign-key checks of concurrent inserts unblocked.
func lockMembers(ctx context.Context, tx *Tx, ids ...int64) (map[int64]*Member, error) {
	// Two ids, as most callers have, are spelled out, as oneOf spells out one:
	// PostgreSQL plans "id = ANY($1)" for each short array (its generic plan assumes a
	// longer one), and the planning cost more than the lock (TestStatementsArePlannedOnce).
	var ms []*Member
	var err error
	if len(ids) == 2 {
		ms, err = queryRows[Member](ctx, tx, nil, lockMemberPairQuery, ids[0], ids[1])
	} else {
		in, arg := oneOf(ids)
		ms, err = queryRows[Member](ctx, tx, nil, `SELECT `+memberColumns+` FROM members WHERE id `+in+` ORDER BY id FOR NO KEY UPDATE`, arg)
	}
	if err != nil {
		return nil, err
	}
	out := make(map[int64]*Member, len(ms))
	for _, m := range ms {
		out[m.ID] = m
	}
	return out, nil
}

var lockMemberPairQuery = `SELECT ` + memberColumns + ` FROM members WHERE id IN ($1, $2) ORDER BY id FOR NO KEY UPDATE`

// pair returns the two ids smaller first, as connections stores them.
func pair(a, b int64) (int64, int64) {
	if a < b {
		return a, b
	}
	return b, a
}

func connected(ctx context.Context, tx *Tx, a, b int64) (bool, error) {
	lo, hi := pair(a, b)
	var ok bool
	err := tx.GetContext(ctx, &ok, `SELECT EXISTS (SELECT 1 FROM connections WHERE member_a = $1 AND member_b = $2)`, lo, hi)
	return ok, err
}

// connect connects a and b, whose rows the caller has locked, unless they already
// are. It does not check the connection cap.
func connect(ctx context.Context, tx *Tx, a, b int64, now time.Time) error {
	lo, hi := pair(a, b)
	res, err := tx.ExecContext(ctx,
		`INSERT INTO connections (member_a, member_b, since) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, lo, hi, now)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		_, err = tx.ExecContext(ctx,
			`UPDATE members SET connection_count = connection_count + 1 WHERE id IN ($1, $2)`, lo, hi)
	}
	return err
}

// RemoveConnection removes the connection between viewer and member. It reports false
// when they were not connected. Errors: CodeNotFound when member does not exist or is
// the viewer.
func (s *Store) RemoveConnection(ctx context.Context, viewer, member int64) (bool, error) {
	var removed bool
	err := s.inTx(ctx, func(tx *Tx, now time.Time) error {
		ms, err := lockMembers(ctx, tx, viewer, member)
		if err != nil {
			return err
		}
		if ms[member] == nil || member == viewer {
			return refuse(CodeNotFound, []string{"input", "memberId"}, "no member with this id")
		}
		lo, hi := pair(viewer, member)
		res, err := tx.ExecContext(ctx, `DELETE FROM connections WHERE member_a = $1 AND member_b = $2`, lo, hi)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			removed = true
			_, err = tx.ExecContext(ctx,
				`UPDATE members SET connection_count = connection_count - 1 WHERE id IN ($1, $2)`, lo, hi)
		}
		return err
	})
	return removed, err
}
