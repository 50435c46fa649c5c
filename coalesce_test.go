package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"
)

// countingConn counts the writes that reach a connection.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes []int
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, len(p))
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countingConn) sizes() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]int(nil), c.writes...)
}

// countingListener wraps each accepted connection in a countingConn, then in what
// wrap makes of it, and hands the countingConns to the test.
type countingListener struct {
	net.Listener
	wrap  func(net.Conn) net.Conn
	conns chan *countingConn
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	cc := &countingConn{Conn: c}
	l.conns <- cc
	return l.wrap(cc), nil
}

// serveBodies serves /N with a body of N bytes (a repeating pattern), through wrap,
// and returns the server's address and its connections as they are accepted.
func serveBodies(t *testing.T, wrap func(net.Conn) net.Conn) (string, <-chan *countingConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan *countingConn, 16)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n, _ := strconv.Atoi(r.URL.Path[1:])
			w.Header().Set("Content-Length", strconv.Itoa(n))
			w.Write(pattern(n))
		}),
		ConnState: coalescingConnState,
	}
	go srv.Serve(countingListener{ln, wrap, conns})
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String(), conns
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a' + byte(i%26)
	}
	return b
}

func coalescing(c net.Conn) net.Conn { return &coalescingConn{Conn: c} }

// getBody sends GET /n on conn (keep-alive) and checks the body.
func getBody(t *testing.T, conn net.Conn, r *bufio.Reader, n int) {
	t.Helper()
	fmt.Fprintf(conn, "GET /%d HTTP/1.1\r\nHost: test\r\n\r\n", n)
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		t.Fatalf("GET /%d: %v", n, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || !bytes.Equal(body, pattern(n)) {
		t.Fatalf("GET /%d: %d bytes, %v; want the %d bytes sent", n, len(body), err, n)
	}
}

func TestCoalescingConnSendsAResponseUpTo8kBInOneWrite(t *testing.T) {
	for name, c := range map[string]struct {
		wrap  func(net.Conn) net.Conn
		write int // writes of the 4.6 kB response
	}{
		"net/http alone": {func(c net.Conn) net.Conn { return c }, 2},
		"coalescing":     {coalescing, 1},
	} {
		t.Run(name, func(t *testing.T) {
			addr, conns := serveBodies(t, c.wrap)
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			r := bufio.NewReader(conn)
			getBody(t, conn, r, 4600)
			server := <-conns
			if got := server.sizes(); len(got) != c.write {
				t.Errorf("the 4.6 kB response took writes of %v bytes, want %d writes", got, c.write)
			}
		})
	}
}

// Responses of every size around the buffer's multiples arrive whole, in order, on
// one keep-alive connection (held data never waits for a write that does not come),
// and up to 8 kB in one write. (Larger ones join the held buffer and the rest in one
// writev on a TCP connection, which this counting connection cannot show.)
func TestCoalescingConnDeliversEveryResponseWhole(t *testing.T) {
	addr, conns := serveBodies(t, coalescing)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	getBody(t, conn, r, 1000) // the header's length, with a 4-digit Content-Length
	server := <-conns
	header := server.sizes()[0] - 1000
	for _, total := range []int{4096, 8192, 12288, 20480} {
		for _, n := range []int{total - header - 1, total - header, total - header + 1} {
			before := len(server.sizes())
			getBody(t, conn, r, n)
			writes := server.sizes()[before:]
			sum := 0
			for _, w := range writes {
				sum += w
			}
			if sum <= n || (sum <= 2*httpWriteBuffer && len(writes) != 1) {
				t.Errorf("a response of %d bytes took writes of %v bytes", sum, writes)
			}
		}
	}
	getBody(t, conn, r, 1<<20) // joined to the held buffer without a copy
	getBody(t, conn, r, 10)
}

// A held write with nothing after it (a streamed response's flush that ended at the
// buffer's end) goes out on its own.
func TestCoalescingConnSendsHeldDataWithoutAFollowingWrite(t *testing.T) {
	client, server := tcpPair(t)
	c := &coalescingConn{Conn: server}
	data := pattern(httpWriteBuffer)
	if n, err := c.Write(data); n != len(data) || err != nil {
		t.Fatalf("Write: %d, %v", n, err)
	}
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(data))
	if _, err := io.ReadFull(client, got); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %v: the held write never arrived", err)
	}
}

// Once hijacked (a WebSocket), writes of any size pass straight through.
func TestCoalescingConnPassesHijackedWritesThrough(t *testing.T) {
	client, server := tcpPair(t)
	counted := &countingConn{Conn: server}
	c := &coalescingConn{Conn: counted}
	coalescingConnState(c, http.StateHijacked)
	c.Write(pattern(httpWriteBuffer))
	if got := counted.sizes(); len(got) != 1 || got[0] != httpWriteBuffer {
		t.Fatalf("writes %v, want the hijacked write at once", got)
	}
	client.Close()
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}
