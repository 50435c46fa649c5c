package db_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"invitations/db"
)

// recordingMailer records the reminders it is given; fail, when set, decides which
// deliveries fail.
type recordingMailer struct {
	mu     sync.Mutex
	sent   []db.Reminder
	calls  int
	fail   func(r db.Reminder, call int) error
	domain string
}

func (m *recordingMailer) SendReminder(ctx context.Context, r db.Reminder) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls++
	if m.fail != nil {
		if err := m.fail(r, m.calls); err != nil {
			return err
		}
	}
	m.sent = append(m.sent, r)
	return nil
}

func (m *recordingMailer) MailDomain() string { return m.domain }

// count is how many times the reminder (invitation, seq) was sent.
func (m *recordingMailer) count(invitation int64, seq int) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, r := range m.sent {
		if r.InvitationID == invitation && r.Seq == seq {
			n++
		}
	}
	return n
}

func (m *recordingMailer) total() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sent)
}

// deliver runs one DeliverReminders call and checks its counts.
func (f *fixture) deliver(m db.Mailer, wantSent, wantCancelled int) {
	f.t.Helper()
	sent, cancelled, err := f.store.DeliverReminders(f.ctx, m, 100)
	if err != nil || sent != wantSent || cancelled != wantCancelled {
		f.t.Fatalf("at %v: sent %d, cancelled %d, %v; want %d, %d", f.clock.Now(), sent, cancelled, err, wantSent, wantCancelled)
	}
}

// reminderStates is the state of each reminder of an invitation, by seq.
func (f *fixture) reminderStates(invitation int64) string {
	f.t.Helper()
	var states []string
	if err := f.conn.Select(&states, `SELECT state FROM reminders WHERE invitation_id = $1 ORDER BY seq`, invitation); err != nil {
		f.t.Fatal(err)
	}
	return strings.Join(states, ",")
}

