package db

import (
	"bufio"
	"bytes"
	"database/sql"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
)

// The records of an import file: each is checked, then turned into the statements that
// load it (an applyFunc), and the file is read a line at a time (lineReader).

type memberRecord struct {
	Handle   string `json:"handle"`
	Name     string `json:"name"`
	Headline string `json:"headline"`
	Plan     string `json:"plan"`
}

type connectionRecord struct {
	A     string  `json:"a"`
	B     string  `json:"b"`
	Since *string `json:"since"`
}

type invitationRecord struct {
	Sender      string  `json:"sender"`
	Recipient   string  `json:"recipient"`
	Message     *string `json:"message"`
	Source      string  `json:"source"`
	Status      string  `json:"status"`
	SentAt      *string `json:"sentAt"`
	RespondedAt *string `json:"respondedAt"`
	WithdrawnAt *string `json:"withdrawnAt"`
}

// parse decodes and validates a line without touching the database.
func (im *importer) parse(line []byte) (applyFunc, error) {
	var top map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&top); errors.As(err, new(*json.UnmarshalTypeError)) {
		return nil, lineFault("malformed JSON: a record must be a JSON object")
	} else if err != nil {
		return nil, faultf("malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if len(bytes.TrimSpace(line[dec.InputOffset():])) > 0 {
		return nil, lineFault("malformed JSON: text after the record")
	}
	if len(top) != 1 {
		return nil, faultf(`a record must have exactly one key, "member", "connection" or "invitation"; this one has %d`, len(top))
	}
	for kind, raw := range top {
		switch kind {
		case "member":
			return parseAs(kind, raw, im.member)
		case "connection":
			return parseAs(kind, raw, im.connection)
		case "invitation":
			return parseAs(kind, raw, im.invitation)
		}
		return nil, faultf(`unknown record kind %q; want "member", "connection" or "invitation"`, kind)
	}
	return nil, nil // not reached
}

