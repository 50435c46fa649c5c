package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"time"
)

// server is a server built from this checkout: the invitations server, or the bench's
// reference server (bench/bare), which reads the same environment.
type server struct {
	cmd    *exec.Cmd
	url    string
	secret []byte
	done   chan error
}

// buildServer compiles the server of package pkg into dir as name, as a deployment
// would run it: "." is the invitations server, "./bench/bare" the reference server.
func buildServer(ctx context.Context, dir, name, pkg string) (string, error) {
	bin, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, pkg)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build (run the bench from the repository root): %w", err)
	}
	return bin, nil
}

// startServer runs the binary on a free 127.0.0.1 port against dsn, in production
// mode with its request log, per-viewer and per-address rate limiting and metrics on.
// The limiters are set high enough never to refuse a bench request (one address,
// a few members sending thousands of requests a second), so their cost is measured
// without their refusals. Background jobs are off: they are not requests. The pool
// has 4 connections per core (DB_MAX_CONNS; the default of 20 suits a larger database
// server): more only add backends competing for the same cores. Go gets gomaxprocs
// of the cores (GOMAXPROCS; -gomaxprocs, by default half), as the deployment of a
// server sharing its machine with PostgreSQL should: with every core, Go's idle
// processors spin looking for work at each wake-up and take CPU from the backends.
// serverPool is the server's DB_MAX_CONNS: at most this many of its transactions run
// in PostgreSQL at once.
func serverPool() int { return 4 * runtime.NumCPU() }

func startServer(ctx context.Context, bin, dsn, logPath, profile string, gomaxprocs int) (*server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	secret := make([]byte, 32)
	rand.Read(secret)
	secretHex := hex.EncodeToString(secret)
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"DATABASE_URL="+dsn,
		"JWT_SECRET="+secretHex,
		"PORT="+strconv.Itoa(port),
		"APP_ENV=production",
		"GOMAXPROCS="+strconv.Itoa(gomaxprocs),
		"SWEEP_INTERVAL=0", "DB_MAX_CONNS="+strconv.Itoa(serverPool()),
		"REMINDER_INTERVAL=0",
		"RATE_LIMIT_VIEWER_RPS=1000000", "RATE_LIMIT_VIEWER_BURST=1000000",
		"RATE_LIMIT_ADDRESS_RPS=1000000", "RATE_LIMIT_ADDRESS_BURST=1000000",
	)
	if profile != "" {
		cmd.Env = append(cmd.Env, "CPU_PROFILE="+profile)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	s := &server{cmd: cmd, url: fmt.Sprintf("http://127.0.0.1:%d", port), secret: []byte(secretHex), done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait(); logf.Close() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		select {
		case err := <-s.done:
			return nil, fmt.Errorf("the server exited (%v); see %s", err, logPath)
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("the server did not become ready in 30 s; see %s", logPath)
		}
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

func (s *server) stop() {
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}

// post sends one GraphQL request and returns the response body.
func (s *server) post(token, body string) ([]byte, error) {
	req, err := http.NewRequest(http.MethodPost, s.url+"/query", bytes.NewReader([]byte(body)))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return b, err
}

// remainingQuota asks the server for the viewer's remaining weekly invitations.
func (s *server) remainingQuota(token string) (int, error) {
	b, err := s.post(token, `{"query":"{ invitationQuota { remaining } }"}`)
	if err != nil {
		return 0, err
	}
	var r struct {
		Data struct {
			InvitationQuota struct{ Remaining int }
		}
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, err
	}
	return r.Data.InvitationQuota.Remaining, nil
}
