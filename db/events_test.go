package db_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"invitations/db"
	"invitations/db/dbtest"
)

// eventsWait bounds every wait for an event: nothing in these tests sleeps.
const eventsWait = 10 * time.Second

// newEventsFixture is newFixture that also returns the database's DSN, for listeners.
func newEventsFixture(t *testing.T) (*fixture, string) {
	t.Helper()
	dsn := dbtest.DSN(t)
	conn, err := sqlx.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetMaxOpenConns(40)
	t.Cleanup(func() { conn.Close() })
	clock := dbtest.NewClock(t0)
	return &fixture{t: t, ctx: context.Background(), conn: conn, store: db.New(conn, db.DefaultLimits(), clock.Now), clock: clock}, dsn
}

// startEvents runs an Events (one "process") on dsn until the test ends and waits
// until it listens.
func startEvents(t *testing.T, dsn string, log *slog.Logger) *db.Events {
	t.Helper()
	e := db.NewEvents(dsn, log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	select {
	case <-e.Ready():
	case err := <-done:
		t.Fatalf("Run ended before listening: %v", err)
	case <-time.After(eventsWait):
		t.Fatal("the listener did not connect")
	}
	return e
}

// subscribe subscribes until the test ends.
func subscribe(t *testing.T, e *db.Events, member int64, kind string) <-chan db.Event {
	ch, cancel := e.Subscribe(member, kind)
	t.Cleanup(cancel)
	return ch
}

// nextEvent returns the next event on ch, failing the test when none comes in time.
func nextEvent(t *testing.T, ch <-chan db.Event, what string) db.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("%s: subscription closed", what)
		}
		return ev
	case <-time.After(eventsWait):
		t.Fatalf("%s: no event within %v", what, eventsWait)
	}
	return db.Event{}
}

// wantEvent fails unless the next event on ch is want: as events arrive in commit
// order, this also proves that nothing was published to ch before want.
func wantEvent(t *testing.T, ch <-chan db.Event, want db.Event, what string) {
	t.Helper()
	if got := nextEvent(t, ch, what); got != want {
		t.Fatalf("%s: got %+v, want %+v", what, got, want)
	}
}

// noPendingEvent fails if an event is already buffered on ch (it does not wait).
func noPendingEvent(t *testing.T, ch <-chan db.Event, what string) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		t.Fatalf("%s: unexpected %+v (open %v)", what, ev, ok)
	default:
	}
}

// TestEventsOnlyOnCommit: a transaction's events are published once it commits, and
// never when it rolls back.
func TestEventsOnlyOnCommit(t *testing.T) {
	f, dsn := newEventsFixture(t)
	e := startEvents(t, dsn, nil)
	bob := f.member("bob")
	ch := subscribe(t, e, bob, db.KindInvitationReceived)
	ev := func(id int64) db.Event {
		return db.Event{Kind: db.KindInvitationReceived, MemberID: bob, InvitationID: id}
	}

	if err := f.store.PublishInTxForTest(f.ctx, ev(1), errors.New("roll back")); err == nil {
		t.Fatal("the failing transaction reported no error")
	}
	notify(t, f, ev(2)) // the sentinel: the next event must be it
	wantEvent(t, ch, ev(2), "after a rolled-back transaction")

	if err := f.store.PublishInTxForTest(f.ctx, ev(3), nil); err != nil {
		t.Fatal(err)
	}
	wantEvent(t, ch, ev(3), "after a committed transaction")
	noPendingEvent(t, ch, "after a committed transaction")
}

