package db_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"invitations/db"
	"invitations/db/dbtest"
)

// Scale measurement of the analytics, skipped unless STATS_BENCH=1 (it loads 10 million
// invitations, which takes minutes):
//
//	STATS_BENCH=1 go test ./db/ -run TestInvitationStatsAtScale -count=1 -v -timeout 60m
//
// It uses a fresh database on the test server (TEST_DATABASE_URL, else the throwaway
// cluster), or the database named by STATS_BENCH_DSN, loaded on first use and kept, so
// that the timings can be taken again without reloading.

const (
	scaleMembers     = 100_000
	scaleInvitations = 10_000_000
	// scaleCap is the most a PREMIUM member can send in 200 days (200 a week).
	scaleCap = 5714
)

// scaleRows is scaleInvitations, or STATS_BENCH_ROWS for a quick trial of the loader.
func scaleRows() int {
	var n int
	if _, err := fmt.Sscan(os.Getenv("STATS_BENCH_ROWS"), &n); err == nil && n > 0 {
		return n
	}
	return scaleInvitations
}

// scaleNow is the clock of the loaded history (its newest invitations).
var scaleNow = time.Date(2026, 11, 18, 12, 0, 0, 0, time.UTC)

func TestInvitationStatsAtScale(t *testing.T) {
	if os.Getenv("STATS_BENCH") == "" {
		t.Skip("set STATS_BENCH=1 to load 10 million invitations and time the analytics")
	}
	ctx := context.Background()
	var conn *sqlx.DB
	if dsn := os.Getenv("STATS_BENCH_DSN"); dsn != "" {
		var err error
		if conn, err = db.Open(ctx, dsn); err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if _, err := db.Migrate(ctx, conn); err != nil {
			t.Fatal(err)
		}
	} else {
		conn = dbtest.Open(t)
	}
	var n int
	if err := conn.Get(&n, `SELECT count(*) FROM invitations`); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		start := time.Now()
		if err := loadScale(ctx, conn); err != nil {
			t.Fatal(err)
		}
		t.Logf("loaded in %v", time.Since(start).Round(time.Second))
	}
	var shape struct {
		Invitations int64 `db:"invitations"`
		Senders     int64 `db:"senders"`
		Heaviest    int64 `db:"heaviest"`
		HeaviestN   int64 `db:"heaviest_n"`
		Median      int64 `db:"median"`
		MedianN     int64 `db:"median_n"`
		RollupRows  int64 `db:"rollup_rows"`
		TTARows     int64 `db:"tta_rows"`
	}
	err := conn.Get(&shape, `
WITH c AS (SELECT sender_id, count(*) AS n FROM invitations GROUP BY sender_id),
     o AS (SELECT sender_id, n, row_number() OVER (ORDER BY n DESC, sender_id) AS r FROM c)
SELECT (SELECT sum(n) FROM c)::bigint AS invitations, (SELECT count(*) FROM c) AS senders,
       (SELECT sender_id FROM o WHERE r = 1) AS heaviest, (SELECT n FROM o WHERE r = 1) AS heaviest_n,
       (SELECT sender_id FROM o WHERE r = (SELECT count(*) / 2 FROM c)) AS median,
       (SELECT n FROM o WHERE r = (SELECT count(*) / 2 FROM c)) AS median_n,
       (SELECT count(*) FROM invitation_stats_daily) AS rollup_rows,
       (SELECT count(*) FROM invitation_stats_tta) AS tta_rows`)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", shape)
	var dist string
	conn.Get(&dist, `SELECT string_agg(status || '=' || n, ' ' ORDER BY status) FROM (SELECT status, count(*) AS n FROM invitations GROUP BY 1) s`)
	t.Logf("statuses: %s", dist)

	store := db.New(conn, db.DefaultLimits(), func() time.Time { return scaleNow })
	at := func(d time.Duration) *time.Time { x := scaleNow.Add(d); return &x }
	heavy, median := shape.Heaviest, shape.Median
	cases := []struct {
		name          string
		sender        *int64
		after, before *time.Time
		limit         time.Duration
	}{
		{"network, last 90 days", nil, at(-90 * db.Day), nil, 200 * time.Millisecond},
		{"network, 90 days, both ends mid-day", nil, at(-93*db.Day - 5*time.Hour), at(-3*db.Day + 7*time.Hour), 200 * time.Millisecond},
		{"network, all time", nil, nil, nil, 0},
		{"network, to 10 days ago mid-day (crosses the expiry cut)", nil, nil, at(-10*db.Day + 3*time.Hour), 0},
		{"heaviest member, all time", &heavy, nil, nil, 20 * time.Millisecond},
		{"heaviest member, last 90 days", &heavy, at(-90 * db.Day), nil, 20 * time.Millisecond},
		{"median member, all time", &median, nil, nil, 20 * time.Millisecond},
	}
	for _, c := range cases {
		var times []time.Duration
		for i := 0; i < 11; i++ {
			start := time.Now()
			if _, err := store.InvitationStats(ctx, c.sender, c.after, c.before); err != nil {
				t.Fatalf("%s: %v", c.name, err)
			}
			if i > 0 { // the first run warms the cache
				times = append(times, time.Since(start))
			}
		}
		slices.Sort(times)
		min, med, max := times[0], times[len(times)/2], times[len(times)-1]
		t.Logf("%-58s min %8v  median %8v  max %8v", c.name, min.Round(10*time.Microsecond), med.Round(10*time.Microsecond), max.Round(10*time.Microsecond))
		if c.limit > 0 && med > c.limit {
			t.Errorf("%s: median %v, over %v", c.name, med, c.limit)
		}
	}
	if os.Getenv("STATS_BENCH_VERIFY") == "" {
		return
	}
	// The answers at scale equal the ground truth (slow: a full scan each).
	for _, c := range cases {
		if c.limit == 0 {
			continue
		}
		st, err := store.InvitationStats(ctx, c.sender, c.after, c.before)
		if err != nil {
			t.Fatal(err)
		}
		want, err := truth(conn, store.Limits().TTL, scaleNow, c.sender, c.after, c.before)
		if err != nil {
			t.Fatal(err)
		}
		if got := render(st); got != want {
			t.Errorf("%s:\ngot:\n%s\nwant:\n%s", c.name, got, want)
		} else {
			t.Logf("%s: equals the ground truth (%d invitations, median %s s)", c.name, st.Sent, fmtInt(st.MedianTimeToAccept))
		}
	}
}

