package db

import (
	"strings"
	"time"
	"unicode/utf8"
)

// Plans.
const (
	PlanStandard = "STANDARD"
	PlanPremium  = "PREMIUM"
)

// Stored and shown invitation statuses.
const (
	StatusPending   = "PENDING"
	StatusAccepted  = "ACCEPTED"
	StatusIgnored   = "IGNORED"
	StatusWithdrawn = "WITHDRAWN"
	StatusExpired   = "EXPIRED"
)

// Sources, where the sender found the recipient.
var Sources = []string{"PROFILE", "SEARCH", "SUGGESTION", "ADDRESS_BOOK", "OTHER"}

// Connection statuses of a member relative to the viewer.
const (
	ConnConnected          = "CONNECTED"
	ConnInvitationSent     = "INVITATION_SENT"
	ConnInvitationReceived = "INVITATION_RECEIVED"
	ConnNone               = "NONE"
)

// Member is a member of the network.
type Member struct {
	ID              int64     `db:"id"`
	Handle          string    `db:"handle"`
	Name            string    `db:"name"`
	Headline        string    `db:"headline"`
	Plan            string    `db:"plan"`
	ConnectionCount int       `db:"connection_count"`
	CreatedAt       time.Time `db:"created_at"`
}

// Invitation is an invitation as one viewer (its sender or its recipient) sees it:
// Status and RespondedAt are already adjusted (a sender sees an ignored invitation as
// PENDING with no RespondedAt; a live invitation past its lifetime is EXPIRED).
type Invitation struct {
	ID          int64      `db:"id"`
	SenderID    int64      `db:"sender_id"`
	RecipientID int64      `db:"recipient_id"`
	Message     *string    `db:"message"`
	Source      string     `db:"source"`
	Status      string     `db:"status"`
	SentAt      time.Time  `db:"sent_at"`
	RespondedAt *time.Time `db:"responded_at"`
	WithdrawnAt *time.Time `db:"withdrawn_at"`
	// ExpiresAt is SentAt plus the invitation lifetime.
	ExpiresAt time.Time `db:"-"`
	// AsOf is the instant the status was judged at; AgeDays counts from SentAt to it.
	AsOf time.Time `db:"-"`
}

// AgeDays is the number of whole days between SentAt and AsOf.
func (i *Invitation) AgeDays() int {
	d := i.AsOf.Sub(i.SentAt)
	if d < 0 {
		return 0
	}
	return int(d / Day)
}

// invitationColumns lists the stored columns in Invitation's order.
const invitationColumns = `id, sender_id, recipient_id, message, source, status, sent_at, responded_at, withdrawn_at`

// live reports a stored status that still holds the pair.
func live(status string) bool { return status == StatusPending || status == StatusIgnored }

// view adjusts a stored row to what viewer sees at now. It returns false when the
// viewer may not see the row at all: it is not theirs, or they are its recipient and
// it was withdrawn or has expired.
func (l Limits) view(inv *Invitation, viewer int64, now time.Time) bool {
	inv.AsOf = now
	inv.ExpiresAt = inv.SentAt.Add(l.TTL)
	if live(inv.Status) && !now.Before(inv.ExpiresAt) {
		inv.Status = StatusExpired
	}
	if inv.Status == StatusIgnored && viewer == inv.SenderID {
		inv.Status = StatusPending
	}
	// An answer is shown only with the answer's status: an invitation ignored and
	// then withdrawn or expired keeps its responded_at, which the sender must not see.
	if inv.Status != StatusAccepted && inv.Status != StatusIgnored {
		inv.RespondedAt = nil
	}
	switch viewer {
	case inv.SenderID:
		return true
	case inv.RecipientID:
		return inv.Status != StatusWithdrawn && inv.Status != StatusExpired
	}
	return false
}

// Quota is a sender's use of their limits at one instant.
type Quota struct {
	Plan          string
	Limit         int
	Used          int
	ResetsAt      *time.Time
	PendingCount  int
	PendingLimit  int
	NotesUsed     int
	NotesLimit    *int
	NoteMaxLength int
}

// Remaining is how many invitations may be sent now.
func (q *Quota) Remaining() int { return max(q.Limit-q.Used, 0) }

// StorableText reports whether PostgreSQL can store s as text: valid UTF-8 without a
// NUL character. Text that fails it can never succeed, so callers refuse it as bad
// input before it reaches the database, which would reject it as an error.
func StorableText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}
