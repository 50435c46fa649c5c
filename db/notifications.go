package db

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	"github.com/jmoiron/sqlx"
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

// notify records a notification for member in tx, and the event that subscriptions
// receive once tx commits.
func (s *Store) notify(ctx context.Context, tx *Tx, kind string, member, invitation int64, now time.Time) error {
	_, err := tx.ExecContext(ctx, `
INSERT INTO notifications (member_id, kind, invitation_id, created_at) VALUES ($1, $2, $3, $4)
ON CONFLICT (invitation_id, kind) DO NOTHING`, member, kind, invitation, now)
	if err == nil {
		tx.publishOnCommit(Event{Kind: kind, MemberID: member, InvitationID: invitation})
	}
	return err
}

// publishOnCommit records an event of the transaction, to publish once it commits
// (tryTx); nothing is published if it rolls back.
func (tx *Tx) publishOnCommit(e Event) {
	tx.events = append(tx.events, e)
}

// publish sends the events of a transaction that committed, with NOTIFY, on its
// connection. A NOTIFY holds PostgreSQL's one notification lock through its
// transaction's commit, WAL flush included: in the change's own transaction, it made
// every send and accept commit one after the other (the most frequent wait of
// concurrent sends). Here it is a transaction of its own that writes nothing else and
// does not wait for the flush (synchronous_commit off: it has nothing durable), so the
// lock is held for microseconds. The price: if the process dies between the commit and
// this statement, subscribers miss the event; the notification itself is stored. A
// failure is logged, never returned: the change is committed.
func publish(ctx context.Context, conn *sqlx.Conn, events []Event) {
	payloads := make([]string, len(events))
	for i, e := range events {
		b, _ := json.Marshal(e)
		payloads[i] = string(b)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_, err := conn.ExecContext(ctx, `
SELECT set_config('synchronous_commit', 'off', true), pg_notify($1, e) FROM unnest($2::text[]) AS e`,
		EventsChannel, payloads)
	if err != nil {
		slog.WarnContext(ctx, "events not published", "events", len(events), "error", err)
	}
}

// visibleNotification hides a notification about an invitation its member may no
// longer see: a received invitation that was withdrawn or has expired.
const visibleNotification = `(n.kind = 'INVITATION_ACCEPTED' OR EXISTS (
    SELECT 1 FROM invitations i WHERE i.id = n.invitation_id
       AND (i.status = 'ACCEPTED' OR (i.status IN ('PENDING', 'IGNORED') AND i.sent_at > ?))))`

// NotificationPage is one page of notifications.
type NotificationPage struct {
	Notifications   []*Notification
	HasNextPage     bool
	HasPreviousPage bool
	count           func(context.Context) (int, error)
	member          int64
	store           *Store
}

// Cursor is the opaque cursor of the page's i-th notification.
func (p *NotificationPage) Cursor(i int) string { return NotificationCursor(p.Notifications[i]) }

// NotificationCursor is the opaque cursor of a notification's position in its list
// (ordered by created_at, then id).
func NotificationCursor(n *Notification) string { return encodeCursor(n.CreatedAt, n.ID) }

// TotalCount counts the whole list.
func (p *NotificationPage) TotalCount(ctx context.Context) (int, error) { return p.count(ctx) }

// UnreadCount counts the member's unread notifications.
func (p *NotificationPage) UnreadCount(ctx context.Context) (int, error) {
	var n int
	err := p.store.db.GetContext(ctx, &n, rebound(
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
	pg, err := keysetPage[Notification](ctx, s, keyset[Notification]{table: "notifications n", key: "n.created_at", cols: prefixed("n", notificationColumns)},
		q, Order{Desc: true}, p)
	if err != nil {
		return nil, err
	}
	return &NotificationPage{Notifications: pg.rows, HasNextPage: pg.hasNext,
		HasPreviousPage: pg.hasPrev, count: pg.count, member: viewer, store: s}, nil
}

// Notification returns viewer's notification with this id, or nil.
func (s *Store) Notification(ctx context.Context, viewer, id int64) (*Notification, error) {
	var n Notification
	err := s.db.GetContext(ctx, &n, rebound(
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

// MarkNotificationsRead marks viewer's visible notifications read: those with these ids
// (ids of other members' notifications, and of notifications the viewer can no longer
// see, are ignored as unknown ones are), or all when ids is nil. It returns how many
// changed, counting only notifications the viewer can list, so the count tells nothing
// of withdrawn or expired invitations. Errors: CodeTooManySelected over MaxSelected ids.
func (s *Store) MarkNotificationsRead(ctx context.Context, viewer int64, ids []int64) (int, error) {
	if len(ids) > MaxSelected {
		return 0, refuse(CodeTooManySelected, []string{"input", "ids"}, "mark at most %d notifications per call", MaxSelected)
	}
	var n int64
	err := s.inTx(ctx, func(tx *Tx, now time.Time) error {
		q := `UPDATE notifications n SET read_at = ? WHERE n.member_id = ? AND n.read_at IS NULL AND ` + visibleNotification
		args := []any{now, viewer, now.Add(-s.limits.TTL)}
		if ids != nil {
			q += ` AND n.id = ANY(?)`
			args = append(args, ids)
		}
		res, err := tx.ExecContext(ctx, rebound(q), args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), err
}