// loadScale loads scaleMembers members and scaleInvitations invitations sent over the
// 200 days before scaleNow: invitations per sender log-normal (median 33, mean about
// 100, capped at scaleCap), 8% withdrawn, 45% accepted and 15% ignored after a
// log-normal delay (median one day) when that delay has passed, the rest pending;
// unanswered ones older than 182 days swept to EXPIRED, those between 180 and 182 days
// stale but unswept. Rows lie in the table in the order they were last written, as
// they would after real traffic. Triggers (including the rollups') and secondary
// indexes are off during the load; then the indexes are built and the rollups rebuilt.
func loadScale(ctx context.Context, conn *sqlx.DB) error {
	c, err := conn.Connx(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	var indexes []string
	err = c.SelectContext(ctx, &indexes, `
SELECT indexdef FROM pg_indexes i
 WHERE tablename = 'invitations' AND schemaname = current_schema()
   AND NOT EXISTS (SELECT FROM pg_constraint WHERE conindid = (quote_ident(i.schemaname) || '.' || quote_ident(i.indexname))::regclass)`)
	if err != nil {
		return err
	}
	steps := []string{
		`SET maintenance_work_mem = '1GB'`,
		`SET work_mem = '256MB'`,
		`SET session_replication_role = replica`, // no triggers: foreign keys are met by construction
		`SELECT setseed(0.42)`,
		fmt.Sprintf(`INSERT INTO members (handle, name, plan)
SELECT 'b' || g, 'Member ' || g, CASE WHEN g %% 10 = 0 THEN 'PREMIUM' ELSE 'STANDARD' END
  FROM generate_series(1, %d) g`, scaleMembers),
	}
	for _, def := range indexes {
		name := strings.Fields(strings.SplitN(def, " ON ", 2)[0])
		steps = append(steps, `DROP INDEX `+name[len(name)-1])
	}
	steps = append(steps,
		fmt.Sprintf(`CREATE TEMP TABLE bench_senders AS
SELECT id AS sender, least(%d, greatest(1, round(exp(3.5 + 1.5 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())))))::int AS n
  FROM members`, scaleCap),
		fmt.Sprintf(`INSERT INTO invitations (sender_id, recipient_id, message, source, status, sent_at, responded_at, withdrawn_at)
SELECT sender, recipient, message, source, status, sent_at, responded_at, withdrawn_at
  FROM (SELECT sender, recipient, sent_at,
               CASE WHEN u_note < 0.25 THEN 'Hi, I would like to add you to my professional network.' END AS message,
               CASE WHEN u_src < 0.35 THEN 'SEARCH' WHEN u_src < 0.65 THEN 'SUGGESTION' WHEN u_src < 0.85 THEN 'PROFILE'
                    WHEN u_src < 0.90 THEN 'ADDRESS_BOOK' ELSE 'OTHER' END AS source,
               CASE WHEN kind = 'W' THEN 'WITHDRAWN'
                    WHEN kind = 'A' AND answered THEN 'ACCEPTED'
                    WHEN kind = 'I' AND answered AND age < interval '182 days' THEN 'IGNORED'
                    WHEN age < interval '182 days' THEN 'PENDING'
                    ELSE 'EXPIRED' END AS status,
               CASE WHEN kind IN ('A', 'I') AND answered THEN sent_at + tta END AS responded_at,
               CASE WHEN kind = 'W' THEN sent_at + u_w * age END AS withdrawn_at
          FROM (SELECT *, $1::timestamptz - sent_at AS age,
                       tta < $1::timestamptz - sent_at AND tta < interval '180 days' AS answered,
                       CASE WHEN u_kind < 0.08 THEN 'W' WHEN u_kind < 0.53 THEN 'A' WHEN u_kind < 0.68 THEN 'I' ELSE 'U' END AS kind
                  FROM (SELECT s.sender,
                               m.lo + (s.sender - m.lo + i) %% %[1]d AS recipient,
                               $1::timestamptz - random() * interval '200 days' AS sent_at,
                               random() AS u_kind, random() AS u_note, random() AS u_src, random() AS u_w,
                               make_interval(secs => exp(11.37 + 1.8 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))) AS tta
                          FROM bench_senders s, generate_series(1, s.n) i, (SELECT min(id) AS lo FROM members) m
                         LIMIT %[2]d) g
                OFFSET 0) k) r
 ORDER BY greatest(sent_at, responded_at, withdrawn_at, CASE WHEN status = 'EXPIRED' THEN sent_at + interval '181 days' END)`,
			scaleMembers, scaleRows()),
		`SET session_replication_role = DEFAULT`,
	)
	steps = append(steps, indexes...)
	steps = append(steps,
		`SELECT invitation_stats_rebuild()`,
		`VACUUM (ANALYZE) members`,
		`VACUUM (ANALYZE) invitations`,
		`VACUUM (ANALYZE) invitation_stats_daily`,
		`VACUUM (ANALYZE) invitation_stats_tta`,
		`RESET ALL`,
	)
	for _, step := range steps {
		start := time.Now()
		var args []any
		if strings.Contains(step, "$1") {
			args = append(args, scaleNow)
		}
		if _, err := c.ExecContext(ctx, step, args...); err != nil {
			return fmt.Errorf("%.60s: %w", step, err)
		}
		fmt.Fprintf(os.Stderr, "load: %-60.60s %v\n", strings.Join(strings.Fields(step), " "), time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// BenchmarkStatsWrites measures what the analytics add to a send and to an accept:
// with the rollup triggers and indexes of migration 0003, with the triggers disabled,
// and with neither (its indexes dropped as well). Run it several times, so that the
// variants interleave on a busy machine:
//
//	for i in 1 2 3 4 5; do go test ./db/ -run '^$' -bench StatsWrites -benchtime 2000x; done
func BenchmarkStatsWrites(b *testing.B) {
	variants := []struct {
		name string
		sql  []string
	}{
		{"stats", nil},
		{"no-triggers", []string{`ALTER TABLE invitations DISABLE TRIGGER invitations_stats_insert`,
			`ALTER TABLE invitations DISABLE TRIGGER invitations_stats_update`}},
		{"none", []string{`ALTER TABLE invitations DISABLE TRIGGER invitations_stats_insert`,
			`ALTER TABLE invitations DISABLE TRIGGER invitations_stats_update`,
			`DROP INDEX invitations_sent_plain_idx`, `DROP INDEX invitations_sent_note_idx`,
			`DROP INDEX invitations_sender_plain_idx`, `DROP INDEX invitations_sender_note_idx`,
			`DROP INDEX invitations_accepted_tta_idx`}},
	}
	for _, v := range variants {
		b.Run("Send/"+v.name, func(b *testing.B) {
			f := newFixture(b)
			for _, q := range v.sql {
				f.conn.MustExec(q)
			}
			senders := f.members("s", 100)
			f.conn.MustExec(`UPDATE members SET plan = 'PREMIUM'`)
			recipients := f.members("r", b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				f.clock.Advance(time.Minute) // 100 senders: one send each per 100 minutes
				if _, err := f.send(senders[i%len(senders)], recipients[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("Accept/"+v.name, func(b *testing.B) {
			f := newFixture(b)
			for _, q := range v.sql {
				f.conn.MustExec(q)
			}
			sender := f.member("ada")
			times := make([]time.Time, b.N)
			for i := range times {
				times[i] = t0.Add(-time.Duration(i+1) * time.Minute)
			}
			ids := f.history(sender, db.StatusPending, times...)
			var recipients []int64
			if err := f.conn.Select(&recipients, `SELECT recipient_id FROM invitations WHERE id = ANY($1) ORDER BY id`, ids); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i, id := range ids {
				if _, err := f.store.AcceptInvitation(f.ctx, recipients[i], id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
