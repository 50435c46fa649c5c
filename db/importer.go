package db

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/jmoiron/sqlx"
	"github.com/lib/pq"
)

// ImportOptions tunes Import. The zero value is ready to use.
type ImportOptions struct {
	// Progress, if set, is called at most about once per 500 ms and at the end with
	// lines read and bytes read so far. It runs on the importing goroutine.
	Progress func(lines int, bytes int64)
}

// LineError is one input line that was not loaded, none of it.
type LineError struct {
	// Line is the 1-based line number.
	Line int
	// Message says what is wrong in plain words; it never holds driver or SQL details.
	Message string
}

// ImportReport is what an Import did. Members, Connections and Invitations count the
// records newly written (or, for members, updated); Unchanged counts valid records that
// changed nothing (already loaded). Errors keeps the first 1000 bad lines; ErrorCount
// counts all of them.
type ImportReport struct {
	Lines, Members, Connections, Invitations, Unchanged int
	Errors                                              []LineError
	ErrorCount                                          int
}

const (
	importBatch    = 1000    // lines per transaction
	importMaxLine  = 1 << 20 // longest line, in bytes
	importMaxErrs  = 1000    // line errors kept in the report
	importProgress = 500 * time.Millisecond
)

var handleRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// Import loads members, connections and invitations from JSON Lines (SPEC section 5):
// one {"member": …}, {"connection": …} or {"invitation": …} record per line, blank lines
// skipped. History is loaded as it happened: integrity rules apply (known members, no
// self-invitation, one live invitation per pair, valid statuses and timestamps), the
// sending limits do not. A stale PENDING or IGNORED invitation (sent at or before now
// minus the TTL) is stored EXPIRED. Re-running the same input changes nothing: members
// are upserted by handle, connections and invitations (by sender, recipient, sentAt)
// are skipped when present. Lines are applied in transactions of 1000, each line
// inside a savepoint, so a bad line loads nothing of itself and is reported in the
// ImportReport with its line number, and the import goes on.
//
// Error contract: the error is non-nil only for failures that are no line's fault (ctx
// done, database unreachable, read error); the transaction of the current batch is
// then rolled back, earlier batches stay committed (a re-run completes the load), and
// the report returned with the error counts the committed records and the lines read.
func (s *Store) Import(ctx context.Context, r io.Reader, opts ImportOptions) (*ImportReport, error) {
	im := &importer{s: s, ctx: ctx, now: s.Now(), ids: map[string]int64{}, rep: &ImportReport{}}
	err := im.run(r, opts.Progress)
	if im.tx != nil {
		im.tx.Rollback()
	}
	return im.rep, err
}

type importer struct {
	s      *Store
	ctx    context.Context
	now    time.Time
	ids    map[string]int64 // handle → member id
	rep    *ImportReport
	tx     *sqlx.Tx
	st     map[string]*sqlx.Stmt
	spOpen bool   // the line savepoint exists in tx
	batch  [4]int // uncommitted members, connections, invitations, unchanged
	inTx   int    // lines applied in tx
}

// outcome indexes importer.batch.
const (
	outMember = iota
	outConnection
	outInvitation
	outUnchanged
)

// lineFault is a line's own fault; its text goes to the report as it is.
type lineFault string

func (f lineFault) Error() string { return string(f) }

func faultf(format string, args ...any) error { return lineFault(fmt.Sprintf(format, args...)) }

var importStmts = map[string]string{
	"member": `
WITH up AS (
  INSERT INTO members (handle, name, headline, plan, created_at) VALUES ($1, $2, $3, $4, $5)
  ON CONFLICT (handle) DO UPDATE SET name = EXCLUDED.name, headline = EXCLUDED.headline, plan = EXCLUDED.plan
  WHERE (members.name, members.headline, members.plan) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.headline, EXCLUDED.plan)
  RETURNING id)
SELECT id, true FROM up
UNION ALL SELECT id, false FROM members WHERE handle = $1 AND NOT EXISTS (SELECT 1 FROM up)`,
	"lookup":    `SELECT id FROM members WHERE handle = $1`,
	"connected": `SELECT EXISTS (SELECT 1 FROM connections WHERE member_a = $1 AND member_b = $2)`,
	"invite": `
INSERT INTO invitations (sender_id, recipient_id, message, source, status, sent_at, responded_at, withdrawn_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (sender_id, recipient_id, sent_at) DO NOTHING`,
	"expire": `
UPDATE invitations SET status = 'EXPIRED'
 WHERE LEAST(sender_id, recipient_id) = $1 AND GREATEST(sender_id, recipient_id) = $2
   AND status IN ('PENDING', 'IGNORED') AND sent_at <= $3`,
}

