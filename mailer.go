package main

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"strings"
	"time"

	"invitations/db"
)

// mailConfig is how reminder emails leave: SMTP_ADDR, SMTP_FROM, SMTP_USERNAME,
// SMTP_PASSWORD and MAIL_DOMAIN.
type mailConfig struct {
	// Addr is the SMTP server, host:port; empty logs reminders instead of sending them.
	Addr     string
	From     string
	Username string
	Password string
	// Domain makes members' addresses (handle@Domain) and the Message-IDs.
	Domain string
}

// smtpTimeout bounds one delivery, from dialling to QUIT.
const smtpTimeout = 30 * time.Second

// newMailer returns the SMTP mailer, or without SMTP_ADDR one that logs.
func newMailer(cfg mailConfig, logger *slog.Logger) db.Mailer {
	if cfg.Addr == "" {
		return logMailer{domain: cfg.Domain, log: logger}
	}
	return &smtpMailer{cfg: cfg}
}

// smtpMailer sends each reminder in its own SMTP session (net/smtp): STARTTLS when the
// server offers it, and PLAIN authentication when a username is configured, which
// net/smtp allows only over TLS or to localhost.
type smtpMailer struct {
	cfg mailConfig
}

// MailDomain is the domain of members' addresses and of Message-IDs.
func (m *smtpMailer) MailDomain() string { return m.cfg.Domain }

// SendReminder delivers one reminder. It returns nil once the server accepted the
// message; an error (which carries the server's reply, never the password) otherwise.
func (m *smtpMailer) SendReminder(ctx context.Context, r db.Reminder) error {
	msg, err := reminderMessage(m.cfg.From, r)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, smtpTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", m.cfg.Addr)
	if err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	host, _, _ := net.SplitHostPort(m.cfg.Addr)
	c, err := smtp.NewClient(conn, host)
	if err != nil {
		return fmt.Errorf("smtp: greeting: %w", err)
	}
	defer c.Close()
	if ok, _ := c.Extension("STARTTLS"); ok {
		if err := c.StartTLS(&tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}); err != nil {
			return fmt.Errorf("smtp: STARTTLS: %w", err)
		}
	}
	if m.cfg.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", m.cfg.Username, m.cfg.Password, host)); err != nil {
			return fmt.Errorf("smtp: AUTH: %w", err)
		}
	}
	from, _ := mail.ParseAddress(m.cfg.From)
	if err := c.Mail(from.Address); err != nil {
		return fmt.Errorf("smtp: MAIL FROM: %w", err)
	}
	if err := c.Rcpt(r.To); err != nil {
		return fmt.Errorf("smtp: RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return fmt.Errorf("smtp: DATA: %w", err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("smtp: DATA: %w", err)
	}
	if err := w.Close(); err != nil { // the server's answer to the message
		return fmt.Errorf("smtp: DATA: %w", err)
	}
	c.Quit() // the message is accepted; a failed QUIT changes nothing
	return nil
}

// reminderSubject is the subject of a reminder email.
func reminderSubject(r db.Reminder) string {
	return "Reminder: " + r.FromName + " invited you to connect"
}

// reminderMessage is the whole email: headers (RFC 5322, with RFC 2047 words for
// non-ASCII text) and a quoted-printable plain-text body.
func reminderMessage(from string, r db.Reminder) ([]byte, error) {
	sender, err := mail.ParseAddress(from)
	if err != nil {
		return nil, fmt.Errorf("SMTP_FROM: %w", err)
	}
	date := r.At
	if date.IsZero() {
		date = time.Now()
	}
	var b bytes.Buffer
	header := func(name, value string) { fmt.Fprintf(&b, "%s: %s\r\n", name, value) }
	header("From", sender.String())
	header("To", (&mail.Address{Name: r.ToName, Address: r.To}).String())
	header("Subject", mime.QEncoding.Encode("utf-8", reminderSubject(r)))
	header("Date", date.Format(time.RFC1123Z))
	header("Message-ID", r.MessageID)
	header("Auto-Submitted", "auto-generated")
	header("MIME-Version", "1.0")
	header("Content-Type", `text/plain; charset="utf-8"`)
	header("Content-Transfer-Encoding", "quoted-printable")
	b.WriteString("\r\n")
	qp := quotedprintable.NewWriter(&b)
	if _, err := qp.Write([]byte(reminderBody(r))); err != nil {
		return nil, err
	}
	if err := qp.Close(); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// reminderBody is the plain text of a reminder, lines ending in CRLF.
func reminderBody(r db.Reminder) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Hi %s,\n\n%s (@%s) invited you to connect on %s.\n",
		r.ToName, r.FromName, r.FromHandle, r.SentAt.UTC().Format("January 2, 2006"))
	if r.Message != nil {
		b.WriteString("\nTheir note:\n\n")
		for _, line := range strings.Split(*r.Message, "\n") {
			b.WriteString("> " + line + "\n")
		}
	}
	b.WriteString("\nOpen My Network > Manage invitations > Received to accept or ignore it.\n")
	if r.Seq == 1 {
		b.WriteString("We will remind you once more in a week.\n")
	}
	return strings.ReplaceAll(b.String(), "\n", "\r\n")
}

// logMailer logs each reminder instead of sending it (no SMTP_ADDR).
type logMailer struct {
	domain string
	log    *slog.Logger
}

// MailDomain is the domain of members' addresses and of Message-IDs.
func (m logMailer) MailDomain() string { return m.domain }

// SendReminder logs the reminder at info level; it never fails.
func (m logMailer) SendReminder(_ context.Context, r db.Reminder) error {
	m.log.Info("reminder email (SMTP_ADDR unset: logged, not sent)", "to", r.To,
		"subject", reminderSubject(r), "message_id", r.MessageID, "invitation", r.InvitationID, "seq", r.Seq)
	return nil
}

// loadMailConfig reads the mail variables. An invalid value is an error naming the
// variable.
func loadMailConfig(getenv func(string) string) (mailConfig, error) {
	cfg := mailConfig{
		Addr:     strings.TrimSpace(getenv("SMTP_ADDR")),
		From:     cmp.Or(getenv("SMTP_FROM"), "invitations@localhost"),
		Username: getenv("SMTP_USERNAME"),
		Password: getenv("SMTP_PASSWORD"),
		Domain:   strings.ToLower(cmp.Or(strings.TrimSpace(getenv("MAIL_DOMAIN")), db.DefaultMailDomain)),
	}
	if cfg.Addr != "" {
		if host, port, err := net.SplitHostPort(cfg.Addr); err != nil || host == "" || port == "" {
			return cfg, fmt.Errorf("SMTP_ADDR must be host:port, got %q", cfg.Addr)
		}
	}
	if a, err := mail.ParseAddress(cfg.From); err != nil || strings.ContainsAny(a.Address, "\r\n") {
		return cfg, fmt.Errorf("SMTP_FROM must be an email address, got %q", cfg.From)
	}
	if cfg.Password != "" && cfg.Username == "" {
		return cfg, errors.New("SMTP_PASSWORD is set but SMTP_USERNAME is not")
	}
	if !validDomain(cfg.Domain) {
		return cfg, fmt.Errorf("MAIL_DOMAIN must be a domain name such as example.com, got %q", cfg.Domain)
	}
	return cfg, nil
}

// validDomain reports a plausible DNS name: labels of letters, digits and hyphens.
func validDomain(d string) bool {
	if d == "" || len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}
