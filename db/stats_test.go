package db_test

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"invitations/db"
	"invitations/db/dbtest"
)

// truthQuery is the ground truth: every invitation in range with its status as the
// sender sees it at $5 (the lifetime is $4), written as plainly as possible.
const truthQuery = `
WITH v AS (
  SELECT date_trunc('week', sent_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS week,
         source, message IS NOT NULL AS note,
         CASE WHEN status = 'ACCEPTED' THEN 'accepted'
              WHEN status = 'WITHDRAWN' THEN 'withdrawn'
              WHEN status = 'EXPIRED' OR sent_at + $4::interval <= $5 THEN 'expired'
              ELSE 'pending' END AS seen,
         CASE WHEN status = 'ACCEPTED' THEN floor(extract(epoch FROM responded_at - sent_at)) END AS tta
    FROM invitations
   WHERE ($1::bigint IS NULL OR sender_id = $1)
     AND ($2::timestamptz IS NULL OR sent_at >= $2)
     AND ($3::timestamptz IS NULL OR sent_at < $3))
`

// truthCounts are the counts and rate of a group of v.
const truthCounts = `count(seen) AS sent,
       count(seen) FILTER (WHERE seen = 'pending') AS pending,
       count(seen) FILTER (WHERE seen = 'accepted') AS accepted,
       count(seen) FILTER (WHERE seen = 'withdrawn') AS withdrawn,
       count(seen) FILTER (WHERE seen = 'expired') AS expired,
       count(seen) FILTER (WHERE seen = 'accepted')::float8
         / nullif(count(seen) - count(seen) FILTER (WHERE seen = 'withdrawn'), 0) AS rate`

type truthRow struct {
	Key       string   `db:"key"`
	Sent      int      `db:"sent"`
	Pending   int      `db:"pending"`
	Accepted  int      `db:"accepted"`
	Withdrawn int      `db:"withdrawn"`
	Expired   int      `db:"expired"`
	Rate      *float64 `db:"rate"`
	Median    *int     `db:"median"`
}

func (r truthRow) String() string {
	return fmt.Sprintf("%s sent=%d pending=%d accepted=%d withdrawn=%d expired=%d rate=%s",
		r.Key, r.Sent, r.Pending, r.Accepted, r.Withdrawn, r.Expired, fmtRate(r.Rate))
}

func fmtRate(r *float64) string {
	if r == nil {
		return "null"
	}
	return fmt.Sprintf("%.17g", *r)
}

func fmtInt(p *int) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprint(*p)
}

// truth renders the expected statistics, one line per figure.
func (f *fixture) truth(sender *int64, after, before *time.Time) string {
	f.t.Helper()
	out, err := truth(f.conn, f.store.Limits().TTL, f.store.Now(), sender, after, before)
	if err != nil {
		f.t.Fatal(err)
	}
	return out
}

// truth renders the statistics the ground truth gives at now, as render does.
func truth(conn *sqlx.DB, ttl time.Duration, now time.Time, sender *int64, after, before *time.Time) (string, error) {
	args := []any{sender, after, before, fmt.Sprintf("%d microseconds", ttl.Microseconds()), now}
	var out []string
	add := func(label, query string, extra ...any) error {
		var rows []truthRow
		if err := conn.Select(&rows, truthQuery+query, append(args, extra...)...); err != nil {
			return fmt.Errorf("truth %s: %w", label, err)
		}
		for _, r := range rows {
			out = append(out, label+" "+r.String())
			if label == "total" {
				out = append(out, "median "+fmtInt(r.Median))
			}
		}
		return nil
	}
	for _, q := range []struct{ label, query string }{
		{"total", `SELECT '' AS key, ` + truthCounts + `,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY tta) FILTER (WHERE seen = 'accepted') AS median FROM v`},
		{"week", `SELECT to_char(week AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI') AS key, ` + truthCounts + `
  FROM v GROUP BY week ORDER BY week`},
		{"note", `SELECT n.b::text AS key, ` + truthCounts + `
  FROM (VALUES (false), (true)) n(b) LEFT JOIN v ON v.note = n.b GROUP BY n.b ORDER BY n.b`},
		{"source", `SELECT source AS key, ` + truthCounts + `
  FROM v GROUP BY source ORDER BY array_position($6::text[], source)`},
	} {
		var extra []any
		if q.label == "source" {
			extra = append(extra, db.Sources)
		}
		if err := add(q.label, q.query, extra...); err != nil {
			return "", err
		}
	}
	return strings.Join(out, "\n"), nil
}

