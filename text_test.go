package main

// TESTPLAN S12: text that PostgreSQL cannot store (a NUL character, invalid UTF-8), in
// every string argument of the schema, is a client error before the database, never
// INTERNAL_SERVER_ERROR.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"

	"github.com/vektah/gqlparser/v2/ast"

	"invitations/db"
	"invitations/graph"
)

// textCase is one string position in the arguments of a root field: a document that
// passes the text in $s there, with every other required argument given a plain value.
type textCase struct {
	path     string // Mutation.sendInvitation(input.idempotencyKey)
	document string
}

// textCases lists every position of type String or ID (alone or in a list) in the
// arguments of Query and Mutation fields, input objects included, read from the schema.
func textCases(t testing.TB) []textCase {
	schema := graph.NewExecutableSchema(graph.Config{}).Schema()
	var out []textCase
	for _, root := range []*ast.Definition{schema.Query, schema.Mutation} {
		for _, f := range root.Fields {
			if strings.HasPrefix(f.Name, "__") {
				continue
			}
			sel := ""
			if def := schema.Types[f.Type.Name()]; def.Kind == ast.Object || def.Kind == ast.Interface || def.Kind == ast.Union {
				sel = " { __typename }"
			}
			for _, target := range textPositions(schema, f.Arguments, "") {
				args := textArguments(schema, f.Arguments, "", target)
				out = append(out, textCase{
					path: root.Name + "." + f.Name + "(" + target.path + ")",
					document: fmt.Sprintf("%s($s: %s!) { %s%s%s }", strings.ToLower(root.Name), target.named,
						f.Name, args, sel),
				})
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].path < out[j].path })
	if len(out) < 10 {
		t.Fatalf("only %d string positions found in the schema", len(out))
	}
	return out
}

type textPosition struct{ path, named string }

// textPositions walks arguments (or input fields) down to their String and ID leaves.
func textPositions(schema *ast.Schema, args ast.ArgumentDefinitionList, prefix string) []textPosition {
	var out []textPosition
	for _, a := range args {
		out = append(out, textPositionsOf(schema, prefix+a.Name, a.Type)...)
	}
	return out
}

func textPositionsOf(schema *ast.Schema, path string, ty *ast.Type) []textPosition {
	name := ty.Name()
	switch def := schema.Types[name]; {
	case name == "String" || name == "ID":
		return []textPosition{{path, name}}
	case def.Kind == ast.InputObject:
		var out []textPosition
		for _, f := range def.Fields {
			out = append(out, textPositionsOf(schema, path+"."+f.Name, f.Type)...)
		}
		return out
	}
	return nil
}

// textArguments writes the arguments of a field with $s at target and a plain value
// wherever a value is required.
func textArguments(schema *ast.Schema, args ast.ArgumentDefinitionList, prefix string, target textPosition) string {
	var parts []string
	for _, a := range args {
		if v := textValue(schema, prefix+a.Name, a.Type, target); v != "" {
			parts = append(parts, a.Name+": "+v)
		}
	}
	if len(parts) == 0 {
		return ""
	}
	return "(" + strings.Join(parts, ", ") + ")"
}

// textValue is the literal for the position at path: $s at the target, a plain value
// where one is required on the way, "" where nothing is needed.
func textValue(schema *ast.Schema, path string, ty *ast.Type, target textPosition) string {
	onPath := path == target.path || strings.HasPrefix(target.path, path+".")
	if !onPath && !ty.NonNull {
		return ""
	}
	v := ""
	def := schema.Types[ty.Name()]
	switch {
	case path == target.path:
		v = "$s"
	case def.Kind == ast.InputObject:
		var fields []string
		for _, f := range def.Fields {
			if fv := textValue(schema, path+"."+f.Name, f.Type, target); fv != "" {
				fields = append(fields, f.Name+": "+fv)
			}
		}
		v = "{" + strings.Join(fields, ", ") + "}"
	case def.Kind == ast.Enum:
		v = def.EnumValues[0].Name
	case ty.Name() == "Int":
		v = "1"
	case ty.Name() == "Boolean":
		v = "true"
	case ty.Name() == "DateTime":
		v = `"2026-01-01T00:00:00Z"`
	default:
		v = `"x"`
	}
	if ty.Elem != nil {
		v = "[" + v + "]"
	}
	return v
}

