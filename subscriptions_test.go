package main

// Subscriptions (SPEC section 3): over WebSocket (graphql-transport-ws) and SSE, for
// the signed-in viewer only, fed by events that cross processes through PostgreSQL.
// Two servers share one database: changes go through one, subscribers listen on the
// other. Nothing here sleeps: every wait has a deadline, and "nothing was delivered"
// is proven by a later sentinel event arriving first.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/coder/websocket/wsjson"
	"github.com/jmoiron/sqlx"

	"invitations/db/dbtest"
	"invitations/graph"
)

// subWait bounds every wait of these tests.
const subWait = 10 * time.Second

// subLogs collects a server's log and wakes waiters on every write.
type subLogs struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	written chan struct{} // closed and replaced on each write
}

func (l *subLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	close(l.written)
	l.written = make(chan struct{})
	return len(p), nil
}

// waitCount waits until the log holds at least n lines containing s.
func (l *subLogs) waitCount(t *testing.T, s string, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), subWait)
	defer cancel()
	for {
		l.mu.Lock()
		count, written := strings.Count(l.buf.String(), s), l.written
		l.mu.Unlock()
		if count >= n {
			return
		}
		select {
		case <-written:
		case <-ctx.Done():
			t.Fatalf("the log does not hold %d × %q", n, s)
		}
	}
}

// subServer is a real server on a shared database, with its log at debug level.
type subServer struct {
	*server
	logs       *subLogs
	subscribed int // subscriptions started on it so far
	// stop begins its shutdown (run's context ends) and returns what run returned.
	stop func() error
}

// startServerOn is startServer on an existing database (dsn), so that several
// servers, like replicas, share it.
func startServerOn(t *testing.T, dsn string) *subServer {
	t.Helper()
	return startServerWith(t, dsn, nil)
}

// startServerWith is startServerOn with extra environment variables.
func startServerWith(t *testing.T, dsn string, extra map[string]string) *subServer {
	t.Helper()
	env := map[string]string{"DATABASE_URL": dsn, "JWT_SECRET": testSecret, "PORT": "0", "LOG_LEVEL": "debug"}
	maps.Copy(env, extra)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	logs := &subLogs{written: make(chan struct{})}
	go func() {
		done <- run(ctx, nil, func(k string) string { return env[k] }, pw, logs)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	url := ""
	for url == "" && lines.Scan() {
		if m := regexp.MustCompile(`listening on port (\d+)`).FindStringSubmatch(lines.Text()); m != nil {
			url = "http://127.0.0.1:" + m[1]
		}
	}
	if url == "" {
		cancel()
		t.Fatalf("server did not start: %v\n%s", <-done, logs.buf.String())
	}
	go io.Copy(io.Discard, pr)
	stop := sync.OnceValue(func() error {
		cancel()
		return <-done
	})
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("server exited: %v", err)
		}
	})
	s := &server{t: t, url: url, out: &bytes.Buffer{}, conn: sqlx.MustOpen("pgx", dsn)}
	t.Cleanup(func() { s.conn.Close() })
	return &subServer{server: s, logs: logs, stop: stop}
}

// subMessage is a graphql-transport-ws message.
type subMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

// subConn is a graphql-transport-ws client connection.
type subConn struct {
	t *testing.T
	c *websocket.Conn
	s *subServer
}

// subDial opens a WebSocket on s's endpoint without initialising it.
func subDial(t *testing.T, s *subServer, header http.Header) (*websocket.Conn, *http.Response, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), subWait)
	defer cancel()
	c, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/query",
		&websocket.DialOptions{Subprotocols: []string{"graphql-transport-ws"}, HTTPHeader: header})
	if err == nil {
		t.Cleanup(func() { c.CloseNow() })
		if c.Subprotocol() != "graphql-transport-ws" {
			t.Fatalf("subprotocol %q", c.Subprotocol())
		}
	}
	return c, res, err
}