// render renders statistics as truth does.
func render(st *db.Stats) string {
	row := func(label, key string, c db.Counts) string {
		return label + " " + truthRow{Key: key, Sent: c.Sent, Pending: c.Pending, Accepted: c.Accepted,
			Withdrawn: c.Withdrawn, Expired: c.Expired, Rate: c.AcceptanceRate()}.String()
	}
	out := []string{row("total", "", st.Counts), "median " + fmtInt(st.MedianTimeToAccept)}
	for _, w := range st.ByWeek {
		out = append(out, row("week", w.WeekStart.UTC().Format("2006-01-02T15:04"), w.Counts))
	}
	for _, n := range st.ByNote {
		out = append(out, row("note", fmt.Sprint(n.WithNote), n.Counts))
	}
	for _, s := range st.BySource {
		out = append(out, row("source", s.Source, s.Counts))
	}
	return strings.Join(out, "\n")
}

// checkStats compares InvitationStats with the ground truth.
func (f *fixture) checkStats(label string, sender *int64, after, before *time.Time) {
	f.t.Helper()
	st, err := f.store.InvitationStats(f.ctx, sender, after, before)
	if err != nil {
		f.t.Fatalf("%s: %v", label, err)
	}
	if got, want := render(st), f.truth(sender, after, before); got != want {
		f.t.Fatalf("%s (sender %v, [%v, %v)):\ngot:\n%s\nwant:\n%s", label, deref(sender), deref(after), deref(before), got, want)
	}
	if sender == nil {
		return
	}
	// Without weeks: the same statistics, ByWeek left empty.
	lean, err := f.store.InvitationStats(f.ctx, sender, after, before, db.WithoutWeeks)
	if err != nil {
		f.t.Fatalf("%s without weeks: %v", label, err)
	}
	if len(lean.ByWeek) != 0 {
		f.t.Fatalf("%s without weeks: %d weeks", label, len(lean.ByWeek))
	}
	st.ByWeek = nil
	if got, want := render(lean), render(st); got != want {
		f.t.Fatalf("%s without weeks:\ngot:\n%s\nwant:\n%s", label, got, want)
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return "nil"
	}
	return *p
}

// checkRollups fails unless every row of the rollups equals a full rebuild's
// (TESTPLAN E4), rows at n = 0 included.
func (f *fixture) checkRollups() {
	f.t.Helper()
	diff, err := dbtest.RollupDrift(f.ctx, f.conn)
	if err != nil {
		f.t.Fatal(err)
	}
	if len(diff) > 0 {
		f.t.Fatalf("E4: %d rollup rows kept by the triggers differ from a rebuild:\n%s", len(diff), strings.Join(diff, "\n"))
	}
}

// TestInvitationStatsProperty builds random histories through the store's own paths
// (send, accept, ignore, withdraw, on a moving clock) plus bulk past rows, some of them
// stale and unswept, and checks every figure, for each sender and for the network, with
// and without ranges, against the ground truth.
func TestInvitationStatsProperty(t *testing.T) {
	t.Parallel()
	for seed := int64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprintf("Seed%d", seed), func(t *testing.T) {
			t.Parallel()
			rng := rand.New(rand.NewSource(seed))
			ttl := time.Duration(20+rng.Intn(30)) * db.Day
			f := newFixture(t, func(l *db.Limits) { l.TTL = ttl })
			start := t0.Add(-60 * db.Day)
			f.clock.Set(start)
			senders := make([]int64, 4)
			for i := range senders {
				senders[i] = f.memberOn(fmt.Sprintf("s%d", i), db.PlanPremium)
			}
			pool := f.members("p", 30)
			randomHistory(f, rng, senders, pool, 200)
			f.clock.Set(t0)
			bulkHistory(f, rng, senders, start.Add(-20*db.Day), t0)
			// A sweep that got halfway: some stale live invitations are stored EXPIRED.
			f.conn.MustExec(`UPDATE invitations SET status = 'EXPIRED'
 WHERE status IN ('PENDING', 'IGNORED') AND sent_at <= $1 AND id % 2 = 0`, t0.Add(-ttl))
			f.checkRollups()

			everyone := append([]*int64{nil}, ptrs(senders)...)
			for _, at := range []time.Duration{0, 3*db.Day + 7*time.Hour} {
				f.clock.Set(t0.Add(at))
				ranges := randomRanges(rng, start.Add(-25*db.Day), t0, t0.Add(-ttl))
				for _, sender := range everyone {
					for i, r := range ranges {
						f.checkStats(fmt.Sprintf("now+%v range %d", at, i), sender, r[0], r[1])
					}
				}
			}
		})
	}
}

