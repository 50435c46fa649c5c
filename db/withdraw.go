package db

import (
	"context"
	"time"
)

// Withdraw outcomes for one selected id.
const (
	OutcomeWithdrawn  = "WITHDRAWN"
	OutcomeNotFound   = "NOT_FOUND"
	OutcomeNotPending = "NOT_PENDING"
)

// WithdrawResult is the fate of one selected id, in input order.
type WithdrawResult struct {
	// Index is the position of the id in the input.
	Index   int    `json:"index"`
	ID      int64  `json:"id"`
	Outcome string `json:"outcome"`
	// Invitation is the viewer's invitation (nil for OutcomeNotFound).
	Invitation *Invitation `json:"-"`
}

// WithdrawInput selects invitations to withdraw. IDs are decoded ids; Found[i] is
// false when the client's i-th id did not decode to an invitation id (it is then
// reported OutcomeNotFound, exactly as an unknown id).
type WithdrawInput struct {
	IDs            []int64
	Found          []bool
	IdempotencyKey *string
}

var fieldSelected = []string{"input", "invitationIds"}

// WithdrawSelected withdraws the viewer's pending (or ignored, which to the sender is
// pending) invitations among the selection, 1 to MaxSelected ids, and reports each id
// on its own: withdrawn, not found (not the viewer's sent invitation, or unknown) or
// not pending. It locks the viewer's member row, then the selected invitations in
// ascending id order, so overlapping concurrent calls serialise and nothing is withdrawn
// twice. A repeated id gets the outcome of its first occurrence. Errors:
// CodeInvalidInput (no ids, or a bad idempotency key), CodeTooManySelected.
func (s *Store) WithdrawSelected(ctx context.Context, viewer int64, in WithdrawInput) ([]WithdrawResult, error) {
	if len(in.IDs) == 0 {
		return nil, refuse(CodeInvalidInput, fieldSelected, "select at least one invitation")
	}
	if len(in.IDs) > MaxSelected {
		return nil, refuse(CodeTooManySelected, fieldSelected,
			"select at most %d invitations per call (%d selected)", MaxSelected, len(in.IDs))
	}
	key, err := newIdempotencyKey(in.IdempotencyKey, []string{"input", "idempotencyKey"}, "withdrawSelected",
		[]any{in.IDs, in.Found})
	if err != nil {
		return nil, err
	}
	var results []WithdrawResult
	err = s.inTx(ctx, func(tx *Tx, now time.Time) error {
		if _, err := lockMembers(ctx, tx, viewer); err != nil {
			return err
		}
		var replayed []WithdrawResult
		if ok, err := key.replay(ctx, tx, viewer, now, &replayed); err != nil || ok {
			if err != nil {
				return err
			}
			results, err = s.attachInvitations(ctx, tx, viewer, replayed, now)
			return err
		}
		results, err = s.withdraw(ctx, tx, viewer, in, now)
		if err != nil {
			return err
		}
		return key.save(ctx, tx, viewer, now, results)
	})
	return results, err
}

// withdraw does WithdrawSelected's work inside its transaction.
func (s *Store) withdraw(ctx context.Context, tx *Tx, viewer int64, in WithdrawInput, now time.Time) ([]WithdrawResult, error) {
	var ids []int64
	for i, id := range in.IDs {
		if in.Found[i] {
			ids = append(ids, id)
		}
	}
	in1, ids1 := oneOf(ids)
	rows, err := queryRows[Invitation](ctx, tx, nil, `
SELECT `+invitationColumns+` FROM invitations
 WHERE id `+in1+` AND sender_id = $2
 ORDER BY id
   FOR UPDATE`, ids1, viewer)
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]*Invitation, len(rows))
	var withdrawable []int64
	for _, inv := range rows {
		s.limits.view(inv, viewer, now)
		byID[inv.ID] = inv
		if inv.Status == StatusPending {
			withdrawable = append(withdrawable, inv.ID)
		}
	}
	if len(withdrawable) > 0 {
		// One statement withdraws them and cancels their reminders (after the rows were
		// locked above: the lock order of cancelReminders).
		in1, ids1 := oneOf(withdrawable)
		done, err := queryRows[Invitation](ctx, tx, nil, `
WITH done AS (
  UPDATE invitations SET status = 'WITHDRAWN', withdrawn_at = $2
   WHERE id `+in1+`
  RETURNING `+invitationColumns+`),
cancelled AS (`+cancelRemindersSQL(in1)+`)
SELECT * FROM done`, ids1, now)
		if err != nil {
			return nil, err
		}
		for _, inv := range done {
			s.limits.view(inv, viewer, now)
			byID[inv.ID] = inv
		}
	}
	withdrawn := make(map[int64]bool, len(withdrawable))
	for _, id := range withdrawable {
		withdrawn[id] = true
	}
	results := make([]WithdrawResult, len(in.IDs))
	for i, id := range in.IDs {
		r := WithdrawResult{Index: i, ID: id, Outcome: OutcomeNotFound}
		if inv := byID[id]; in.Found[i] && inv != nil {
			r.Invitation = inv
			r.Outcome = OutcomeNotPending
			if withdrawn[id] {
				r.Outcome = OutcomeWithdrawn
			}
		}
		results[i] = r
	}
	return results, nil
}

