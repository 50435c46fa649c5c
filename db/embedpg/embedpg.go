// Package embedpg runs a private PostgreSQL cluster from the PostgreSQL
// server binaries installed on the machine (it never downloads anything).
//
// The cluster listens only on a Unix socket in a fresh temporary directory,
// so it never clashes with a system server or with other embedded clusters.
// When the current process is root, initdb and postgres run as the
// unprivileged "postgres" OS user, because PostgreSQL refuses to run as root.
package embedpg

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver used for the readiness probe
)

const port = 5432 // only names the socket file; there is no TCP listener

// Options configures Start.
type Options struct {
	// DataDir holds the cluster. It is required and made absolute. It is
	// created (initdb) if it has no PG_VERSION file; otherwise it is reused.
	DataDir string
	// BinDir is the directory with initdb and postgres; default FindBinDir().
	BinDir string
	// Logger receives progress lines (initdb, started, stopped); optional.
	Logger *slog.Logger
	// Settings are extra server settings passed as -c name=value, e.g.
	// {"fsync": "off"} for tests (fsync=off also makes initdb skip syncing).
	// port and unix_socket_directories are managed by Start and rejected.
	Settings map[string]string
}

// Server is a running PostgreSQL postmaster started by Start.
type Server struct {
	dataDir, sockDir string
	log              *slog.Logger
	// What launch runs, kept for Restart.
	bin, logPath string
	args         []string
	cred         *syscall.Credential

	// mu serialises Restart and Stop. cmd, done and waitErr describe the current
	// postmaster; Restart replaces them (holding mu) once the previous one has exited.
	mu       sync.Mutex
	stopped  bool
	cmd      *exec.Cmd
	done     chan struct{} // closed when the postmaster has exited
	waitErr  error         // valid after done is closed
	stopOnce sync.Once
	stopErr  error
}

// StopMode is how Restart shuts the postmaster down before starting it again.
type StopMode int

const (
	// StopFast is `pg_ctl stop -m fast` (SIGINT): sessions are terminated, open
	// transactions rolled back, and a shutdown checkpoint is written.
	StopFast StopMode = iota
	// StopImmediate is `pg_ctl stop -m immediate` (SIGQUIT): every process quits at
	// once without a checkpoint, like a crash; the next start runs crash recovery.
	StopImmediate
)