func ptrs(ids []int64) []*int64 {
	var out []*int64
	for i := range ids {
		out = append(out, &ids[i])
	}
	return out
}

// randomHistory runs n random operations, moving the clock forward between them.
func randomHistory(f *fixture, rng *rand.Rand, senders, pool []int64, n int) {
	f.t.Helper()
	for range n {
		f.clock.Advance(time.Duration(rng.Int63n(int64(11 * time.Hour))))
		var live []struct {
			ID        int64 `db:"id"`
			Sender    int64 `db:"sender_id"`
			Recipient int64 `db:"recipient_id"`
		}
		if err := f.conn.Select(&live, `SELECT id, sender_id, recipient_id FROM invitations WHERE status IN ('PENDING', 'IGNORED') ORDER BY id`); err != nil {
			f.t.Fatal(err)
		}
		var err error
		switch op := rng.Intn(10); {
		case op < 5 || len(live) == 0:
			from, to := senders[rng.Intn(len(senders))], pool[rng.Intn(len(pool))]
			if rng.Intn(8) == 0 { // a pool member invites a sender: may connect the pair instead
				from, to = to, from
			}
			in := db.SendInput{RecipientID: to, RecipientFound: true, Source: db.Sources[rng.Intn(len(db.Sources))]}
			if rng.Intn(3) == 0 {
				note := fmt.Sprintf("note %d", rng.Intn(100))
				in.Message = &note
			}
			_, err = f.store.SendInvitation(f.ctx, from, in)
		case op < 7:
			inv := live[rng.Intn(len(live))]
			_, err = f.store.AcceptInvitation(f.ctx, inv.Recipient, inv.ID)
		case op < 8:
			inv := live[rng.Intn(len(live))]
			_, err = f.store.IgnoreInvitation(f.ctx, inv.Recipient, inv.ID)
		case op < 9:
			inv := live[rng.Intn(len(live))]
			_, err = f.withdraw(inv.Sender, inv.ID)
		default: // withdraw a selection of one sender's invitations
			inv := live[rng.Intn(len(live))]
			ids, found := []int64{inv.ID}, []bool{true}
			for _, other := range live {
				if other.Sender == inv.Sender && other.ID != inv.ID && rng.Intn(2) == 0 {
					ids, found = append(ids, other.ID), append(found, true)
				}
			}
			_, err = f.store.WithdrawSelected(f.ctx, inv.Sender, db.WithdrawInput{IDs: ids, Found: found})
		}
		codeOf(f.t, err) // refusals are expected; any other error fails
	}
}

