package main

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// net/http writes a response through a 4 kB buffer per connection: a response of
// 4 to 8 kB (a page of 20 invitations is about 4.6 kB) leaves in two writes, the
// buffer when it fills, then the rest. On loopback and in most deployments each write
// is a system call that also runs the receiver's side of TCP and wakes it: about 5% of
// a page request's CPU each. A coalescingConn holds a full buffer's write back and
// sends it with the next one, as one write.
//
// Held data is never kept waiting on something that may not come: it goes out with
// the next write; before any read, deadline change or close of the connection (net/http
// sets the write deadline right after each response and reads the next request); and
// otherwise after holdLimit, for a streamed response (server-sent events) whose flush
// ended exactly at a buffer's end. Hijacked connections (WebSockets) are not held.

// httpWriteBuffer is the size of net/http's per-connection write buffer: a write of
// exactly this size is that buffer filling up in the middle of a response.
const httpWriteBuffer = 4 << 10

// holdLimit bounds how long held data waits for the write that would join it.
const holdLimit = time.Millisecond

// coalescingListener hands out coalescingConns.
type coalescingListener struct{ net.Listener }

func (l coalescingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &coalescingConn{Conn: c}, nil
}

// holdBuffers recycles the buffers that hold a write and the one after it.
var holdBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 2*httpWriteBuffer); return &b }}

type coalescingConn struct {
	net.Conn

	mu    sync.Mutex
	held  *[]byte // a full buffer's write, not sent yet; nil when none
	timer *time.Timer
	err   error // the failure of a held write sent by the timer, for the next Write
	plain bool  // hijacked: writes pass straight through
}

func (c *coalescingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	if c.held != nil {
		c.timer.Stop()
		var err error
		if held := *c.held; len(held)+len(p) <= cap(held) {
			_, err = c.Conn.Write(append(held, p...))
		} else { // a large write: both in one writev, without copying it
			bufs := net.Buffers{held, p}
			_, err = bufs.WriteTo(c.Conn)
		}
		c.release()
		if err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if len(p) != httpWriteBuffer || c.plain {
		return c.Conn.Write(p)
	}
	b := holdBuffers.Get().(*[]byte)
	*b = append((*b)[:0], p...)
	c.held = b
	if c.timer == nil {
		c.timer = time.AfterFunc(holdLimit, c.flushHeld)
	} else {
		c.timer.Reset(holdLimit)
	}
	return len(p), nil
}

// release returns the hold buffer to the pool once written.
func (c *coalescingConn) release() {
	*c.held = (*c.held)[:0]
	holdBuffers.Put(c.held)
	c.held = nil
}

// flushHeld sends held data, if any, keeping the failure for the next Write.
func (c *coalescingConn) flushHeld() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
}

func (c *coalescingConn) flushLocked() {
	if c.held == nil {
		return
	}
	c.timer.Stop()
	_, err := c.Conn.Write(*c.held)
	c.release()
	if err != nil && c.err == nil {
		c.err = err
	}
}

// passThrough sends held data and stops holding writes: the connection is no longer
// net/http's.
func (c *coalescingConn) passThrough() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
	c.plain = true
}

func (c *coalescingConn) Read(p []byte) (int, error) {
	c.flushHeld()
	return c.Conn.Read(p)
}

func (c *coalescingConn) SetDeadline(t time.Time) error {
	c.flushHeld()
	return c.Conn.SetDeadline(t)
}

func (c *coalescingConn) SetReadDeadline(t time.Time) error {
	c.flushHeld()
	return c.Conn.SetReadDeadline(t)
}

func (c *coalescingConn) SetWriteDeadline(t time.Time) error {
	c.flushHeld()
	return c.Conn.SetWriteDeadline(t)
}

func (c *coalescingConn) Close() error {
	c.flushHeld()
	return c.Conn.Close()
}

// CloseWrite is what net/http calls, when the connection has one, before closing a
// connection it answered with an error.
func (c *coalescingConn) CloseWrite() error {
	c.flushHeld()
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// coalescingConnState is the http.Server's ConnState hook: a hijacked connection's
// writes pass straight through.
func coalescingConnState(c net.Conn, state http.ConnState) {
	if cc, ok := c.(*coalescingConn); ok && state == http.StateHijacked {
		cc.passThrough()
	}
}
