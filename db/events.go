package db

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// SubscriberBuffer is how many events a subscriber may fall behind. A subscriber
// whose buffer is full when the next event for it arrives is closed (its channel is
// closed and it receives nothing more): the listener never waits for a subscriber.
const SubscriberBuffer = 64

// The listener's reconnect back-off (doubled after each failed attempt) and how often
// an idle connection is checked.
const (
	eventsMinReconnect = 100 * time.Millisecond
	eventsMaxReconnect = 10 * time.Second
	eventsPingInterval = 30 * time.Second
)

// Events delivers the invitation events published on EventsChannel to subscribers in
// this process. Each process holds one LISTEN connection (outside the connection
// pool) and fans the events out to in-process subscribers by member and kind;
// NOTIFY reaches every process listening on the database, so a change made through
// any replica reaches subscribers on all of them.
//
// Delivery is best effort: an event is published only when the change that caused it
// commits, is delivered at most once to each subscriber, and is lost for subscribers
// whose process was not listening at the time: while the LISTEN connection is down
// (the listener reconnects by itself, with back-off, and subscribers stay subscribed
// and receive the events published after the reconnect), before Run has connected, or
// when the subscriber was closed for falling SubscriberBuffer events behind. Clients
// that must not miss anything re-read their lists (or notifications) after
// (re)subscribing.
//
// It is safe for concurrent use.
type Events struct {
	dsn   string
	log   *slog.Logger
	ready chan struct{} // closed once the first LISTEN is acknowledged

	mu      sync.Mutex
	subs    map[subscriptionKey]map[*subscriber]struct{}
	stopped bool // Run has ended: subscribers are closed, new ones start closed
}

type subscriptionKey struct {
	member int64
	kind   string
}

type subscriber struct {
	ch     chan Event
	closed bool // guarded by Events.mu
}

// NewEvents returns an Events listening on the database at dsn once Run is called.
// log may be nil (slog.Default).
func NewEvents(dsn string, log *slog.Logger) *Events {
	if log == nil {
		log = slog.Default()
	}
	return &Events{dsn: dsn, log: log, ready: make(chan struct{}), subs: map[subscriptionKey]map[*subscriber]struct{}{}}
}

// Ready is closed once Run listens on EventsChannel for the first time: from then on
// every committed event reaches the subscribers (outages aside).
func (e *Events) Ready() <-chan struct{} { return e.ready }

// Run listens for events and delivers them until ctx ends, then closes every
// subscriber and returns nil. Connection losses are not errors: the listener
// reconnects by itself, with back-off, and logs it. It returns an error only when
// PostgreSQL refuses the LISTEN. Call it once.
func (e *Events) Run(ctx context.Context) error {
	defer e.stop()
	cfg, err := pgx.ParseConfig(e.dsn)
	if err != nil {
		return err
	}
	backoff, connected := eventsMinReconnect, false
	for {
		conn, refused, err := listen(ctx, cfg)
		switch {
		case err != nil && ctx.Err() != nil:
			return nil
		case refused:
			return err
		case err != nil:
			e.log.Warn("events: listener cannot connect; retrying", "err", err, "in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, eventsMaxReconnect)
			continue
		}
		backoff = eventsMinReconnect
		if !connected {
			connected = true
			close(e.ready)
			e.log.Debug("events: listening", "channel", EventsChannel)
		} else {
			// What was published while the connection was down is lost; subscribers
			// carry on with what comes next.
			e.log.Warn("events: listener reconnected")
		}
		err = e.receive(ctx, conn)
		conn.Close(context.Background())
		if ctx.Err() != nil {
			return nil
		}
		e.log.Warn("events: listener disconnected; events are lost until it reconnects", "err", err)
	}
}

// listen connects and listens on EventsChannel; refused reports PostgreSQL refusing
// the LISTEN itself (as opposed to the connection failing).
func listen(ctx context.Context, cfg *pgx.ConnConfig) (conn *pgx.Conn, refused bool, err error) {
	conn, err = pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, false, err
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{EventsChannel}.Sanitize()); err != nil {
		conn.Close(context.Background())
		var pgErr *pgconn.PgError
		return nil, errors.As(err, &pgErr), err
	}
	return conn, false, nil
}

// receive delivers the notifications conn receives until ctx ends or the connection
// fails. An idle connection is pinged every eventsPingInterval, so a connection that
// died silently is noticed and replaced.
func (e *Events) receive(ctx context.Context, conn *pgx.Conn) error {
	for {
		waitCtx, cancel := context.WithTimeout(ctx, eventsPingInterval)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, context.DeadlineExceeded):
			if err := conn.Ping(ctx); err != nil {
				return err
			}
			continue
		case err != nil:
			return err
		}
		var ev Event
		if err := json.Unmarshal([]byte(n.Payload), &ev); err != nil {
			e.log.Warn("events: ignoring a malformed event", "payload", n.Payload, "err", err)
			continue
		}
		e.publish(ev)
	}
}

// publish hands ev to the subscribers of its member and kind without ever waiting:
// a subscriber with a full buffer is closed instead.
func (e *Events) publish(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	key := subscriptionKey{ev.MemberID, ev.Kind}
	for s := range e.subs[key] {
		select {
		case s.ch <- ev:
		default:
			e.log.Warn("events: subscriber too slow, closing it", "member", ev.MemberID, "kind", ev.Kind,
				"buffered", SubscriberBuffer)
			e.removeLocked(key, s)
		}
	}
}

// Subscribe returns the events of kind for member, from now on, and a cancel func
// that ends the subscription (idempotent; it closes the channel). The channel is also
// closed when the subscriber falls SubscriberBuffer events behind, and when Run ends;
// after Run has ended it is returned closed.
func (e *Events) Subscribe(member int64, kind string) (events <-chan Event, cancel func()) {
	s := &subscriber{ch: make(chan Event, SubscriberBuffer)}
	key := subscriptionKey{member, kind}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		s.closed = true
		close(s.ch)
		return s.ch, func() {}
	}
	if e.subs[key] == nil {
		e.subs[key] = map[*subscriber]struct{}{}
	}
	e.subs[key][s] = struct{}{}
	return s.ch, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.removeLocked(key, s)
	}
}

// removeLocked closes s and forgets it; e.mu is held.
func (e *Events) removeLocked(key subscriptionKey, s *subscriber) {
	if s.closed {
		return
	}
	s.closed = true
	close(s.ch)
	delete(e.subs[key], s)
	if len(e.subs[key]) == 0 {
		delete(e.subs, key)
	}
}

// stop closes every subscriber; later subscribers start closed.
func (e *Events) stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.stopped = true
	for key, set := range e.subs {
		for s := range set {
			e.removeLocked(key, s)
		}
	}
}

// Subscribers counts the current subscribers, for diagnostics and tests.
func (e *Events) Subscribers() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, set := range e.subs {
		n += len(set)
	}
	return n
}
