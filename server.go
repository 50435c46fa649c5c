// Command invitations serves the invitations GraphQL API.
//
//	go run .                 serve (embedded PostgreSQL with demo data when DATABASE_URL is unset)
//	go run . migrate         apply the database migrations and exit
//	go run . token HANDLE    print a bearer token for a member (-admin, -ttl 24h)
//	go run . import FILE     load members, connections and invitations from JSON Lines
//	go run . seed            generate a benchmark network into an empty database
//
// All configuration comes from the environment; see README.md.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"invitations/db"
)

// Garbage-collector defaults for the server, unless GOGC or GOMEMLIMIT say otherwise:
// a request allocates a few hundred kilobytes that die with it, and the live heap is
// a few megabytes, so collecting at 4× the live heap (instead of Go's 2×) halves the
// collector's CPU while the soft limit keeps the heap well under 100 MB.
const (
	defaultGCPercent   = 400
	defaultMemoryLimit = 64 << 20
)

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "error:", err)
		}
		os.Exit(1)
	}
}

// run is the whole program: it parses the command and the environment, wires the
// pieces and runs until ctx ends. Tests call it directly.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	logger := newLogger(stderr, cfg.LogLevel)
	cmd, rest := "serve", args
	if len(args) > 0 {
		cmd, rest = args[0], args[1:]
	}
	if path := getenv("CPU_PROFILE"); path != "" {
		stop, err := startCPUProfile(path)
		if err != nil {
			return err
		}
		defer stop()
	}
	switch cmd {
	case "serve":
		// The server's log lines are written in batches (logBuffer).
		logs := newLogBuffer(stderr, logFlushInterval)
		defer logs.Close()
		return serve(ctx, cfg, newLogger(logs, cfg.LogLevel), stdout)
	case "migrate":
		return migrateCmd(ctx, cfg, logger, stdout)
	case "token":
		return tokenCmd(cfg, rest, stdout, stderr)
	case "import":
		return importCmd(ctx, cfg, logger, rest, stdout, stderr)
	case "seed":
		return seedCmd(ctx, cfg, logger, rest, stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

const usage = `usage: invitations [command]

commands:
  serve          run the GraphQL server (the default)
  migrate        apply database migrations and exit
  token HANDLE   print a bearer token for the member with this handle
                 (-admin for an admin token, -ttl 24h for its lifetime)
  import FILE    load members, connections and invitations from a JSON Lines file ("-" for stdin)
  seed           generate a benchmark network into an empty database
                 (-members 100000 -invitations 2000000)

Configuration is read from the environment; see README.md.
`

// logFlushInterval is how long the server's informational log lines may wait in its
// logBuffer.
const logFlushInterval = 100 * time.Millisecond

func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	var h slog.Handler = requestIDHandler{slog.NewTextHandler(w, &slog.HandlerOptions{Level: level})}
	if b, ok := w.(*logBuffer); ok {
		h = b.handler(h)
	}
	return slog.New(h)
}

// config is everything the environment configures.
type config struct {
	DatabaseURL string // empty: embedded PostgreSQL under DataDir
	DataDir     string
	Port        string
	JWTSecret   []byte // empty with an embedded database: generated and kept under DataDir
	LogLevel    slog.Level
	Production  bool // APP_ENV=production
	// ShutdownDelay is how long /readyz answers 503 before the listener closes.
	ShutdownDelay time.Duration
	Limits        db.Limits
	Jobs          jobsConfig // background jobs and reminder email (jobs.go, mailer.go)
	HTTP          httpConfig // CORS, request rate limits, proxy headers (http.go)
	// DB is the connection pool's timeouts and size: DB_STATEMENT_TIMEOUT,
	// DB_LOCK_TIMEOUT, DB_IDLE_IN_TRANSACTION_TIMEOUT and DB_MAX_CONNS.
	DB db.Options
	// DBPoolWait bounds the wait for a pooled connection (DB_POOL_WAIT; 0: no bound).
	DBPoolWait time.Duration
}

// loadConfig reads the environment. An invalid value is an error naming the variable.
func loadConfig(getenv func(string) string) (*config, error) {
	cfg := &config{
		DatabaseURL: getenv("DATABASE_URL"),
		DataDir:     cmp.Or(getenv("DATA_DIR"), ".data"),
		Port:        cmp.Or(getenv("PORT"), "8080"),
		JWTSecret:   []byte(getenv("JWT_SECRET")),
		Limits:      db.DefaultLimits(),
		DB:          db.DefaultOptions(),
		DBPoolWait:  time.Second,
	}
	switch env := getenv("APP_ENV"); env {
	case "", "development":
	case "production":
		cfg.Production = true
	default:
		return nil, fmt.Errorf("APP_ENV must be development or production, got %q", env)
	}
	if v := getenv("SHUTDOWN_DELAY"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 || d > 5*time.Minute {
			return nil, fmt.Errorf("SHUTDOWN_DELAY must be a duration from 0s to 5m, got %q", v)
		}
		cfg.ShutdownDelay = d
	}
	if n, err := strconv.Atoi(cfg.Port); err != nil || n < 0 || n > 65535 {
		return nil, fmt.Errorf("PORT must be a port number (0 to 65535), got %q", cfg.Port)
	}
	if s := getenv("LOG_LEVEL"); s != "" {
		if err := cfg.LogLevel.UnmarshalText([]byte(s)); err != nil {
			return nil, fmt.Errorf("LOG_LEVEL must be debug, info, warn or error, got %q", s)
		}
	}
	if len(cfg.JWTSecret) > 0 && len(cfg.JWTSecret) < 32 {
		return nil, fmt.Errorf("JWT_SECRET must be at least 32 bytes long")
	}
	l := &cfg.Limits
	ints := []struct {
		name     string
		dst      *int
		min, max int
	}{
		{"INVITE_WEEKLY_LIMIT", &l.WeeklyStandard, 1, 1_000_000},
		{"INVITE_WEEKLY_LIMIT_PREMIUM", &l.WeeklyPremium, 1, 1_000_000},
		{"INVITE_PENDING_LIMIT", &l.PendingMax, 1, 1_000_000},
		{"CONNECTION_LIMIT", &l.ConnectionMax, 1, 100_000_000},
		{"NOTE_MAX_LENGTH", &l.NoteMaxStandard, 1, 10_000},
		{"NOTE_MAX_LENGTH_PREMIUM", &l.NoteMaxPremium, 1, 10_000},
		{"NOTES_PER_MONTH", &l.NotesPerMonthStandard, 0, 1_000_000},
	}
	for _, v := range ints {
		if err := envInt(getenv, v.name, v.dst, v.min, v.max); err != nil {
			return nil, err
		}
	}
	days := []struct {
		name     string
		dst      *time.Duration
		min, max int
	}{
		{"REINVITE_COOLDOWN_DAYS", &l.Cooldown, 0, 3650},
		{"INVITATION_TTL_DAYS", &l.TTL, 1, 3650},
	}
	for _, v := range days {
		n := int(*v.dst / db.Day)
		if err := envInt(getenv, v.name, &n, v.min, v.max); err != nil {
			return nil, err
		}
		*v.dst = time.Duration(n) * db.Day
	}
	if s := getenv("WITHDRAW_REFUNDS_QUOTA"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return nil, fmt.Errorf("WITHDRAW_REFUNDS_QUOTA must be true or false, got %q", s)
		}
		l.RefundOnWithdraw = b
	}
	// Database timeouts: Go durations ("5s", "500ms"); 0 leaves the server's setting.
	// PostgreSQL takes them in whole milliseconds up to 2^31-1.
	const maxPGDuration = (1<<31 - 1) * time.Millisecond
	durations := []struct {
		name string
		dst  *time.Duration
	}{
		{"DB_STATEMENT_TIMEOUT", &cfg.DB.StatementTimeout},
		{"DB_LOCK_TIMEOUT", &cfg.DB.LockTimeout},
		{"DB_IDLE_IN_TRANSACTION_TIMEOUT", &cfg.DB.IdleInTransactionTimeout},
		{"DB_POOL_WAIT", &cfg.DBPoolWait},
	}
	for _, v := range durations {
		s := strings.TrimSpace(getenv(v.name))
		if s == "" {
			continue
		}
		d, err := time.ParseDuration(s)
		if s == "0" {
			d, err = 0, nil
		}
		if err != nil || d < 0 || d > maxPGDuration || (d > 0 && d < time.Millisecond) {
			return nil, fmt.Errorf("%s must be a duration such as 5s or 500ms, 0 (the database server's setting) or from 1ms to %s, got %q",
				v.name, maxPGDuration, s)
		}
		*v.dst = d
	}
	if err := envInt(getenv, "DB_MAX_CONNS", &cfg.DB.MaxConns, 1, 10_000); err != nil {
		return nil, err
	}
	jobs, err := loadJobsConfig(getenv)
	if err != nil {
		return nil, err
	}
	cfg.Jobs = jobs
	if cfg.HTTP, err = loadHTTPConfig(getenv); err != nil {
		return nil, err
	}
	return cfg, nil
}

// envInt sets *dst from the variable when it is set; an invalid value names it.
func envInt(getenv func(string) string, name string, dst *int, min, max int) error {
	s := getenv(name)
	if s == "" {
		return nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < min || n > max {
		return fmt.Errorf("%s must be a whole number from %d to %d, got %q", name, min, max, s)
	}
	*dst = n
	return nil
}

// startCPUProfile writes a Go CPU profile of the whole run to path (CPU_PROFILE; the
// bench's -profile), for `go tool pprof`.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("CPU_PROFILE: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("CPU_PROFILE: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
