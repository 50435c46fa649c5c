package graph

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"

	"invitations/db"
	"invitations/db/dbtest"
)

func TestMain(m *testing.M) { dbtest.Main(m) }

// A resolver's error deep in a response (an invitation's recipient, resolved inline by
// internal/leaffields) is reported at its full path, and nulls the field and each
// non-null parent up to the root, as gqlgen's ResolveField does.
func TestFieldErrorsKeepTheirPaths(t *testing.T) {
	ctx := context.Background()
	conn := dbtest.Open(t)
	conn.MustExec(`INSERT INTO members (handle, name) VALUES ('ann', 'Ann'), ('bob', 'Bob')`)
	conn.MustExec(`INSERT INTO invitations (sender_id, recipient_id, source, status, sent_at)
		SELECT a.id, b.id, 'SEARCH', 'PENDING', now() - interval '20 days' FROM members a, members b WHERE a.handle = 'ann' AND b.handle = 'bob'`)
	store := db.New(conn, db.DefaultLimits(), time.Now)
	ann, err := store.MemberByHandle(ctx, "ann")
	if err != nil || ann == nil {
		t.Fatal(ann, err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	srv := executor.New(NewExecutableSchema(Config{Resolvers: &Resolver{Store: store, Logger: logger}}))
	srv.SetErrorPresenter(ErrorPresenter(logger))
	srv.SetRecoverFunc(Recover(logger))
	exec := func(ctx context.Context, query string) (string, []map[string]any) {
		t.Helper()
		ctx = context.WithValue(ctx, viewerKey{}, viewerState{viewer: &Viewer{Member: ann}})
		ctx = graphql.StartOperationTrace(ctx)
		rc, errs := srv.CreateOperationContext(ctx, &graphql.RawParams{Query: query})
		if errs != nil {
			t.Fatal(errs)
		}
		resp, ctx := srv.DispatchOperation(ctx, rc)
		r := resp(ctx)
		var list []map[string]any
		b, _ := json.Marshal(r.Errors)
		json.Unmarshal(b, &list)
		return string(r.Data), list
	}
	const query = `{ pendingInvitations(first: 5) { totalCount edges { node { id recipient { name } } } } }`

	// The members' loader fails for Bob: the recipient field fails. (The page's
	// statement reads Bob with the invitation, and the loader takes what it reads only
	// for members not asked for yet: asking first keeps the failing batch in place.)
	bob, err := store.MemberByHandle(ctx, "bob")
	if err != nil || bob == nil {
		t.Fatal(bob, err)
	}
	broken := newLoaders(store)
	failing := newBatchLoader(func(context.Context, []int64, bool) (map[int64]*db.Member, error) {
		return nil, errors.New("members unavailable")
	}, nil)
	broken.members.get(func() *batchLoader[int64, *db.Member] { return failing })
	broken.membersLoader().LoadThunk(ctx, bob.ID)
	data, errs := exec(context.WithValue(ctx, loadersKey{}, broken), query)
	if len(errs) != 1 {
		t.Fatalf("errors %v", errs)
	}
	path, _ := json.Marshal(errs[0]["path"])
	if string(path) != `["pendingInvitations","edges",0,"node","recipient"]` {
		t.Errorf("error path %s, want the recipient's", path)
	}
	if data != `null` { // pendingInvitations is non-null too
		t.Errorf("data %s, want the nulls to reach the root", data)
	}

	// The same request with working loaders answers.
	data, errs = exec(ctx, query)
	if len(errs) != 0 || data != `{"pendingInvitations":{"totalCount":1,"edges":[{"node":{"id":"`+db.NodeID("Invitation", 1)+`","recipient":{"name":"Bob"}}}]}}` {
		t.Errorf("data %s, errors %v", data, errs)
	}
}
