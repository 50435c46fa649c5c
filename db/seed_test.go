package db_test

import (
	"context"
	"strings"
	"testing"

	"invitations/db"
)

// TestSeed generates a small network and checks that it breaks none of the rules the
// repository enforces.
func TestSeed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	schema := f.schema()
	var calls int
	var phases []string
	err := f.store.Seed(f.ctx, db.SeedOptions{Members: 3000, Invitations: 60000,
		Progress: func(done, total int) { calls++ },
		Phase:    func(label string) { phases = append(phases, label) }})
	if err != nil {
		t.Fatal(err)
	}
	// The indexes, keys and triggers dropped or disabled for the load are back, exactly.
	if got := f.schema(); got != schema {
		t.Fatalf("schema changed:\nbefore:\n%s\nafter:\n%s", schema, got)
	}
	if len(phases) < 5 || phases[0] != db.SeedPhaseMembers || phases[len(phases)-1] != db.SeedPhaseCommit ||
		!strings.Contains(strings.Join(phases, "|"), db.SeedPhaseIndexes) {
		t.Fatalf("phases %q", phases)
	}
	// The rollups, rebuilt after the load, count every invitation, equal a recompute,
	// and are kept by the triggers again.
	if got, want := f.scalar(`SELECT sum(n) FROM invitation_stats_daily`), f.scalar(`SELECT count(*) FROM invitations`); got != want {
		t.Fatalf("daily rollup counts %d invitations, not %d", got, want)
	}
	if got, want := f.scalar(`SELECT sum(n) FROM invitation_stats_tta`), f.scalar(`SELECT count(*) FROM invitations WHERE status = 'ACCEPTED'`); got != want {
		t.Fatalf("time-to-accept rollup counts %d accepted invitations, not %d", got, want)
	}
	f.checkRollups()
	f.mustSend(f.member("after_seed_a"), f.member("after_seed_b"))
	f.checkRollups()
	n := f.scalar(`SELECT count(*) FROM invitations`)
	if n < 50000 || n > 70000 || calls == 0 {
		t.Fatalf("%d invitations, %d progress calls", n, calls)
	}
	checks := map[string]string{
		"weekly window over the cap": `SELECT count(*) FROM (SELECT count(*) OVER (PARTITION BY sender_id ORDER BY sent_at
			RANGE BETWEEN interval '7 days' - interval '1 microsecond' PRECEDING AND CURRENT ROW) AS n FROM invitations) w WHERE n > 100`,
		"two live invitations for a pair": `SELECT count(*) FROM (SELECT 1 FROM invitations WHERE status IN ('PENDING','IGNORED')
			GROUP BY LEAST(sender_id, recipient_id), GREATEST(sender_id, recipient_id) HAVING count(*) > 1) x`,
		"pending cap": `SELECT count(*) FROM (SELECT sender_id FROM invitations WHERE status IN ('PENDING','IGNORED')
			GROUP BY sender_id HAVING count(*) > 1500) x`,
		"standard notes over 5 in a month": `SELECT count(*) FROM (SELECT 1 FROM invitations i JOIN members m ON m.id = i.sender_id
			WHERE m.plan = 'STANDARD' AND i.message IS NOT NULL GROUP BY i.sender_id, date_trunc('month', i.sent_at AT TIME ZONE 'UTC') HAVING count(*) > 5) x`,
		"connection counters": `SELECT count(*) FROM members m WHERE connection_count <>
			(SELECT count(*) FROM connections c WHERE c.member_a = m.id OR c.member_b = m.id)`,
	}
	for name, q := range checks {
		if got := f.scalar(q); got != 0 {
			t.Errorf("%s: %d", name, got)
		}
	}
	if got := f.scalar(`SELECT count(*) FROM invitations WHERE status IN ('PENDING','IGNORED') AND sent_at <= $1`,
		f.clock.Now().Add(-db.DefaultLimits().TTL)); got != 0 {
		t.Errorf("%d live invitations past their lifetime", got)
	}
	heaviest := f.scalar(`SELECT max(c) FROM (SELECT count(*) AS c FROM invitations GROUP BY sender_id) x`)
	median := f.scalar(`SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY c) FROM (SELECT count(*) AS c FROM invitations GROUP BY sender_id) x`)
	statuses := f.scalar(`SELECT count(DISTINCT status) FROM invitations`)
	if heaviest < 300 || median > 30 || statuses != 5 {
		t.Fatalf("heaviest %d, median %d, %d statuses", heaviest, median, statuses)
	}
	if err := f.store.Seed(f.ctx, db.SeedOptions{Members: 10}); err == nil {
		t.Fatal("seeding a non-empty database")
	}
	t.Logf("seed: %d invitations; heaviest sender %d, median %d", n, heaviest, median)
}

// TestSeedCancelled cancels a seed at the start of each step: it fails and leaves the
// database as it was (empty, same schema, triggers enabled), and a seed then succeeds.
func TestSeedCancelled(t *testing.T) {
	t.Parallel()
	for _, at := range []string{db.SeedPhaseMembers, db.SeedPhaseInvitations, db.SeedPhaseConnections,
		db.SeedPhaseIndexes, db.SeedPhaseForeignKeys, db.SeedPhaseRollups, db.SeedPhaseAnalyze, db.SeedPhaseCommit} {
		t.Run(at, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t)
			schema := f.schema()
			ctx, cancel := context.WithCancel(f.ctx)
			defer cancel()
			err := f.store.Seed(ctx, db.SeedOptions{Members: 300, Invitations: 3000, Phase: func(label string) {
				if strings.HasPrefix(label, at) {
					cancel()
				}
			}})
			if err == nil {
				t.Fatal("a cancelled seed succeeded")
			}
			if got := f.scalar(`SELECT (SELECT count(*) FROM members) + (SELECT count(*) FROM invitations) + (SELECT count(*) FROM connections)`); got != 0 {
				t.Fatalf("%d rows left by a cancelled seed (%v)", got, err)
			}
			if got := f.schema(); got != schema {
				t.Fatalf("schema changed by a cancelled seed (%v):\nbefore:\n%s\nafter:\n%s", err, schema, got)
			}
			if err := f.store.Seed(f.ctx, db.SeedOptions{Members: 300, Invitations: 3000}); err != nil {
				t.Fatalf("seed after a cancelled one: %v", err)
			}
			f.checkRollups()
		})
	}
}

// schema lists the public schema's tables, indexes, constraints and triggers (with
// whether each is enabled), to compare before and after a seed.
func (f *fixture) schema() string {
	f.t.Helper()
	var s string
	err := f.conn.Get(&s, `SELECT string_agg(x, E'\n' ORDER BY x) FROM (
  SELECT 'relation ' || relname || ' ' || relkind::text || relpersistence::text || ' ' || coalesce(reloptions::text, '') AS x
    FROM pg_class WHERE relnamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'index ' || indexdef FROM pg_indexes WHERE schemaname = 'public'
  UNION ALL
  SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) || ' ' || convalidated
    FROM pg_constraint WHERE connamespace = 'public'::regnamespace
  UNION ALL
  SELECT 'trigger ' || tgenabled::text || ' ' || pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL
  SELECT 'key trigger ' || t.tgrelid::regclass || ' ' || c.conname || ' ' || t.tgfoid::regproc || ' ' || t.tgtype || ' ' || t.tgenabled::text
    FROM pg_trigger t JOIN pg_constraint c ON c.oid = t.tgconstraint WHERE t.tgisinternal) s`)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}