// parseAs decodes raw into a T, rejecting unknown fields, and validates it with check.
func parseAs[T any](kind string, raw json.RawMessage, check func(T) (applyFunc, error)) (applyFunc, error) {
	if raw = bytes.TrimSpace(raw); len(raw) == 0 || raw[0] != '{' {
		return nil, faultf("%s must be a JSON object", kind)
	}
	var rec T
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(&rec)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return check(rec)
	case errors.As(err, &typeErr):
		return nil, faultf("%s.%s must be a %s, not a JSON %s", kind, typeErr.Field, typeErr.Type, typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return nil, faultf("%s has an unknown field %s", kind, strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return nil, faultf("malformed JSON in %s: %s", kind, strings.TrimPrefix(err.Error(), "json: "))
}

func (im *importer) member(m memberRecord) (applyFunc, error) {
	handle, name, headline, plan := normHandle(m.Handle), strings.TrimSpace(m.Name), strings.TrimSpace(m.Headline), m.Plan
	if plan == "" {
		plan = PlanStandard
	}
	switch {
	case !handlePattern.MatchString(handle):
		return nil, faultf("member.handle %q is invalid: 1 to 63 of a-z 0-9 _ . - starting with a letter or digit", m.Handle)
	case !inString(plan, PlanStandard, PlanPremium):
		return nil, faultf("member.plan %q is not STANDARD or PREMIUM", m.Plan)
	}
	if err := checkText("member.name", name, 1, 200); err != nil {
		return nil, err
	}
	if err := checkText("member.headline", headline, 0, 300); err != nil {
		return nil, err
	}
	return func() (int, error) {
		var id int64
		var changed bool
		err := im.st["member"].QueryRowxContext(im.ctx, handle, name, headline, plan, im.now).Scan(&id, &changed)
		if errors.Is(err, sql.ErrNoRows) { // committed by another transaction since the statement began
			err = im.st["lookup"].GetContext(im.ctx, &id, handle)
		}
		if err != nil {
			return 0, err
		}
		if im.ids[handle] = id; !changed {
			return outUnchanged, nil
		}
		return outMember, nil
	}, nil
}

func (im *importer) connection(c connectionRecord) (applyFunc, error) {
	a, b, since := normHandle(c.A), normHandle(c.B), im.now
	switch {
	case a == "" || b == "":
		return nil, lineFault("connection.a and connection.b are required")
	case a == b:
		return nil, faultf("a member cannot be connected to themselves (%s)", a)
	case c.Since != nil:
		var err error
		if since, err = im.timestamp("connection.since", *c.Since); err != nil {
			return nil, err
		}
	}
	return func() (int, error) {
		ids, err := im.resolve(a, b)
		if err != nil {
			return 0, err
		}
		var inserted int
		lo, hi := pair(ids[0], ids[1])
		if err := im.st["connect"].GetContext(im.ctx, &inserted, lo, hi, since); err != nil || inserted == 0 {
			return outUnchanged, err
		}
		return outConnection, nil
	}, nil
}

// invitationTimes says per status whether respondedAt and withdrawnAt are required
// (2), allowed (1) or forbidden (0).
var invitationTimes = map[string][2]int{StatusPending: {0, 0}, StatusAccepted: {2, 0}, StatusIgnored: {2, 0},
	StatusWithdrawn: {0, 2}, StatusExpired: {1, 0}}

func (im *importer) invitation(v invitationRecord) (applyFunc, error) {
	from, to, source, status := normHandle(v.Sender), normHandle(v.Recipient), v.Source, v.Status
	if source == "" {
		source = "OTHER"
	}
	rule, ok := invitationTimes[status]
	switch {
	case from == "" || to == "":
		return nil, lineFault("invitation.sender and invitation.recipient are required")
	case from == to:
		return nil, faultf("a member cannot invite themselves (%s)", from)
	case !inString(source, Sources...):
		return nil, faultf("invitation.source %q is not one of %s", v.Source, strings.Join(Sources, ", "))
	case !ok:
		return nil, faultf("invitation.status %q is not one of PENDING, ACCEPTED, IGNORED, WITHDRAWN, EXPIRED", v.Status)
	case v.SentAt == nil:
		return nil, lineFault("invitation.sentAt is required")
	}
	sentAt, err := im.timestamp("invitation.sentAt", *v.SentAt)
	if err != nil {
		return nil, err
	}
	var times [2]*time.Time // respondedAt, withdrawnAt
	for i, s := range []*string{v.RespondedAt, v.WithdrawnAt} {
		field := "invitation." + [2]string{"respondedAt", "withdrawnAt"}[i]
		switch {
		case s == nil && rule[i] == 2:
			return nil, faultf("%s is required for status %s", field, status)
		case s != nil && rule[i] == 0:
			return nil, faultf("%s is not allowed for status %s", field, status)
		case s != nil:
			t, err := im.timestamp(field, *s)
			if err == nil && t.Before(sentAt) {
				err = faultf("%s %s is before sentAt %s", field, *s, sentAt.Format(time.RFC3339Nano))
			}
			if times[i] = &t; err != nil {
				return nil, err
			}
		}
	}
	msg, err := normalizeNote(v.Message)
	if e, ok := AsError(err); ok {
		return nil, lineFault("invitation.message: " + e.Message)
	}
	if limit := max(im.s.limits.NoteMaxStandard, im.s.limits.NoteMaxPremium); msg != nil && utf8.RuneCountInString(*msg) > limit {
		return nil, faultf("invitation.message has %d characters; at most %d are allowed", utf8.RuneCountInString(*msg), limit)
	}
	if live(status) && !sentAt.After(im.now.Add(-im.s.limits.TTL)) {
		status = StatusExpired // as it has happened since
	}
	return func() (int, error) {
		ids, err := im.resolve(from, to)
		if err != nil {
			return 0, err
		}
		args := []any{ids[0], ids[1], msg, source, status, sentAt, times[0], times[1]}
		res, err := im.st["invite"].ExecContext(im.ctx, args...)
		if pgErr := (*pgconn.PgError)(nil); im.safe && errors.As(err, &pgErr) && pgErr.ConstraintName == "invitations_live_pair_key" {
			// The pair is held by a live invitation; free it if that one is stale. (Without
			// a savepoint, the error has aborted the transaction: apply redoes the batch.)
			if err := im.rollbackLine(); err != nil {
				return 0, err
			}
			lo, hi := pair(ids[0], ids[1])
			if res, err = im.st["expire"].ExecContext(im.ctx, lo, hi, im.now.Add(-im.s.limits.TTL)); err != nil {
				return 0, err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return 0, faultf("a live invitation between %s and %s already exists", from, to)
			}
			res, err = im.st["invite"].ExecContext(im.ctx, args...)
		}
		if err != nil {
			return 0, err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return outUnchanged, nil
		}
		return outInvitation, nil
	}, nil
}

// timestamp parses an RFC 3339 time, at PostgreSQL's precision, that is not after now.
func (im *importer) timestamp(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return t, faultf("%s %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", field, s)
	}
	if t = t.UTC().Truncate(time.Microsecond); t.After(im.now) {
		return t, faultf("%s %s is in the future", field, s)
	}
	return t, nil
}

// resolve returns the members' ids, from the cache or the database.
func (im *importer) resolve(handles ...string) ([]int64, error) {
	ids := make([]int64, len(handles))
	for i, h := range handles {
		id, ok := im.ids[h]
		if !ok {
			err := im.st["lookup"].GetContext(im.ctx, &id, h)
			if errors.Is(err, sql.ErrNoRows) {
				return nil, faultf("unknown member %q", h)
			} else if err != nil {
				return nil, err
			}
			im.ids[h] = id
		}
		ids[i] = id
	}
	return ids, nil
}

func normHandle(h string) string { return strings.ToLower(strings.TrimSpace(h)) }

// checkText checks a length in code points and rejects control characters.
func checkText(field, s string, least, most int) error {
	if n := utf8.RuneCountInString(s); n < least || n > most {
		return faultf("%s must have %d to %d characters, not %d", field, least, most, n)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return faultf("%s may not contain control characters", field)
	}
	return nil
}

// lineReader reads lines of up to importMaxLine bytes and counts the bytes read.
type lineReader struct {
	r   *bufio.Reader
	buf []byte
	n   int64
}

// next returns the next line without its line ending, or io.EOF. A longer line is
// read to its end and reported by tooLong.
func (lr *lineReader) next() (line []byte, tooLong bool, err error) {
	lr.buf = lr.buf[:0]
	for read := 0; ; {
		chunk, err := lr.r.ReadSlice('\n')
		read += len(chunk)
		lr.n += int64(len(chunk))
		if tooLong = tooLong || len(lr.buf)+len(chunk) > importMaxLine+2; !tooLong {
			lr.buf = append(lr.buf, chunk...)
		}
		switch {
		case err == bufio.ErrBufferFull:
			continue
		case err == io.EOF && read == 0:
			return nil, false, io.EOF
		case err != nil && err != io.EOF:
			return nil, false, err
		}
		line = bytes.TrimSuffix(bytes.TrimSuffix(lr.buf, []byte("\n")), []byte("\r"))
		return line, tooLong || len(line) > importMaxLine, nil
	}
}
