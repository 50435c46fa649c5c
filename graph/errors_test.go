package graph

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/vektah/gqlparser/v2/ast"

	"invitations/db"
)

// TestErrorsLeakNothing is TESTPLAN S6 at the presenter: driver errors, panics and
// unknown errors reach clients as coded errors without SQL, constraint or table names,
// file paths or stack traces; the details go to the log.
func TestErrorsLeakNothing(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	present := ErrorPresenter(logger)
	ctx := graphql.WithFieldContext(context.Background(), &graphql.FieldContext{Field: graphql.CollectedField{Field: &ast.Field{Alias: "sendInvitation"}}})
	leaks := []string{"pq:", "SQLSTATE", "invitations_", "members_", "table", "duplicate key", "violates", ".go", "goroutine", "canceling statement"}
	cases := map[string]struct {
		err  error
		code string
	}{
		"UniqueViolation":     {&pgconn.PgError{Code: "23505", Message: "duplicate key value violates unique constraint \"invitations_pair_sent_key\"", ConstraintName: "invitations_pair_sent_key", TableName: "invitations"}, "INTERNAL_SERVER_ERROR"},
		"LivePairRace":        {&pgconn.PgError{Code: "23505", Message: "duplicate key value violates unique constraint", ConstraintName: "invitations_live_pair_key"}, "BAD_USER_INPUT"},
		"ForeignKey":          {&pgconn.PgError{Code: "23503", Message: "insert or update on table \"invitations\" violates foreign key constraint", TableName: "invitations"}, "INTERNAL_SERVER_ERROR"},
		"StatementTimeout":    {&pgconn.PgError{Code: "57014", Message: "canceling statement due to statement timeout"}, "INTERNAL_SERVER_ERROR"},
		"LockTimeout":         {&pgconn.PgError{Code: "55P03", Message: "canceling statement due to lock timeout"}, "INTERNAL_SERVER_ERROR"},
		"TooManyConnections":  {&pgconn.PgError{Code: "53300", Message: "sorry, too many clients already"}, "INTERNAL_SERVER_ERROR"},
		"WrappedUnknown":      {fmt.Errorf("load members: %w", fmt.Errorf("open /etc/secret.go: permission denied")), "INTERNAL_SERVER_ERROR"},
		"ContextCancelled":    {context.Canceled, "INTERNAL_SERVER_ERROR"},
		"RepositoryBadFilter": {db.AsErrorForTest(db.CodeBadUserInput, "first must be between 0 and 100"), "BAD_USER_INPUT"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := db.TranslateForTest(c.err)
			got := present(ctx, err)
			if got.Extensions["code"] != c.code {
				t.Fatalf("code %v, want %s (%s)", got.Extensions["code"], c.code, got.Message)
			}
			for _, leak := range leaks {
				if strings.Contains(got.Message, leak) || strings.Contains(fmt.Sprint(got.Extensions), leak) {
					t.Fatalf("message leaks %q: %s", leak, got.Message)
				}
			}
		})
	}
	if !strings.Contains(logs.String(), "invitations_pair_sent_key") {
		t.Error("the log should keep the details the client does not see")
	}
	t.Run("Panic", func(t *testing.T) {
		err := Recover(logger)(ctx, "boom at /src/graph/x.go:12")
		got := present(ctx, err)
		if got.Extensions["code"] != "INTERNAL_SERVER_ERROR" || strings.Contains(got.Message, "boom") || strings.Contains(got.Message, ".go") {
			t.Fatalf("%+v", got)
		}
	})
}