func TestEventsReachSubscribersOnEveryInstance(t *testing.T) {
	f, dsn := newEventsFixture(t)
	instances := []*db.Events{startEvents(t, dsn, nil), startEvents(t, dsn, nil)}
	ada, bob, cy, dan, eve := f.member("ada"), f.member("bob"), f.member("cy"), f.member("dan"), f.member("eve")
	type streams struct{ bobReceived, adaAccepted, cyAccepted, danAccepted <-chan db.Event }
	var subs []streams
	for _, e := range instances {
		subs = append(subs, streams{
			bobReceived: subscribe(t, e, bob, db.KindInvitationReceived),
			adaAccepted: subscribe(t, e, ada, db.KindInvitationAccepted),
			cyAccepted:  subscribe(t, e, cy, db.KindInvitationAccepted),
			danAccepted: subscribe(t, e, dan, db.KindInvitationAccepted),
		})
	}
	received := func(to, id int64) db.Event {
		return db.Event{Kind: db.KindInvitationReceived, MemberID: to, InvitationID: id}
	}
	accepted := func(from, id int64) db.Event {
		return db.Event{Kind: db.KindInvitationAccepted, MemberID: from, InvitationID: id}
	}

	// A new invitation reaches the recipient's subscribers in both processes.
	arrived := make(chan db.Event, 1)
	var arrivedAt time.Time
	go func() {
		select {
		case ev := <-subs[0].bobReceived:
			arrivedAt = time.Now()
			arrived <- ev
		case <-time.After(eventsWait):
			close(arrived)
		}
	}()
	before := time.Now()
	toBob := f.mustSend(ada, bob)
	committed := time.Now()
	wantEvent(t, arrived, received(bob, toBob.ID), "sent")
	t.Logf("latency: SendInvitation took %v; the event reached the subscriber %v after it returned (negative: before)",
		committed.Sub(before), arrivedAt.Sub(committed))
	wantEvent(t, subs[1].bobReceived, received(bob, toBob.ID), "sent, other process")

	// A withdrawal publishes nothing: the next event on bob's stream is the sentinel.
	if _, err := f.withdraw(ada, toBob.ID); err != nil {
		t.Fatal(err)
	}
	cyToBob := f.mustSend(cy, bob)
	for _, s := range subs {
		wantEvent(t, s.bobReceived, received(bob, cyToBob.ID), "after withdraw")
	}

	// Nor does an ignore.
	if _, err := f.store.IgnoreInvitation(f.ctx, bob, cyToBob.ID); err != nil {
		t.Fatal(err)
	}
	danToBob := f.mustSend(dan, bob)
	for _, s := range subs {
		wantEvent(t, s.bobReceived, received(bob, danToBob.ID), "after ignore")
	}

	// An acceptance reaches the sender.
	if _, err := f.store.AcceptInvitation(f.ctx, bob, danToBob.ID); err != nil {
		t.Fatal(err)
	}
	for _, s := range subs {
		wantEvent(t, s.danAccepted, accepted(dan, danToBob.ID), "accepted")
	}

	// The senders of the withdrawn and of the ignored invitation got nothing either:
	// their first acceptance events are the sentinels.
	adaToEve, cyToEve := f.mustSend(ada, eve), f.mustSend(cy, eve)
	for _, id := range []int64{adaToEve.ID, cyToEve.ID} {
		if _, err := f.store.AcceptInvitation(f.ctx, eve, id); err != nil {
			t.Fatal(err)
		}
	}
	for _, s := range subs {
		wantEvent(t, s.adaAccepted, accepted(ada, adaToEve.ID), "sender of the withdrawn invitation")
		wantEvent(t, s.cyAccepted, accepted(cy, cyToEve.ID), "sender of the ignored invitation")
		for _, ch := range []<-chan db.Event{s.bobReceived, s.adaAccepted, s.cyAccepted, s.danAccepted} {
			noPendingEvent(t, ch, "at the end")
		}
	}
}

// notify publishes an event as the store does, outside any change.
func notify(t *testing.T, f *fixture, ev db.Event) {
	t.Helper()
	b, _ := json.Marshal(ev)
	f.conn.MustExec(`SELECT pg_notify($1, $2)`, db.EventsChannel, string(b))
}