// subInit dials and sends connection_init with payload; it returns the connection
// and the server's first answer (a message, or the error that closed the socket).
func subInit(t *testing.T, s *subServer, header http.Header, payload map[string]any) (*subConn, *subMessage, error) {
	t.Helper()
	c, _, err := subDial(t, s, header)
	if err != nil {
		t.Fatal(err)
	}
	sc := &subConn{t: t, c: c, s: s}
	init := subMessage{Type: "connection_init"}
	if payload != nil {
		init.Payload, _ = json.Marshal(payload)
	}
	sc.send(init)
	m, err := sc.read()
	return sc, m, err
}

// subConnect opens an authenticated connection for token on s.
func subConnect(t *testing.T, s *subServer, token string) *subConn {
	t.Helper()
	sc, m, err := subInit(t, s, nil, map[string]any{"Authorization": "Bearer " + token})
	if err != nil || m.Type != "connection_ack" {
		t.Fatalf("connection_init: %+v %v", m, err)
	}
	return sc
}

func (sc *subConn) send(m subMessage) {
	sc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), subWait)
	defer cancel()
	if err := wsjson.Write(ctx, sc.c, m); err != nil {
		sc.t.Fatal(err)
	}
}

// read returns the next message, answering the server's pings on the way.
func (sc *subConn) read() (*subMessage, error) {
	ctx, cancel := context.WithTimeout(context.Background(), subWait)
	defer cancel()
	for {
		var m subMessage
		if err := wsjson.Read(ctx, sc.c, &m); err != nil {
			return nil, err
		}
		if m.Type == "ping" {
			sc.send(subMessage{Type: "pong"})
			continue
		}
		return &m, nil
	}
}

// subscribe starts a subscription and waits until the server has registered it (its
// debug log says so), as graphql-transport-ws acknowledges nothing.
func (sc *subConn) subscribe(id, query string) {
	sc.t.Helper()
	payload, _ := json.Marshal(map[string]any{"query": query})
	sc.send(subMessage{ID: id, Type: "subscribe", Payload: payload})
	sc.s.subscribed++
	sc.s.logs.waitCount(sc.t, `msg="subscription started"`, sc.s.subscribed)
}

// next returns the data of the next message, which must be a `next` for id: events
// come in commit order, so this also proves nothing else was sent before it.
func (sc *subConn) next(id string) map[string]any {
	sc.t.Helper()
	m, err := sc.read()
	if err != nil {
		sc.t.Fatalf("waiting for %s: %v", id, err)
	}
	var p struct {
		Data   map[string]any `json:"data"`
		Errors []any          `json:"errors"`
	}
	json.Unmarshal(m.Payload, &p)
	if m.Type != "next" || m.ID != id || len(p.Errors) > 0 {
		sc.t.Fatalf("want next for %s, got %s for %q: %s", id, m.Type, m.ID, m.Payload)
	}
	return p.Data
}

const (
	subReceived = `subscription { invitationReceived { id status message sender { handle connectionStatus } recipient { handle connectionCount } } }`
	subAccepted = `subscription { invitationAccepted { id status sender { handle } recipient { handle connectionStatus } } }`
)

// subSend sends an invitation through s and returns its id.
func subSend(s *subServer, token, to, msg string) string {
	s.t.Helper()
	d := s.ok(token, sendMutation, map[string]any{"to": to, "msg": msg})
	id, _ := get(d, "sendInvitation.invitation.id").(string)
	if id == "" {
		s.t.Fatalf("send: %v", d)
	}
	return id
}

// subRespond accepts, ignores or withdraws an invitation through s.
func subRespond(s *subServer, token, mutation, id string) {
	s.t.Helper()
	d := s.ok(token, `mutation($id: ID!) { `+mutation+`(input: {invitationId: $id}) { invitation { status } userErrors { code } } }`,
		map[string]any{"id": id})
	if get(d, mutation+".userErrors.0") != nil || get(d, mutation+".invitation") == nil {
		s.t.Fatalf("%s: %v", mutation, d)
	}
}

