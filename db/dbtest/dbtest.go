// Package dbtest gives each test its own PostgreSQL database, cloned in milliseconds
// from a template that carries every migration. It uses the server named by
// TEST_DATABASE_URL, else a throwaway cluster it starts from the installed PostgreSQL
// binaries (see db/embedpg), else the server on 127.0.0.1:5432.
package dbtest

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jmoiron/sqlx"

	"invitations/db"
	"invitations/db/embedpg"
)

var (
	setupOnce sync.Once
	adminDSN  string // a database on the test server for CREATE/DROP DATABASE
	template  string
	setupErr  error
	cluster   *embedpg.Server
	clusterAt string
)

// Main runs a package's tests and stops the throwaway cluster, if one was started.
// Call it from TestMain.
func Main(m interface{ Run() int }) {
	code := m.Run()
	if cluster != nil {
		cluster.Stop()
		os.RemoveAll(clusterAt)
	}
	os.Exit(code)
}

// DSN returns the libpq URL of a fresh, migrated database of the test's own, dropped
// when the test ends.
func DSN(t testing.TB) string {
	t.Helper()
	setupOnce.Do(func() { setupErr = setup() })
	if setupErr != nil {
		t.Fatalf("dbtest: %v", setupErr)
	}
	admin, err := sqlx.Open("pgx", adminDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := "t_" + randomHex(8)
	if _, err := admin.Exec(`CREATE DATABASE ` + name + ` TEMPLATE ` + template); err != nil {
		t.Fatalf("dbtest: clone template: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sqlx.Open("pgx", adminDSN)
		if err != nil {
			return
		}
		defer admin.Close()
		admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
	})
	return withDatabase(adminDSN, name)
}

// Open returns a connection pool (db.Open's, without timeouts) on a fresh database
// of the test's own.
func Open(t testing.TB) *sqlx.DB {
	t.Helper()
	conn, err := db.Open(context.Background(), DSN(t), db.Options{MaxConns: 40})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// setup finds or starts a server and creates the template for the current migrations.
func setup() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adminDSN = os.Getenv("TEST_DATABASE_URL")
	switch {
	case adminDSN != "":
		if !reachable(ctx, adminDSN) {
			return fmt.Errorf("TEST_DATABASE_URL does not answer")
		}
	default:
		// A throwaway cluster with durability off is faster than a shared server and
		// leaves it alone; without server binaries, fall back to 127.0.0.1:5432.
		if err := startCluster(ctx); err != nil {
			adminDSN = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable&connect_timeout=2"
			if !reachable(ctx, adminDSN) {
				return fmt.Errorf("no throwaway cluster (%v) and no PostgreSQL at 127.0.0.1:5432", err)
			}
		}
	}
	template = "invitations_tmpl_" + migrationsHash()
	return ensureTemplate(ctx)
}

// statementStats are the settings that load pg_stat_statements in the throwaway
// cluster: nested statements are counted too (its toplevel column tells them apart),
// and there is room for 20,000 distinct statements, so that the statements of tests
// running in parallel in other databases do not evict each other's entries.
var statementStats = map[string]string{
	"shared_preload_libraries": "pg_stat_statements",
	"pg_stat_statements.track": "all",
	"pg_stat_statements.max":   "20000",
	"pg_stat_statements.save":  "off",
}

func startCluster(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "dbtest")
	if err != nil {
		return err
	}
	os.Chmod(dir, 0o755) // the cluster runs as the postgres user when tests run as root
	settings := map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off",
		"max_connections": "300", "shared_buffers": "128MB"}
	// pg_stat_statements lets tests count the statements a request sends (see
	// statements_test.go, which creates the extension in its own database).
	for k, v := range statementStats {
		settings[k] = v
	}
	cluster, err = embedpg.Start(ctx, embedpg.Options{DataDir: dir + "/pg", Settings: settings})
	if err != nil {
		// Without the contrib module the server refuses to start: start it without.
		for k := range statementStats {
			delete(settings, k)
		}
		cluster, err = embedpg.Start(ctx, embedpg.Options{DataDir: dir + "/pg", Settings: settings})
	}
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	clusterAt = dir
	adminDSN = cluster.DSN("postgres")
	return nil
}

func reachable(ctx context.Context, dsn string) bool {
	conn, err := sqlx.Open("pgx", dsn)
	if err != nil {
		return false
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	return conn.PingContext(ctx) == nil
}

// ensureTemplate creates the template database once per migration set, serialised
// across concurrently running test binaries by an advisory lock.
func ensureTemplate(ctx context.Context) error {
	admin, err := sqlx.Open("pgx", adminDSN)
	if err != nil {
		return err
	}
	defer admin.Close()
	conn, err := admin.Connx(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(727001)`); err != nil {
		return err
	}
	defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock(727001)`)
	var exists bool
	if err := conn.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, template); err != nil {
		return err
	}
	if exists {
		return nil
	}
	building := template + "_building"
	conn.ExecContext(ctx, `DROP DATABASE IF EXISTS `+building+` WITH (FORCE)`)
	if _, err := conn.ExecContext(ctx, `CREATE DATABASE `+building); err != nil {
		return err
	}
	tdb, err := sqlx.Open("pgx", withDatabase(adminDSN, building))
	if err != nil {
		return err
	}
	_, err = db.Migrate(ctx, tdb)
	tdb.Close()
	if err != nil {
		return err
	}
	_, err = conn.ExecContext(ctx, `ALTER DATABASE `+building+` RENAME TO `+pgx.Identifier{template}.Sanitize())
	return err
}

// migrationsHash names the template after the migrations' content, so a changed
// migration gets a new template.
func migrationsHash() string {
	h := sha256.New()
	fs.WalkDir(db.MigrationsFS(), ".", func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			b, _ := fs.ReadFile(db.MigrationsFS(), path)
			h.Write([]byte(path))
			h.Write(b)
		}
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func withDatabase(dsn, name string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(err)
	}
	u.Path = "/" + name
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