// bulkHistory inserts past invitations of every status with f.history, then gives
// them random notes, sources and answer times.
func bulkHistory(f *fixture, rng *rand.Rand, senders []int64, from, to time.Time) {
	f.t.Helper()
	statuses := []string{db.StatusPending, db.StatusIgnored, db.StatusAccepted, db.StatusAccepted, db.StatusWithdrawn, db.StatusExpired}
	span := int64(to.Sub(from) / time.Microsecond)
	var ids []int64
	var notes, sources []string
	var delays []float64
	for _, sender := range senders {
		for _, status := range statuses {
			times := make([]time.Time, 2+rng.Intn(12))
			for i := range times {
				times[i] = from.Add(time.Duration(rng.Int63n(span)) * time.Microsecond)
			}
			if rng.Intn(4) == 0 && len(times) > 2 { // ties: same instant, different recipients
				times[1] = times[0]
			}
			for i, id := range f.history(sender, status, times...) {
				ids = append(ids, id)
				note := ""
				if rng.Intn(3) == 0 {
					note = "bulk note"
				}
				notes = append(notes, note)
				sources = append(sources, db.Sources[rng.Intn(len(db.Sources))])
				age := to.Sub(times[i]).Seconds()
				delay := rng.Float64() * age
				if rng.Intn(5) == 0 {
					delay = float64(rng.Intn(5)) // small and tied values
				}
				delays = append(delays, delay)
			}
		}
	}
	f.conn.MustExec(`
UPDATE invitations i
   SET message = nullif(u.note, ''), source = u.source,
       responded_at = CASE WHEN i.responded_at IS NOT NULL THEN i.sent_at + make_interval(secs => u.delay) END
  FROM unnest($1::bigint[], $2::text[], $3::text[], $4::float8[]) AS u(id, note, source, delay)
 WHERE i.id = u.id`, ids, notes, sources, delays)
}

// randomRanges returns ranges to check: none, each bound alone, whole UTC days, a
// single partial day, one around the lifetime cut and random instants.
func randomRanges(rng *rand.Rand, from, to, cut time.Time) [][2]*time.Time {
	at := func(t time.Time) *time.Time { return &t }
	random := func() time.Time {
		return from.Add(time.Duration(rng.Int63n(int64(to.Sub(from)/time.Microsecond))) * time.Microsecond)
	}
	day := func(t time.Time) time.Time { return t.UTC().Truncate(db.Day) }
	a, b := random(), random()
	if b.Before(a) {
		a, b = b, a
	}
	d := day(random())
	out := [][2]*time.Time{
		{nil, nil},
		{at(a), nil},
		{nil, at(b)},
		{at(a), at(b.Add(time.Microsecond))},
		{at(day(a)), at(day(b).Add(db.Day))},
		{at(d.Add(3 * time.Hour)), at(d.Add(17 * time.Hour))},
		{at(day(cut)), at(day(cut).Add(db.Day))},
		{at(cut.Add(-time.Hour)), at(cut.Add(time.Hour))},
		{at(cut), nil},
		{nil, at(cut.Add(time.Microsecond))},
		// An end early or late in its day: the day counted whole minus its short side,
		// or the short side alone.
		{at(d.Add(2 * time.Hour)), at(d.Add(5*db.Day + 22*time.Hour))},
		{at(d.Add(20 * time.Hour)), at(d.Add(6*db.Day + 2*time.Hour))},
		{at(day(cut).Add(time.Hour)), nil},
		{nil, at(day(cut).Add(23 * time.Hour))},
	}
	return out
}