func TestSubscriptionsOverWebSocketAcrossServers(t *testing.T) {
	dsn := dbtest.DSN(t)
	s1, s2 := startServerOn(t, dsn), startServerOn(t, dsn)
	ada, bob, cy, dan := s1.member("ada"), s1.member("bob"), s1.member("cy"), s1.member("dan")
	bobID, cyID, danID := s1.memberID(ada, "bob"), s1.memberID(ada, "cy"), s1.memberID(ada, "dan")

	// Subscribers on server 1; every change goes through server 2.
	bobWS := subConnect(t, s1, bob)
	bobWS.subscribe("r", subReceived)
	adaWS := subConnect(t, s1, ada)
	adaWS.subscribe("a", subAccepted)
	cyWS := subConnect(t, s1, cy) // two subscriptions on one connection
	cyWS.subscribe("r", subReceived)
	cyWS.subscribe("a", subAccepted)

	start := time.Now()
	toBob := subSend(s2, ada, bobID, "Hi Bob")
	returned := time.Now()
	got := bobWS.next("r")
	t.Logf("latency: the mutation took %v over HTTP; the WebSocket message came %v after its response",
		returned.Sub(start), time.Since(returned))
	inv := get(got, "invitationReceived").(map[string]any)
	if inv["id"] != toBob || inv["status"] != "PENDING" || inv["message"] != "Hi Bob" || get(inv, "sender.handle") != "ada" ||
		get(inv, "sender.connectionStatus") != "INVITATION_RECEIVED" || get(inv, "recipient.handle") != "bob" ||
		get(inv, "recipient.connectionCount") != 0.0 {
		t.Fatalf("invitationReceived: %v", got)
	}

	// A withdrawal sends nothing: bob's next message is the sentinel.
	subRespond(s2, ada, "withdrawInvitation", toBob)
	cyToBob := subSend(s2, cy, bobID, "")
	if id := get(bobWS.next("r"), "invitationReceived.id"); id != cyToBob {
		t.Fatalf("after the withdrawal: %v, want %s", id, cyToBob)
	}
	// Nor does an ignore.
	subRespond(s2, bob, "ignoreInvitation", cyToBob)
	danToBob := subSend(s2, dan, bobID, "")
	if id := get(bobWS.next("r"), "invitationReceived.id"); id != danToBob {
		t.Fatalf("after the ignore: %v, want %s", id, danToBob)
	}

	// cy's first message is the invitation sent to cy: none of bob's came to cy.
	adaToCy := subSend(s2, ada, cyID, "")
	if id := get(cyWS.next("r"), "invitationReceived.id"); id != adaToCy {
		t.Fatalf("cy received %v, want %s", id, adaToCy)
	}
	// An acceptance reaches the sender, whose first message it is: ada's withdrawal
	// sent ada nothing.
	subRespond(s2, cy, "acceptInvitation", adaToCy)
	got = adaWS.next("a")
	inv = get(got, "invitationAccepted").(map[string]any)
	if inv["id"] != adaToCy || inv["status"] != "ACCEPTED" || get(inv, "sender.handle") != "ada" ||
		get(inv, "recipient.handle") != "cy" || get(inv, "recipient.connectionStatus") != "CONNECTED" {
		t.Fatalf("invitationAccepted: %v", got)
	}
	// cy's invitation that bob ignored sent cy nothing: cy's first acceptance is dan's.
	cyToDan := subSend(s2, cy, danID, "")
	subRespond(s2, dan, "acceptInvitation", cyToDan)
	if id := get(cyWS.next("a"), "invitationAccepted.id"); id != cyToDan {
		t.Fatalf("cy's acceptances: %v, want %s", id, cyToDan)
	}

	// Every message is read afresh, not from the first one's loaders: bob has a
	// connection now.
	eve, fred := s1.member("eve"), s1.member("fred")
	subRespond(s2, bob, "acceptInvitation", danToBob)
	eveToBob := subSend(s2, eve, bobID, "")
	got = bobWS.next("r")
	if get(got, "invitationReceived.id") != eveToBob || get(got, "invitationReceived.recipient.connectionCount") != 1.0 {
		t.Fatalf("second invitation: %v", got)
	}

	// The client completing a subscription ends it (the server confirms); the
	// connection's other subscription carries on.
	cyWS.send(subMessage{ID: "r", Type: "complete"})
	if m, err := cyWS.read(); err != nil || m.Type != "complete" || m.ID != "r" {
		t.Fatalf("complete: %+v %v", m, err)
	}
	subSend(s2, eve, cyID, "") // not delivered: the sentinel comes first
	cyToFred := subSend(s2, cy, s1.memberID(fred, "fred"), "")
	subRespond(s2, fred, "acceptInvitation", cyToFred)
	if id := get(cyWS.next("a"), "invitationAccepted.id"); id != cyToFred {
		t.Fatalf("after complete: %v, want %s", id, cyToFred)
	}
}

