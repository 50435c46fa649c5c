package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// Notification kinds; also the kinds of published events.
const (
	KindInvitationReceived = "INVITATION_RECEIVED"
	KindInvitationAccepted = "INVITATION_ACCEPTED"
)

// EventsChannel is the PostgreSQL NOTIFY channel of invitation events. Each payload is
// an Event as JSON; NOTIFY is transactional, so an event is delivered only when the
// change that caused it commits, to listeners on every replica.
const EventsChannel = "invitation_events"

// Event tells a member that something happened to an invitation.
type Event struct {
	Kind         string `json:"kind"`
	MemberID     int64  `json:"member"`
	InvitationID int64  `json:"invitation"`
}

// Notification is an in-app notification of one member.
type Notification struct {
	ID           int64      `db:"id"`
	MemberID     int64      `db:"member_id"`
	Kind         string     `db:"kind"`
	InvitationID int64      `db:"invitation_id"`
	CreatedAt    time.Time  `db:"created_at"`
	ReadAt       *time.Time `db:"read_at"`
}

// Read reports whether the member marked it read.
func (n *Notification) Read() bool { return n.ReadAt != nil }

const notificationColumns = `id, member_id, kind, invitation_id, created_at, read_at`

// notify records a notification for member and publishes the event, in the
// transaction of the change it is about.
func notify(ctx context.Context, tx *sqlx.Tx, kind string, member, invitation int64, now time.Time) error {
	payload, _ := json.Marshal(Event{Kind: kind, MemberID: member, InvitationID: invitation})
	_, err := tx.ExecContext(ctx, `
WITH notification AS (
  INSERT INTO notifications (member_id, kind, invitation_id, created_at) VALUES ($1, $2, $3, $4)
  ON CONFLICT (invitation_id, kind) DO NOTHING)
SELECT pg_notify($5, $6)`, member, kind, invitation, now, EventsChannel, string(payload))
	return err
}

// visibleNotification hides a notification about an invitation its member may no
// longer see: a received invitation that was withdrawn or has expired.
const visibleNotification = `(n.kind = 'INVITATION_ACCEPTED' OR EXISTS (
    SELECT 1 FROM invitations i WHERE i.id = n.invitation_id
       AND (i.status = 'ACCEPTED' OR (i.status IN ('PENDING', 'IGNORED') AND i.sent_at > ?))))`

// NotificationPage is one page of notifications.
type NotificationPage struct {
	Notifications   []*Notification
	Cursors         []string
	HasNextPage     bool
	HasPreviousPage bool
	count           func(context.Context) (int, error)
	member          int64
	store           *Store
}

// TotalCount counts the whole list.
func (p *NotificationPage) TotalCount(ctx context.Context) (int, error) { return p.count(ctx) }

// UnreadCount counts the member's unread notifications.
func (p *NotificationPage) UnreadCount(ctx context.Context) (int, error) {
	var n int
	err := p.store.db.GetContext(ctx, &n, sqlx.Rebind(sqlx.DOLLAR,
		`SELECT count(*) FROM notifications n WHERE n.member_id = ? AND n.read_at IS NULL AND `+visibleNotification),
		p.member, p.store.Now().Add(-p.store.limits.TTL))
	return n, translate(err)
}

// Notifications lists viewer's notifications, newest first. Errors: CodeBadUserInput
// for a bad page or cursor.
func (s *Store) Notifications(ctx context.Context, viewer int64, unreadOnly bool, p Page) (*NotificationPage, error) {
	q := &listQuery{}
	q.add("n.member_id = ?", viewer)
	q.add(visibleNotification, s.Now().Add(-s.limits.TTL))
	if unreadOnly {
		q.add("n.read_at IS NULL")
	}
	pg, err := keysetPage[Notification](ctx, s, keyset{table: "notifications n", key: "n.created_at", cols: prefixed("n", notificationColumns)},
		q, Order{Desc: true}, p, func(n *Notification) (time.Time, int64) { return n.CreatedAt, n.ID })
	if err != nil {
		return nil, err
	}
	return &NotificationPage{Notifications: pg.rows, Cursors: pg.cursors, HasNextPage: pg.hasNext,
		HasPreviousPage: pg.hasPrev, count: pg.count, member: viewer, store: s}, nil
}

// Notification returns viewer's notification with this id, or nil.
func (s *Store) Notification(ctx context.Context, viewer, id int64) (*Notification, error) {
	var n Notification
	err := s.db.GetContext(ctx, &n, sqlx.Rebind(sqlx.DOLLAR,
		`SELECT `+prefixed("n", notificationColumns)+` FROM notifications n WHERE n.id = ? AND n.member_id = ? AND `+visibleNotification),
		id, viewer, s.Now().Add(-s.limits.TTL))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, translate(err)
	}
	return &n, nil
}

// MarkNotificationsRead marks viewer's notifications read: those with these ids (ids
// of other members' notifications are ignored), or all when ids is nil. It returns how
// many changed. Errors: CodeTooManySelected over MaxSelected ids.
func (s *Store) MarkNotificationsRead(ctx context.Context, viewer int64, ids []int64) (int, error) {
	if len(ids) > MaxSelected {
		return 0, refuse(CodeTooManySelected, []string{"input", "ids"}, "mark at most %d notifications per call", MaxSelected)
	}
	var n int64
	err := s.inTx(ctx, func(tx *sqlx.Tx, now time.Time) error {
		var res sql.Result
		var err error
		if ids == nil {
			res, err = tx.ExecContext(ctx, `UPDATE notifications SET read_at = $2 WHERE member_id = $1 AND read_at IS NULL`, viewer, now)
		} else {
			res, err = tx.ExecContext(ctx, `UPDATE notifications SET read_at = $3 WHERE member_id = $1 AND id = ANY($2) AND read_at IS NULL`,
				viewer, pq.Array(ids), now)
		}
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
