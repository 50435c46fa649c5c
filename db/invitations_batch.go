package db

import (
	"context"
	"time"
)

// Batch lookups by id, for the GraphQL layer's per-request loaders: nodes(ids:) with
// 100 ids costs one statement per kind of object, not one per id. Each applies exactly
// the visibility rules of its single-id form (Invitation, Notification).

// InvitationsByID returns the invitations with these ids as viewer sees them, keyed by
// id, in one statement. Ids viewer may not see (not theirs, or received and since
// withdrawn or expired) are absent, exactly as Invitation returns nil for them.
func (s *Store) InvitationsByID(ctx context.Context, viewer int64, ids []int64) (map[int64]*Invitation, error) {
	out, err := s.invitationsByID(ctx, s, viewer, ids, s.Now())
	return out, translate(err)
}

// invitationsByID is InvitationsByID on conn, a pooled connection or a transaction's,
// as of now.
func (s *Store) invitationsByID(ctx context.Context, conn connection, viewer int64, ids []int64, now time.Time) (map[int64]*Invitation, error) {
	in1, ids1 := oneOf(ids)
	rows, err := queryRows[Invitation](ctx, conn, nil, `
SELECT `+invitationColumns+` FROM invitations
 WHERE id `+in1+` AND (sender_id = $2 OR recipient_id = $2)`, ids1, viewer)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]*Invitation, len(rows))
	for _, inv := range rows {
		if s.limits.view(inv, viewer, now) {
			out[inv.ID] = inv
		}
	}
	return out, nil
}

// NotificationsByID returns viewer's notifications with these ids, keyed by id, in one
// statement; the ones Notification would not return are absent.
func (s *Store) NotificationsByID(ctx context.Context, viewer int64, ids []int64) (map[int64]*Notification, error) {
	rows, err := queryRows[Notification](ctx, s, nil, rebound(
		`SELECT `+prefixed("n", notificationColumns)+` FROM notifications n WHERE n.id = ANY(?) AND n.member_id = ? AND `+visibleNotification),
		ids, viewer, s.Now().Add(-s.limits.TTL))
	if err != nil {
		return nil, translate(err)
	}
	out := make(map[int64]*Notification, len(rows))
	for _, n := range rows {
		out[n.ID] = n
	}
	return out, nil
}
