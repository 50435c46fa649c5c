package db

import (
	"context"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// SendInput is what a member sends.
type SendInput struct {
	RecipientID int64
	// RecipientFound is false when the client's id did not decode to a member id; the
	// call then fails with CodeNotFound exactly as for an unknown member.
	RecipientFound bool
	Message        *string
	Source         string
	IdempotencyKey *string
}

// SendResult is the outcome of a send that was not refused.
type SendResult struct {
	// Invitation is the new invitation, or the recipient's invitation that the send
	// accepted instead (Connected).
	Invitation *Invitation
	// Connected: the recipient had invited the sender, and the two are now connected.
	Connected bool
}

// sendReplay is what an idempotency key stores for a send.
type sendReplay struct {
	InvitationID int64 `json:"invitationId"`
	Connected    bool  `json:"connected"`
}

var (
	fieldRecipient = []string{"input", "recipientId"}
	fieldMessage   = []string{"input", "message"}
	fieldSendKey   = []string{"input", "idempotencyKey"}
)

// SendInvitation sends an invitation from sender, enforcing every rule in one
// transaction that first locks both members (ascending id). Refusals are *Error with
// CodeNotFound, CodeSelfInvitation, CodeInvalidInput, CodeMessageTooLong,
// CodeAlreadyConnected, CodeSenderConnLimit, CodeRecipientConnLimit, CodeAlreadyPending,
// CodeCooldown, CodePendingLimit, CodeWeeklyLimit or CodeNoteQuota, checked in that
// order; time-bound ones carry AvailableAt. If the recipient has a live invitation to
// the sender, it is accepted instead (Connected) and no quota is used. With an
// idempotency key used in the last 24 hours, the first result is returned again.
func (s *Store) SendInvitation(ctx context.Context, sender int64, in SendInput) (*SendResult, error) {
	if !in.RecipientFound {
		return nil, refuse(CodeNotFound, fieldRecipient, "no member with this id")
	}
	if in.RecipientID == sender {
		return nil, refuse(CodeSelfInvitation, fieldRecipient, "you cannot invite yourself")
	}
	if in.Source == "" {
		in.Source = "OTHER"
	}
	msg, err := normalizeNote(in.Message)
	if err != nil {
		return nil, err
	}
	key, err := newIdempotencyKey(in.IdempotencyKey, fieldSendKey, "sendInvitation",
		[]any{in.RecipientID, msg, in.Source})
	if err != nil {
		return nil, err
	}
	var res *SendResult
	err = s.inTx(ctx, func(tx *Tx, now time.Time) error {
		var err error
		res, err = s.send(ctx, tx, now, sender, in.RecipientID, msg, in.Source, key)
		return err
	})
	return res, err
}

func (s *Store) send(ctx context.Context, tx *Tx, now time.Time, sender, recipient int64, msg *string, source string, key *idempotencyKey) (*SendResult, error) {
	ms, err := lockMembers(ctx, tx, sender, recipient)
	if err != nil {
		return nil, err
	}
	from, to := ms[sender], ms[recipient]
	if to == nil {
		return nil, refuse(CodeNotFound, fieldRecipient, "no member with this id")
	}
	if from == nil {
		return nil, refuse(CodeNotFound, nil, "the viewer no longer exists")
	}
	var replay sendReplay
	if ok, err := key.replay(ctx, tx, sender, now, &replay); err != nil || ok {
		if err != nil {
			return nil, err
		}
		inv, err := s.invitation(ctx, tx, sender, replay.InvitationID, now)
		return &SendResult{Invitation: inv, Connected: replay.Connected}, err
	}
	if msg != nil {
		if n, max := utf8.RuneCountInString(*msg), s.limits.noteMax(from.Plan); n > max {
			return nil, refuse(CodeMessageTooLong, fieldMessage,
				"the note has %d characters; your plan allows %d", n, max)
		}
	}
	facts, err := s.sendFacts(ctx, tx, from, recipient, now)
	if err != nil {
		return nil, err
	}
	if facts.Connected {
		return nil, refuse(CodeAlreadyConnected, fieldRecipient, "you are already connected")
	}
	if from.ConnectionCount >= s.limits.ConnectionMax {
		return nil, refuse(CodeSenderConnLimit, nil, "you have reached the limit of %d connections", s.limits.ConnectionMax)
	}
	if to.ConnectionCount >= s.limits.ConnectionMax {
		return nil, refuse(CodeRecipientConnLimit, fieldRecipient,
			"this member has reached the connection limit; they can only be followed")
	}
	livePair, err := s.livePairInvitation(ctx, tx, sender, recipient, now)
	if err != nil {
		return nil, err
	}
	if livePair != nil && livePair.SenderID == sender {
		return nil, refuse(CodeAlreadyPending, fieldRecipient, "an invitation to this member is already pending")
	}
	if livePair != nil { // the recipient invited the sender: accept that one
		if err := s.accept(ctx, tx, livePair, now); err != nil {
			return nil, err
		}
		s.limits.view(livePair, sender, now)
		res := &SendResult{Invitation: livePair, Connected: true}
		return res, key.save(ctx, tx, sender, now, sendReplay{InvitationID: livePair.ID, Connected: true})
	}
	if err := s.checkSendLimits(ctx, tx, from, facts, msg != nil, now); err != nil {
		return nil, err
	}
	inv, err := s.insertInvitation(ctx, tx, sender, recipient, msg, source, now)
	if err != nil {
		return nil, err
	}
	s.limits.view(inv, sender, now)
	return &SendResult{Invitation: inv}, key.save(ctx, tx, sender, now, sendReplay{InvitationID: inv.ID})
}

// sendFacts is what the rules of a send read, besides the two members' rows.
type sendFacts struct {
	quotaRow
	// Connected: the two members are connected.
	Connected bool `db:"connected"`
	// LastWithdrawn is when the sender last withdrew an invitation to the recipient.
	LastWithdrawn *time.Time `db:"last_withdrawn"`
}

// sendFacts reads, in one statement, whether from and recipient are connected, when
// from last withdrew an invitation to recipient, and from's quota. Every change to these
// (a send, an answer, a withdrawal, a connection removed) first locks the sender's or
// the recipient's row, which this transaction holds; the sweep expires only what the
// counts already leave out. So they hold until the transaction ends.
func (s *Store) sendFacts(ctx context.Context, tx *Tx, from *Member, recipient int64, now time.Time) (*sendFacts, error) {
	// Generic plans from here on, for the quota statement; the later statements already
	// used theirs.
	if err := forceGenericPlans(ctx, tx); err != nil {
		return nil, err
	}
	lo, hi := pair(from.ID, recipient)
	return queryRow[sendFacts](ctx, tx, sendFactsQuery, append(s.quotaArgs(from.ID, now), lo, hi, recipient)...)
}

// fields appends f's fields, in sendFactsQuery's column order, to dst.
func (f *sendFacts) fields(dst []any) []any {
	return append(f.quotaRow.fields(dst), &f.Connected, &f.LastWithdrawn)
}

// sendFactsQuery is quotaSQL with the pair's connection ($6 < $7) and the sender's last
// withdrawal of an invitation to recipient $8.
var sendFactsQuery = quotaSQL(`,
       EXISTS (SELECT 1 FROM connections WHERE member_a = $6 AND member_b = $7) AS connected,
       (SELECT max(withdrawn_at) FROM invitations
         WHERE sender_id = $1 AND recipient_id = $8 AND status = 'WITHDRAWN') AS last_withdrawn`)

// insertInvitation writes, in one statement, a new pending invitation, its two
// reminders (the outbox the reminder worker reads) and the recipient's notification,
// whose event subscriptions receive once the transaction commits.
func (s *Store) insertInvitation(ctx context.Context, tx *Tx, sender, recipient int64, msg *string, source string, now time.Time) (*Invitation, error) {
	inv, err := queryRow[Invitation](ctx, tx, `
WITH inv AS (
  INSERT INTO invitations (sender_id, recipient_id, message, source, status, sent_at)
  VALUES ($1, $2, $3, $4, 'PENDING', $5)
  RETURNING `+invitationColumns+`),
reminders AS (
  INSERT INTO reminders (invitation_id, seq, due_at)
  SELECT id, 1, $6::timestamptz FROM inv UNION ALL SELECT id, 2, $7::timestamptz FROM inv),
notification AS (
  INSERT INTO notifications (member_id, kind, invitation_id, created_at)
  SELECT recipient_id, $8::text, id, sent_at FROM inv
  ON CONFLICT (invitation_id, kind) DO NOTHING)
SELECT * FROM inv`,
		sender, recipient, msg, source, now, reminderDue(now, 0), reminderDue(now, 1), KindInvitationReceived)
	if err != nil {
		return nil, err
	}
	tx.publishOnCommit(Event{Kind: KindInvitationReceived, MemberID: recipient, InvitationID: inv.ID})
	return inv, nil
}

// livePairInvitation expires the pair's live invitations that outlived the TTL (the
// sweep may not have reached them; they would block the pair in the unique index), then
// locks and returns the pair's live invitation in either direction, or nil, in one
// statement (the SELECT, on the statement's snapshot, leaves out what the UPDATE expires).
func (s *Store) livePairInvitation(ctx context.Context, tx *Tx, a, b int64, now time.Time) (*Invitation, error) {
	lo, hi := pair(a, b)
	invs, err := queryRows[Invitation](ctx, tx, nil, `
WITH expired AS (
  UPDATE invitations SET status = 'EXPIRED'
   WHERE LEAST(sender_id, recipient_id) = $1 AND GREATEST(sender_id, recipient_id) = $2
     AND status IN ('PENDING', 'IGNORED') AND sent_at <= $3)
SELECT `+invitationColumns+` FROM invitations
 WHERE LEAST(sender_id, recipient_id) = $1 AND GREATEST(sender_id, recipient_id) = $2
   AND status IN ('PENDING', 'IGNORED') AND sent_at > $3
   FOR UPDATE`, lo, hi, now.Add(-s.limits.TTL))
	if err != nil || len(invs) == 0 {
		return nil, err
	}
	return invs[0], nil
}

// checkSendLimits applies the cooldown, the pending cap, the weekly cap and the note
// quota, as read in f, to a new invitation from sender (whose row is locked).
func (s *Store) checkSendLimits(ctx context.Context, tx *Tx, from *Member, f *sendFacts, withNote bool, now time.Time) error {
	if f.LastWithdrawn != nil && now.Before(f.LastWithdrawn.Add(s.limits.Cooldown)) {
		return refuseUntil(CodeCooldown, f.LastWithdrawn.Add(s.limits.Cooldown), fieldRecipient,
			"you withdrew an invitation to this member recently; you can invite them again later")
	}
	q := s.quotaOf(from, f.quotaRow)
	if q.PendingCount >= q.PendingLimit {
		return s.pendingLimitError(ctx, tx, from.ID, now)
	}
	if q.Used >= q.Limit {
		return s.weeklyLimitError(ctx, tx, from.ID, q, now)
	}
	if withNote && q.NotesLimit != nil && q.NotesUsed >= *q.NotesLimit {
		return refuseUntil(CodeNoteQuota, nextMonth(now), fieldMessage,
			"you have used your %d personal notes this month; send without a note or wait", *q.NotesLimit)
	}
	return nil
}

// pendingLimitError says when the oldest pending invitation expires, the latest time
// a slot frees up on its own.
func (s *Store) pendingLimitError(ctx context.Context, tx *Tx, sender int64, now time.Time) error {
	var oldest time.Time
	err := tx.GetContext(ctx, &oldest, `
SELECT min(sent_at) FROM invitations
 WHERE sender_id = $1 AND status IN ('PENDING', 'IGNORED') AND sent_at > $2`, sender, now.Add(-s.limits.TTL))
	if err != nil {
		return err
	}
	return refuseUntil(CodePendingLimit, oldest.Add(s.limits.TTL), nil,
		"you have %d pending invitations; withdraw some before sending more", s.limits.PendingMax)
}

// weeklyLimitError says when enough counted sends leave the window for one more send:
// the send at position used-limit (oldest first) leaves at its sent_at + 7 days.
func (s *Store) weeklyLimitError(ctx context.Context, tx *Tx, sender int64, q *Quota, now time.Time) error {
	var at time.Time
	err := tx.GetContext(ctx, &at, `
SELECT sent_at FROM invitations
 WHERE sender_id = $1 AND sent_at > $2 AND ($3 OR status <> 'WITHDRAWN')
 ORDER BY sent_at, id OFFSET $4 LIMIT 1`, sender, now.Add(-Window), !s.limits.RefundOnWithdraw, q.Used-q.Limit)
	if err != nil {
		return err
	}
	return refuseUntil(CodeWeeklyLimit, at.Add(Window), nil,
		"you have sent %d invitations in the last 7 days, the limit of your plan", q.Used)
}

// nextMonth is the first instant of the calendar month (UTC) after now.
func nextMonth(now time.Time) time.Time {
	y, m, _ := now.UTC().Date()
	return time.Date(y, m+1, 1, 0, 0, 0, 0, time.UTC)
}

// normalizeNote trims the note, turns CRLF into LF and rejects other control
// characters. An empty note is no note.
func normalizeNote(msg *string) (*string, error) {
	if msg == nil {
		return nil, nil
	}
	m := strings.TrimSpace(strings.ReplaceAll(*msg, "\r\n", "\n"))
	if m == "" {
		return nil, nil
	}
	if !utf8.ValidString(m) {
		return nil, refuse(CodeInvalidInput, fieldMessage, "the note is not valid UTF-8")
	}
	for _, r := range m {
		if r != '\n' && unicode.IsControl(r) {
			return nil, refuse(CodeInvalidInput, fieldMessage, "the note may not contain control characters other than newlines")
		}
	}
	return &m, nil
}
