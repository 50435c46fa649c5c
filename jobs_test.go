package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"
	"github.com/jmoiron/sqlx"

	"invitations/db"
	"invitations/db/dbtest"
)

// smtpSink is an SMTP server on 127.0.0.1 that records every message it accepts.
type smtpSink struct {
	addr string
	mu   sync.Mutex
	msgs []sinkMessage
	// rejectRcpt, when set, refuses every recipient with 550.
	rejectRcpt bool
}

type sinkMessage struct {
	From, User, Password string
	To                   []string
	Data                 []byte
}

func startSMTPSink(t *testing.T) *smtpSink {
	t.Helper()
	sink := &smtpSink{}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) {
		return &sinkSession{sink: sink}, nil
	}))
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	srv.ErrorLog = log.New(io.Discard, "", 0)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	sink.addr = ln.Addr().String()
	return sink
}

// messages returns the accepted messages, parsed.
func (s *smtpSink) messages(t *testing.T) []*mail.Message {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*mail.Message
	for _, m := range s.msgs {
		msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
		if err != nil {
			t.Fatalf("unparsable message: %v\n%s", err, m.Data)
		}
		out = append(out, msg)
	}
	return out
}

type sinkSession struct {
	sink *smtpSink
	msg  sinkMessage
}

func (s *sinkSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *sinkSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, password string) error {
		s.msg.User, s.msg.Password = user, password
		return nil
	}), nil
}

func (s *sinkSession) Mail(from string, _ *gosmtp.MailOptions) error {
	s.msg.From = from
	return nil
}

