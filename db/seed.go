package db

import (
	"context"
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// SeedOptions size a generated network.
type SeedOptions struct {
	// Members and Invitations are how many to create (Invitations is approximate:
	// every sender's count is rounded, and heavy senders send their share even when
	// it exceeds Invitations).
	Members     int
	Invitations int
	// Progress, if set, is called as invitations are written, with how many so far
	// and how many there will be in all.
	Progress func(done, total int)
	// Phase, if set, is called as each step begins, with a short label ("members",
	// "invitations", "building indexes (3 of 13)", ...), so that a caller can show
	// that the steps without a row count are not stuck.
	Phase func(label string)
}

// Seed phase labels, in order (the index step is numbered, one label per index).
const (
	SeedPhaseMembers     = "members"
	SeedPhaseInvitations = "invitations"
	SeedPhaseConnections = "connections"
	SeedPhaseIndexes     = "building indexes"
	SeedPhaseForeignKeys = "checking foreign keys"
	SeedPhaseRollups     = "rebuilding statistics rollups"
	SeedPhaseAnalyze     = "analyzing"
	SeedPhaseCommit      = "committing"
)

// seedNote is the personal note of seeded invitations that have one.
const seedNote = "Hello, I would like to add you to my network."

// seedSources are the invitation sources, picked pseudo-randomly.
var seedSources = [...]string{"PROFILE", "SEARCH", "SUGGESTION", "ADDRESS_BOOK", "OTHER"}

// seedStatsTrigger is the statement-level trigger that keeps the stats rollups (see
// migration 0003) exact on insert. Seed disables it while it loads and rebuilds the
// rollups with invitation_stats_rebuild() once, which is what that function is for.
const seedStatsTrigger = "invitations_stats_insert"

// seedTables are the tables Seed loads. Their secondary indexes, their unique
// constraints (but primary keys and those a foreign key refers to) and their foreign
// keys are dropped for the load and created again from their catalog definitions
// before commit: one sort per index and one join per key instead of a B-tree
// insertion and a lookup per row. The unique indexes and constraints that enforce a
// rule (one live invitation per pair, one handle per member, ...) are among them:
// creating one fails, and rolls the whole seed back, if a row breaks its rule.
var seedTables = []string{"members", "invitations", "connections"}

// seedDropped is an index or a constraint dropped for the load: Kind "i" for an
// index, "u" for a unique constraint, "f" for a foreign key.
type seedDropped struct {
	Kind   string `db:"kind"`
	Name   string `db:"name"`
	Drop   string `db:"drop"`
	Create string `db:"create"`
}

// seedDroppedQuery lists what Seed drops on the tables $1, unique constraints first
// (the rules), then indexes, then foreign keys, each as DDL to drop and create it.
const seedDroppedQuery = `
SELECT kind, name, drop, "create" FROM (
  SELECT 2 AS ord, 'i' AS kind, i.relname::text AS name, 'DROP INDEX ' || i.oid::regclass::text AS drop,
         pg_get_indexdef(i.oid) AS "create", x.indrelid AS rel
    FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
   WHERE x.indrelid = ANY ($1::regclass[])
     AND NOT EXISTS (SELECT FROM pg_constraint c WHERE c.conindid = i.oid AND c.conrelid = x.indrelid)
  UNION ALL
  SELECT CASE c.contype WHEN 'u' THEN 1 ELSE 3 END, c.contype::text, c.conname::text,
         format('ALTER TABLE %s DROP CONSTRAINT %I', c.conrelid::regclass, c.conname),
         format('ALTER TABLE %s ADD CONSTRAINT %I %s', c.conrelid::regclass, c.conname, pg_get_constraintdef(c.oid)),
         c.conrelid
    FROM pg_constraint c
   WHERE c.conrelid = ANY ($1::regclass[])
     AND (c.contype = 'f' OR c.contype = 'u' AND NOT EXISTS (
           SELECT FROM pg_constraint r WHERE r.contype = 'f' AND r.conindid = c.conindid))
) d
 ORDER BY ord, rel, name`

// Seed generates a realistic network for benchmarks into an empty database: members
// (5% PREMIUM), and invitations with a heavy tail — 1% of members send hundreds to
// 2,400 each, the rest a handful — sent over the last 200 days in every status, a third
// with a note, accepted ones connected. It never breaks a rule it would enforce: each
// sender's invitations are evenly spaced, so no 7-day window holds more than 84; each
// sender invites distinct members, never one that invited them (recipients are the next
// k members in id order, k < Members/2), so there is one live invitation per pair and no
// invitation between connected members; a STANDARD sender's notes are at least 6.2
// days apart, so no calendar month holds more than 5. Errors: the database already has
// members, or the sizes are out of range.
//
// Everything happens in one transaction on one connection, so that an error or a
// cancelled ctx leaves the database as it was (empty, with its indexes, keys and
// triggers): the rows are generated here and streamed with COPY (this process
// generates while the server writes), into tables whose secondary indexes, foreign
// keys and stats trigger are dropped or disabled meanwhile and restored, exactly as
// the migrations define them, before commit.
func (s *Store) Seed(ctx context.Context, o SeedOptions) error {
	if o.Members < 10 || o.Invitations < 0 {
		return fmt.Errorf("seed: at least 10 members and no negative invitation count")
	}
	if o.Members > 1<<30 {
		return fmt.Errorf("seed: at most %d members", 1<<30)
	}
	var existing int
	if err := s.db.GetContext(ctx, &existing, `SELECT count(*) FROM members`); err != nil {
		return translate(err)
	}
	if existing > 0 {
		return fmt.Errorf("seed: the database already has %d members; seed an empty one", existing)
	}
	phase := func(label string) {
		if o.Phase != nil {
			o.Phase(label)
		}
	}
	g := newSeedGen(o.Members, o.Invitations, s.Now(), s.limits.TTL)
	// A first pass counts the invitations and each member's connections (accepted
	// invitations), so that members are written with their final connection_count
	// instead of being updated afterwards.
	connections := make([]int32, o.Members)
	total := 0
	for p := range o.Members {
		k := g.k(p)
		total += k
		for j := 1; j <= k; j++ {
			if r := g.row(p, j); r.status == "ACCEPTED" {
				connections[p]++
				connections[r.recipient]++
			}
		}
	}

	conn, err := s.db.Connx(ctx)
	if err != nil {
		return translate(err)
	}
	defer conn.Close()
	step := "starting"
	exec := func(query string, args ...any) error {
		if _, err := conn.ExecContext(ctx, query, args...); err != nil {
			return fmt.Errorf("seed: %s: %w", step, err)
		}
		return nil
	}
	if err := exec(`BEGIN`); err != nil {
		return err
	}
	committed := false
	defer func() {
		if committed {
			return
		}
		// Roll back whatever was done. If the connection is unusable (a cancelled
		// context marks it bad), closing it makes the server roll back instead; a
		// connection left in a transaction must never go back to the pool.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, err := conn.ExecContext(rctx, `ROLLBACK`); err != nil {
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
	}()
	// Settings for this transaction only: the pool's timeouts would end the long
	// statements; the index builds' sorts, and the sorts, joins and aggregates that
	// order the connections, check the foreign keys and rebuild the rollups, get more
	// memory; the one commit need not wait for its WAL flush (a crash before it is
	// durable loses a seed, which is re-run). The tables stay logged, as the
	// migrations define them.
	step = "locking the tables"
	if err := exec(`SET LOCAL statement_timeout = 0;
SET LOCAL idle_in_transaction_session_timeout = 0;
SET LOCAL maintenance_work_mem = '512MB';
SET LOCAL work_mem = '256MB';
SET LOCAL synchronous_commit = off;
LOCK TABLE members, invitations, connections IN ACCESS EXCLUSIVE MODE`); err != nil {
		return err
	}
	step = "checking the database is empty"
	if err := conn.GetContext(ctx, &existing, `SELECT count(*) FROM members`); err != nil {
		return fmt.Errorf("seed: %s: %w", step, err)
	}
	if existing > 0 {
		return fmt.Errorf("seed: the database already has %d members; seed an empty one", existing)
	}
	step = "reading the schema"
	var dropped []seedDropped
	err = conn.SelectContext(ctx, &dropped, seedDroppedQuery, seedTables)
	if err != nil {
		return fmt.Errorf("seed: %s: %w", step, err)
	}
	step = "preparing the tables"
	var ddl strings.Builder
	fmt.Fprintf(&ddl, "ALTER TABLE invitations DISABLE TRIGGER %s;\n", pgx.Identifier{seedStatsTrigger}.Sanitize())
	for _, d := range dropped {
		ddl.WriteString(d.Drop + ";\n")
	}
	if err := exec(ddl.String()); err != nil {
		return err
	}

	phase(SeedPhaseMembers)
	step = "members"
	counts := make([]string, o.Members)
	for i, n := range connections {
		counts[i] = strconv.Itoa(int(n))
	}
	if err := exec(`
INSERT INTO members (handle, name, headline, plan, connection_count, created_at)
SELECT 'm' || g, 'Member ' || g, 'Seeded member', CASE WHEN g % 20 = 0 THEN 'PREMIUM' ELSE 'STANDARD' END, n, $2
  FROM unnest($1::int[]) WITH ORDINALITY AS c(n, g)
 ORDER BY g`, "{"+strings.Join(counts, ",")+"}", g.now.Add(-400*Day)); err != nil {
		return err
	}
	counts, connections = nil, nil
	var first, last int64
	if err := conn.QueryRowContext(ctx, `SELECT min(id), max(id) FROM members`).Scan(&first, &last); err != nil {
		return fmt.Errorf("seed: %s: %w", step, err)
	}
	if last-first != int64(o.Members-1) {
		return fmt.Errorf("seed: member ids %d to %d are not consecutive", first, last)
	}

	phase(SeedPhaseInvitations)
	step = "invitations"
	if o.Progress != nil {
		o.Progress(0, total)
	}
	if err := g.copyInvitations(ctx, conn.Raw, first, total, o.Progress); err != nil {
		return fmt.Errorf("seed: %s: %w", step, err)
	}

	phase(SeedPhaseConnections)
	step = "connections"
	if err := exec(`
INSERT INTO connections (member_a, member_b, since)
SELECT LEAST(sender_id, recipient_id), GREATEST(sender_id, recipient_id), responded_at
  FROM invitations WHERE status = 'ACCEPTED'
 ORDER BY 1, 2`); err != nil {
		return err
	}

	builds := 0
	for _, d := range dropped {
		if d.Kind != "f" {
			builds++
		}
	}
	built := 0
	for _, d := range dropped {
		if d.Kind == "f" {
			continue
		}
		built++
		phase(fmt.Sprintf("%s (%d of %d)", SeedPhaseIndexes, built, builds))
		step = "building " + d.Name
		if err := exec(d.Create); err != nil {
			return err
		}
	}
	phase(SeedPhaseForeignKeys)
	step = SeedPhaseForeignKeys
	ddl.Reset()
	for _, d := range dropped {
		if d.Kind == "f" {
			ddl.WriteString(d.Create + ";\n")
		}
	}
	if err := exec(ddl.String()); err != nil {
		return err
	}
	phase(SeedPhaseRollups)
	step = SeedPhaseRollups
	if err := exec(fmt.Sprintf(`ALTER TABLE invitations ENABLE TRIGGER %s; SELECT invitation_stats_rebuild()`, pgx.Identifier{seedStatsTrigger}.Sanitize())); err != nil {
		return err
	}
	phase(SeedPhaseAnalyze)
	step = SeedPhaseAnalyze
	if err := exec(`ANALYZE members, invitations, connections`); err != nil {
		return err
	}
	phase(SeedPhaseCommit)
	step = SeedPhaseCommit
	if err := ctx.Err(); err != nil { // cancelled in time: roll back rather than race the commit
		return fmt.Errorf("seed: %w", err)
	}
	if err := exec(`COMMIT`); err != nil {
		return err
	}
	committed = true
	return nil
}
