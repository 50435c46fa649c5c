package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"
)

// fixedExecutor answers every operation with the same response.
type fixedExecutor struct{ resp *graphql.Response }

func (e fixedExecutor) CreateOperationContext(ctx context.Context, p *graphql.RawParams) (*graphql.OperationContext, gqlerror.List) {
	if p.Query == "invalid" {
		return &graphql.OperationContext{}, gqlerror.List{{Message: "invalid query", Extensions: map[string]any{"code": "GRAPHQL_VALIDATION_FAILED"}}}
	}
	op := &ast.OperationDefinition{Operation: ast.Query}
	return &graphql.OperationContext{RawQuery: p.Query, Operation: op, Doc: &ast.QueryDocument{Operations: ast.OperationList{op}}}, nil
}

func (e fixedExecutor) DispatchOperation(ctx context.Context, _ *graphql.OperationContext) (graphql.ResponseHandler, context.Context) {
	return func(context.Context) *graphql.Response { return e.resp }, ctx
}

func (e fixedExecutor) DispatchError(_ context.Context, list gqlerror.List) *graphql.Response {
	return &graphql.Response{Errors: list}
}

// TestDataOnlyWritesWhatGqlgenWrites: for every kind of response, over POST and GET,
// the wrapped transport answers with the same status, headers and bytes as gqlgen's.
func TestDataOnlyWritesWhatGqlgenWrites(t *testing.T) {
	yes := true
	responses := map[string]*graphql.Response{
		"data":       {Data: json.RawMessage(`{"pendingInvitations":{"totalCount":2,"edges":[{"node":{"id":"SW52OjE=","message":"Hi – let's connect ’ ok"}}]}}`)},
		"empty data": {Data: json.RawMessage(`{}`)},
		// gqlgen's executor hands over an empty, not a nil, extensions map.
		"empty extensions":         {Data: json.RawMessage(`{"a":1}`), Extensions: map[string]any{}, Path: ast.Path{}},
		"null data":                {Data: json.RawMessage(`null`)},
		"no data":                  {},
		"less than":                {Data: json.RawMessage(`{"message":"a < b"}`)},
		"greater than":             {Data: json.RawMessage(`{"message":"a > b"}`)},
		"ampersand":                {Data: json.RawMessage(`{"message":"a & b"}`)},
		"line separator only":      {Data: json.RawMessage("{\"message\":\"a\u2028b\"}")},
		"paragraph separator only": {Data: json.RawMessage("{\"message\":\"a\u2029b\"}")},
		"line separator":           {Data: json.RawMessage("{\"message\":\"a\u2028b\u2029c\"}")},
		"trailing E2":              {Data: json.RawMessage("{\"message\":\"\xe2\"}")},
		"errors":                   {Data: json.RawMessage(`{"node":null}`), Errors: gqlerror.List{{Message: "not found", Path: ast.Path{ast.PathName("node")}, Extensions: map[string]any{"code": "NOT_FOUND"}}}},
		"extensions":               {Data: json.RawMessage(`{"a":1}`), Extensions: map[string]any{"cost": 3}},
		"incremental":              {Data: json.RawMessage(`{"a":1}`), Label: "l", Path: ast.Path{ast.PathName("a")}, HasNext: &yes},
		"escapes in a string":      {Data: json.RawMessage(`{"message":"quote \" backslash \\ tab \t unicode é"}`)},
	}
	serve := func(tr graphql.Transport, resp *graphql.Response, r *http.Request) *httptest.ResponseRecorder {
		w := httptest.NewRecorder()
		tr.Do(w, r, fixedExecutor{resp})
		return w
	}
	requests := map[string]func() *http.Request{
		"POST": func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(`{"query":"{ a }"}`))
			r.Header.Set("Content-Type", "application/json")
			return r
		},
		"POST graphql-response+json": func() *http.Request {
			r := httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(`{"query":"{ a }"}`))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Accept", "application/graphql-response+json")
			return r
		},
		"POST invalid": func() *http.Request {
			return httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(`{"query":"invalid"}`))
		},
		"POST bad JSON": func() *http.Request {
			return httptest.NewRequest(http.MethodPost, "/query", strings.NewReader(`{"query":`))
		},
		"GET": func() *http.Request { return httptest.NewRequest(http.MethodGet, "/query?query=%7B+a+%7D", nil) },
	}
	fast := 0
	for name, resp := range responses {
		for method, req := range requests {
			tr, wrapped := graphql.Transport(transport.POST{}), graphql.Transport(dataOnly{transport.POST{}})
			if strings.HasPrefix(method, "GET") {
				tr, wrapped = transport.GET{}, dataOnly{transport.GET{}}
			}
			want, got := serve(tr, resp, req()), serve(wrapped, resp, req())
			if got.Code != want.Code || got.Body.String() != want.Body.String() || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
				t.Errorf("%s, %s: got %d %q %q, gqlgen writes %d %q %q", name, method,
					got.Code, got.Header().Get("Content-Type"), got.Body, want.Code, want.Header().Get("Content-Type"), want.Body)
			}
		}
		if dataAlone(resp) {
			fast++
		}
	}
	// The fast path is taken where it can be (data alone, nothing to escape).
	for _, name := range []string{"data", "empty data", "empty extensions", "null data", "trailing E2", "escapes in a string"} {
		if !dataAlone(responses[name]) {
			t.Errorf("%s: not written directly", name)
		}
	}
	if fast != 6 {
		t.Errorf("%d responses written directly, want 6", fast)
	}
}

// TestServerAnswersTakeTheDataOnlyPath: the server's own answers (a page of invitations)
// are written directly, and one with an error is not. The bytes are gqlgen's either way
// (above); this checks that the server's responses are of the form the path expects.
func TestServerAnswersTakeTheDataOnlyPath(t *testing.T) {
	s := startServer(t, nil)
	ada := s.member("ada")
	s.member("bob")
	s.conn.MustExec(`INSERT INTO invitations (sender_id, recipient_id, message, sent_at)
		SELECT a.id, b.id, 'Hello', now() FROM members a, members b WHERE a.handle = 'ada' AND b.handle = 'bob'`)
	before := dataOnlyWrites.Load()
	d := s.ok(ada, `{ pendingInvitations(first: 5) { totalCount edges { cursor node { id message sentAt recipient { name } } } } }`, nil)
	if get(d, "pendingInvitations.totalCount") != 1.0 || get(d, "pendingInvitations.edges.0.node.message") != "Hello" {
		t.Fatalf("page: %v", d)
	}
	if dataOnlyWrites.Load() == before {
		t.Error("the page was encoded again, not written directly")
	}
}
