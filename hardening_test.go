package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// TestAbuseLimits is the part of TESTPLAN S5 that the GraphQL layer refuses before any
// resolver runs.
func TestAbuseLimits(t *testing.T) {
	s := startServer(t, nil)
	tok := s.member("ada")
	aliases := func(n int, field string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := 0; i < n; i++ {
			b.WriteString("a" + itoa(i) + ": " + field + " ")
		}
		return b.String() + "}"
	}
	deep := "{ __schema { types { " + strings.Repeat("fields { type { ", 10) + "name" + strings.Repeat(" } }", 10) + " } } }"
	directives := "{ viewer { handle " + strings.Repeat("@include(if: true) ", 3000) + "} }"
	for name, c := range map[string]struct{ query, code string }{
		"HugePage":          {`{ pendingInvitations(first: 99999999) { nodes { id } } }`, "COMPLEXITY_LIMIT_EXCEEDED"},
		"ThousandAliases":   {aliases(1000, "viewer { handle }"), "GRAPHQL_PARSE_FAILED"}, // over the token limit
		"CostlyAliases":     {aliases(200, "pendingInvitations(first: 100) { nodes { id sender { handle } } }"), "COMPLEXITY_LIMIT_EXCEEDED"},
		"DepthBomb":         {deep, "GRAPHQL_VALIDATION_FAILED"}, // gqlparser bounds introspection depth
		"ManyDirectives":    {directives, "GRAPHQL_PARSE_FAILED"},
		"CircularFragments": {`query { viewer { ...A } } fragment A on Member { ...B } fragment B on Member { ...A }`, "GRAPHQL_VALIDATION_FAILED"},
	} {
		t.Run(name, func(t *testing.T) {
			r := s.gql(tok, c.query, nil)
			if r.code() != c.code || r.Data != nil && len(r.Data) > 0 {
				t.Fatalf("got %q: %.300s", r.code(), r.raw)
			}
		})
	}
	t.Run("AFullPageIsAllowed", func(t *testing.T) {
		s.ok(tok, `{ pendingInvitations(first: 100) { totalCount nodes { id message sender { handle name connectionStatus } recipient { handle name connectionStatus } } }
			receivedInvitations(first: 100) { nodes { id sender { handle } } } }`, nil)
	})
	t.Run("IntrospectionIsAllowed", func(t *testing.T) {
		s.ok("", introspectionQuery, nil)
	})
	t.Run("HugeBody", func(t *testing.T) {
		body := `{"query": "{ viewer { handle } }", "variables": {"x": "` + strings.Repeat("x", 10<<20) + `"}}`
		res, err := http.Post(s.url+"/query", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode < 400 || res.StatusCode >= 500 {
			t.Fatalf("10 MB body: %d", res.StatusCode)
		}
	})
	t.Run("UndecodableJSONIsNotEchoed", func(t *testing.T) {
		res, err := http.Post(s.url+"/query", "application/json", strings.NewReader(`{"query": "secret-token-xyz`))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != 400 || strings.Contains(string(raw), "secret-token-xyz") || !strings.Contains(string(raw), "BAD_USER_INPUT") {
			t.Fatalf("%d %s", res.StatusCode, raw)
		}
	})
	t.Run("BatchedArrayRefused", func(t *testing.T) {
		body, _ := json.Marshal([]map[string]string{{"query": "{ __typename }"}, {"query": "{ __typename }"}})
		res, err := http.Post(s.url+"/query", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode == 200 || res.StatusCode >= 500 {
			t.Fatalf("batched array: %d", res.StatusCode)
		}
	})
}

// TestProductionMode is TESTPLAN S4: APP_ENV=production turns off introspection, field
// suggestions and the playground.
func TestProductionMode(t *testing.T) {
	s := startServer(t, map[string]string{"APP_ENV": "production"})
	tok := s.member("ada")
	if r := s.gql(tok, `{ __schema { queryType { name } } }`, nil); r.code() != "GRAPHQL_VALIDATION_FAILED" {
		t.Fatalf("introspection in production: %s", r.raw)
	}
	if r := s.gql(tok, `{ viewer { nme } }`, nil); strings.Contains(r.raw, "Did you mean") || r.code() != "GRAPHQL_VALIDATION_FAILED" {
		t.Fatalf("suggestion in production: %s", r.raw)
	}
	for _, path := range []string{"/", "/playground/graphiql.min.js"} {
		res, err := http.Get(s.url + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Fatalf("playground %s in production: %d", path, res.StatusCode)
		}
	}
	if d := s.ok(tok, `{ viewer { handle } }`, nil); get(d, "viewer.handle") != "ada" {
		t.Fatal("queries must still work")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

const introspectionQuery = `query IntrospectionQuery {
  __schema {
    queryType { name } mutationType { name } subscriptionType { name }
    types { ...FullType }
    directives { name description locations args { ...InputValue } }
  }
}
fragment FullType on __Type {
  kind name description
  fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
  inputFields { ...InputValue }
  interfaces { ...TypeRef }
  enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
  possibleTypes { ...TypeRef }
}
fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
fragment TypeRef on __Type {
  kind name
  ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }
}`