func (s *sinkSession) Rcpt(to string, _ *gosmtp.RcptOptions) error {
	if s.sink.rejectRcpt {
		return &gosmtp.SMTPError{Code: 550, EnhancedCode: gosmtp.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	s.msg.To = append(s.msg.To, to)
	return nil
}

func (s *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := s.msg
	m.Data = b
	s.sink.mu.Lock()
	s.sink.msgs = append(s.sink.msgs, m)
	s.sink.mu.Unlock()
	return nil
}

func (s *sinkSession) Reset()        { s.msg = sinkMessage{User: s.msg.User, Password: s.msg.Password} }
func (s *sinkSession) Logout() error { return nil }

func TestMailerSMTP(t *testing.T) {
	t.Parallel()
	sink := startSMTPSink(t)
	cfg := mailConfig{Addr: sink.addr, From: "Invitations <noreply@example.org>", Username: "app", Password: "s3cret", Domain: "example.org"}
	m := newMailer(cfg, slog.Default())
	note := "Hello Zoë,\nwe met at the Göttingen meetup — " + strings.Repeat("long line ", 40)
	r := db.Reminder{InvitationID: 42, Seq: 1, To: "zoe@example.org", ToName: "Zoë Ångström",
		FromName: "Ada Lovelace", FromHandle: "ada", Message: &note,
		SentAt: time.Date(2026, 11, 1, 9, 0, 0, 0, time.UTC), At: time.Date(2026, 11, 8, 9, 0, 0, 0, time.UTC),
		MessageID: "<reminder-42-1@example.org>"}
	if err := m.SendReminder(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	msgs := sink.messages(t)
	if len(msgs) != 1 {
		t.Fatalf("%d messages", len(msgs))
	}
	sink.mu.Lock()
	env := sink.msgs[0]
	sink.mu.Unlock()
	if env.From != "noreply@example.org" || len(env.To) != 1 || env.To[0] != "zoe@example.org" || env.User != "app" || env.Password != "s3cret" {
		t.Errorf("envelope %+v", env)
	}
	h := msgs[0].Header
	subject, err := new(mime.WordDecoder).DecodeHeader(h.Get("Subject"))
	if err != nil || subject != "Reminder: Ada Lovelace invited you to connect" {
		t.Errorf("subject %q, %v", subject, err)
	}
	to, err := h.AddressList("To")
	if err != nil || len(to) != 1 || to[0].Address != "zoe@example.org" || to[0].Name != "Zoë Ångström" {
		t.Errorf("To %v, %v", to, err)
	}
	if date, err := h.Date(); err != nil || !date.Equal(r.At) {
		t.Errorf("Date %v, %v", date, err)
	}
	if h.Get("Message-ID") != "<reminder-42-1@example.org>" {
		t.Errorf("Message-ID %q", h.Get("Message-ID"))
	}
	body, err := io.ReadAll(quotedprintable.NewReader(msgs[0].Body))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Hi Zoë Ångström,", "Ada Lovelace (@ada) invited you to connect on November 1, 2026.", "> we met at the Göttingen meetup"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}

	t.Run("ErrRecipientRefused", func(t *testing.T) {
		sink := startSMTPSink(t)
		sink.rejectRcpt = true
		err := newMailer(mailConfig{Addr: sink.addr, From: "a@example.org", Domain: "example.org"}, slog.Default()).SendReminder(context.Background(), r)
		if err == nil || !strings.Contains(err.Error(), "RCPT TO") || !strings.Contains(err.Error(), "550") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("ErrNoServer", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := ln.Addr().String()
		ln.Close()
		if err := newMailer(mailConfig{Addr: addr, From: "a@example.org"}, slog.Default()).SendReminder(context.Background(), r); err == nil {
			t.Fatal("no error without a server")
		}
	})
}

func TestMailerLogsWithoutSMTP(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	m := newMailer(mailConfig{Domain: "members.invalid"}, slog.New(slog.NewTextHandler(&logs, nil)))
	err := m.SendReminder(context.Background(), db.Reminder{InvitationID: 7, Seq: 2, To: "bob@members.invalid",
		FromName: "Ada Lovelace", MessageID: "<reminder-7-2@members.invalid>"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"to=bob@members.invalid", `subject="Reminder: Ada Lovelace invited you to connect"`, "message_id=<reminder-7-2@members.invalid>"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log %q lacks %q", logs.String(), want)
		}
	}
}

func TestJobConfig(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	cfg, err := loadJobsConfig(env())
	want := jobsConfig{SweepInterval: time.Minute, ReminderInterval: 30 * time.Second,
		Mail: mailConfig{From: "invitations@localhost", Domain: "members.invalid"}}
	if err != nil || cfg != want {
		t.Fatalf("defaults %+v, %v", cfg, err)
	}
	cfg, err = loadJobsConfig(env("SWEEP_INTERVAL", "0", "REMINDER_INTERVAL", "50ms", "SMTP_ADDR", "mail:587",
		"SMTP_USERNAME", "u", "SMTP_PASSWORD", "p", "MAIL_DOMAIN", "Example.COM"))
	if err != nil || cfg.SweepInterval != 0 || cfg.ReminderInterval != 50*time.Millisecond || cfg.Mail.Domain != "example.com" {
		t.Fatalf("got %+v, %v", cfg, err)
	}
	for _, c := range [][2]string{
		{"SWEEP_INTERVAL", "5"}, {"SWEEP_INTERVAL", "-1s"}, {"REMINDER_INTERVAL", "1ms"}, {"REMINDER_INTERVAL", "48h"},
		{"SMTP_ADDR", "mail.example.com"}, {"SMTP_FROM", "not an address"}, {"SMTP_PASSWORD", "p"},
		{"MAIL_DOMAIN", "bad domain"}, {"MAIL_DOMAIN", "-x.com"},
	} {
		_, err := loadJobsConfig(env(c[0], c[1]))
		if err == nil || !strings.HasPrefix(err.Error(), c[0]) {
			t.Errorf("%s=%q: %v, want an error naming it", c[0], c[1], err)
		}
	}
	if _, err := loadConfig(env("SWEEP_INTERVAL", "soon")); err == nil || !strings.Contains(err.Error(), "SWEEP_INTERVAL") {
		t.Errorf("loadConfig: %v", err)
	}
}

// startReplica runs the program on the database at dsn, as one replica of several,
// and stops it when the test ends.
func startReplica(t *testing.T, dsn string, env map[string]string) {
	t.Helper()
	vars := map[string]string{"DATABASE_URL": dsn, "JWT_SECRET": testSecret, "PORT": "0", "LOG_LEVEL": "warn"}
	for k, v := range env {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() {
		done <- run(ctx, nil, func(k string) string { return vars[k] }, pw, &logs)
		pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	listening := regexp.MustCompile(`listening on port \d+`)
	for !listening.MatchString(lines.Text()) {
		if !lines.Scan() {
			cancel()
			t.Fatalf("replica did not start: %v\n%s", <-done, logs.String())
		}
	}
	go io.Copy(io.Discard, pr)
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("replica exited: %v", err)
		}
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "level=ERROR") && strings.Contains(line, "job=") {
				t.Errorf("a job logged an error: %s", line)
			}
		}
	})
}

// TestJobsTwoReplicas runs two servers on one database with fast job intervals:
// every due reminder reaches the SMTP server exactly once, and every past-due
// invitation expires.
func TestJobsTwoReplicas(t *testing.T) {
	t.Parallel()
	dsn := dbtest.DSN(t)
	conn := sqlx.MustOpen("pgx", dsn)
	t.Cleanup(func() { conn.Close() })
	sink := startSMTPSink(t)
	conn.MustExec(`INSERT INTO members (handle, name) SELECT 'm' || g, 'Member ' || g FROM generate_series(0, 120) g`)
	// seed adds n invitations from member 0 to the next n members, sent age ago, with
	// both reminders scheduled as the send would have (due in the past when age ≥ 14d).
	next := 1
	seed := func(n int, age string) {
		conn.MustExec(`
WITH inv AS (
    INSERT INTO invitations (sender_id, recipient_id, status, sent_at)
    SELECT s.id, r.id, 'PENDING', now() - $3::interval
      FROM members s, members r
     WHERE s.handle = 'm0' AND r.handle = ANY (SELECT 'm' || g FROM generate_series($1::int, $2::int) g)
    RETURNING id, sent_at)
INSERT INTO reminders (invitation_id, seq, due_at)
SELECT id, seq, sent_at + seq * interval '7 days' FROM inv, generate_series(1, 2) seq`, next, next+n-1, age)
		next += n
	}
	seed(30, "15 days")  // due reminders, before the replicas start
	seed(20, "181 days") // past due: expire, reminders cancelled
	env := map[string]string{"SWEEP_INTERVAL": "50ms", "REMINDER_INTERVAL": "50ms",
		"SMTP_ADDR": sink.addr, "MAIL_DOMAIN": "example.test"}
	startReplica(t, dsn, env)
	startReplica(t, dsn, env)
	seed(20, "14 days 1 hour") // more, once they run
	seed(10, "200 days")

	count := func(q string) int {
		var n int
		if err := conn.Get(&n, q); err != nil {
			t.Fatal(err)
		}
		return n
	}
	start := time.Now()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	poll := time.NewTicker(10 * time.Millisecond)
	defer poll.Stop()
	for count(`SELECT count(*) FROM reminders WHERE state = 'SENT'`) != 100 ||
		count(`SELECT count(*) FROM invitations WHERE status = 'EXPIRED'`) != 30 ||
		count(`SELECT count(*) FROM reminders WHERE state = 'CANCELLED'`) != 60 {
		select {
		case <-poll.C:
		case <-deadline.C:
			t.Fatalf("after 30s: %d reminders sent (want 100), %d invitations expired (want 30), %d reminders cancelled (want 60)",
				count(`SELECT count(*) FROM reminders WHERE state = 'SENT'`), count(`SELECT count(*) FROM invitations WHERE status = 'EXPIRED'`),
				count(`SELECT count(*) FROM reminders WHERE state = 'CANCELLED'`))
		}
	}
	t.Logf("two replicas: 100 reminders sent, 60 cancelled, 30 invitations expired within %v", time.Since(start).Round(time.Millisecond))

	// Rows are marked SENT only after the server accepted the message: every message
	// has arrived by now.
	var want []struct {
		ID     int64  `db:"invitation_id"`
		Seq    int    `db:"seq"`
		Handle string `db:"handle"`
	}
	err := conn.Select(&want, `
SELECT r.invitation_id, r.seq, m.handle FROM reminders r
  JOIN invitations i ON i.id = r.invitation_id JOIN members m ON m.id = i.recipient_id
 WHERE r.state = 'SENT'`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	to := map[string]string{}
	for _, msg := range sink.messages(t) {
		id := msg.Header.Get("Message-ID")
		got[id]++
		to[id] = msg.Header.Get("To")
	}
	for _, w := range want {
		id := fmt.Sprintf("<reminder-%d-%d@example.test>", w.ID, w.Seq)
		if got[id] != 1 || !strings.Contains(to[id], "<"+w.Handle+"@example.test>") {
			t.Errorf("%s arrived %d times, To %q", id, got[id], to[id])
		}
		delete(got, id)
	}
	if len(got) != 0 {
		t.Errorf("unexpected messages: %v", got)
	}
}