// FindBinDir returns the directory holding the PostgreSQL server binaries
// (initdb and postgres): $PG_BIN if set (and it must contain them), else
// `pg_config --bindir` if that directory has them, else the highest-versioned
// /usr/lib/postgresql/*/bin. If none is found the error says what to install.
func FindBinDir() (string, error) {
	if dir := os.Getenv("PG_BIN"); dir != "" {
		if hasServerBins(dir) {
			return dir, nil
		}
		return "", notFound("PG_BIN=" + dir)
	}
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		if dir := strings.TrimSpace(string(out)); hasServerBins(dir) {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, dir := range dirs {
		if hasServerBins(dir) {
			return dir, nil
		}
	}
	return "", notFound("pg_config --bindir", "/usr/lib/postgresql/*/bin")
}

func notFound(looked ...string) error {
	return fmt.Errorf("PostgreSQL server binaries (initdb, postgres) not found (looked in %s): "+
		"install them with `apt-get install postgresql` (Debian/Ubuntu) or set PG_BIN to the directory "+
		"containing them, or set DATABASE_URL to use an existing server", strings.Join(looked, ", "))
}

func hasServerBins(dir string) bool {
	for _, name := range []string{"postgres", "initdb"} {
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// versionOf parses "/usr/lib/postgresql/15/bin" (or "9.6") into a sortable int.
func versionOf(dir string) int {
	major, minor, _ := strings.Cut(filepath.Base(filepath.Dir(dir)), ".")
	a, _ := strconv.Atoi(major)
	b, _ := strconv.Atoi(minor)
	return a*100 + b
}

// Start initializes opts.DataDir if needed, starts postgres on a private Unix
// socket and waits until it accepts connections (until ctx ends, at most 30 s).
// ctx bounds only the startup; the server keeps running until Stop. On error
// nothing is left running; errors name the cause (binaries missing, no
// postgres user when root, untraversable parent directory, data directory in
// use by another postmaster, or the tail of the initdb/server log).
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.DataDir == "" {
		return nil, errors.New("embedpg: Options.DataDir is required")
	}
	for _, k := range []string{"port", "unix_socket_directories"} {
		if _, ok := opts.Settings[k]; ok {
			return nil, fmt.Errorf("embedpg: setting %q is managed by embedpg and cannot be overridden", k)
		}
	}
	dataDir, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return nil, fmt.Errorf("embedpg: %w", err)
	}
	binDir := opts.BinDir
	if binDir == "" {
		if binDir, err = FindBinDir(); err != nil {
			return nil, fmt.Errorf("embedpg: %w", err)
		}
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	if err := prepareDir(dataDir, cred); err != nil {
		return nil, err
	}
	if err := checkPidFile(dataDir, lg); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(dataDir, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		lg.Info("embedpg: initdb", "datadir", dataDir, "bindir", binDir)
		args := []string{"-D", dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--locale=C"}
		if opts.Settings["fsync"] == "off" {
			args = append(args, "--no-sync")
		}
		cmd := exec.Command(filepath.Join(binDir, "initdb"), args...)
		cmd.Dir, cmd.SysProcAttr = dataDir, &syscall.SysProcAttr{Credential: cred}
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("embedpg: initdb %s failed: %w\n%s", dataDir, err, tail(string(out), 20))
		}
	}
	logDir := filepath.Join(dataDir, "log")
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return nil, fmt.Errorf("embedpg: %w", err)
	}
	sockDir, err := socketDir(cred)
	if err != nil {
		return nil, err
	}
	if cred != nil {
		_ = os.Chown(logDir, int(cred.Uid), int(cred.Gid))
	}
	args := []string{"-D", dataDir, "-c", "listen_addresses=", "-c", "port=" + strconv.Itoa(port),
		"-c", "unix_socket_directories=" + sockDir}
	for _, k := range slices.Sorted(maps.Keys(opts.Settings)) {
		args = append(args, "-c", k+"="+opts.Settings[k])
	}
	s := &Server{dataDir: dataDir, sockDir: sockDir, log: lg, done: make(chan struct{}),
		bin: filepath.Join(binDir, "postgres"), args: args, logPath: filepath.Join(logDir, "postmaster.log"), cred: cred}
	close(s.done) // no postmaster yet
	if err := s.boot(ctx); err != nil {
		os.RemoveAll(sockDir)
		return nil, err
	}
	return s, nil
}

// boot launches the postmaster and waits until it accepts connections (until ctx
// ends, at most 30 s), retrying while a previous postmaster's processes still hold
// the shared memory. Callers hold s.mu or own s exclusively.
func (s *Server) boot(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for retried := false; ; retried = true {
		logText, err := s.launch(ctx, s.bin, s.args, s.logPath, s.cred)
		if err == nil {
			s.log.Info("embedpg: started", "datadir", s.dataDir, "socket", s.sockDir, "pid", s.cmd.Process.Pid)
			return nil
		}
		// After a crash, old backends may hold the shared memory for a moment.
		if strings.Contains(logText, "pre-existing shared memory block") && ctx.Err() == nil {
			if !retried {
				s.log.Info("embedpg: old server processes are still exiting; retrying", "datadir", s.dataDir)
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		return fmt.Errorf("embedpg: %w (server log %s):\n%s", err, s.logPath, tail(logText, 20))
	}
}

// launch starts the postmaster and waits until it accepts connections. On
// failure nothing is left running and it returns what this run logged.
func (s *Server) launch(ctx context.Context, bin string, args []string, logPath string, cred *syscall.Credential) (string, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return "", err
	}
	fi, err := logFile.Stat()
	if err != nil {
		logFile.Close()
		return "", err
	}
	if cred != nil {
		_ = logFile.Chown(int(cred.Uid), int(cred.Gid))
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = s.dataDir, logFile, logFile
	// Setpgid: a terminal Ctrl-C reaches only our process, which calls Stop.
	// Pdeathsig: if we die without Stop, postgres does an immediate shutdown.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Setpgid: true, Pdeathsig: syscall.SIGQUIT}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return "", fmt.Errorf("starting postgres: %w", err)
	}
	done := make(chan struct{})
	s.cmd, s.done, s.waitErr = cmd, done, nil
	go func() {
		err := cmd.Wait()
		logFile.Close()
		s.waitErr = err // read only after done is closed
		close(done)
	}()
	if err := s.waitReady(ctx); err != nil {
		_ = s.cmd.Process.Signal(syscall.SIGQUIT)
		<-s.done
		data, _ := os.ReadFile(logPath)
		return string(data[min(int(fi.Size()), len(data)):]), err
	}
	return "", nil
}

func (s *Server) waitReady(ctx context.Context) error {
	db, err := sql.Open("pgx", s.DSN("postgres"))
	if err != nil {
		return err
	}
	defer db.Close()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		var one int
		err = db.QueryRowContext(ctx, "SELECT 1").Scan(&one)
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("postgres exited during startup: %v", s.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("postgres not ready: %w (last error: %v)", ctx.Err(), err)
		case <-tick.C:
		}
	}
}

// DSN returns a libpq URL for database dbname on this server, of the form
// postgres://postgres@/DBNAME?host=/tmp/embedpgNNN&port=5432&sslmode=disable
// (user postgres, trust authentication, Unix socket only). It never fails.
func (s *Server) DSN(dbname string) string {
	host := strings.ReplaceAll(url.QueryEscape(s.sockDir), "%2F", "/")
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&port=%d&sslmode=disable", url.PathEscape(dbname), host, port)
}

// SocketDir is the directory of the server's unix socket (for psql -h, pgbench -h).
func (s *Server) SocketDir() string { return s.sockDir }

// Port names the socket file in SocketDir (for psql -p, pgbench -p).
func (s *Server) Port() int { return port }

// Stop shuts the server down with a fast shutdown (SIGINT to the postmaster),
// waits for it to exit (escalating to SIGQUIT, then SIGKILL, after 30 s each)
// and removes the socket directory. It is idempotent: later calls return the
// first call's result. The error is non-nil if the postmaster exited
// abnormally (including a crash before Stop was called). It waits for a
// Restart in progress to finish first.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.stopped = true
		s.halt(syscall.SIGINT)
		os.RemoveAll(s.sockDir)
		if s.waitErr != nil {
			s.stopErr = fmt.Errorf("embedpg: postgres (data directory %s) exited: %w", s.dataDir, s.waitErr)
		}
		s.log.Info("embedpg: stopped", "datadir", s.dataDir, "err", s.waitErr)
	})
	return s.stopErr
}

