package db

import (
	"context"
	"errors"
	"time"
)

// Counts are invitations by status as their sender sees them.
type Counts struct {
	Sent      int
	Pending   int
	Accepted  int
	Withdrawn int
	Expired   int
}

// AcceptanceRate is Accepted ÷ (Sent − Withdrawn), nil when that is 0.
func (c Counts) AcceptanceRate() *float64 {
	d := c.Sent - c.Withdrawn
	if d <= 0 {
		return nil
	}
	r := float64(c.Accepted) / float64(d)
	return &r
}

// Stats are acceptance analytics over a set of invitations.
type Stats struct {
	Counts
	// MedianTimeToAccept is in seconds; nil when nothing was accepted.
	MedianTimeToAccept *int
	ByWeek             []*WeekStats
	ByNote             []*NoteStats
	BySource           []*SourceStats
}

// WeekStats are the counts of one send week (WeekStart is Monday 00:00 UTC).
type WeekStats struct {
	WeekStart time.Time
	Counts
}

// NoteStats are the counts of invitations with or without a personal note.
type NoteStats struct {
	WithNote bool
	Counts
}

// SourceStats are the counts of one source.
type SourceStats struct {
	Source string
	Counts
}

// InvitationStats returns the analytics of sender's invitations (all members' when
// sender is nil) sent in [after, before). Errors: CodeBadUserInput for an empty range.
func (s *Store) InvitationStats(ctx context.Context, sender *int64, after, before *time.Time) (*Stats, error) {
	return nil, errors.New("invitation stats: not implemented yet")
}
