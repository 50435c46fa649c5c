package db

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Code names why a use case was refused. The values are the GraphQL API's
// UserErrorCode values, plus BadUserInput for malformed list arguments.
type Code string

// The refusal codes.
const (
	CodeWeeklyLimit        Code = "WEEKLY_LIMIT_REACHED"
	CodePendingLimit       Code = "PENDING_LIMIT_REACHED"
	CodeCooldown           Code = "COOLDOWN_ACTIVE"
	CodeAlreadyPending     Code = "ALREADY_PENDING"
	CodeAlreadyConnected   Code = "ALREADY_CONNECTED"
	CodeSelfInvitation     Code = "SELF_INVITATION"
	CodeRecipientConnLimit Code = "RECIPIENT_CONNECTION_LIMIT"
	CodeSenderConnLimit    Code = "SENDER_CONNECTION_LIMIT"
	CodeConnectionLimit    Code = "CONNECTION_LIMIT"
	CodeMessageTooLong     Code = "MESSAGE_TOO_LONG"
	CodeNoteQuota          Code = "NOTE_QUOTA_REACHED"
	CodeNotFound           Code = "NOT_FOUND"
	CodeNotPending         Code = "NOT_PENDING"
	CodeTooManySelected    Code = "TOO_MANY_SELECTED"
	CodeInvalidInput       Code = "INVALID_INPUT"
	CodeBadUserInput       Code = "BAD_USER_INPUT"
	CodeServiceBusy        Code = "SERVICE_BUSY"
)

// Error is a refusal the client can act on: a business rule (returned as a userError)
// or a malformed argument (CodeBadUserInput, a top-level error). Its Message never
// contains driver or SQL details.
type Error struct {
	Code        Code
	Message     string
	Field       []string
	AvailableAt *time.Time
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

func refuse(code Code, field []string, format string, args ...any) *Error {
	return &Error{Code: code, Field: field, Message: fmt.Sprintf(format, args...)}
}

func refuseUntil(code Code, at time.Time, field []string, format string, args ...any) *Error {
	e := refuse(code, field, format, args...)
	at = at.UTC()
	e.AvailableAt = &at
	return e
}

// badInput is a malformed list argument (a top-level BAD_USER_INPUT error).
func badInput(field string, format string, args ...any) *Error {
	return refuse(CodeBadUserInput, strings.Split(field, "."), format, args...)
}

// AsError returns the *Error inside err, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// translate turns driver errors that clients can act on into *Error and leaves every
// other error as it is (the presenter logs those and answers INTERNAL_SERVER_ERROR).
// *pgconn.PgError values never reach clients.
func translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err // the client is gone or out of time: nothing to tell it
	}
	busy := &Error{Code: CodeServiceBusy, Message: "the service is busy; try again"}
	var pgErr *pgconn.PgError
	var netErr *net.OpError
	var connectErr *pgconn.ConnectError
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.As(err, &netErr), errors.As(err, &connectErr),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF), pgconn.SafeToRetry(err),
		errors.Is(err, errPoolWait):
		// The database restarted or is unreachable, or no connection freed up in time. A
		// retry is safe even after a lost COMMIT: idempotency keys and the one-live-
		// invitation index keep it from doing anything twice.
		return busy
	case !errors.As(err, &pgErr):
		return err
	}
	switch {
	case pgErr.Code == "23505": // unique_violation: lost a race the locks should have prevented
		if pgErr.ConstraintName == "invitations_live_pair_key" {
			return refuse(CodeAlreadyPending, nil, "an invitation between these members is already pending")
		}
	case inString(pgErr.Code, "55P03", "57014", "40001", "40P01", "53300", "57P01", "57P02", "57P03"),
		strings.HasPrefix(pgErr.Code, "08"):
		// lock or statement timeout, contention, too many connections, the server
		// shutting down or restarting, connection failures
		return busy
	}
	return fmt.Errorf("database: %w", err)
}

// TranslateForTest exposes translate to other packages' tests of the error contract.
func TranslateForTest(err error) error { return translate(err) }

// AsErrorForTest builds a refusal, for other packages' tests of the error contract.
func AsErrorForTest(code Code, message string) error { return refuse(code, nil, "%s", message) }
