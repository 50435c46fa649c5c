package main

// Configuration and commands (SPEC section 5), through run as `go run .` calls it.

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jmoiron/sqlx"

	"invitations/db"
	"invitations/db/dbtest"
	"invitations/db/embedpg"
	"invitations/graph"
)

// cmdEnv is a getenv over a map.
func cmdEnv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

// cmdRun runs the program with args and env and returns its error, stdout and stderr.
func cmdRun(t *testing.T, args []string, env map[string]string) (stdout, stderr string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err = run(ctx, args, cmdEnv(env), &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestConfigInvalidValues(t *testing.T) {
	for _, c := range []struct{ name, value string }{
		{"INVITE_WEEKLY_LIMIT", "abc"},
		{"INVITE_WEEKLY_LIMIT", "0"},
		{"INVITE_WEEKLY_LIMIT", "-5"},
		{"INVITE_WEEKLY_LIMIT", "2.5"},
		{"INVITE_WEEKLY_LIMIT", "1e3"},
		{"INVITE_WEEKLY_LIMIT", " "},
		{"INVITE_WEEKLY_LIMIT", "99999999999999999999"},
		{"INVITE_WEEKLY_LIMIT_PREMIUM", "-1"},
		{"INVITE_PENDING_LIMIT", "x"},
		{"INVITE_PENDING_LIMIT", "0"},
		{"REINVITE_COOLDOWN_DAYS", "-1"},
		{"REINVITE_COOLDOWN_DAYS", "21d"},
		{"INVITATION_TTL_DAYS", "0"},
		{"INVITATION_TTL_DAYS", "forever"},
		{"CONNECTION_LIMIT", "1.5"},
		{"CONNECTION_LIMIT", "0"},
		{"WITHDRAW_REFUNDS_QUOTA", "maybe"},
		{"WITHDRAW_REFUNDS_QUOTA", "yes"},
		{"PORT", "99999"},
		{"PORT", "-1"},
		{"PORT", "http"},
		{"JWT_SECRET", "short"},
		{"JWT_SECRET", strings.Repeat("x", 31)},
		{"LOG_LEVEL", "loud"},
	} {
		t.Run(c.name+"="+c.value, func(t *testing.T) {
			env := map[string]string{
				// Never reached: the configuration is refused first. A cancelled context
				// makes sure nothing can start even if it were not.
				"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1",
				"DATA_DIR":     t.TempDir(),
				"JWT_SECRET":   testSecret,
				"PORT":         "0",
			}
			env[c.name] = c.value
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			var out, errOut bytes.Buffer
			err := run(ctx, nil, cmdEnv(env), &out, &errOut)
			if err == nil {
				t.Fatal("run accepted the value")
			}
			if !regexp.MustCompile(`\b` + c.name + `\b`).MatchString(err.Error()) {
				t.Errorf("the error does not name %s: %v", c.name, err)
			}
			if out.Len() > 0 {
				t.Errorf("something started: %s", out.String())
			}
			if c.name != "JWT_SECRET" && strings.Contains(err.Error(), testSecret) {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

func TestConfigLimitsTakeEffect(t *testing.T) {
	const quotaQuery = `{ invitationQuota { limit used remaining pendingCount pendingLimit } }`
	withdraw := `mutation($id: ID!) { withdrawInvitation(input: {invitationId: $id}) { quota { used } userErrors { code } } }`

	t.Run("INVITE_WEEKLY_LIMIT=2", func(t *testing.T) {
		s := startServer(t, map[string]string{"INVITE_WEEKLY_LIMIT": "2"})
		ada := s.member("ada")
		for _, h := range []string{"bob", "cy", "dan"} {
			s.member(h)
		}
		if d := s.ok(ada, quotaQuery, nil); get(d, "invitationQuota.limit") != 2.0 || get(d, "invitationQuota.remaining") != 2.0 {
			t.Fatalf("quota: %v", d)
		}
		for _, h := range []string{"bob", "cy"} {
			if d := s.ok(ada, sendMutation, map[string]any{"to": s.memberID(ada, h)}); get(d, "sendInvitation.invitation") == nil {
				t.Fatalf("send to %s: %v", h, d)
			}
		}
		r := s.gql(ada, sendMutation, map[string]any{"to": s.memberID(ada, "dan")})
		if get(r.Data, "sendInvitation.userErrors.0.code") != "WEEKLY_LIMIT_REACHED" || get(r.Data, "sendInvitation.userErrors.0.availableAt") == nil {
			t.Fatalf("third send: %s", r.raw)
		}
	})

	t.Run("INVITE_WEEKLY_LIMIT_PREMIUM=3", func(t *testing.T) {
		s := startServer(t, map[string]string{"INVITE_WEEKLY_LIMIT_PREMIUM": "3"})
		ada := s.member("ada")
		s.conn.MustExec(`UPDATE members SET plan = 'PREMIUM' WHERE handle = 'ada'`)
		if d := s.ok(ada, quotaQuery, nil); get(d, "invitationQuota.limit") != 3.0 {
			t.Fatalf("premium quota: %v", d)
		}
	})

	for _, refunds := range []string{"false", "true"} {
		t.Run("WITHDRAW_REFUNDS_QUOTA="+refunds, func(t *testing.T) {
			s := startServer(t, map[string]string{"WITHDRAW_REFUNDS_QUOTA": refunds})
			ada := s.member("ada")
			s.member("bob")
			id := get(s.ok(ada, sendMutation, map[string]any{"to": s.memberID(ada, "bob")}), "sendInvitation.invitation.id")
			d := s.ok(ada, withdraw, map[string]any{"id": id})
			want := 1.0
			if refunds == "true" {
				want = 0
			}
			if get(d, "withdrawInvitation.quota.used") != want {
				t.Fatalf("payload quota after withdrawal: %v", d)
			}
			if d := s.ok(ada, quotaQuery, nil); get(d, "invitationQuota.used") != want || get(d, "invitationQuota.pendingCount") != 0.0 {
				t.Fatalf("quota after withdrawal: %v", d)
			}
		})
	}

	t.Run("INVITE_PENDING_LIMIT=1", func(t *testing.T) {
		s := startServer(t, map[string]string{"INVITE_PENDING_LIMIT": "1"})
		ada := s.member("ada")
		s.member("bob")
		s.member("cy")
		if d := s.ok(ada, quotaQuery, nil); get(d, "invitationQuota.pendingLimit") != 1.0 {
			t.Fatalf("quota: %v", d)
		}
		s.ok(ada, sendMutation, map[string]any{"to": s.memberID(ada, "bob")})
		r := s.gql(ada, sendMutation, map[string]any{"to": s.memberID(ada, "cy")})
		if get(r.Data, "sendInvitation.userErrors.0.code") != "PENDING_LIMIT_REACHED" {
			t.Fatalf("second send: %s", r.raw)
		}
	})

	t.Run("REINVITE_COOLDOWN_DAYS=0", func(t *testing.T) {
		s := startServer(t, map[string]string{"REINVITE_COOLDOWN_DAYS": "0"})
		ada := s.member("ada")
		s.member("bob")
		bobID := s.memberID(ada, "bob")
		id := get(s.ok(ada, sendMutation, map[string]any{"to": bobID}), "sendInvitation.invitation.id")
		s.ok(ada, withdraw, map[string]any{"id": id})
		if d := s.ok(ada, sendMutation, map[string]any{"to": bobID}); get(d, "sendInvitation.invitation.status") != "PENDING" {
			t.Fatalf("resend without cooldown: %v", d)
		}
	})

	t.Run("INVITATION_TTL_DAYS=2", func(t *testing.T) {
		s := startServer(t, map[string]string{"INVITATION_TTL_DAYS": "2"})
		ada := s.member("ada")
		s.member("bob")
		s.member("cy")
		s.conn.MustExec(`INSERT INTO invitations (sender_id, recipient_id, sent_at)
			SELECT a.id, b.id, now() - interval '3 days' FROM members a, members b WHERE a.handle = 'ada' AND b.handle = 'bob'`)
		s.conn.MustExec(`INSERT INTO invitations (sender_id, recipient_id, sent_at)
			SELECT a.id, b.id, now() - interval '1 day' FROM members a, members b WHERE a.handle = 'ada' AND b.handle = 'cy'`)
		d := s.ok(ada, `{ pendingInvitations { totalCount nodes { recipient { handle } expiresAt } }
			sentInvitations(filter: {status: [EXPIRED]}) { totalCount nodes { recipient { handle } } } }`, nil)
		if get(d, "pendingInvitations.totalCount") != 1.0 || get(d, "pendingInvitations.nodes.0.recipient.handle") != "cy" ||
			get(d, "sentInvitations.totalCount") != 1.0 || get(d, "sentInvitations.nodes.0.recipient.handle") != "bob" {
			t.Fatalf("TTL 2 days: %v", d)
		}
	})

	t.Run("CONNECTION_LIMIT=1", func(t *testing.T) {
		s := startServer(t, map[string]string{"CONNECTION_LIMIT": "1"})
		ada := s.member("ada")
		s.member("bob")
		s.member("cy")
		bob := s.token("bob")
		s.ok(bob, sendMutation, map[string]any{"to": s.memberID(bob, "ada")})
		if d := s.ok(ada, sendMutation, map[string]any{"to": s.memberID(ada, "bob")}); get(d, "sendInvitation.connected") != true {
			t.Fatalf("mutual: %v", d)
		}
		r := s.gql(ada, sendMutation, map[string]any{"to": s.memberID(ada, "cy")})
		if get(r.Data, "sendInvitation.userErrors.0.code") != "SENDER_CONNECTION_LIMIT" {
			t.Fatalf("send at the connection cap: %s", r.raw)
		}
	})
}

// cmdClaims verifies a token with the secret and returns its claims.
func cmdClaims(t *testing.T, token string, secret []byte) *graph.Claims {
	t.Helper()
	claims := &graph.Claims{}
	_, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return secret, nil },
		jwt.WithValidMethods([]string{"HS256"}))
	if err != nil {
		t.Fatalf("token %q: %v", token, err)
	}
	return claims
}

func TestTokenCommand(t *testing.T) {
	s := startServer(t, nil)
	s.member("ada")
	env := map[string]string{"JWT_SECRET": testSecret}

	out, errOut, err := cmdRun(t, []string{"token", "ada"}, env)
	if err != nil {
		t.Fatalf("token ada: %v\n%s", err, errOut)
	}
	tok := strings.TrimSpace(out)
	if strings.Count(out, "\n") != 1 || strings.Count(tok, ".") != 2 {
		t.Fatalf("token output is not one JWT line: %q", out)
	}
	if d := s.ok(tok, `{ viewer { handle } }`, nil); get(d, "viewer.handle") != "ada" {
		t.Fatalf("printed token: %v", d)
	}
	c := cmdClaims(t, tok, []byte(testSecret))
	if c.Subject != "ada" || c.Role != "" || c.ExpiresAt == nil || time.Until(c.ExpiresAt.Time) < 23*time.Hour || time.Until(c.ExpiresAt.Time) > 25*time.Hour {
		t.Fatalf("claims: %+v", c)
	}

	for _, args := range [][]string{{"token", "-admin", "ada"}, {"token", "ada", "-admin"}, {"token", "--admin", "-ttl", "1h", "ada"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			out, errOut, err := cmdRun(t, args, env)
			if err != nil {
				t.Fatalf("%v\n%s", err, errOut)
			}
			tok := strings.TrimSpace(out)
			c := cmdClaims(t, tok, []byte(testSecret))
			if c.Subject != "ada" || c.Role != "admin" {
				t.Fatalf("claims: %+v", c)
			}
			if strings.Contains(strings.Join(args, " "), "1h") && time.Until(c.ExpiresAt.Time) > time.Hour+time.Minute {
				t.Fatalf("-ttl 1h: expires %v", c.ExpiresAt)
			}
			if d := s.ok(tok, `{ viewer { handle } }`, nil); get(d, "viewer.handle") != "ada" {
				t.Fatalf("admin token: %v", d)
			}
		})
	}

	for name, args := range map[string][]string{
		"NoHandle":    {"token"},
		"TwoHandles":  {"token", "ada", "bob"},
		"ZeroTTL":     {"token", "-ttl", "0s", "ada"},
		"NegativeTTL": {"token", "-ttl", "-1h", "ada"},
		"BadFlag":     {"token", "-root", "ada"},
	} {
		t.Run(name, func(t *testing.T) {
			out, _, err := cmdRun(t, args, env)
			if err == nil || out != "" {
				t.Fatalf("%v accepted: %q", args, out)
			}
		})
	}

	t.Run("NoSecret", func(t *testing.T) {
		dir := t.TempDir()
		out, _, err := cmdRun(t, []string{"token", "ada"}, map[string]string{"DATABASE_URL": "postgres://x@127.0.0.1/x"})
		if err == nil || !strings.Contains(err.Error(), "JWT_SECRET") || out != "" {
			t.Fatalf("with DATABASE_URL and no JWT_SECRET: %v %q", err, out)
		}
		out, _, err = cmdRun(t, []string{"token", "ada"}, map[string]string{"DATA_DIR": dir})
		if err == nil || !strings.Contains(err.Error(), "JWT_SECRET") || out != "" {
			t.Fatalf("embedded, before the first start: %v %q", err, out)
		}
		if _, err := os.Stat(filepath.Join(dir, "jwt-secret")); !os.IsNotExist(err) {
			t.Fatalf("the token command created a secret: %v", err)
		}
	})
}

var importSummary = regexp.MustCompile(`(\d+) members, (\d+) connections, (\d+) invitations written, (\d+) unchanged, (\d+) bad lines`)

func TestImportCommand(t *testing.T) {
	dsn := dbtest.DSN(t)
	conn := sqlx.MustOpen("pgx", dsn)
	t.Cleanup(func() { conn.Close() })
	now := time.Now().UTC()
	at := func(days int) string { return now.Add(-time.Duration(days) * 24 * time.Hour).Format(time.RFC3339) }
	lines := []string{
		`{"member": {"handle": "ann", "name": "Ann Example", "headline": "Engineer", "plan": "PREMIUM"}}`,
		`{"member": {"handle": "ben", "name": "Ben Example"}}`,
		fmt.Sprintf(`{"invitation": {"sender": "ann", "recipient": "ghost", "status": "PENDING", "sentAt": %q}}`, at(3)),
		fmt.Sprintf(`{"connection": {"a": "ann", "b": "ben", "since": %q}}`, at(10)),
		fmt.Sprintf(`{"invitation": {"sender": "ben", "recipient": "ann", "message": "Hi Ann", "source": "SEARCH", "status": "ACCEPTED", "sentAt": %q, "respondedAt": %q}}`, at(12), at(10)),
	}
	file := filepath.Join(t.TempDir(), "network.jsonl")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"DATABASE_URL": dsn}
	counts := func() string {
		var c struct {
			Members     int    `db:"members"`
			Connections int    `db:"connections"`
			Invitations int    `db:"invitations"`
			Counters    string `db:"counters"`
		}
		err := conn.Get(&c, `SELECT (SELECT count(*) FROM members) AS members, (SELECT count(*) FROM connections) AS connections,
			(SELECT count(*) FROM invitations) AS invitations,
			(SELECT coalesce(string_agg(handle || '=' || connection_count, ',' ORDER BY handle), '') FROM members) AS counters`)
		if err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d members, %d connections, %d invitations, counters %s", c.Members, c.Connections, c.Invitations, c.Counters)
	}
	summary := func(out string) string {
		m := importSummary.FindStringSubmatch(out)
		if m == nil {
			return "no summary in " + strconv.Quote(out)
		}
		return strings.Join(m[1:], " ")
	}

	out, errOut, err := cmdRun(t, []string{"import", file}, env)
	if err == nil {
		t.Errorf("import with a bad line returned no error")
	}
	if !regexp.MustCompile(`(?m)^line 3: .*ghost`).MatchString(errOut) {
		t.Errorf("stderr does not report line 3 (unknown member ghost): %q (error %v)", errOut, err)
	}
	if !strings.Contains(errOut, "import: 5 lines") {
		t.Errorf("no progress line on stderr: %q", errOut)
	}
	if got := summary(out); got != "2 1 1 0 1" {
		t.Errorf("first run: summary %s, want 2 members, 1 connections, 1 invitations written, 0 unchanged, 1 bad lines; stdout %q", got, out)
	}
	if got, want := counts(), "2 members, 1 connections, 1 invitations, counters ann=1,ben=1"; got != want {
		t.Errorf("after the first run: %s, want %s", got, want)
	}
	var inv struct {
		Sender  string  `db:"sender"`
		Status  string  `db:"status"`
		Message *string `db:"message"`
		Source  string  `db:"source"`
		Plan    string  `db:"plan"`
	}
	err = conn.Get(&inv, `SELECT s.handle AS sender, i.status, i.message, i.source, r.plan FROM invitations i
		JOIN members s ON s.id = i.sender_id JOIN members r ON r.id = i.recipient_id`)
	if err != nil || inv.Sender != "ben" || inv.Status != "ACCEPTED" || inv.Message == nil || *inv.Message != "Hi Ann" ||
		inv.Source != "SEARCH" || inv.Plan != "PREMIUM" {
		msg := "<nil>"
		if inv.Message != nil {
			msg = *inv.Message
		}
		t.Errorf("imported invitation: %s→recipient(plan %s) %s %q %s: %v", inv.Sender, inv.Plan, inv.Status, msg, inv.Source, err)
	}

	before := checksumTables(t, conn)
	out, errOut, err = cmdRun(t, []string{"import", file}, env)
	if err == nil || !strings.Contains(errOut, "line 3: ") {
		t.Errorf("second run: error %v, stderr %q", err, errOut)
	}
	if got := summary(out); got != "0 0 0 4 1" {
		t.Errorf("second run: summary %s, want 0 members, 0 connections, 0 invitations written, 4 unchanged, 1 bad lines; stdout %q", got, out)
	}
	after := checksumTables(t, conn)
	for table, sum := range before {
		if after[table] != sum {
			t.Errorf("the second run changed table %s", table)
		}
	}

	t.Run("Usage", func(t *testing.T) {
		if _, _, err := cmdRun(t, []string{"import"}, env); err == nil {
			t.Error("import without a file succeeded")
		}
		if _, _, err := cmdRun(t, []string{"import", filepath.Join(t.TempDir(), "missing.jsonl")}, env); err == nil {
			t.Error("import of a missing file succeeded")
		}
	})
}

// cmdFreshDatabase returns the DSN of a test database emptied of every table.
func cmdFreshDatabase(t *testing.T) (string, *sqlx.DB) {
	t.Helper()
	dsn := dbtest.DSN(t)
	conn := sqlx.MustOpen("pgx", dsn)
	t.Cleanup(func() { conn.Close() })
	conn.MustExec(`DROP SCHEMA public CASCADE; CREATE SCHEMA public`)
	var n int
	conn.Get(&n, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`)
	if n != 0 {
		t.Fatalf("%d tables left", n)
	}
	return dsn, conn
}

func cmdCheckMigrated(t *testing.T, conn *sqlx.DB) {
	t.Helper()
	var rows []struct {
		Version int64 `db:"version"`
		Dirty   bool  `db:"dirty"`
	}
	if err := conn.Select(&rows, `SELECT version, dirty FROM schema_migrations`); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 1 || rows[0].Version != int64(db.LatestVersion()) || rows[0].Dirty || db.LatestVersion() < 1 {
		t.Fatalf("schema_migrations: %+v, want version %d, not dirty", rows, db.LatestVersion())
	}
	var tables []string
	conn.Select(&tables, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename IN ('members', 'connections', 'invitations') ORDER BY 1`)
	if strings.Join(tables, ",") != "connections,invitations,members" {
		t.Fatalf("tables after migrate: %v", tables)
	}
}

func TestMigrateCommand(t *testing.T) {
	dsn, conn := cmdFreshDatabase(t)
	env := map[string]string{"DATABASE_URL": dsn}
	for i := 1; i <= 2; i++ {
		out, errOut, err := cmdRun(t, []string{"migrate"}, env)
		if err != nil {
			t.Fatalf("migrate #%d: %v\n%s", i, err, errOut)
		}
		if want := fmt.Sprintf("schema version %d", db.LatestVersion()); !strings.Contains(out, want) {
			t.Fatalf("migrate #%d printed %q, want %q", i, out, want)
		}
		cmdCheckMigrated(t, conn)
	}

	t.Run("Concurrent", func(t *testing.T) {
		dsn, conn := cmdFreshDatabase(t)
		env := map[string]string{"DATABASE_URL": dsn}
		const n = 4
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var out, errOut bytes.Buffer
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				errs[i] = run(ctx, []string{"migrate"}, cmdEnv(env), &out, &errOut)
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("concurrent migrate #%d: %v", i, err)
			}
		}
		cmdCheckMigrated(t, conn)
	})

	t.Run("Unreachable", func(t *testing.T) {
		_, _, err := cmdRun(t, []string{"migrate"}, map[string]string{"DATABASE_URL": "postgres://nobody@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"})
		if err == nil {
			t.Fatal("migrate against nothing succeeded")
		}
	})
}

// demoToken is the bearer token the server prints for the demo member.
var demoToken = regexp.MustCompile(`"Authorization": "Bearer ([A-Za-z0-9_.-]+)"`)

// cmdEmbeddedCounts connects to the embedded cluster through the socket named in its
// postmaster.pid and counts members and invitations.
func cmdEmbeddedCounts(t *testing.T, dataDir string) (members, invitations int) {
	t.Helper()
	pid, err := os.ReadFile(filepath.Join(dataDir, "pg", "postmaster.pid"))
	if err != nil {
		t.Fatalf("embedded PostgreSQL is not running: %v", err)
	}
	fields := strings.Split(string(pid), "\n")
	if len(fields) < 5 || fields[4] == "" {
		t.Fatalf("postmaster.pid: %q", pid)
	}
	conn, err := sqlx.Open("pgx", fmt.Sprintf("postgres://postgres@/invitations?host=%s&port=%s&sslmode=disable", fields[4], strings.TrimSpace(fields[3])))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Get(&members, `SELECT count(*) FROM members`); err != nil {
		t.Fatal(err)
	}
	if err := conn.Get(&invitations, `SELECT count(*) FROM invitations`); err != nil {
		t.Fatal(err)
	}
	return members, invitations
}

func TestEmbeddedDefault(t *testing.T) {
	if _, err := embedpg.FindBinDir(); err != nil {
		t.Skipf("no PostgreSQL server binaries: %v", err)
	}
	dir, err := os.MkdirTemp("", "embedded")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755) // the embedded PostgreSQL runs as the postgres user when we are root
	t.Cleanup(func() { os.RemoveAll(dir) })
	env := map[string]string{"DATA_DIR": dir, "DATABASE_URL": "", "JWT_SECRET": ""}
	const query = `{ viewer { handle } pendingInvitations(filter: {olderThanDays: 14}) { totalCount } }`
	check := func(s *server, token string) {
		t.Helper()
		d := s.ok(token, query, nil)
		if get(d, "viewer.handle") != "ada" {
			t.Fatalf("viewer: %v", d)
		}
		if n, _ := get(d, "pendingInvitations.totalCount").(float64); n <= 0 {
			t.Fatalf("no demo invitations older than 14 days: %v", d)
		}
	}

	var firstToken string
	var members, invitations int
	t.Run("FirstStart", func(t *testing.T) {
		s := startServer(t, env)
		m := demoToken.FindStringSubmatch(s.out.String())
		if m == nil {
			t.Fatalf("no demo token in the output:\n%s", s.out.String())
		}
		firstToken = m[1]
		check(s, firstToken)
		members, invitations = cmdEmbeddedCounts(t, dir)
		if members != len(demoPeople)+1 {
			t.Errorf("%d members after the demo load, want %d (ada and one per demo person)", members, len(demoPeople)+1)
		}
		// The demo network obeys the product's rules: no live invitation between connected members.
		d := s.ok(firstToken, `{ pendingInvitations(first: 100) { nodes { recipient { handle connectionStatus } } } }`, nil)
		for _, n := range get(d, "pendingInvitations.nodes").([]any) {
			if get(n, "recipient.connectionStatus") != "INVITATION_SENT" {
				t.Errorf("demo: ada's pending invitation to %v, who is %v", get(n, "recipient.handle"), get(n, "recipient.connectionStatus"))
			}
		}
		st, err := os.Stat(filepath.Join(dir, "jwt-secret"))
		if err != nil || st.Mode().Perm()&0o077 != 0 {
			t.Errorf("jwt-secret: %v %v", st, err)
		}
	})
	if firstToken == "" {
		t.FailNow() // the first start failed: nothing to restart
	}

	t.Run("Restart", func(t *testing.T) {
		s := startServer(t, env)
		if !demoToken.MatchString(s.out.String()) {
			t.Errorf("no demo token after a restart:\n%s", s.out.String())
		}
		// The secret is kept: a token from the first start still works.
		check(s, firstToken)
		m, i := cmdEmbeddedCounts(t, dir)
		if m != members || i != invitations {
			t.Errorf("after a restart: %d members, %d invitations; before: %d, %d", m, i, members, invitations)
		}
		// The token command finds the kept secret without JWT_SECRET.
		out, errOut, err := cmdRun(t, []string{"token", "ada"}, map[string]string{"DATA_DIR": dir})
		if err != nil {
			t.Fatalf("token: %v\n%s", err, errOut)
		}
		check(s, strings.TrimSpace(out))
	})

	t.Run("NoBinaries", func(t *testing.T) {
		t.Setenv("PG_BIN", filepath.Join(t.TempDir(), "nothing"))
		empty := t.TempDir()
		os.Chmod(empty, 0o755)
		out, _, err := cmdRun(t, nil, map[string]string{"DATA_DIR": empty, "PORT": "0"})
		if err == nil || !strings.Contains(err.Error(), "apt-get install postgresql") || strings.Contains(out, "listening") {
			t.Fatalf("without PostgreSQL binaries: %v %q", err, out)
		}
	})
}