func TestSubscriptionsWebSocketAuthentication(t *testing.T) {
	s := startServerOn(t, dbtest.DSN(t))
	ada, bob := s.member("ada"), s.member("bob")
	adaID := s.memberID(bob, "ada")
	bearer := func(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }

	refused := []struct {
		name    string
		header  http.Header
		payload map[string]any
		reason  string
	}{
		{"no payload", nil, nil, "authentication required"},
		{"empty payload", nil, map[string]any{}, "authentication required"},
		{"bad token", nil, map[string]any{"Authorization": "Bearer nope"}, "the token is not valid"},
		{"no scheme", nil, map[string]any{"Authorization": ada}, "must be: Bearer"},
		{"unknown member", nil, map[string]any{"Authorization": "Bearer " + s.token("nobody")}, "does not exist"},
		{"expired", nil, map[string]any{"authToken": subToken(t, "ada", -time.Minute)}, "expired"},
		{"bad upgrade header", bearer("nope"), nil, "the token is not valid"},
		{"bad payload beats a good header", bearer(ada), map[string]any{"authorization": "Bearer nope"}, "not valid"},
	}
	for _, c := range refused {
		_, m, err := subInit(t, s, c.header, c.payload)
		var ce websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4403 || !strings.Contains(ce.Reason, c.reason) {
			t.Errorf("%s: got %+v, %v; want close 4403 %q", c.name, m, err, c.reason)
		}
	}

	accepted := []struct {
		name    string
		header  http.Header
		payload map[string]any
	}{
		{"Authorization", nil, map[string]any{"Authorization": "Bearer " + ada}},
		{"authorization", nil, map[string]any{"authorization": "Bearer " + ada}},
		{"authToken", nil, map[string]any{"authToken": ada}},
		{"authToken with scheme", nil, map[string]any{"authToken": "Bearer " + ada}},
		{"good payload beats a bad header", bearer("nope"), map[string]any{"Authorization": "Bearer " + ada}},
		{"upgrade header", bearer(ada), nil},
	}
	var last *subConn
	for _, c := range accepted {
		sc, m, err := subInit(t, s, c.header, c.payload)
		if err != nil || m.Type != "connection_ack" {
			t.Fatalf("%s: %+v %v", c.name, m, err)
		}
		last = sc
	}
	// The last connection (authenticated by the upgrade request's header) is ada's.
	last.subscribe("1", subReceived)
	id := subSend(s, bob, adaID, "")
	if got := get(last.next("1"), "invitationReceived.id"); got != id {
		t.Fatalf("got %v, want %s", got, id)
	}

	// Browsers from other origins are refused at the upgrade; same-origin ones and
	// clients that send no Origin are not.
	if _, res, err := subDial(t, s, http.Header{"Origin": {"https://evil.example"}}); err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin upgrade: %v", err)
	}
	if _, _, err := subDial(t, s, http.Header{"Origin": {s.url}}); err != nil {
		t.Fatalf("same-origin upgrade: %v", err)
	}

	// A connection ends when its token expires (exp has one-second precision).
	sc, m, err := subInit(t, s, nil, map[string]any{"Authorization": "Bearer " + subToken(t, "ada", 2*time.Second)})
	if err != nil || m.Type != "connection_ack" {
		t.Fatalf("short-lived token: %+v %v", m, err)
	}
	if m, err := sc.read(); websocket.CloseStatus(err) != websocket.StatusNormalClosure {
		t.Fatalf("after the token expired: %+v %v", m, err)
	}
}

