package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"

	"invitations/db/dbtest"
	"invitations/graph"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

const testSecret = "test-secret-test-secret-test-secret!"

// server is the real server started by run on a free port.
type server struct {
	t    testing.TB
	url  string
	conn *sqlx.DB
	out  *bytes.Buffer
}

// startServer runs the program as `go run .` would, with env added to a test
// database and secret, and stops it when the test ends.
func startServer(t testing.TB, env map[string]string) *server {
	t.Helper()
	dsn := ""
	if _, embedded := env["DATA_DIR"]; !embedded {
		dsn = dbtest.DSN(t)
	}
	// Request rate limits are off unless a test sets them: tests send bursts from one address.
	base := map[string]string{"DATABASE_URL": dsn, "JWT_SECRET": testSecret, "PORT": "0", "LOG_LEVEL": "warn",
		"RATE_LIMIT_VIEWER_RPS": "0", "RATE_LIMIT_ADDRESS_RPS": "0"}
	for k, v := range env {
		base[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() {
		done <- run(ctx, nil, func(k string) string { return base[k] }, pw, &logs)
		pw.Close()
	}()
	out := &bytes.Buffer{}
	lines := bufio.NewScanner(pr)
	portLine := regexp.MustCompile(`listening on port (\d+)`)
	url := ""
	for url == "" && lines.Scan() {
		out.WriteString(lines.Text() + "\n")
		if m := portLine.FindStringSubmatch(lines.Text()); m != nil {
			url = "http://127.0.0.1:" + m[1]
		}
	}
	if url == "" {
		cancel()
		t.Fatalf("server did not start: %v\n%s", <-done, logs.String())
	}
	// Keep reading what the server prints (the demo token comes after the port).
	ready := make(chan struct{})
	go func() {
		for lines.Scan() {
			out.WriteString(lines.Text() + "\n")
			if strings.Contains(lines.Text(), "Authorization") {
				close(ready)
			}
		}
	}()
	if dsn == "" {
		<-ready
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server exited: %v", err)
		}
	})
	s := &server{t: t, url: url, out: out}
	if dsn != "" {
		s.conn = sqlx.MustOpen("pgx", dsn)
		t.Cleanup(func() { s.conn.Close() })
	}
	return s
}

// member creates a member and returns a token for it.
func (s *server) member(handle string) string {
	s.t.Helper()
	s.conn.MustExec(`INSERT INTO members (handle, name) VALUES ($1, $2)`, handle, "Member "+handle)
	return s.token(handle)
}

