package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/jmoiron/sqlx"

	"invitations/db"
	"invitations/db/embedpg"
	"invitations/graph"
)

// database is the open database and how to let go of it.
type database struct {
	conn     *sqlx.DB
	dsn      string
	embedded bool
	stop     func()
}

// openDatabase connects to DATABASE_URL, or starts the embedded PostgreSQL under the
// data directory and creates its database, then applies the migrations.
func openDatabase(ctx context.Context, cfg *config, logger *slog.Logger) (*database, error) {
	d := &database{stop: func() {}}
	dsn := cfg.DatabaseURL
	if dsn == "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("DATA_DIR: %w", err)
		}
		pg, err := embedpg.Start(ctx, embedpg.Options{DataDir: filepath.Join(cfg.DataDir, "pg"), Logger: logger})
		if err != nil {
			return nil, fmt.Errorf("embedded PostgreSQL (set DATABASE_URL to use your own server): %w", err)
		}
		d.embedded, d.stop = true, func() { pg.Stop() }
		if err := createDatabase(ctx, pg.DSN("postgres"), "invitations"); err != nil {
			pg.Stop()
			return nil, err
		}
		dsn = pg.DSN("invitations")
	}
	conn, err := db.Open(ctx, dsn, cfg.DB)
	if err != nil {
		d.stop()
		return nil, err
	}
	d.conn, d.dsn = conn, dsn
	version, err := db.Migrate(ctx, conn)
	if err != nil {
		d.close()
		return nil, err
	}
	logger.Info("database ready", "embedded", d.embedded, "schema_version", version)
	return d, nil
}

func (d *database) close() {
	d.conn.Close()
	d.stop()
}

func createDatabase(ctx context.Context, adminDSN, name string) error {
	admin, err := db.Open(ctx, adminDSN)
	if err != nil {
		return err
	}
	defer admin.Close()
	var exists bool
	if err := admin.GetContext(ctx, &exists, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name); err != nil {
		return err
	}
	if !exists {
		_, err = admin.ExecContext(ctx, `CREATE DATABASE `+name)
	}
	return err
}

// jwtSecret is JWT_SECRET, or with the embedded database a random secret kept in the
// data directory (created on first use), so development needs no setup.
func jwtSecret(cfg *config, create bool) ([]byte, error) {
	if len(cfg.JWTSecret) > 0 {
		return cfg.JWTSecret, nil
	}
	if cfg.DatabaseURL != "" {
		return nil, errors.New("JWT_SECRET must be set (at least 32 bytes) when DATABASE_URL is set")
	}
	path := filepath.Join(cfg.DataDir, "jwt-secret")
	if b, err := os.ReadFile(path); err == nil && len(b) >= 32 {
		return b, nil
	}
	if !create {
		return nil, fmt.Errorf("JWT_SECRET is not set and %s does not exist yet: start the server once, or set JWT_SECRET", path)
	}
	b := make([]byte, 32)
	rand.Read(b)
	secret := []byte(hex.EncodeToString(b))
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, err
	}
	return secret, os.WriteFile(path, secret, 0o600)
}

// serve runs the server until ctx ends, then drains in-flight requests.
func serve(ctx context.Context, cfg *config, logger *slog.Logger, stdout io.Writer) error {
	secret, err := jwtSecret(cfg, true)
	if err != nil {
		return err
	}
	d, err := openDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	defer d.close()
	store := db.New(d.conn, cfg.Limits, nil)
	store.SetPoolWait(cfg.DBPoolWait)
	demo := ""
	if d.embedded {
		if demo, err = loadDemo(ctx, store, logger); err != nil {
			return err
		}
	}
	stopJobs := startJobs(ctx, store, cfg, logger) // expiry sweep and reminders (jobs.go)
	defer stopJobs()
	// One LISTEN connection for the subscriptions' events, stopped (closing every
	// subscription) when the listener closes, after SHUTDOWN_DELAY: until then the
	// server serves, and its subscribers get their events. Serve only once it listens,
	// so that a subscription made right after startup misses nothing.
	events := db.NewEvents(d.dsn, logger)
	eventsCtx, stopEvents := context.WithCancel(context.WithoutCancel(ctx))
	eventsDone := make(chan struct{})
	go func() {
		defer close(eventsDone)
		if err := events.Run(eventsCtx); err != nil {
			logger.Error("invitation events listener stopped", "err", err)
		}
	}()
	defer func() { stopEvents(); <-eventsDone }()
	select {
	case <-events.Ready():
	case <-eventsDone:
		return errors.New("cannot listen for invitation events (see the log)")
	case <-ctx.Done():
		return nil
	case <-time.After(30 * time.Second):
		logger.Warn("serving before the invitation events listener is connected; subscriptions get events once it is")
	}
	a := &app{store: store, events: events, auth: &graph.Authenticator{Secret: secret, Store: store}, logger: logger, production: cfg.Production, http: cfg.HTTP}
	ln, err := net.Listen("tcp", ":"+cfg.Port)
	if err != nil {
		return fmt.Errorf("PORT: %w", err)
	}
	srv := &http.Server{
		Handler:           a.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	// When the listener closes, subscriptions end, and their WebSockets are closed.
	srv.RegisterOnShutdown(stopEvents)
	srv.RegisterOnShutdown(a.endStreams)
	port := ln.Addr().(*net.TCPAddr).Port
	fmt.Fprintf(stdout, "Invitations API listening on port %d\n  playground: http://localhost:%d/\n  endpoint:   http://localhost:%d/query\n", port, port, port)
	if demo != "" {
		token, err := graph.SignToken(secret, demo, false, 30*24*time.Hour, time.Now())
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "  demo member %q; paste into the playground's Headers tab:\n  {\"Authorization\": \"Bearer %s\"}\n", demo, token)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	a.draining.Store(true)
	if cfg.ShutdownDelay > 0 {
		// Keep serving, with /readyz answering 503, so load balancers stop sending
		// new requests before the listener closes.
		logger.Info("shutting down: not ready", "delay", cfg.ShutdownDelay)
		time.Sleep(cfg.ShutdownDelay)
	}
	logger.Info("shutting down: draining in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	stopJobs()
	logger.Info("stopped")
	return nil
}

// migrateCmd applies the migrations and exits.
func migrateCmd(ctx context.Context, cfg *config, logger *slog.Logger, stdout io.Writer) error {
	d, err := openDatabase(ctx, cfg, logger)
	if err != nil {
		return err
	}
	d.close()
	fmt.Fprintf(stdout, "migrations applied (schema version %d)\n", db.LatestVersion())
	return nil
}

// tokenCmd prints a bearer token for a handle.
func tokenCmd(cfg *config, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	admin := fs.Bool("admin", false, "grant the admin role (network-wide analytics)")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: invitations token [-admin] [-ttl 24h] HANDLE") }
	if err := fs.Parse(reorderFlags(args)); err != nil {
		return err
	}
	if fs.NArg() != 1 || *ttl <= 0 {
		fs.Usage()
		return errors.New("token takes one handle and a positive -ttl")
	}
	secret, err := jwtSecret(cfg, false)
	if err != nil {
		return err
	}
	token, err := graph.SignToken(secret, fs.Arg(0), *admin, *ttl, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, token)
	return nil
}

// reorderFlags moves flags before positional arguments, so "token ada -admin" works.
func reorderFlags(args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "-ttl" || a == "--ttl":
			flags = append(flags, a)
			if i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		case len(a) > 1 && a[0] == '-':
			flags = append(flags, a)
		default:
			rest = append(rest, a)
		}
	}
	return append(flags, rest...)
}