func TestInvitationStatsIgnoredLooksPending(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada, bob := f.member("ada"), f.member("bob")
	inv := f.mustSend(ada, bob)
	f.clock.Advance(time.Hour)
	if _, err := f.store.IgnoreInvitation(f.ctx, bob, inv.ID); err != nil {
		t.Fatal(err)
	}
	for _, sender := range []*int64{&ada, nil} {
		st, err := f.store.InvitationStats(f.ctx, sender, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.Counts != (db.Counts{Sent: 1, Pending: 1}) || st.ByNote[0].Pending != 1 || st.BySource[0].Pending != 1 || st.ByWeek[0].Pending != 1 {
			t.Fatalf("ignored, sender %v: %s", deref(sender), render(st))
		}
	}
	f.clock.Set(t0.Add(180 * db.Day)) // its lifetime has run out; no sweep has run
	for _, sender := range []*int64{&ada, nil} {
		st, err := f.store.InvitationStats(f.ctx, sender, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.Counts != (db.Counts{Sent: 1, Expired: 1}) || st.ByWeek[0].Expired != 1 {
			t.Fatalf("ignored then expired, sender %v: %s", deref(sender), render(st))
		}
		f.checkStats("expired", sender, nil, nil)
	}
}

func TestInvitationStatsEmpty(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada, bob := f.member("ada"), f.member("bob")
	f.mustSend(bob, ada) // someone else's invitation
	week := t0.Add(-30 * db.Day)
	for _, c := range []struct {
		name   string
		sender *int64
		after  *time.Time
	}{{"Member", &ada, nil}, {"NetworkRange", nil, &week}} {
		t.Run(c.name, func(t *testing.T) {
			before := t0.Add(-db.Day)
			st, err := f.store.InvitationStats(f.ctx, c.sender, c.after, &before)
			if err != nil {
				t.Fatal(err)
			}
			if st.Counts != (db.Counts{}) || st.AcceptanceRate() != nil || st.MedianTimeToAccept != nil ||
				st.ByWeek == nil || len(st.ByWeek) != 0 || st.BySource == nil || len(st.BySource) != 0 ||
				len(st.ByNote) != 2 || st.ByNote[0].WithNote || !st.ByNote[1].WithNote ||
				st.ByNote[0].Counts != (db.Counts{}) || st.ByNote[1].Counts != (db.Counts{}) ||
				st.ByNote[0].AcceptanceRate() != nil {
				t.Fatalf("got %s", render(st))
			}
		})
	}
}

func TestInvitationStatsBadRange(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada := f.member("ada")
	later := t0.Add(time.Nanosecond)
	for _, sender := range []*int64{&ada, nil} {
		_, err := f.store.InvitationStats(f.ctx, sender, &t0, &t0)
		wantCode(t, err, db.CodeBadUserInput)
		_, err = f.store.InvitationStats(f.ctx, sender, &later, &t0)
		wantCode(t, err, db.CodeBadUserInput)
		if _, err := f.store.InvitationStats(f.ctx, sender, &t0, &later); err != nil {
			t.Fatalf("a one-nanosecond range: %v", err)
		}
	}
}

// TestInvitationStatsExample spells the definitions out on a small history.
func TestInvitationStatsExample(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada := f.member("ada")
	monday := time.Date(2026, 11, 9, 0, 0, 0, 0, time.UTC)
	acc := f.history(ada, db.StatusAccepted, monday.Add(-time.Microsecond), monday, monday.Add(time.Hour), monday.Add(2*time.Hour))
	for i, d := range []string{"10 seconds", "1 hour", "3 hours", "2 days"} {
		f.conn.MustExec(`UPDATE invitations SET responded_at = sent_at + $2::interval + interval '0.9 seconds' WHERE id = $1`, acc[i], d)
	}
	f.history(ada, db.StatusWithdrawn, monday.Add(3*time.Hour))
	f.history(ada, db.StatusPending, monday.Add(4*time.Hour), t0.Add(-180*db.Day))
	for _, sender := range []*int64{&ada, nil} {
		st, err := f.store.InvitationStats(f.ctx, sender, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		// percentile_disc(0.5) of 10 s, 1 h, 3 h and 2 d (each plus 0.9 s, rounded down)
		// is the lower middle value, 1 h.
		if st.Counts != (db.Counts{Sent: 7, Pending: 1, Accepted: 4, Withdrawn: 1, Expired: 1}) ||
			*st.AcceptanceRate() != 4.0/6 || *st.MedianTimeToAccept != 3600 {
			t.Fatalf("sender %v: %s", deref(sender), render(st))
		}
		var weeks []string
		for _, w := range st.ByWeek {
			weeks = append(weeks, fmt.Sprintf("%s:%d", w.WeekStart.Format(time.DateOnly), w.Sent))
		}
		if got := strings.Join(weeks, " "); got != "2026-05-18:1 2026-11-02:1 2026-11-09:5" {
			t.Fatalf("weeks %s", got)
		}
		if len(st.BySource) != 1 || st.BySource[0].Source != "OTHER" || st.ByNote[0].Sent != 7 || st.ByNote[1].Sent != 0 {
			t.Fatalf("%s", render(st))
		}
	}
}

// TestInvitationStatsNanosecondBounds: sent_at has microseconds; a bound between two
// microseconds includes exactly the invitations a real-valued comparison would.
func TestInvitationStatsNanosecondBounds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ada := f.member("ada")
	m := t0.Add(-10 * db.Day)
	f.history(ada, db.StatusPending, m, m.Add(time.Microsecond))
	between := m.Add(time.Nanosecond)
	for _, sender := range []*int64{&ada, nil} {
		for _, c := range []struct {
			after, before *time.Time
		}{{&between, nil}, {nil, &between}} {
			st, err := f.store.InvitationStats(f.ctx, sender, c.after, c.before)
			if err != nil {
				t.Fatal(err)
			}
			if st.Sent != 1 {
				t.Fatalf("sender %v, [%v, %v): sent %d, want 1", deref(sender), deref(c.after), deref(c.before), st.Sent)
			}
		}
	}
}

// TestInvitationStatsConcurrentWrites: sends, answers, withdrawals and a sweep running
// at once keep the rollups exact, without deadlocks.
func TestInvitationStatsConcurrentWrites(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(l *db.Limits) { l.TTL = 10 * db.Day })
	senders := f.members("s", 16)
	pool := f.members("p", 40)
	f.conn.MustExec(`UPDATE members SET plan = 'PREMIUM'`)
	for i, s := range senders { // stale live invitations for the sweep and the send path to expire
		f.history(s, []string{db.StatusPending, db.StatusIgnored}[i%2], t0.Add(-11*db.Day), t0.Add(-10*db.Day-time.Duration(i)*time.Minute))
	}
	deadlocks := func() int {
		return f.scalar(`SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()`)
	}
	before := deadlocks()
	errs := parallel(9, func(w int) error {
		rng := rand.New(rand.NewSource(int64(w)))
		for i := 0; i < 60; i++ {
			f.clock.Advance(time.Duration(rng.Intn(60)) * time.Second)
			if w == 8 { // the sweep, in small batches
				if _, err := f.conn.Exec(`UPDATE invitations SET status = 'EXPIRED' WHERE id IN (
  SELECT id FROM invitations WHERE status IN ('PENDING', 'IGNORED') AND sent_at <= $1
   ORDER BY id LIMIT 3 FOR UPDATE SKIP LOCKED)`, f.clock.Now().Add(-10*db.Day)); err != nil {
					return err
				}
				continue
			}
			var live []struct {
				ID        int64 `db:"id"`
				Sender    int64 `db:"sender_id"`
				Recipient int64 `db:"recipient_id"`
			}
			if err := f.conn.Select(&live, `SELECT id, sender_id, recipient_id FROM invitations WHERE status IN ('PENDING', 'IGNORED')`); err != nil {
				return err
			}
			var err error
			switch op := rng.Intn(6); {
			case op < 3 || len(live) == 0:
				from, to := senders[rng.Intn(len(senders))], pool[rng.Intn(len(pool))]
				if rng.Intn(4) == 0 {
					from, to = to, from
				}
				_, err = f.store.SendInvitation(f.ctx, from, db.SendInput{RecipientID: to, RecipientFound: true, Source: db.Sources[rng.Intn(5)]})
			case op == 3:
				inv := live[rng.Intn(len(live))]
				_, err = f.store.AcceptInvitation(f.ctx, inv.Recipient, inv.ID)
			case op == 4:
				inv := live[rng.Intn(len(live))]
				_, err = f.store.IgnoreInvitation(f.ctx, inv.Recipient, inv.ID)
			default:
				inv := live[rng.Intn(len(live))]
				_, err = f.withdraw(inv.Sender, inv.ID)
			}
			if e, refused := db.AsError(err); err != nil && (!refused || e.Code == db.CodeServiceBusy) {
				return err // SERVICE_BUSY would be a deadlock that outlived the retries
			}
		}
		return nil
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	f.conn.SetMaxIdleConns(0) // closed sessions flush their statistics, deadlocks included
	f.conn.SetMaxIdleConns(40)
	time.Sleep(200 * time.Millisecond)
	if n := deadlocks() - before; n != 0 {
		t.Errorf("%d deadlocks", n)
	}
	f.checkRollups()
	f.checkStats("network", nil, nil, nil)
	f.checkStats("sender", &senders[0], nil, nil)
}