func subToken(t *testing.T, handle string, ttl time.Duration) string {
	t.Helper()
	tok, err := graph.SignToken([]byte(testSecret), handle, false, ttl, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// subSSE posts a subscription with Accept: text/event-stream to s and returns a
// function reading the next event (its name and data).
func subSSE(t *testing.T, s *subServer, token, query string) func() (event, data string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*subWait)
	t.Cleanup(cancel)
	body, _ := json.Marshal(map[string]any{"query": query})
	req, _ := http.NewRequestWithContext(ctx, "POST", s.url+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { res.Body.Close() })
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("SSE: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() (event, data string) {
		t.Helper()
		deadline := time.After(subWait)
		for {
			select {
			case line, ok := <-lines:
				switch {
				case !ok:
					t.Fatalf("SSE stream ended (event %q)", event)
				case line == "" && event != "":
					return event, data
				case strings.HasPrefix(line, "event: "):
					event = strings.TrimPrefix(line, "event: ")
				case strings.HasPrefix(line, "data: "):
					data += strings.TrimPrefix(line, "data: ")
				}
			case <-deadline:
				t.Fatal("no SSE event in time")
			}
		}
	}
}

func TestSubscriptionsOverSSE(t *testing.T) {
	dsn := dbtest.DSN(t)
	s1, s2 := startServerOn(t, dsn), startServerOn(t, dsn)
	ada, bob := s1.member("ada"), s1.member("bob")
	bobID := s1.memberID(ada, "bob")

	next := subSSE(t, s1, bob, subReceived)
	s1.logs.waitCount(t, `msg="subscription started"`, 1)
	id := subSend(s2, ada, bobID, "Hello over SSE")
	event, data := next()
	var r response
	if err := json.Unmarshal([]byte(data), &r); err != nil || event != "next" || len(r.Errors) > 0 ||
		get(r.Data, "invitationReceived.id") != id || get(r.Data, "invitationReceived.message") != "Hello over SSE" ||
		get(r.Data, "invitationReceived.sender.handle") != "ada" {
		t.Fatalf("SSE event %q: %s", event, data)
	}

	// Without a valid token the subscription is refused, then the stream completes.
	for _, token := range []string{"", "nope"} {
		next := subSSE(t, s1, token, subAccepted)
		event, data := next()
		var r response
		json.Unmarshal([]byte(data), &r)
		if event != "next" || r.code() != "UNAUTHENTICATED" || r.Data != nil {
			t.Fatalf("token %q: %q %s", token, event, data)
		}
		if event, _ := next(); event != "complete" {
			t.Fatalf("token %q: then %q", token, event)
		}
	}
}

// TestSubscriptionsEndAtShutdown: subscribers get their events while the server still
// serves (SHUTDOWN_DELAY, /readyz at 503); when the listener closes, an SSE stream gets
// its "complete" event and a WebSocket a close frame, and run returns nil. (Events used
// to stop as soon as shutdown began, and the WebSocket to stay open, silent, until the
// process exited.)
func TestSubscriptionsEndAtShutdown(t *testing.T) {
	t.Parallel() // mostly waiting out SHUTDOWN_DELAY
	s := startServerWith(t, dbtest.DSN(t), map[string]string{"SHUTDOWN_DELAY": "2s"})
	ada, bob := s.member("ada"), s.member("bob")
	bobID := s.memberID(ada, "bob")
	ws := subConnect(t, s, bob)
	ws.subscribe("1", subReceived)
	next := subSSE(t, s, bob, subReceived)
	s.logs.waitCount(t, `msg="subscription started"`, 2)

	stopped := make(chan error, 1)
	go func() { stopped <- s.stop() }()
	for deadline := time.Now().Add(subWait); ; {
		res, err := http.Get(s.url + "/readyz")
		if err != nil {
			t.Fatalf("/readyz during SHUTDOWN_DELAY: %v", err)
		}
		res.Body.Close()
		if res.StatusCode == http.StatusServiceUnavailable {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("/readyz did not answer 503 after shutdown began")
		}
	}
	id := subSend(s, ada, bobID, "Sent while draining")
	if got := get(ws.next("1"), "invitationReceived.id"); got != id {
		t.Errorf("WebSocket: event for %v, want %s", got, id)
	}
	if event, data := next(); event != "next" || !strings.Contains(data, id) {
		t.Errorf("SSE: %q %s, want the event for %s", event, data, id)
	}

	if event, data := next(); event != "complete" {
		t.Errorf("SSE: %q %s, want complete", event, data)
	}
	for {
		m, err := ws.read()
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Errorf("the WebSocket ended with %v, want a close frame", err)
			}
			break
		}
		if m.Type != "complete" || m.ID != "1" {
			t.Errorf("WebSocket: %+v before the close", m)
		}
	}
	if err := <-stopped; err != nil {
		t.Errorf("run: %v", err)
	}
}