// Restart shuts the postmaster down in the given mode, waits for it to exit and
// starts it again on the same data directory, settings and socket (so DSN stays
// valid), returning once it accepts connections again (until ctx ends, at most
// 30 s). Clients see their connections end and new ones refused meanwhile. After an
// immediate stop the start runs crash recovery. If the start fails the server stays
// down (Stop still cleans up). Restart after Stop is an error.
func (s *Server) Restart(ctx context.Context, mode StopMode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("embedpg: Restart after Stop")
	}
	sig, name := syscall.SIGINT, "fast"
	if mode == StopImmediate {
		sig, name = syscall.SIGQUIT, "immediate"
	}
	s.halt(sig)
	s.log.Info("embedpg: stopped for restart", "datadir", s.dataDir, "mode", name, "err", s.waitErr)
	return s.boot(ctx)
}

// halt signals the current postmaster with first (then SIGQUIT and SIGKILL, after
// 30 s each) until it has exited. Callers hold s.mu.
func (s *Server) halt(first syscall.Signal) {
	select {
	case <-s.done:
		return
	default:
	}
signals:
	for _, sig := range []syscall.Signal{first, syscall.SIGQUIT, syscall.SIGKILL} {
		if sig == syscall.SIGQUIT && first == syscall.SIGQUIT {
			continue
		}
		_ = s.cmd.Process.Signal(sig)
		select {
		case <-s.done:
			break signals
		case <-time.After(30 * time.Second):
		}
	}
	<-s.done
}

