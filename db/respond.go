package db

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/jmoiron/sqlx"
)

var fieldInvitation = []string{"input", "invitationId"}

func notFoundInvitation() *Error {
	return refuse(CodeNotFound, fieldInvitation, "no invitation with this id")
}

// Invitation returns the invitation as viewer sees it, or nil when it does not exist
// or viewer may not see it (see Limits.view).
func (s *Store) Invitation(ctx context.Context, viewer, id int64) (*Invitation, error) {
	inv, err := s.invitation(ctx, s.db, viewer, id, s.Now())
	return inv, translate(err)
}

func (s *Store) invitation(ctx context.Context, q sqlx.QueryerContext, viewer, id int64, now time.Time) (*Invitation, error) {
	var inv Invitation
	err := sqlx.GetContext(ctx, q, &inv, `
SELECT `+invitationColumns+` FROM invitations
 WHERE id = $1 AND (sender_id = $2 OR recipient_id = $2)`, id, viewer)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if !s.limits.view(&inv, viewer, now) {
		return nil, nil
	}
	return &inv, nil
}

// AcceptInvitation accepts an invitation viewer received (pending, or ignored earlier):
// the two members become connected. It locks both members (ascending id), then the
// invitation. Errors: CodeNotFound (not the viewer's received invitation, or withdrawn
// or expired: a recipient never sees those), CodeNotPending (already accepted),
// CodeConnectionLimit (either member would pass the connection cap).
func (s *Store) AcceptInvitation(ctx context.Context, viewer, id int64) (*Invitation, error) {
	var out *Invitation
	err := s.inTx(ctx, func(tx *Tx, now time.Time) error {
		var senderID int64
		err := tx.GetContext(ctx, &senderID, `SELECT sender_id FROM invitations WHERE id = $1 AND recipient_id = $2`, id, viewer)
		if errors.Is(err, sql.ErrNoRows) {
			return notFoundInvitation()
		}
		if err != nil {
			return err
		}
		if _, err := lockMembers(ctx, tx, senderID, viewer); err != nil {
			return err
		}
		inv, err := s.lockReceived(ctx, tx, viewer, id, now)
		if err != nil {
			return err
		}
		if inv.Status == StatusAccepted {
			return refuse(CodeNotPending, fieldInvitation, "this invitation was already accepted")
		}
		if err := s.accept(ctx, tx, inv, now); err != nil {
			return err
		}
		s.limits.view(inv, viewer, now)
		out = inv
		return nil
	})
	return out, err
}

// lockReceived locks the invitation viewer received and returns it as the recipient
// sees it; CodeNotFound when they may not see it.
func (s *Store) lockReceived(ctx context.Context, tx *Tx, viewer, id int64, now time.Time) (*Invitation, error) {
	var inv Invitation
	err := tx.GetContext(ctx, &inv, `
SELECT `+invitationColumns+` FROM invitations WHERE id = $1 AND recipient_id = $2 FOR UPDATE`, id, viewer)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFoundInvitation()
	}
	if err != nil {
		return nil, err
	}
	if !s.limits.view(&inv, viewer, now) {
		return nil, notFoundInvitation()
	}
	return &inv, nil
}

// accept marks a live invitation, locked with both members, accepted and connects the
// two members. Errors: CodeConnectionLimit.
func (s *Store) accept(ctx context.Context, tx *Tx, inv *Invitation, now time.Time) error {
	var full int
	err := tx.GetContext(ctx, &full, `
SELECT count(*) FROM members WHERE id IN ($1, $2) AND connection_count >= $3`,
		inv.SenderID, inv.RecipientID, s.limits.ConnectionMax)
	if err != nil {
		return err
	}
	if full > 0 {
		return refuse(CodeConnectionLimit, fieldInvitation,
			"accepting would take one of you past the limit of %d connections", s.limits.ConnectionMax)
	}
	err = tx.GetContext(ctx, inv, `
UPDATE invitations SET status = 'ACCEPTED', responded_at = $2 WHERE id = $1
RETURNING `+invitationColumns, inv.ID, now)
	if err != nil {
		return err
	}
	if err := s.notify(ctx, tx, KindInvitationAccepted, inv.SenderID, inv.ID, now); err != nil {
		return err
	}
	if err := cancelReminders(ctx, tx, now, inv.ID); err != nil {
		return err
	}
	return connect(ctx, tx, inv.SenderID, inv.RecipientID, now)
}

// IgnoreInvitation ignores a pending invitation viewer received. The sender is never
// told: to them it stays PENDING. Ignoring an ignored invitation changes nothing and
// succeeds. Errors: CodeNotFound (as AcceptInvitation), CodeNotPending (accepted).
func (s *Store) IgnoreInvitation(ctx context.Context, viewer, id int64) (*Invitation, error) {
	var out *Invitation
	err := s.inTx(ctx, func(tx *Tx, now time.Time) error {
		inv, err := s.lockReceived(ctx, tx, viewer, id, now)
		if err != nil {
			return err
		}
		switch inv.Status {
		case StatusAccepted:
			return refuse(CodeNotPending, fieldInvitation, "this invitation was already accepted")
		case StatusPending:
			err = tx.GetContext(ctx, inv, `
UPDATE invitations SET status = 'IGNORED', responded_at = $2 WHERE id = $1
RETURNING `+invitationColumns, id, now)
			if err != nil {
				return err
			}
			if err := cancelReminders(ctx, tx, now, id); err != nil {
				return err
			}
			s.limits.view(inv, viewer, now)
		}
		out = inv
		return nil
	})
	return out, err
}