func (im *importer) run(r io.Reader, progress func(int, int64)) error {
	lr := &lineReader{r: bufio.NewReaderSize(r, 64<<10)}
	last := time.Now()
	defer func() {
		if progress != nil {
			progress(im.rep.Lines, lr.n)
		}
	}()
	for {
		if err := im.ctx.Err(); err != nil {
			return fmt.Errorf("import line %d: %w", im.rep.Lines+1, err)
		}
		line, tooLong, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("import: read line %d: %w", im.rep.Lines+1, err)
		}
		im.rep.Lines++
		if im.rep.Lines == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a UTF-8 byte order mark
		}
		if progress != nil && time.Since(last) >= importProgress {
			progress(im.rep.Lines, lr.n)
			last = time.Now()
		}
		if tooLong {
			im.fail(lineFault("the line is longer than 1 MiB"))
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		rec, err := im.parse(line)
		if err == nil {
			err = im.apply(rec)
		}
		if err != nil {
			if errors.As(err, new(lineFault)) {
				im.fail(err)
				continue
			}
			return fmt.Errorf("import line %d: %w", im.rep.Lines, err)
		}
	}
	return im.commit()
}

// fail records a bad line.
func (im *importer) fail(err error) {
	im.rep.ErrorCount++
	if len(im.rep.Errors) < importMaxErrs {
		im.rep.Errors = append(im.rep.Errors, LineError{Line: im.rep.Lines, Message: err.Error()})
	}
}

// apply runs a parsed record inside a savepoint. A deadlock or serialization failure
// commits the batch so far (releasing its locks) and retries the line in a new one.
func (im *importer) apply(rec func() (int, error)) error {
	for attempt := 1; ; attempt++ {
		if err := im.begin(); err != nil {
			return err
		}
		sp := "SAVEPOINT import_line"
		if im.spOpen {
			sp = "RELEASE SAVEPOINT import_line; " + sp
		}
		if _, err := im.tx.ExecContext(im.ctx, sp); err != nil {
			return err
		}
		im.spOpen = true
		out, err := rec()
		if err == nil {
			im.batch[out]++
			if im.inTx++; im.inTx >= importBatch {
				return im.commit()
			}
			return nil
		}
		if rbErr := im.rollbackLine(); rbErr != nil {
			return rbErr
		}
		if retryable(err) && attempt < maxAttempts {
			if err := im.commit(); err != nil {
				return err
			}
			continue
		}
		return lineMessage(err)
	}
}

func (im *importer) rollbackLine() error {
	_, err := im.tx.ExecContext(im.ctx, "ROLLBACK TO SAVEPOINT import_line")
	return err
}

