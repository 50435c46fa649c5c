package db_test

import (
	"context"
	"testing"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database/postgres"
	"github.com/golang-migrate/migrate/v4/source/iofs"

	"invitations/db"
	"invitations/db/dbtest"
)

// TestMigrationsReverse: every migration's down file undoes it, on a database that holds
// data: from the latest version down to none, then up again to the same schema.
func TestMigrationsReverse(t *testing.T) {
	conn := dbtest.Open(t)
	ctx := context.Background()
	schema := func() string {
		var s string
		err := conn.GetContext(ctx, &s, `
SELECT string_agg(x, E'\n' ORDER BY x) FROM (
  SELECT table_name || '.' || column_name || ' ' || data_type AS x FROM information_schema.columns WHERE table_schema = 'public' AND table_name <> 'schema_migrations'
  UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'
  UNION ALL SELECT tgname || ' ' || tgtype::text || ' ' || tgfoid::regproc::text FROM pg_trigger WHERE NOT tgisinternal
  UNION ALL SELECT p.proname || ' ' || md5(p.prosrc) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public') s`)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// A member with a sent invitation, so that the migrations that rebuild the rollups
	// have rows to rebuild.
	conn.MustExec(`INSERT INTO members (handle, name) VALUES ('a', 'A'), ('b', 'B')`)
	conn.MustExec(`INSERT INTO invitations (sender_id, recipient_id, sent_at)
		SELECT (SELECT id FROM members WHERE handle = 'a'), (SELECT id FROM members WHERE handle = 'b'), now()`)
	latest := schema()

	src, err := iofs.New(db.MigrationsFS(), "migrations")
	if err != nil {
		t.Fatal(err)
	}
	c, err := conn.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	driver, err := postgres.WithConnection(ctx, c, &postgres.Config{})
	if err != nil {
		t.Fatal(err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "postgres", driver)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for v := db.LatestVersion(); v > 0; v-- {
		if err := m.Steps(-1); err != nil {
			t.Fatalf("down from version %d: %v", v, err)
		}
	}
	var tables int
	if err := conn.GetContext(ctx, &tables, `SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_name <> 'schema_migrations'`); err != nil || tables != 0 {
		t.Fatalf("after every down migration, %d tables are left (%v)", tables, err)
	}
	if err := m.Up(); err != nil {
		t.Fatalf("up again: %v", err)
	}
	conn.MustExec(`INSERT INTO members (handle, name) VALUES ('a', 'A'), ('b', 'B')`)
	conn.MustExec(`INSERT INTO invitations (sender_id, recipient_id, sent_at)
		SELECT (SELECT id FROM members WHERE handle = 'a'), (SELECT id FROM members WHERE handle = 'b'), now()`)
	if got := schema(); got != latest {
		t.Fatalf("the schema after down and up differs:\nbefore: %s\nafter:  %s", latest, got)
	}
}
