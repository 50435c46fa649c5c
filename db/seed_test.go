package db_test

import (
	"testing"

	"invitations/db"
)

// TestSeed generates a small network and checks that it breaks none of the rules the
// repository enforces.
func TestSeed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	var calls int
	err := f.store.Seed(f.ctx, db.SeedOptions{Members: 3000, Invitations: 60000, Progress: func(done, total int) { calls++ }})
	if err != nil {
		t.Fatal(err)
	}
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