func TestReminders(t *testing.T) {
	t.Parallel()
	t.Run("SentAtSevenAndFourteenDaysOnce", func(t *testing.T) {
		f := newFixture(t)
		ada, bob := f.member("ada"), f.member("bob")
		inv, err := f.sendNote(ada, bob, "Met at the conference")
		if err != nil {
			t.Fatal(err)
		}
		m := &recordingMailer{}
		f.clock.Set(t0.Add(7*db.Day - time.Microsecond))
		f.deliver(m, 0, 0)
		f.clock.Set(t0.Add(7 * db.Day))
		f.deliver(m, 1, 0)
		f.deliver(m, 0, 0)
		f.clock.Set(t0.Add(14*db.Day - time.Microsecond))
		f.deliver(m, 0, 0)
		f.clock.Set(t0.Add(14 * db.Day))
		f.deliver(m, 1, 0)
		f.clock.Advance(30 * db.Day)
		f.deliver(m, 0, 0)
		id := inv.Invitation.ID
		if m.total() != 2 || m.count(id, 1) != 1 || m.count(id, 2) != 1 || f.reminderStates(id) != "SENT,SENT" {
			t.Fatalf("sent %+v, states %s", m.sent, f.reminderStates(id))
		}
		want := db.Reminder{InvitationID: id, Seq: 1, To: "bob@members.invalid", ToName: "Member bob",
			FromName: "Member ada", FromHandle: "ada", SentAt: t0, At: t0.Add(7 * db.Day),
			MessageID: fmt.Sprintf("<reminder-%d-1@members.invalid>", id)}
		got := m.sent[0]
		if got.Message == nil || *got.Message != "Met at the conference" {
			t.Errorf("message %v", got.Message)
		}
		got.Message = nil
		if got != want {
			t.Errorf("got  %+v\nwant %+v", got, want)
		}
		if n := f.scalar(`SELECT count(*) FROM reminders WHERE invitation_id = $1 AND done_at = due_at AND attempts = 1`, id); n != 2 {
			t.Errorf("%d reminders record their delivery time and one attempt, want 2", n)
		}
	})
	t.Run("MailerChoosesTheDomain", func(t *testing.T) {
		f := newFixture(t)
		inv := f.mustSend(f.member("ada"), f.member("bob"))
		f.clock.Advance(7 * db.Day)
		m := &recordingMailer{domain: "example.org"}
		f.deliver(m, 1, 0)
		if r := m.sent[0]; r.To != "bob@example.org" || r.MessageID != fmt.Sprintf("<reminder-%d-1@example.org>", inv.ID) {
			t.Fatalf("got %+v", r)
		}
	})
	// Withdraw, accept, ignore and expiry each cancel both reminders.
	for _, c := range []struct {
		name   string
		ttl    time.Duration
		action func(f *fixture, sender, recipient, id int64) error
	}{
		{"NoneAfterWithdraw", 0, func(f *fixture, sender, _, id int64) error {
			_, err := f.withdraw(sender, id)
			return err
		}},
		{"NoneAfterAccept", 0, func(f *fixture, _, recipient, id int64) error {
			_, err := f.store.AcceptInvitation(f.ctx, recipient, id)
			return err
		}},
		{"NoneAfterIgnore", 0, func(f *fixture, _, recipient, id int64) error {
			_, err := f.store.IgnoreInvitation(f.ctx, recipient, id)
			return err
		}},
		{"NoneAfterExpiry", 7 * db.Day, nil}, // expired by age when the first falls due, not swept
		{"NoneAfterSweep", 6 * db.Day, func(f *fixture, _, _, _ int64) error {
			f.clock.Advance(6 * db.Day)
			_, err := f.store.SweepExpired(f.ctx, 10)
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, func(l *db.Limits) {
				if c.ttl > 0 {
					l.TTL = c.ttl
				}
			})
			ada, bob := f.member("ada"), f.member("bob")
			inv := f.mustSend(ada, bob)
			f.clock.Advance(time.Hour)
			if c.action != nil {
				if err := c.action(f, ada, bob, inv.ID); err != nil {
					t.Fatal(err)
				}
			}
			m := &recordingMailer{}
			f.clock.Set(t0.Add(14 * db.Day))
			if c.action != nil {
				f.deliver(m, 0, 0) // the change cancelled them already, in its transaction
			} else {
				f.deliver(m, 0, 2)
			}
			if m.total() != 0 || f.reminderStates(inv.ID) != "CANCELLED,CANCELLED" {
				t.Fatalf("sent %+v, states %s", m.sent, f.reminderStates(inv.ID))
			}
		})
	}
	t.Run("FailureIsRetriedThenCancelled", func(t *testing.T) {
		f := newFixture(t)
		inv := f.mustSend(f.member("ada"), f.member("bob"))
		m := &recordingMailer{fail: func(db.Reminder, int) error {
			return errors.New("smtp: 451 4.3.0 try again later\r\n" + strings.Repeat("x", 500))
		}}
		f.clock.Advance(7 * db.Day)
		for attempt := 1; attempt < db.MaxReminderAttempts; attempt++ {
			f.deliver(m, 0, 0)
			f.deliver(m, 0, 0) // not before the backoff is over
			var r struct {
				Attempts  int       `db:"attempts"`
				State     string    `db:"state"`
				DueAt     time.Time `db:"due_at"`
				LastError string    `db:"last_error"`
			}
			if err := f.conn.Get(&r, `SELECT attempts, state, due_at, last_error FROM reminders WHERE invitation_id = $1 AND seq = 1`, inv.ID); err != nil {
				t.Fatal(err)
			}
			wantDue := f.clock.Now().Add(time.Duration(attempt) * db.ReminderBackoff)
			if r.Attempts != attempt || r.State != "PENDING" || !r.DueAt.Equal(wantDue) || m.calls != attempt {
				t.Fatalf("after attempt %d: %+v, %d calls; want due at %v", attempt, r, m.calls, wantDue)
			}
			if len([]rune(r.LastError)) > 200 || strings.ContainsAny(r.LastError, "\r\n") || !strings.HasPrefix(r.LastError, "smtp: 451 4.3.0 try again later") {
				t.Fatalf("last_error %q", r.LastError)
			}
			f.clock.Set(wantDue)
		}
		f.deliver(m, 0, 1)
		if m.calls != db.MaxReminderAttempts || f.reminderStates(inv.ID) != "CANCELLED,PENDING" {
			t.Fatalf("%d calls, states %s", m.calls, f.reminderStates(inv.ID))
		}
		m.fail = nil
		f.clock.Set(t0.Add(14 * db.Day))
		f.deliver(m, 1, 0) // the second reminder has its own attempts
	})
	t.Run("FailureThenSuccess", func(t *testing.T) {
		f := newFixture(t)
		inv := f.mustSend(f.member("ada"), f.member("bob"))
		m := &recordingMailer{fail: func(_ db.Reminder, call int) error {
			if call == 1 {
				return errors.New("connection refused")
			}
			return nil
		}}
		f.clock.Advance(7 * db.Day)
		f.deliver(m, 0, 0)
		f.clock.Advance(db.ReminderBackoff)
		f.deliver(m, 1, 0)
		if n := f.scalar(`SELECT count(*) FROM reminders WHERE invitation_id = $1 AND seq = 1 AND state = 'SENT' AND attempts = 2`, inv.ID); n != 1 {
			t.Fatalf("states %s", f.reminderStates(inv.ID))
		}
	})
	t.Run("AnswerWaitsForReminderInFlight", func(t *testing.T) {
		f := newFixture(t)
		ada := f.member("ada")
		inv := f.mustSend(ada, f.member("bob"))
		f.clock.Advance(7 * db.Day)
		entered, release := make(chan struct{}), make(chan struct{})
		m := &recordingMailer{fail: func(db.Reminder, int) error {
			close(entered)
			<-release
			return nil
		}}
		delivered := make(chan error, 1)
		go func() {
			sent, _, err := f.store.DeliverReminders(f.ctx, m, 10)
			if err == nil && sent != 1 {
				err = fmt.Errorf("sent %d", sent)
			}
			delivered <- err
		}()
		<-entered
		// Another worker skips the reminder in flight.
		other := &recordingMailer{}
		if sent, cancelled, err := f.store.DeliverReminders(f.ctx, other, 10); sent+cancelled != 0 || err != nil {
			t.Fatalf("second worker: %d sent, %d cancelled, %v", sent, cancelled, err)
		}
		// A withdrawal waits for the reminder to be recorded.
		withdrawn := make(chan error, 1)
		go func() {
			_, err := f.withdraw(ada, inv.ID)
			withdrawn <- err
		}()
		waitFor(t, func() bool {
			return f.scalar(`SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`) == 1
		})
		close(release)
		if err := <-delivered; err != nil {
			t.Fatal(err)
		}
		if err := <-withdrawn; err != nil {
			t.Fatal(err)
		}
		f.clock.Set(t0.Add(14 * db.Day))
		f.deliver(other, 0, 0) // the withdrawal cancelled the second reminder itself
		if f.reminderStates(inv.ID) != "SENT,CANCELLED" || other.total() != 0 {
			t.Fatalf("states %s, second worker sent %d", f.reminderStates(inv.ID), other.total())
		}
	})
	t.Run("RestartDoesNotResend", func(t *testing.T) {
		f := newFixture(t)
		inv := f.mustSend(f.member("ada"), f.member("bob"))
		f.clock.Advance(7 * db.Day)
		f.deliver(&recordingMailer{}, 1, 0)
		// A new worker (a new store and mailer) on the same database.
		restarted := db.New(f.conn, db.DefaultLimits(), f.clock.Now)
		m := &recordingMailer{}
		for _, at := range []time.Duration{7 * db.Day, 10 * db.Day, 14 * db.Day, 20 * db.Day} {
			f.clock.Set(t0.Add(at))
			if _, _, err := restarted.DeliverReminders(f.ctx, m, 10); err != nil {
				t.Fatal(err)
			}
		}
		if m.total() != 1 || m.count(inv.ID, 2) != 1 {
			t.Fatalf("restarted worker sent %+v, want only the second reminder", m.sent)
		}
	})
}

