package db

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/golang-migrate/migrate/v4"
	"github.com/golang-migrate/migrate/v4/database/postgres"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jmoiron/sqlx"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate applies the embedded migrations that db lacks. golang-migrate holds a
// PostgreSQL advisory lock while it reads and applies versions, so replicas that start
// together apply each migration once. It returns the schema version.
func Migrate(ctx context.Context, db *sqlx.DB) (uint, error) {
	src, err := iofs.New(migrations, "migrations")
	if err != nil {
		return 0, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return 0, err
	}
	driver, err := postgres.WithConnection(ctx, conn, &postgres.Config{})
	if err != nil {
		conn.Close()
		return 0, fmt.Errorf("migrate: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "postgres", driver)
	if err != nil {
		driver.Close()
		return 0, fmt.Errorf("migrate: %w", err)
	}
	defer m.Close()
	if err := m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return 0, fmt.Errorf("migrate: %w", err)
	}
	v, _, err := m.Version()
	return v, err
}

// LatestVersion is the highest embedded migration version.
func LatestVersion() uint {
	var latest uint
	entries, _ := fs.ReadDir(migrations, "migrations")
	for _, e := range entries {
		prefix, _, _ := strings.Cut(e.Name(), "_")
		if v, err := strconv.ParseUint(prefix, 10, 32); err == nil && uint(v) > latest {
			latest = uint(v)
		}
	}
	return latest
}

// Ready reports whether the database answers and carries every embedded migration.
func (s *Store) Ready(ctx context.Context) error {
	var v struct {
		Version int64 `db:"version"`
		Dirty   bool  `db:"dirty"`
	}
	if err := s.db.GetContext(ctx, &v, `SELECT version, dirty FROM schema_migrations LIMIT 1`); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if v.Dirty || v.Version < int64(LatestVersion()) {
		return fmt.Errorf("schema version %d (dirty %t), want %d", v.Version, v.Dirty, LatestVersion())
	}
	return nil
}

// MigrationsFS returns the embedded migration files.
func MigrationsFS() fs.FS { return migrations }
