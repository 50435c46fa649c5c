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

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jmoiron/sqlx"
)

// ImportOptions tunes Import. The zero value is ready to use.
type ImportOptions struct {
	// Progress, if set, is called at most about once per 500 ms and at the end with
	// lines read and bytes read so far, on the importing goroutine.
	Progress func(lines int, bytes int64)
}

// LineError is an input line of which nothing was loaded.
type LineError struct {
	Line    int    // 1-based line number
	Message string // what is wrong, in words; never driver or SQL details
}

// ImportReport is what Import did. Members, Connections and Invitations count the
// records newly written (members also when updated); Unchanged counts valid records
// that changed nothing, being loaded already. Errors keeps the first 1000 bad lines,
// ErrorCount counts them all.
type ImportReport struct {
	Lines, Members, Connections, Invitations, Unchanged int
	Errors                                              []LineError
	ErrorCount                                          int
}

const (
	importBatch    = 1000    // lines per transaction
	importMaxLine  = 1 << 20 // longest line in bytes
	importMaxErrs  = 1000    // line errors kept in the report
	importProgress = 500 * time.Millisecond
)

var handlePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// Import loads members, connections and invitations from JSON Lines (SPEC section 5):
// one {"member": …}, {"connection": …} or {"invitation": …} record per line, blank
// lines skipped, members referred to by handle (defined earlier in the input or
// already stored). History is loaded as it happened: integrity holds (known members,
// no self-invitation, one live invitation per pair, valid statuses and timestamps) but
// the sending limits do not apply, and a PENDING or IGNORED invitation sent at or
// before now minus the TTL is stored EXPIRED. Re-running an input changes nothing:
// members are upserted by handle, existing connections and invitations (same sender,
// recipient and sentAt) are left alone and counted as Unchanged.
//
// Lines are applied in transactions of 1000 (see importer.apply for the savepoints).
// A bad line (malformed, invalid, unknown member, conflicting) loads nothing of
// itself, is reported in ImportReport.Errors with its line number, and the import
// goes on with the next line.
//
// The error is non-nil only for failures that are no line's fault (ctx done, database
// unreachable, read error). The batch under way is then rolled back while earlier
// batches stay committed (running the import again completes the load); the report,
// never nil, counts the lines read and the records committed.
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
	tx     *sqlx.Tx // the batch transaction, nil between batches
	st     map[string]*sqlx.Stmt
	safe   bool       // a savepoint per line in tx
	spOpen bool       // the line savepoint exists in tx
	done   []doneLine // records applied in tx
	batch  [4]int     // records of tx by outcome, added to rep on commit
}

type doneLine struct {
	line  int
	apply applyFunc
}

// applyFunc writes a validated record in the batch transaction and returns its outcome.
type applyFunc func() (int, error)

// Outcomes of a record, indexes of importer.batch.
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
	"member": `WITH up AS (
  INSERT INTO members (handle, name, headline, plan, created_at) VALUES ($1, $2, $3, $4, $5)
  ON CONFLICT (handle) DO UPDATE SET name = EXCLUDED.name, headline = EXCLUDED.headline, plan = EXCLUDED.plan
  WHERE (members.name, members.headline, members.plan) IS DISTINCT FROM (EXCLUDED.name, EXCLUDED.headline, EXCLUDED.plan)
  RETURNING id)
SELECT id, true FROM up UNION ALL SELECT id, false FROM members WHERE handle = $1 AND NOT EXISTS (SELECT FROM up)`,
	"lookup": `SELECT id FROM members WHERE handle = $1`,
	// What connect (members.go) does, as one prepared statement: one round trip instead
	// of four, which halves the time of a connection-heavy import. $1 < $2.
	"connect": `WITH ins AS (
  INSERT INTO connections (member_a, member_b, since) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING member_a, member_b),
upd AS (UPDATE members SET connection_count = connection_count + 1
  WHERE id IN (SELECT member_a FROM ins UNION ALL SELECT member_b FROM ins))
SELECT count(*) FROM ins`,
	"invite": `INSERT INTO invitations (sender_id, recipient_id, message, source, status, sent_at, responded_at, withdrawn_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (sender_id, recipient_id, sent_at) DO NOTHING`,
	// A live invitation past its lifetime that the sweep has not reached yet.
	"expire": `UPDATE invitations SET status = 'EXPIRED'
 WHERE LEAST(sender_id, recipient_id) = $1 AND GREATEST(sender_id, recipient_id) = $2
   AND status IN ('PENDING', 'IGNORED') AND sent_at <= $3`,
}