// serverCredential returns nil when not root, else the "postgres" user's ids.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("embedpg: running as root, but PostgreSQL refuses to run as root and there is no "+
			"`postgres` OS user to run it as (%v): create one (e.g. `useradd --system postgres`) or run as a non-root user", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// prepareDir creates dataDir (mode 0700, owned by cred) and any missing
// parents (mode 0755), and checks that cred's user can traverse the parents.
func prepareDir(dataDir string, cred *syscall.Credential) error {
	var created []string
	for d := filepath.Dir(dataDir); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		created = append(created, d)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("embedpg: %w", err)
	}
	for _, d := range created {
		_ = os.Chmod(d, 0o755)
	}
	if err := os.Chmod(dataDir, 0o700); err != nil {
		return fmt.Errorf("embedpg: %w", err)
	}
	if cred == nil {
		return nil
	}
	if err := os.Chown(dataDir, int(cred.Uid), int(cred.Gid)); err != nil {
		return fmt.Errorf("embedpg: %w", err)
	}
	for d := filepath.Dir(dataDir); ; d = filepath.Dir(d) {
		var st syscall.Stat_t
		if err := syscall.Stat(d, &st); err != nil {
			return fmt.Errorf("embedpg: %w", err)
		}
		bit := uint32(0o001)
		if st.Uid == cred.Uid {
			bit = 0o100
		} else if st.Gid == cred.Gid {
			bit = 0o010
		}
		if st.Mode&bit == 0 {
			return fmt.Errorf("embedpg: the postgres OS user (uid %d) cannot reach data directory %s because %s "+
				"is mode %o owned by uid %d: `chmod o+x %s` or put the data directory elsewhere",
				cred.Uid, dataDir, d, st.Mode&0o7777, st.Uid, d)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// socketDir makes a fresh, short directory for the server's Unix socket.
func socketDir(cred *syscall.Credential) (string, error) {
	dir, err := os.MkdirTemp("", "embedpg")
	if err == nil && len(dir) > 90 { // sun_path is ~107 bytes incl. "/.s.PGSQL.5432"
		os.Remove(dir)
		dir, err = os.MkdirTemp("/tmp", "embedpg")
	}
	if err != nil {
		return "", fmt.Errorf("embedpg: socket directory: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.Remove(dir)
			return "", fmt.Errorf("embedpg: socket directory: %w", err)
		}
	}
	return dir, nil
}

// checkPidFile fails if dataDir/postmaster.pid names a live postgres. A pid
// file naming a dead process is left to postgres, which ignores it; one whose
// pid was reused by a non-postgres process (common after a container
// restart) is removed, since postgres would refuse to start because of it.
func checkPidFile(dataDir string, lg *slog.Logger) error {
	pidFile := filepath.Join(dataDir, "postmaster.pid")
	data, err := os.ReadFile(pidFile)
	if err != nil {
		return nil
	}
	first, _, _ := strings.Cut(string(data), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 0 || pid == os.Getpid() {
		return nil
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return nil
	}
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err == nil && !strings.HasPrefix(string(comm), "postgres") && !strings.HasPrefix(string(comm), "postmaster") {
		lg.Info("embedpg: removing stale postmaster.pid", "pid", pid, "process", strings.TrimSpace(string(comm)))
		return os.Remove(pidFile)
	}
	return fmt.Errorf("embedpg: data directory %s is in use by another PostgreSQL (pid %d)", dataDir, pid)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