// attachInvitations loads the invitations of results (a replay's, or a dry run's) as
// they are now, in one statement.
func (s *Store) attachInvitations(ctx context.Context, tx *Tx, viewer int64, results []WithdrawResult, now time.Time) ([]WithdrawResult, error) {
	var ids []int64
	for _, r := range results {
		if r.Outcome != OutcomeNotFound {
			ids = append(ids, r.ID)
		}
	}
	if len(ids) == 0 {
		return results, nil
	}
	byID, err := s.invitationsByID(ctx, tx, viewer, ids, now)
	if err != nil {
		return nil, err
	}
	for i := range results {
		if results[i].Outcome != OutcomeNotFound {
			results[i].Invitation = byID[results[i].ID]
		}
	}
	return results, nil
}

// WithdrawnCount counts the results that withdrew an invitation, once per invitation.
func WithdrawnCount(results []WithdrawResult) int {
	seen := map[int64]bool{}
	for _, r := range results {
		if r.Outcome == OutcomeWithdrawn {
			seen[r.ID] = true
		}
	}
	return len(seen)
}

// WithdrawInvitation withdraws one pending invitation viewer sent and returns it.
// Errors: CodeNotFound, CodeNotPending.
func (s *Store) WithdrawInvitation(ctx context.Context, viewer, id int64, found bool) (*Invitation, error) {
	results, err := s.WithdrawSelected(ctx, viewer, WithdrawInput{IDs: []int64{id}, Found: []bool{found}})
	if err != nil {
		return nil, err
	}
	switch r := results[0]; r.Outcome {
	case OutcomeNotFound:
		return nil, notFoundInvitation()
	case OutcomeNotPending:
		return nil, refuse(CodeNotPending, fieldInvitation, "this invitation is no longer pending")
	default:
		return r.Invitation, nil
	}
}

// WithdrawOlderThan withdraws viewer's pending invitations sent at least days × 24 h
// ago, oldest first, at most limit (1 to MaxSelected; nil means MaxSelected). With
// dryRun nothing changes and the results list exactly what a real call made at the
// same instant would withdraw. Errors: CodeInvalidInput (days outside 0..MaxDays, limit
// below 1), CodeTooManySelected (limit over MaxSelected).
func (s *Store) WithdrawOlderThan(ctx context.Context, viewer int64, days int, dryRun bool, limit *int) ([]WithdrawResult, error) {
	if days < 0 || days > MaxDays {
		return nil, refuse(CodeInvalidInput, []string{"input", "olderThanDays"}, "olderThanDays must be between 0 and %d", MaxDays)
	}
	n := MaxSelected
	if limit != nil {
		n = *limit
	}
	if n < 1 {
		return nil, refuse(CodeInvalidInput, []string{"input", "limit"}, "limit must be at least 1")
	}
	if n > MaxSelected {
		return nil, refuse(CodeTooManySelected, []string{"input", "limit"}, "limit must be at most %d", MaxSelected)
	}
	var results []WithdrawResult
	err := s.inTx(ctx, func(tx *Tx, now time.Time) error {
		if _, err := lockMembers(ctx, tx, viewer); err != nil {
			return err
		}
		var ids []int64
		err := tx.SelectContext(ctx, &ids, `
SELECT id FROM invitations
 WHERE sender_id = $1 AND status IN ('PENDING', 'IGNORED') AND sent_at > $2 AND sent_at <= $3
 ORDER BY sent_at, id
 LIMIT $4`, viewer, now.Add(-s.limits.TTL), now.Add(-time.Duration(days)*Day), n)
		if err != nil {
			return err
		}
		found := make([]bool, len(ids))
		for i := range found {
			found[i] = true
		}
		if dryRun {
			results = make([]WithdrawResult, len(ids))
			for i, id := range ids {
				results[i] = WithdrawResult{Index: i, ID: id, Outcome: OutcomeWithdrawn}
			}
			results, err = s.attachInvitations(ctx, tx, viewer, results, now)
			return err
		}
		results, err = s.withdraw(ctx, tx, viewer, WithdrawInput{IDs: ids, Found: found}, now)
		return err
	})
	return results, err
}