// TestSubscriptionsSSEKeepAlive: an idle SSE stream gets a comment line every
// KEEPALIVE_INTERVAL, so that proxies do not cut it as timed out.
func TestSubscriptionsSSEKeepAlive(t *testing.T) {
	s := startServerWith(t, dbtest.DSN(t), map[string]string{"KEEPALIVE_INTERVAL": "20ms"})
	bob := s.member("bob")
	ctx, cancel := context.WithTimeout(context.Background(), subWait)
	defer cancel()
	body, _ := json.Marshal(map[string]any{"query": subReceived})
	req, _ := http.NewRequestWithContext(ctx, "POST", s.url+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Authorization", "Bearer "+bob)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	lines, pings := bufio.NewScanner(res.Body), 0
	for pings < 3 && lines.Scan() {
		switch line := lines.Text(); {
		case line == ": ping":
			pings++
		case line != "" && line != ":":
			t.Fatalf("idle stream: %q", line)
		}
	}
	if pings < 3 {
		t.Fatalf("%d keepalive comments, then %v", pings, lines.Err())
	}
}

// A write to an SSE response after its handler returned (gqlgen's keepalive ticking
// just then) does not reach net/http's writer.
func TestStreamWriterDropsLateWrites(t *testing.T) {
	rec := httptest.NewRecorder()
	w := &streamWriter{ResponseWriter: rec}
	if _, err := io.WriteString(w, ": ping\n\n"); err != nil {
		t.Fatal(err)
	}
	w.Flush()
	if !rec.Flushed {
		t.Fatal("the stream's flush did not reach the writer")
	}
	w.end()
	if n, err := io.WriteString(w, ": ping\n\n"); n != 0 || err == nil {
		t.Errorf("late write: %d %v", n, err)
	}
	rec.Flushed = false
	w.Flush()
	if rec.Body.String() != ": ping\n\n" || rec.Flushed {
		t.Errorf("after the end: %q, flushed %v", rec.Body, rec.Flushed)
	}
}

// An SSE stream outlives the server's read and write timeouts (a WebSocket, being
// hijacked, does anyway).
func TestSubscriptionsSSEOutlivesServerTimeouts(t *testing.T) {
	const chunks, every = 5, 100 * time.Millisecond
	stream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body)
		ticker := time.NewTicker(every)
		defer ticker.Stop()
		for i := 0; i < chunks; i++ {
			select {
			case <-r.Context().Done():
				return
			case <-ticker.C:
			}
			io.WriteString(w, "data: x\n\n")
			w.(http.Flusher).Flush()
		}
	})
	a := &app{logger: newLogger(io.Discard, 0), streamsCtx: context.Background()}
	srv := httptest.NewUnstartedServer(a.logRequests(a.streams(stream)))
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = every, every
	srv.Start()
	defer srv.Close()
	req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(`{"query":"subscription { x }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "text/event-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil || strings.Count(string(b), "data: x") != chunks {
		t.Fatalf("stream cut short: %q %v", b, err)
	}
}
