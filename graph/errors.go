package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"invitations/db"
	"invitations/graph/model"
)

// Top-level error codes (extensions.code).
const (
	codeBadUserInput = "BAD_USER_INPUT"
	codeInternal     = "INTERNAL_SERVER_ERROR"
)

// ErrorPresenter is the one place errors become what clients see. Errors that carry a
// code pass through; repository refusals become BAD_USER_INPUT; anything else is logged
// and answered INTERNAL_SERVER_ERROR with no internal detail.
func ErrorPresenter(logger *slog.Logger) graphql.ErrorPresenterFunc {
	return func(ctx context.Context, err error) *gqlerror.Error {
		var gqlErr *gqlerror.Error
		if errors.As(err, &gqlErr) && gqlErr.Err == nil {
			if _, ok := gqlErr.Extensions["code"]; ok {
				return gqlErr
			}
		}
		out := graphql.DefaultErrorPresenter(ctx, err)
		if e, ok := db.AsError(err); ok {
			if e.Code == db.CodeServiceBusy {
				out.Message = e.Message
				out.Extensions = map[string]any{"code": codeInternal, "retryable": true}
				return out
			}
			out.Message = e.Message
			out.Extensions = map[string]any{"code": codeBadUserInput}
			if len(e.Field) > 0 {
				out.Extensions["field"] = e.Field
			}
			return out
		}
		if gqlErr != nil && gqlErr.Err == nil && gqlErr.Rule != "" {
			return out // validation errors from gqlparser carry their own code
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			out.Message = "the request was cancelled or timed out"
			out.Extensions = map[string]any{"code": codeInternal, "retryable": true}
			return out
		}
		logger.ErrorContext(ctx, "internal error", "path", out.Path.String(), "err", err)
		out.Message = "internal server error"
		out.Extensions = map[string]any{"code": codeInternal}
		return out
	}
}

// Recover turns a resolver panic into a logged INTERNAL_SERVER_ERROR.
func Recover(logger *slog.Logger) graphql.RecoverFunc {
	return func(ctx context.Context, p any) error {
		logger.ErrorContext(ctx, "panic in resolver", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		return &gqlerror.Error{Message: "internal server error", Extensions: map[string]any{"code": codeInternal}}
	}
}

// badUserInput is a top-level BAD_USER_INPUT error about an argument.
func badUserInput(format string, args ...any) error { return badInput(format, args...) }

// badInput is badUserInput as gqlgen's extensions return it.
func badInput(format string, args ...any) *gqlerror.Error {
	return &gqlerror.Error{Message: fmt.Sprintf(format, args...), Extensions: map[string]any{"code": codeBadUserInput}}
}

// userErrors splits a repository result: a refusal becomes the payload's userErrors,
// anything else is returned as a top-level error.
func (r *Resolver) userErrors(err error) ([]*model.UserError, error) {
	if err == nil {
		return []*model.UserError{}, nil
	}
	e, ok := db.AsError(err)
	if !ok || e.Code == db.CodeServiceBusy || e.Code == db.CodeBadUserInput {
		return nil, err
	}
	if r.OnUserError != nil {
		r.OnUserError(string(e.Code))
	}
	return []*model.UserError{{
		Code:        model.UserErrorCode(e.Code),
		Message:     e.Message,
		Field:       e.Field,
		AvailableAt: e.AvailableAt,
	}}, nil
}