func TestEventsSlowSubscriberDoesNotBlockOthers(t *testing.T) {
	f, dsn := newEventsFixture(t)
	e := startEvents(t, dsn, nil)
	slow := subscribe(t, e, 1, db.KindInvitationReceived) // never read until the end
	fast := subscribe(t, e, 1, db.KindInvitationReceived)
	other := subscribe(t, e, 2, db.KindInvitationReceived)

	// The fast subscriber receives every event, each before the next is published,
	// while the slow one's buffer fills up and it is dropped.
	n := db.SubscriberBuffer + 36
	for i := 1; i <= n; i++ {
		ev := db.Event{Kind: db.KindInvitationReceived, MemberID: 1, InvitationID: int64(i)}
		notify(t, f, ev)
		wantEvent(t, fast, ev, "fast subscriber")
	}
	other2 := db.Event{Kind: db.KindInvitationReceived, MemberID: 2, InvitationID: 1}
	notify(t, f, other2)
	wantEvent(t, other, other2, "another member's subscriber")

	// The slow subscriber has exactly the events that fitted its buffer, then its
	// channel is closed: it was dropped rather than waited for.
	for i := 1; i <= db.SubscriberBuffer; i++ {
		if ev := <-slow; ev.InvitationID != int64(i) {
			t.Fatalf("slow subscriber: event %d is %+v", i, ev)
		}
	}
	if ev, ok := <-slow; ok {
		t.Fatalf("slow subscriber not closed: %+v", ev)
	}
	if got := e.Subscribers(); got != 2 {
		t.Fatalf("%d subscribers, want 2", got)
	}
}

// logWatch is a slog handler that passes each record's message to a channel.
type logWatch chan string

func (w logWatch) Enabled(context.Context, slog.Level) bool { return true }
func (w logWatch) WithAttrs([]slog.Attr) slog.Handler       { return w }
func (w logWatch) WithGroup(string) slog.Handler            { return w }
func (w logWatch) Handle(_ context.Context, r slog.Record) error {
	select {
	case w <- r.Message:
	default:
	}
	return nil
}

// await waits for a log message.
func (w logWatch) await(t *testing.T, msg string) {
	t.Helper()
	deadline := time.After(eventsWait)
	for {
		select {
		case m := <-w:
			if m == msg {
				return
			}
		case <-deadline:
			t.Fatalf("no %q logged within %v", msg, eventsWait)
		}
	}
}

func TestEventsSurviveReconnect(t *testing.T) {
	f, dsn := newEventsFixture(t)
	logs := make(logWatch, 100)
	e := startEvents(t, dsn, slog.New(logs))
	bob := f.member("bob")
	ch := subscribe(t, e, bob, db.KindInvitationReceived)

	// Kill the LISTEN connection, as a database restart or failover would.
	var killed int
	if err := f.conn.Get(&killed, `
SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                       WHERE datname = current_database() AND query LIKE 'LISTEN%') k`); err != nil || killed != 1 {
		t.Fatalf("terminated %d listener connections: %v", killed, err)
	}
	logs.await(t, "events: listener reconnected")

	// The subscription made before the outage carries on.
	inv := f.mustSend(f.member("ada"), bob)
	wantEvent(t, ch, db.Event{Kind: db.KindInvitationReceived, MemberID: bob, InvitationID: inv.ID}, "after reconnect")
}

func TestEventsRunEndClosesSubscribers(t *testing.T) {
	_, dsn := newEventsFixture(t)
	e := db.NewEvents(dsn, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	ch, unsubscribe := e.Subscribe(1, db.KindInvitationAccepted)
	defer unsubscribe()
	select {
	case <-e.Ready():
	case <-time.After(eventsWait):
		t.Fatal("not listening")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(eventsWait):
		t.Fatal("Run did not return")
	}
	if _, ok := <-ch; ok {
		t.Fatal("subscriber still open after Run ended")
	}
	late, _ := e.Subscribe(1, db.KindInvitationAccepted)
	if _, ok := <-late; ok {
		t.Fatal("a subscription after Run ended is open")
	}
	unsubscribe() // idempotent after the close
}