func (im *importer) run(r io.Reader, progress func(int, int64)) error {
	lr := &lineReader{r: bufio.NewReaderSize(r, 64<<10)}
	last := time.Now()
	if progress != nil {
		defer func() { progress(im.rep.Lines, lr.n) }()
	}
	for {
		if err := im.ctx.Err(); err != nil {
			return fmt.Errorf("import line %d: %w", im.rep.Lines+1, err)
		}
		line, tooLong, err := lr.next()
		if err == io.EOF {
			return im.commit()
		} else if err != nil {
			return fmt.Errorf("import: read line %d: %w", im.rep.Lines+1, err)
		}
		if im.rep.Lines++; im.rep.Lines == 1 {
			line = bytes.TrimPrefix(line, []byte("\xef\xbb\xbf")) // a byte order mark
		}
		if progress != nil && time.Since(last) >= importProgress {
			progress(im.rep.Lines, lr.n)
			last = time.Now()
		}
		if tooLong {
			im.fail(im.rep.Lines, lineFault("the line is longer than 1 MiB"))
		} else if len(bytes.TrimSpace(line)) == 0 {
			continue
		} else if apply, err := im.parse(line); err != nil {
			im.fail(im.rep.Lines, err)
		} else if err := im.apply(im.rep.Lines, apply); err != nil {
			return fmt.Errorf("import line %d: %w", im.rep.Lines, err)
		}
	}
}

// fail reports a bad line.
func (im *importer) fail(line int, err error) {
	if im.rep.ErrorCount++; len(im.rep.Errors) < importMaxErrs {
		im.rep.Errors = append(im.rep.Errors, LineError{Line: line, Message: err.Error()})
	}
}

// apply applies a record in the batch transaction and reports it if it is bad; the
// error is not the line's fault. While all goes well, records run without
// savepoints: each is one write statement, all or nothing. The first statement that
// fails aborts the transaction; the batch is then rolled back, and redone and
// finished with one savepoint per line.
func (im *importer) apply(line int, apply applyFunc) error {
	if err := im.begin(); err != nil {
		return err
	}
	if !im.safe {
		out, err := apply()
		if err == nil || errors.As(err, new(lineFault)) { // faults found before any write
			return im.applied(line, apply, out, err)
		}
		redo := im.done
		im.tx.Rollback()
		im.tx, im.done, im.ids, im.batch = nil, nil, map[string]int64{}, [4]int{} // ids may be rolled back
		if err := im.begin(); err != nil {
			return err
		}
		im.safe = true
		for _, r := range redo {
			if err := im.applySafe(r.line, r.apply); err != nil {
				return err
			}
		}
	}
	return im.applySafe(line, apply)
}

// applySafe applies a record inside a savepoint. After a deadlock or serialization
// failure it commits the batch so far, releasing its locks, and retries the record.
func (im *importer) applySafe(line int, apply applyFunc) error {
	for attempt := 1; ; attempt++ {
		if err := im.begin(); err != nil {
			return err
		}
		im.safe = true
		sp := "SAVEPOINT import_line"
		if im.spOpen { // one round trip for both
			sp = "RELEASE SAVEPOINT import_line; " + sp
		}
		if _, err := im.tx.ExecContext(im.ctx, sp); err != nil {
			return err
		}
		im.spOpen = true
		out, err := apply()
		if err == nil {
			return im.applied(line, apply, out, nil)
		}
		if err := im.rollbackLine(); err != nil {
			return err
		}
		if !retryable(err) || attempt == maxAttempts {
			if err = lineMessage(err); !errors.As(err, new(lineFault)) {
				return err
			}
			return im.applied(line, apply, 0, err)
		}
		if err := im.commit(); err != nil {
			return err
		}
	}
}

// applied counts a record applied, or reports it as bad, and ends a full batch.
func (im *importer) applied(line int, apply applyFunc, out int, fault error) error {
	if fault != nil {
		im.fail(line, fault)
		return nil
	}
	im.batch[out]++
	if im.done = append(im.done, doneLine{line, apply}); len(im.done) >= importBatch {
		return im.commit()
	}
	return nil
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
	im.tx, im.st, im.spOpen, im.safe, im.done = tx, map[string]*sqlx.Stmt{}, false, false, im.done[:0]
	for name, q := range importStmts {
		if im.st[name], err = tx.PreparexContext(im.ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// commit commits the batch, if one is open, and adds its counts to the report.
func (im *importer) commit() error {
	if im.tx == nil {
		return nil
	}
	err := im.tx.Commit()
	if im.tx = nil; err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	r := im.rep
	r.Members, r.Connections = r.Members+im.batch[outMember], r.Connections+im.batch[outConnection]
	r.Invitations, r.Unchanged = r.Invitations+im.batch[outInvitation], r.Unchanged+im.batch[outUnchanged]
	im.batch = [4]int{}
	return nil
}

// lineMessage turns a database error that a line caused into words; any other error
// is returned as it is, as no line's fault.
func lineMessage(err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return err
	}
	switch code := pgErr.Code; {
	case code == "23505":
		return faultf("the record conflicts with an existing one (%s)", pgErr.ConstraintName)
	case code == "23503":
		return lineFault("the record refers to a member that does not exist")
	case code == "23514":
		return faultf("the record breaks the rule %s", pgErr.ConstraintName)
	case strings.HasPrefix(code, "23"):
		return lineFault("the record breaks an integrity rule of the database")
	case strings.HasPrefix(code, "22"):
		return lineFault("the record holds a value the database cannot store")
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
