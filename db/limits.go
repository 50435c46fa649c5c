package db

import "time"

// Limits are the product rules' numbers, loaded from configuration in server.go.
type Limits struct {
	// WeeklyStandard and WeeklyPremium cap invitations sent in any rolling 7 days.
	WeeklyStandard int
	WeeklyPremium  int
	// RefundOnWithdraw: a withdrawn invitation no longer counts toward the weekly cap.
	RefundOnWithdraw bool
	// PendingMax caps a sender's outstanding (pending or ignored) invitations.
	PendingMax int
	// Cooldown is how long after a withdrawal the same pair may not be invited again.
	Cooldown time.Duration
	// TTL is the lifetime of an unanswered (pending or ignored) invitation.
	TTL time.Duration
	// ConnectionMax caps a member's connections.
	ConnectionMax int
	// NoteMaxStandard and NoteMaxPremium cap a personal note's length in code points.
	NoteMaxStandard int
	NoteMaxPremium  int
	// NotesPerMonthStandard caps notes per calendar month (UTC) on STANDARD; PREMIUM
	// is unlimited.
	NotesPerMonthStandard int
}

const (
	// Day is the unit of every day-based limit and filter: exactly 24 hours.
	Day = 24 * time.Hour
	// Window is the rolling period of the weekly cap.
	Window = 7 * Day
	// IdempotencyTTL is how long an idempotency key replays its first result.
	IdempotencyTTL = 24 * time.Hour
	// MaxSelected is the most ids one withdrawSelected call takes.
	MaxSelected = 100
	// MaxPageSize is the largest page a list returns.
	MaxPageSize = 100
	// DefaultPageSize is the page size when the client names none.
	DefaultPageSize = 20
)

// DefaultLimits returns the limits of SPEC section 2.
func DefaultLimits() Limits {
	return Limits{
		WeeklyStandard:        100,
		WeeklyPremium:         200,
		RefundOnWithdraw:      true,
		PendingMax:            1500,
		Cooldown:              21 * Day,
		TTL:                   180 * Day,
		ConnectionMax:         30000,
		NoteMaxStandard:       200,
		NoteMaxPremium:        300,
		NotesPerMonthStandard: 5,
	}
}

// weeklyLimit is the weekly cap for a plan.
func (l Limits) weeklyLimit(plan string) int {
	if plan == PlanPremium {
		return l.WeeklyPremium
	}
	return l.WeeklyStandard
}

// noteMax is the longest note for a plan.
func (l Limits) noteMax(plan string) int {
	if plan == PlanPremium {
		return l.NoteMaxPremium
	}
	return l.NoteMaxStandard
}

// notesPerMonth is the monthly note quota for a plan; -1 means unlimited.
func (l Limits) notesPerMonth(plan string) int {
	if plan == PlanPremium {
		return -1
	}
	return l.NotesPerMonthStandard
}