// textProbe sends the case's document with s as $s and checks the answer: never a 5xx
// or INTERNAL_SERVER_ERROR, and BAD_USER_INPUT when s cannot be stored.
func textProbe(t *testing.T, s *server, token string, c textCase, text string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": c.document, "variables": map[string]any{"s": text}})
	req, _ := http.NewRequest("POST", s.url+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var r response
	if err := json.Unmarshal(raw, &r); err != nil || res.StatusCode >= 500 {
		t.Fatalf("%s with %q: %d %s", c.path, text, res.StatusCode, raw)
	}
	for _, e := range r.Errors {
		if e.Extensions["code"] == "INTERNAL_SERVER_ERROR" {
			t.Fatalf("%s with %q: %s", c.path, text, raw)
		}
	}
	// JSON carries text as UTF-8: invalid bytes arrive replaced, so only a NUL remains.
	if sent := strings.ToValidUTF8(text, "\uFFFD"); !db.StorableText(sent) && r.code() != "BAD_USER_INPUT" {
		t.Fatalf("%s with %q: want BAD_USER_INPUT, got %s", c.path, text, raw)
	}
}

func TestTextTheDatabaseCannotHold(t *testing.T) {
	s := startServer(t, map[string]string{"SWEEP_INTERVAL": "0", "REMINDER_INTERVAL": "0"})
	ada := s.member("ada")
	s.member("bob")
	bob := s.memberID(ada, "bob")
	cases := textCases(t)
	before := checksumTables(t, s.conn)
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			for _, text := range []string{"a\x00b", "\x00", "ada\x00"} {
				textProbe(t, s, ada, c, text)
			}
		})
	}
	// Literals in the document, a handle, an idempotency key and a note among them, and
	// a GET whose query string carries invalid UTF-8 (JSON cannot).
	for name, c := range map[string]struct{ doc, code string }{
		"HandleLiteral": {`{ member(handle: "ada\u0000") { id } }`, "BAD_USER_INPUT"},
		"KeyLiteral":    {`mutation { sendInvitation(input: {recipientId: "` + bob + `", idempotencyKey: "k\u0000"}) { connected } }`, "BAD_USER_INPUT"},
		// A block string takes no escapes, and the lexer refuses a raw NUL.
		"NoteBlock":       {"mutation { sendInvitation(input: {recipientId: \"" + bob + "\", message: \"\"\"hi\x00\"\"\"}) { connected } }", "GRAPHQL_PARSE_FAILED"},
		"DirectiveArg":    {`{ viewer @include(if: true) { handle } member(handle: "a\u0000") @skip(if: false) { id } }`, "BAD_USER_INPUT"},
		"InFragment":      {`{ ...F } fragment F on Query { member(handle: "\u0000") { id } }`, "BAD_USER_INPUT"},
		"VariableDefault": {`query($h: String! = "\u0000") { member(handle: $h) { id } }`, "BAD_USER_INPUT"},
	} {
		t.Run(name, func(t *testing.T) {
			if r := s.gql(ada, c.doc, nil); r.code() != c.code || r.Data["member"] != nil {
				t.Fatalf("%d %s", r.status, r.raw)
			}
		})
	}
	t.Run("GETInvalidUTF8", func(t *testing.T) {
		q := url.Values{"query": {`query($h: String!) { member(handle: $h) { id } }`}, "variables": {`{"h": "x"}`}}.Encode()
		for _, raw := range []string{"query=" + url.QueryEscape("{ member(handle: \"\xff\xfe\") { id } }"), q + "&x=%FF"} {
			req, _ := http.NewRequest("GET", s.url+"/query?"+raw, nil)
			req.Header.Set("Authorization", "Bearer "+ada)
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode >= 500 || bytes.Contains(body, []byte("INTERNAL_SERVER_ERROR")) {
				t.Fatalf("%s: %d %s", raw, res.StatusCode, body)
			}
		}
		req, _ := http.NewRequest("GET", s.url+"/query?"+url.Values{"query": {"{ member(handle: \"\xff\") { id } }"}}.Encode(), nil)
		req.Header.Set("Authorization", "Bearer "+ada)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !bytes.Contains(body, []byte("BAD_USER_INPUT")) {
			t.Fatalf("invalid UTF-8 in a GET literal: %d %s", res.StatusCode, body)
		}
	})
	after := checksumTables(t, s.conn)
	for table, sum := range before {
		if after[table] != sum {
			t.Errorf("table %s changed", table)
		}
	}
	t.Logf("S12: %d string positions × 3 texts, 6 literal forms, GET: 0 internal errors", len(cases))
}

// FuzzStringArguments is TESTPLAN S12 under the fuzzer: any text in any string
// position of the schema's arguments. Its seeds (run by go test) put a NUL and invalid
// UTF-8 in every position.
func FuzzStringArguments(f *testing.F) {
	s := startServer(f, map[string]string{"SWEEP_INTERVAL": "0", "REMINDER_INTERVAL": "0"})
	ada := s.member("ada")
	s.member("bob")
	cases := textCases(f)
	for i := range cases {
		f.Add(uint(i), "a\x00b")
		f.Add(uint(i), "\xff\xfe")
		f.Add(uint(i), "bob")
	}
	f.Fuzz(func(t *testing.T, i uint, text string) {
		textProbe(t, s, ada, cases[i%uint(len(cases))], text)
	})
}