func (s *server) token(handle string) string {
	s.t.Helper()
	tok, err := graph.SignToken([]byte(testSecret), handle, false, time.Hour, time.Now())
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// response is a GraphQL response.
type response struct {
	Data   map[string]any `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
	status int
	raw    string
}

// code is the first error's extensions.code, or "".
func (r *response) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	c, _ := r.Errors[0].Extensions["code"].(string)
	return c
}

// gql posts a GraphQL request with a bearer token ("" for none).
func (s *server) gql(token, query string, vars map[string]any) *response {
	s.t.Helper()
	if token == "" {
		return authPost(s, nil, query, vars)
	}
	header := "Bearer " + token
	return authPost(s, &header, query, vars)
}

// ok fails the test on top-level errors and returns data.
func (s *server) ok(token, query string, vars map[string]any) map[string]any {
	s.t.Helper()
	r := s.gql(token, query, vars)
	if len(r.Errors) > 0 || r.status != 200 {
		s.t.Fatalf("%d %s", r.status, r.raw)
	}
	return r.Data
}

// get walks a decoded JSON value along a dotted path ("a.b.0.c").
func get(v any, path string) any {
	for _, p := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[p]
		case []any:
			var i int
			fmt.Sscan(p, &i)
			if i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

func (s *server) memberID(token, handle string) string {
	s.t.Helper()
	return get(s.ok(token, `query($h: String!) { member(handle: $h) { id } }`, map[string]any{"h": handle}), "member.id").(string)
}

const sendMutation = `mutation($to: ID!, $msg: String, $key: String) {
  sendInvitation(input: {recipientId: $to, message: $msg, idempotencyKey: $key, clientMutationId: "c1"}) {
    invitation { id status message sender { handle } recipient { handle connectionStatus } }
    connected quota { used remaining pendingCount } userErrors { code message field availableAt } clientMutationId
  }
}`

func TestEndToEnd(t *testing.T) {
	s := startServer(t, nil)
	ada, bob := s.member("ada"), s.member("bob")
	cy := s.member("cy")
	bobID, cyID := s.memberID(ada, "bob"), s.memberID(ada, "cy")

	d := s.ok(ada, sendMutation, map[string]any{"to": bobID, "msg": "  Hello Bob  "})
	inv := get(d, "sendInvitation.invitation").(map[string]any)
	if inv["status"] != "PENDING" || inv["message"] != "Hello Bob" || get(inv, "recipient.connectionStatus") != "INVITATION_SENT" ||
		get(d, "sendInvitation.quota.used") != 1.0 || get(d, "sendInvitation.clientMutationId") != "c1" {
		t.Fatalf("send: %v", d)
	}
	// A refusal is a userError in a 200 response.
	r := s.gql(ada, sendMutation, map[string]any{"to": bobID})
	if r.status != 200 || len(r.Errors) > 0 || get(r.Data, "sendInvitation.userErrors.0.code") != "ALREADY_PENDING" ||
		get(r.Data, "sendInvitation.invitation") != nil {
		t.Fatalf("second send: %s", r.raw)
	}
	invToCy := get(s.ok(ada, sendMutation, map[string]any{"to": cyID}), "sendInvitation.invitation.id").(string)

	// The recipient sees it; ignoring hides it from them but not from the sender.
	d = s.ok(bob, `{ receivedInvitations { totalCount nodes { id status sender { handle connectionStatus } } } }`, nil)
	if get(d, "receivedInvitations.totalCount") != 1.0 || get(d, "receivedInvitations.nodes.0.sender.connectionStatus") != "INVITATION_RECEIVED" {
		t.Fatalf("received: %v", d)
	}
	invID := get(d, "receivedInvitations.nodes.0.id").(string)
	d = s.ok(bob, `mutation($id: ID!) { ignoreInvitation(input: {invitationId: $id}) { invitation { status } userErrors { code } } }`, map[string]any{"id": invID})
	if get(d, "ignoreInvitation.invitation.status") != "IGNORED" {
		t.Fatalf("ignore: %v", d)
	}
	d = s.ok(ada, `query($id: ID!) { node(id: $id) { ... on Invitation { status respondedAt } } }`, map[string]any{"id": invID})
	if get(d, "node.status") != "PENDING" || get(d, "node.respondedAt") != nil {
		t.Fatalf("sender sees the ignore: %v", d)
	}

	// Withdraw selected: both, then the lists and the quota change.
	d = s.ok(ada, `mutation($ids: [ID!]!) { withdrawSelected(input: {invitationIds: $ids}) {
		withdrawnCount results { invitationId outcome invitation { status } } quota { pendingCount } userErrors { code } } }`,
		map[string]any{"ids": []string{invID, invToCy, "bogus"}})
	if get(d, "withdrawSelected.withdrawnCount") != 2.0 || get(d, "withdrawSelected.results.2.outcome") != "NOT_FOUND" ||
		get(d, "withdrawSelected.results.2.invitationId") != "bogus" || get(d, "withdrawSelected.quota.pendingCount") != 0.0 {
		t.Fatalf("withdrawSelected: %v", d)
	}
	d = s.ok(cy, `{ receivedInvitations { totalCount } }`, nil)
	if get(d, "receivedInvitations.totalCount") != 0.0 {
		t.Fatalf("withdrawn invitation still received: %v", d)
	}
	r = s.gql(ada, sendMutation, map[string]any{"to": cyID})
	if get(r.Data, "sendInvitation.userErrors.0.code") != "COOLDOWN_ACTIVE" || get(r.Data, "sendInvitation.userErrors.0.availableAt") == nil {
		t.Fatalf("cooldown: %s", r.raw)
	}

	// Mutual invitation: bob invites ada back after she invites him again later... here cy invites ada, ada invites cy.
	adaID := s.memberID(cy, "ada")
	s.ok(bob, sendMutation, map[string]any{"to": adaID})
	d = s.ok(ada, sendMutation, map[string]any{"to": bobID})
	if get(d, "sendInvitation.connected") != true || get(d, "sendInvitation.invitation.status") != "ACCEPTED" {
		t.Fatalf("mutual: %v", d)
	}
	d = s.ok(ada, `{ viewer { connectionCount } member(handle: "BOB") { connectionStatus connectionCount } }`, nil)
	if get(d, "viewer.connectionCount") != 1.0 || get(d, "member.connectionStatus") != "CONNECTED" {
		t.Fatalf("connected: %v", d)
	}
	d = s.ok(ada, `mutation($id: ID!) { removeConnection(input: {memberId: $id}) { removed userErrors { code } } }`, map[string]any{"id": bobID})
	if get(d, "removeConnection.removed") != true {
		t.Fatalf("remove: %v", d)
	}
}

func TestPendingInvitationsOverHTTP(t *testing.T) {
	s := startServer(t, nil)
	ada := s.member("ada")
	var ids []int64
	s.conn.Select(&ids, `INSERT INTO members (handle, name) SELECT 'r' || g, 'R' FROM generate_series(1, 30) g RETURNING id`)
	s.conn.MustExec(`INSERT INTO invitations (sender_id, recipient_id, sent_at)
		SELECT (SELECT id FROM members WHERE handle = 'ada'), id, now() - (row_number() OVER (ORDER BY id)) * interval '1 day'
		  FROM members WHERE handle LIKE 'r%'`)
	q := `query($f: PendingInvitationFilter, $first: Int, $after: String, $last: Int, $before: String) {
		pendingInvitations(filter: $f, first: $first, after: $after, last: $last, before: $before, orderBy: {field: SENT_AT, direction: ASC}) {
			totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } edges { cursor node { ageDays } } } }`
	d := s.ok(ada, q, map[string]any{"f": map[string]any{"olderThanDays": 14}, "first": 10})
	// Ages 1..30 days (a few seconds more): older than 14 days are 14..30.
	if get(d, "pendingInvitations.totalCount") != 17.0 || get(d, "pendingInvitations.edges.0.node.ageDays") != 30.0 ||
		get(d, "pendingInvitations.pageInfo.hasNextPage") != true {
		t.Fatalf("page 1: %v", d)
	}
	d2 := s.ok(ada, q, map[string]any{"f": map[string]any{"olderThanDays": 14}, "first": 10, "after": get(d, "pendingInvitations.pageInfo.endCursor")})
	if len(get(d2, "pendingInvitations.edges").([]any)) != 7 || get(d2, "pendingInvitations.pageInfo.hasNextPage") != false ||
		get(d2, "pendingInvitations.pageInfo.hasPreviousPage") != true {
		t.Fatalf("page 2: %v", d2)
	}
	d3 := s.ok(ada, q, map[string]any{"f": map[string]any{"olderThanDays": 14}, "last": 10, "before": get(d2, "pendingInvitations.pageInfo.startCursor")})
	if fmt.Sprint(get(d3, "pendingInvitations.edges")) != fmt.Sprint(get(d, "pendingInvitations.edges")) {
		t.Fatalf("backwards page differs:\n%v\n%v", d3, d)
	}
	for name, vars := range map[string]map[string]any{
		"FirstTooLarge": {"first": 101},
		"NegativeDays":  {"f": map[string]any{"olderThanDays": -1}},
		"EmptyBand":     {"f": map[string]any{"olderThanDays": 30, "newerThanDays": 7}},
		"BadCursor":     {"after": "garbage"},
		"BadDateTime":   {"f": map[string]any{"sentAfter": "yesterday"}},
	} {
		if r := s.gql(ada, q, vars); r.code() != "BAD_USER_INPUT" || r.status != 200 {
			t.Errorf("%s: %s", name, r.raw)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	s := startServer(t, nil)
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/": 200, "/nope": 404} {
		res, err := http.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, res.StatusCode, want)
		}
		if res.Header.Get("X-Request-ID") == "" {
			t.Errorf("%s: no X-Request-ID", path)
		}
	}
	// Not ready when the schema is behind the binary's migrations.
	s.conn.MustExec(`UPDATE schema_migrations SET version = 0`)
	res, err := http.Get(s.url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with an old schema: %d", res.StatusCode)
	}
	s.conn.MustExec(`UPDATE schema_migrations SET version = 1`)
}

// TestMutationsOverGETAreRefused: GET runs queries only. A mutation over GET is refused
// with 405 and "Allow: POST" (GraphQL over HTTP) and runs nothing; it and the GET
// transport's other refusals carry extensions.code, as POST's do.
func TestMutationsOverGETAreRefused(t *testing.T) {
	s := startServer(t, nil)
	tok := s.member("ada")
	s.member("bob")
	bob := s.memberID(tok, "bob")
	auth := map[string]string{"Authorization": "Bearer " + tok}
	doGET := func(query string) (*http.Response, *response) {
		t.Helper()
		res, raw := httpDo(t, "GET", s.url+"/query?"+query, auth, nil)
		r := &response{status: res.StatusCode, raw: string(raw)}
		if err := json.Unmarshal(raw, r); err != nil {
			t.Fatalf("GET ?%s: %d %s: %v", query, res.StatusCode, raw, err)
		}
		return res, r
	}
	mutation := `mutation M { sendInvitation(input: {recipientId: "` + bob + `"}) { connected } }`
	for _, q := range []url.Values{
		{"query": {mutation}},
		{"query": {mutation + ` query Q { __typename }`}, "operationName": {"M"}},
		{"query": {`subscription { invitationReceived { id } }`}},
	} {
		res, r := doGET(q.Encode())
		if res.StatusCode != http.StatusMethodNotAllowed || res.Header.Get("Allow") != "POST" || r.code() != "BAD_USER_INPUT" ||
			!strings.Contains(r.Errors[0].Message, "POST") {
			t.Errorf("%v: %d Allow %q %s", q, res.StatusCode, res.Header.Get("Allow"), r.raw)
		}
	}
	// The query of a document that also holds a mutation runs.
	q := url.Values{"query": {mutation + ` query Q { __typename }`}, "operationName": {"Q"}}
	if res, r := doGET(q.Encode()); res.StatusCode != 200 || get(r.Data, "__typename") != "Query" {
		t.Errorf("%v: %d %s", q, res.StatusCode, r.raw)
	}
	var n int
	s.conn.Get(&n, `SELECT count(*) FROM invitations`)
	if n != 0 {
		t.Fatal("a GET request ran a mutation")
	}
	// What the GET transport cannot decode: 400 with a code, and the reason.
	for query, reason := range map[string]string{
		"query=%7B+__typename+%7D&variables=%7Bnot+json":    "variables",
		"query=%7B+__typename+%7D&extensions=%5B1%2C":       "extensions",
		"query=%7B+__typename+%7D&variables=%ZZ":            "escape",
		"query=%7B+__typename+%7D&variables=%22a+string%22": "variables",
	} {
		res, r := doGET(query)
		if res.StatusCode != http.StatusBadRequest || r.code() != "BAD_USER_INPUT" || !strings.Contains(r.Errors[0].Message, reason) {
			t.Errorf("?%s: %d %s", query, res.StatusCode, r.raw)
		}
	}
	// Unchanged: a query runs, and one that does not parse keeps its own code.
	if res, r := doGET("query=%7B+viewer+%7B+handle+%7D+%7D"); res.StatusCode != 200 || r.code() != "" || get(r.Data, "viewer.handle") != "ada" {
		t.Errorf("GET query: %d %s", res.StatusCode, r.raw)
	}
	if res, r := doGET("query=%7B+viewer+%7B"); res.StatusCode == 200 && r.Data != nil || r.code() != "GRAPHQL_PARSE_FAILED" {
		t.Errorf("GET unparsable query: %d %s", res.StatusCode, r.raw)
	}
	// Form posts (a CORS "simple" request a cross-site page could send) are not a transport.
	res, err := http.PostForm(s.url+"/query", url.Values{"query": {`{ __typename }`}})
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode == 200 {
		t.Fatalf("form post answered 200")
	}
}

func TestNotificationsAndWithdrawOlderThanOverHTTP(t *testing.T) {
	s := startServer(t, nil)
	ada, bob := s.member("ada"), s.member("bob")
	s.conn.MustExec(`INSERT INTO members (handle, name) SELECT 'r' || g, 'R' FROM generate_series(1, 3) g`)
	for _, h := range []string{"bob", "r1", "r2"} {
		s.ok(ada, sendMutation, map[string]any{"to": s.memberID(ada, h)})
	}
	s.conn.MustExec(`UPDATE invitations SET sent_at = now() - interval '20 days'`)

	d := s.ok(bob, `{ notifications(first: 5) { totalCount unreadCount nodes { id kind read invitation { sender { handle } } } } }`, nil)
	if get(d, "notifications.totalCount") != 1.0 || get(d, "notifications.nodes.0.kind") != "INVITATION_RECEIVED" ||
		get(d, "notifications.nodes.0.invitation.sender.handle") != "ada" {
		t.Fatalf("notifications: %v", d)
	}
	nid := get(d, "notifications.nodes.0.id").(string)
	if got := s.ok(bob, `query($id: ID!) { node(id: $id) { ... on Notification { kind } } }`, map[string]any{"id": nid}); get(got, "node.kind") != "INVITATION_RECEIVED" {
		t.Fatalf("node: %v", got)
	}
	if got := s.ok(ada, `query($id: ID!) { node(id: $id) { id } }`, map[string]any{"id": nid}); get(got, "node") != nil {
		t.Fatalf("ada reads bob's notification: %v", got)
	}
	d = s.ok(bob, `mutation($ids: [ID!]) { markNotificationsRead(input: {ids: $ids}) { count userErrors { code } } }`, map[string]any{"ids": []string{nid, "bogus"}})
	if get(d, "markNotificationsRead.count") != 1.0 {
		t.Fatalf("mark read: %v", d)
	}

	q := `mutation($dry: Boolean!) { withdrawOlderThan(input: {olderThanDays: 14, dryRun: $dry, limit: 2}) {
		withdrawnCount results { invitationId outcome invitation { status recipient { handle } } } userErrors { code } } }`
	dry := s.ok(ada, q, map[string]any{"dry": true})
	real := s.ok(ada, q, map[string]any{"dry": false})
	if get(dry, "withdrawOlderThan.withdrawnCount") != 0.0 || get(real, "withdrawOlderThan.withdrawnCount") != 2.0 ||
		get(dry, "withdrawOlderThan.results.0.invitation.status") != "PENDING" ||
		get(real, "withdrawOlderThan.results.0.invitation.status") != "WITHDRAWN" {
		t.Fatalf("dry %v\nreal %v", dry, real)
	}
	for i := 0; i < 2; i++ {
		p := fmt.Sprintf("withdrawOlderThan.results.%d.invitationId", i)
		if get(dry, p) != get(real, p) {
			t.Fatalf("the dry run listed %v, the real call withdrew %v", get(dry, p), get(real, p))
		}
	}
	// Nothing was published or notified for the withdrawals.
	if d := s.ok(ada, `{ notifications { totalCount } }`, nil); get(d, "notifications.totalCount") != 0.0 {
		t.Fatalf("ada notified: %v", d)
	}
}