// TestRemindersConcurrentWorkers: two workers over 200 due reminders send each once.
func TestRemindersConcurrentWorkers(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada := f.member("ada")
	sentAt := make([]time.Time, 100)
	for i := range sentAt {
		sentAt[i] = t0.Add(-15*db.Day - time.Duration(i)*time.Second)
	}
	f.history(ada, db.StatusPending, sentAt...)
	f.conn.MustExec(`
INSERT INTO reminders (invitation_id, seq, due_at)
SELECT id, seq, sent_at + seq * interval '7 days' FROM invitations, generate_series(1, 2) seq`)
	m := &recordingMailer{}
	var sent [2]int
	start := time.Now()
	errs := parallel(2, func(w int) error {
		for {
			n, c, err := f.store.DeliverReminders(f.ctx, m, 10)
			sent[w] += n
			if err != nil || n+c == 0 {
				return err
			}
		}
	})
	elapsed := time.Since(start)
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if sent[0]+sent[1] != 200 || m.total() != 200 {
		t.Fatalf("workers sent %d + %d, mailer got %d; want 200", sent[0], sent[1], m.total())
	}
	seen := map[string]bool{}
	for _, r := range m.sent {
		if seen[r.MessageID] {
			t.Errorf("%s sent twice", r.MessageID)
		}
		seen[r.MessageID] = true
	}
	if n := f.scalar(`SELECT count(*) FROM reminders WHERE state = 'SENT' AND attempts = 1`); n != 200 {
		t.Errorf("%d reminders SENT after one attempt, want 200", n)
	}
	t.Logf("two workers sent 200 reminders (%d + %d) in %v: %.0f reminders/s",
		sent[0], sent[1], elapsed.Round(time.Millisecond), 200/elapsed.Seconds())
}

// TestRunReminderWorker: one round delivers batch after batch, logs, and stops with
// its context.
func TestRunReminderWorker(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada := f.member("ada")
	for _, handle := range []string{"bob", "cy", "dan", "eve"} {
		f.mustSend(ada, f.member(handle))
	}
	f.clock.Advance(14 * db.Day)
	m := &recordingMailer{fail: func(r db.Reminder, _ int) error {
		if strings.HasPrefix(r.To, "eve@") && r.Seq == 2 {
			return errors.New("mailbox full")
		}
		return nil
	}}
	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan error, 1)
	go func() {
		done <- f.store.RunReminderWorker(ctx, m, time.Hour, 3, slog.New(slog.NewTextHandler(&logs, nil)))
	}()
	waitFor(t, func() bool {
		return f.scalar(`SELECT count(*) FROM reminders WHERE state = 'SENT'`) == 7 &&
			f.scalar(`SELECT count(*) FROM reminders WHERE state = 'PENDING' AND attempts = 1`) == 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"sent=7", "mailbox full"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log %q lacks %q", logs.String(), want)
		}
	}
	if err := f.store.RunReminderWorker(f.ctx, m, time.Second, 0, slog.Default()); err == nil {
		t.Error("batch 0 accepted")
	}
}