// begin opens a batch transaction and prepares its statements, unless one is open.
func (im *importer) begin() error {
	if im.tx != nil {
		return nil
	}
	tx, err := im.s.db.BeginTxx(im.ctx, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	if err != nil {
		return err
	}
	im.tx, im.st, im.spOpen, im.inTx = tx, map[string]*sqlx.Stmt{}, false, 0
	for name, q := range importStmts {
		if im.st[name], err = tx.PreparexContext(im.ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// commit commits the batch, if any, and adds its counts to the report.
func (im *importer) commit() error {
	if im.tx == nil {
		return nil
	}
	err := im.tx.Commit()
	im.tx = nil
	if err != nil {
		return fmt.Errorf("import: commit: %w", err)
	}
	r := im.rep
	r.Members, r.Connections, r.Invitations, r.Unchanged = r.Members+im.batch[0], r.Connections+im.batch[1], r.Invitations+im.batch[2], r.Unchanged+im.batch[3]
	im.batch = [4]int{}
	return nil
}

// lineMessage turns a database error a line caused into words; any other error is
// returned as it is (not the line's fault).
func lineMessage(err error) error {
	var pqErr *pq.Error
	if !errors.As(err, &pqErr) {
		return err
	}
	switch code := string(pqErr.Code); {
	case code == "23505":
		return faultf("the record conflicts with an existing one (%s)", pqErr.Constraint)
	case code == "23503":
		return lineFault("the record refers to a member that does not exist")
	case code == "23514":
		return faultf("the record breaks the rule %s", pqErr.Constraint)
	case strings.HasPrefix(code, "23"):
		return lineFault("the record breaks an integrity rule of the database")
	case strings.HasPrefix(code, "22"):
		return lineFault("the record holds a value the database cannot store (bad characters or out of range)")
	}
	return err
}

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

// parse decodes and validates a line; the returned func writes it in im.tx.
func (im *importer) parse(line []byte) (func() (int, error), error) {
	var top map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(line))
	if err := dec.Decode(&top); err != nil {
		return nil, faultf("malformed JSON: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if len(bytes.TrimSpace(line[dec.InputOffset():])) > 0 {
		return nil, lineFault("malformed JSON: text after the record")
	}
	if len(top) != 1 {
		return nil, faultf(`a record must have exactly one key, "member", "connection" or "invitation"; this one has %d`, len(top))
	}
	for key, raw := range top {
		switch key {
		case "member":
			var m memberRecord
			if err := decodeStrict(key, raw, &m); err != nil {
				return nil, err
			}
			return im.member(m)
		case "connection":
			var c connectionRecord
			if err := decodeStrict(key, raw, &c); err != nil {
				return nil, err
			}
			return im.connection(c)
		case "invitation":
			var v invitationRecord
			if err := decodeStrict(key, raw, &v); err != nil {
				return nil, err
			}
			return im.invitation(v)
		}
		return nil, faultf(`unknown record kind %q; want "member", "connection" or "invitation"`, key)
	}
	panic("unreachable")
}

func decodeStrict(kind string, raw json.RawMessage, v any) error {
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) || len(raw) == 0 || raw[0] != '{' {
		return faultf("%s must be a JSON object", kind)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var typeErr *json.UnmarshalTypeError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &typeErr):
		return faultf("%s.%s must be a %s, not a JSON %s", kind, typeErr.Field, typeErr.Type, typeErr.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return faultf("%s has an unknown field %s", kind, strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return faultf("malformed JSON in %s: %s", kind, strings.TrimPrefix(err.Error(), "json: "))
}

func (im *importer) member(m memberRecord) (func() (int, error), error) {
	handle := normHandle(m.Handle)
	if !handleRE.MatchString(handle) {
		return nil, faultf("member.handle %q is invalid: 1 to 63 of a-z, 0-9, '_', '.', '-', starting with a letter or digit", m.Handle)
	}
	name, headline := strings.TrimSpace(m.Name), strings.TrimSpace(m.Headline)
	if err := checkText("member.name", name, 1, 200); err != nil {
		return nil, err
	}
	if err := checkText("member.headline", headline, 0, 300); err != nil {
		return nil, err
	}
	plan := m.Plan
	if plan == "" {
		plan = PlanStandard
	}
	if !inString(plan, PlanStandard, PlanPremium) {
		return nil, faultf("member.plan %q is not STANDARD or PREMIUM", m.Plan)
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
		im.ids[handle] = id
		if changed {
			return outMember, nil
		}
		return outUnchanged, nil
	}, nil
}

func (im *importer) connection(c connectionRecord) (func() (int, error), error) {
	a, b := normHandle(c.A), normHandle(c.B)
	if a == "" || b == "" {
		return nil, lineFault("connection.a and connection.b are required")
	}
	if a == b {
		return nil, faultf("a member cannot be connected to themselves (%s)", a)
	}
	since := im.now
	if c.Since != nil {
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
		lo, hi := pair(ids[0], ids[1])
		var exists bool
		if err := im.st["connected"].GetContext(im.ctx, &exists, lo, hi); err != nil || exists {
			return outUnchanged, err
		}
		return outConnection, connect(im.ctx, im.tx, lo, hi, since)
	}, nil
}

func (im *importer) invitation(v invitationRecord) (func() (int, error), error) {
	from, to := normHandle(v.Sender), normHandle(v.Recipient)
	if from == "" || to == "" {
		return nil, lineFault("invitation.sender and invitation.recipient are required")
	}
	if from == to {
		return nil, faultf("a member cannot invite themselves (%s)", from)
	}
	source := v.Source
	if source == "" {
		source = "OTHER"
	}
	if !inString(source, Sources...) {
		return nil, faultf("invitation.source %q is not one of %s", v.Source, strings.Join(Sources, ", "))
	}
	status := v.Status
	if !inString(status, StatusPending, StatusAccepted, StatusIgnored, StatusWithdrawn, StatusExpired) {
		return nil, faultf("invitation.status %q is not one of PENDING, ACCEPTED, IGNORED, WITHDRAWN, EXPIRED", v.Status)
	}
	if v.SentAt == nil {
		return nil, lineFault("invitation.sentAt is required")
	}
	sentAt, err := im.timestamp("invitation.sentAt", *v.SentAt)
	if err != nil {
		return nil, err
	}
	respondedAt, err := im.optionalAfter("invitation.respondedAt", v.RespondedAt, sentAt, status,
		inString(status, StatusAccepted, StatusIgnored), status == StatusExpired)
	if err != nil {
		return nil, err
	}
	withdrawnAt, err := im.optionalAfter("invitation.withdrawnAt", v.WithdrawnAt, sentAt, status, status == StatusWithdrawn, false)
	if err != nil {
		return nil, err
	}
	msg, err := normalizeNote(v.Message)
	if e, ok := AsError(err); ok {
		return nil, lineFault("invitation.message: " + e.Message)
	}
	if limit := max(im.s.limits.NoteMaxStandard, im.s.limits.NoteMaxPremium); msg != nil && utf8.RuneCountInString(*msg) > limit {
		return nil, faultf("invitation.message has %d characters; at most %d are allowed", utf8.RuneCountInString(*msg), limit)
	}
	if live(status) && !sentAt.After(im.now.Add(-im.s.limits.TTL)) {
		status = StatusExpired
	}
	return func() (int, error) {
		ids, err := im.resolve(from, to)
		if err != nil {
			return 0, err
		}
		args := []any{ids[0], ids[1], msg, source, status, sentAt, respondedAt, withdrawnAt}
		res, err := im.st["invite"].ExecContext(im.ctx, args...)
		if pqErr := (*pq.Error)(nil); errors.As(err, &pqErr) && pqErr.Code == "23505" && pqErr.Constraint == "invitations_live_pair_key" {
			// A stale live invitation the sweep has not reached yet frees the pair.
			lo, hi := pair(ids[0], ids[1])
			if err := im.rollbackLine(); err != nil {
				return 0, err
			}
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

// optionalAfter parses a timestamp that must be present when required, absent unless
// required or allowed, and not before sentAt.
func (im *importer) optionalAfter(field string, s *string, sentAt time.Time, status string, required, allowed bool) (*time.Time, error) {
	switch {
	case s == nil && required:
		return nil, faultf("%s is required for status %s", field, status)
	case s == nil:
		return nil, nil
	case !required && !allowed:
		return nil, faultf("%s is not allowed for status %s", field, status)
	}
	t, err := im.timestamp(field, *s)
	if err == nil && t.Before(sentAt) {
		err = faultf("%s %s is before sentAt %s", field, *s, sentAt.Format(time.RFC3339Nano))
	}
	return &t, err
}

// timestamp parses an RFC 3339 time that is not after now, at PostgreSQL's precision.
func (im *importer) timestamp(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return t, faultf("%s %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", field, s)
	}
	t = t.UTC().Truncate(time.Microsecond)
	if t.After(im.now) {
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
			}
			if err != nil {
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

// lineReader reads lines of at most importMaxLine bytes, counting the bytes read.
type lineReader struct {
	r   *bufio.Reader
	buf []byte
	n   int64
}

// next returns the next line without its line ending, or io.EOF. A longer line is
// skipped to its end and reported with tooLong.
func (lr *lineReader) next() (line []byte, tooLong bool, err error) {
	lr.buf = lr.buf[:0]
	var read int
	for {
		chunk, err := lr.r.ReadSlice('\n')
		read += len(chunk)
		lr.n += int64(len(chunk))
		if !tooLong && len(lr.buf)+len(chunk) <= importMaxLine+2 {
			lr.buf = append(lr.buf, chunk...)
		} else {
			tooLong = true
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
