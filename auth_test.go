package main

// TESTPLAN S2: every operation refuses every kind of missing or bad credential with a
// top-level UNAUTHENTICATED error, no data and no effect (SPEC section 4).

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"invitations/graph"
)

// authPost posts a GraphQL request with the Authorization header as given (nil: none).
func authPost(s *server, header *string, query string, vars map[string]any) *response {
	s.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest("POST", s.url+"/query", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if header != nil {
		req.Header.Set("Authorization", *header)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := &response{status: res.StatusCode, raw: string(raw)}
	if err := json.Unmarshal(raw, out); err != nil {
		s.t.Fatalf("not JSON (%d): %s", res.StatusCode, raw)
	}
	return out
}

// authSign signs claims with a method and key.
func authSign(t *testing.T, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	tok, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// authOperation is one field of Query or Mutation with valid-looking arguments.
type authOperation struct {
	args  string // the field's arguments, "(...)" or ""
	spec  bool   // named by SPEC.md but possibly not in the schema yet: skipped when absent
	admin bool   // for admins only: a member's valid token gets FORBIDDEN, an admin's the data
}

// authFields lists Query and Mutation fields with the kind of their (unwrapped) type,
// through introspection without a token.
func authFields(t *testing.T, s *server) map[string]string {
	t.Helper()
	typeRef := `kind name ofType { kind name ofType { kind name ofType { kind name } } }`
	d := s.ok("", `{ __schema { queryType { fields { name type { `+typeRef+` } } }
		mutationType { fields { name type { `+typeRef+` } } } } }`, nil)
	out := map[string]string{}
	for root, path := range map[string]string{"query": "__schema.queryType.fields", "mutation": "__schema.mutationType.fields"} {
		fields, _ := get(d, path).([]any)
		for _, f := range fields {
			ty := get(f, "type")
			for get(ty, "ofType") != nil {
				ty = get(ty, "ofType")
			}
			out[root+"."+get(f, "name").(string)] = get(ty, "kind").(string)
		}
	}
	return out
}

func TestAuthenticationRequired(t *testing.T) {
	s := startServer(t, nil)
	ada := s.member("ada")
	s.member("bob")
	s.member("cy")
	bobID, cyID := s.memberID(ada, "bob"), s.memberID(ada, "cy")
	sentInv := get(s.ok(ada, sendMutation, map[string]any{"to": cyID}), "sendInvitation.invitation.id").(string)
	bob := s.token("bob")
	adaID := s.memberID(bob, "ada")
	receivedInv := get(s.ok(bob, sendMutation, map[string]any{"to": adaID}), "sendInvitation.invitation.id").(string)

	ops := map[string]authOperation{
		"query.viewer":                {},
		"query.member":                {args: `(handle: "bob")`},
		"query.node":                  {args: fmt.Sprintf(`(id: %q)`, sentInv)},
		"query.nodes":                 {args: fmt.Sprintf(`(ids: [%q, %q])`, sentInv, bobID)},
		"query.pendingInvitations":    {args: `(filter: {olderThanDays: 0}, first: 5)`},
		"query.receivedInvitations":   {args: `(first: 5)`},
		"query.sentInvitations":       {args: `(filter: {status: [PENDING]}, first: 5)`},
		"query.invitationQuota":       {},
		"mutation.sendInvitation":     {args: fmt.Sprintf(`(input: {recipientId: %q, message: "hi"})`, bobID)},
		"mutation.withdrawInvitation": {args: fmt.Sprintf(`(input: {invitationId: %q})`, sentInv)},
		"mutation.withdrawSelected":   {args: fmt.Sprintf(`(input: {invitationIds: [%q]})`, sentInv)},
		"mutation.acceptInvitation":   {args: fmt.Sprintf(`(input: {invitationId: %q})`, receivedInv)},
		"mutation.ignoreInvitation":   {args: fmt.Sprintf(`(input: {invitationId: %q})`, receivedInv)},
		"mutation.removeConnection":   {args: fmt.Sprintf(`(input: {memberId: %q})`, bobID)},
		// SPEC section 3 names these too; they are probed as soon as the schema has them.
		"query.invitationStats":          {args: `(sentAfter: "2026-01-01T00:00:00Z")`},
		"query.networkInvitationStats":   {args: `(sentAfter: "2026-01-01T00:00:00Z")`, admin: true},
		"query.notifications":            {args: `(first: 5)`, spec: true},
		"mutation.withdrawOlderThan":     {args: `(input: {olderThanDays: 30, dryRun: true})`, spec: true},
		"mutation.markNotificationsRead": {args: `(input: {})`, spec: true},
	}
	fields := authFields(t, s)
	for f := range fields {
		if _, ok := ops[f]; !ok {
			t.Errorf("S2 has no case for %s: add one to TestAuthenticationRequired", f)
		}
	}
	var names []string
	for name, op := range ops {
		if _, ok := fields[name]; !ok {
			if !op.spec {
				t.Errorf("%s is not in the schema", name)
			}
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	if len(names) < 14 {
		t.Fatalf("only %d operations found in the schema: %v", len(names), names)
	}
	document := func(name string) (string, string) {
		root, field, _ := strings.Cut(name, ".")
		sel := ""
		if k := fields[name]; k == "OBJECT" || k == "INTERFACE" || k == "UNION" {
			sel = " { __typename }"
		}
		return field, root + " { " + field + ops[name].args + sel + " }"
	}

	now := time.Now()
	claims := func(extra jwt.MapClaims) jwt.MapClaims {
		c := jwt.MapClaims{"sub": "ada", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		for k, v := range extra {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		return c
	}
	secret := []byte(testSecret)
	valid := authSign(t, jwt.SigningMethodHS256, secret, claims(nil))
	parts := strings.Split(valid, ".")
	forgedBody := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"sub":"bob","iat":%d,"exp":%d}`, now.Unix(), now.Add(time.Hour).Unix())))
	str := func(s string) *string { return &s }
	credentials := []struct {
		name   string
		header *string
	}{
		{"NoHeader", nil},
		{"EmptyHeader", str("")},
		{"BearerGarbage", str("Bearer garbage")},
		{"BearerEmpty", str("Bearer ")},
		{"WrongSecret", str("Bearer " + authSign(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-another"), claims(nil)))},
		{"Expired", str("Bearer " + authSign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{
			"iat": now.Add(-2 * time.Hour).Unix(), "exp": now.Add(-time.Hour).Unix()})))},
		{"NotYetValid", str("Bearer " + authSign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()})))},
		{"AlgNone", str("Bearer " + authSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil)))},
		{"HS512RightSecret", str("Bearer " + authSign(t, jwt.SigningMethodHS512, secret, claims(nil)))},
		{"HS384RightSecret", str("Bearer " + authSign(t, jwt.SigningMethodHS384, secret, claims(nil)))},
		{"UnknownMember", str("Bearer " + authSign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{"sub": "nobody"})))},
		{"NoSubject", str("Bearer " + authSign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{"sub": nil})))},
		{"ForgedPayload", str("Bearer " + parts[0] + "." + forgedBody + "." + parts[2])},
		{"SignatureStripped", str("Bearer " + parts[0] + "." + parts[1] + ".")},
		{"Basic", str("Basic xxx")},
		{"BasicWithValidToken", str("Basic " + valid)},
		{"TokenWithoutScheme", str(valid)},
		// TESTPLAN S13: tokens that would never expire, or claim a future issue time.
		{"NoExpiry", str("Bearer " + authSign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{"exp": nil})))},
		{"ExpiryNull", str("Bearer " + authSign(t, jwt.SigningMethodHS256, secret, jwt.MapClaims{"sub": "ada", "iat": now.Unix(), "exp": nil}))},
		{"IssuedInTheFuture", str("Bearer " + authSign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{
			"iat": now.Add(time.Hour).Unix(), "exp": now.Add(2 * time.Hour).Unix()})))},
		// TESTPLAN S12: a validly signed subject that no handle can hold.
		{"SubjectWithNUL", str("Bearer " + authSign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{"sub": "ada\x00"})))},
	}

	before := checksumTables(t, s.conn)
	for _, cred := range credentials {
		t.Run(cred.name, func(t *testing.T) {
			for _, name := range names {
				t.Run(name, func(t *testing.T) {
					field, doc := document(name)
					r := authPost(s, cred.header, doc, nil)
					if r.status != 200 {
						t.Errorf("HTTP %d, want 200: %s", r.status, r.raw)
					}
					if len(r.Errors) == 0 {
						t.Errorf("no error: %s", r.raw)
					}
					for _, e := range r.Errors {
						if e.Extensions["code"] != "UNAUTHENTICATED" {
							t.Errorf("error code %v, want UNAUTHENTICATED: %s", e.Extensions["code"], r.raw)
						}
					}
					if r.Data != nil && r.Data[field] != nil {
						t.Errorf("data returned without authentication: %s", r.raw)
					}
				})
			}
		})
	}
	after := checksumTables(t, s.conn)
	for table, sum := range before {
		if after[table] != sum {
			t.Errorf("table %s changed by unauthenticated requests", table)
		}
	}

	// Control: the same documents with the valid token pass authentication; admin-only
	// fields need an admin's token and refuse a member's with FORBIDDEN.
	t.Run("ValidToken", func(t *testing.T) {
		h := "Bearer " + valid
		admin := "Bearer " + authSign(t, jwt.SigningMethodHS256, secret, claims(jwt.MapClaims{"role": "admin"}))
		for _, name := range names {
			field, doc := document(name)
			if ops[name].admin {
				if r := authPost(s, &h, doc, nil); r.status != 200 || r.code() != "FORBIDDEN" || r.Data[field] != nil {
					t.Errorf("%s with a member's valid token: %d %s", name, r.status, r.raw)
				}
				r := authPost(s, &admin, doc, nil)
				if r.status != 200 || len(r.Errors) > 0 || r.Data[field] == nil {
					t.Errorf("%s with an admin's valid token: %d %s", name, r.status, r.raw)
				}
				continue
			}
			r := authPost(s, &h, doc, nil)
			if r.status != 200 || len(r.Errors) > 0 || r.Data[field] == nil {
				t.Errorf("%s with a valid token: %d %s", name, r.status, r.raw)
			}
		}
	})
}

func TestAuthIntrospectionWithoutToken(t *testing.T) {
	s := startServer(t, nil)
	r := s.gql("", `{ __schema { queryType { name } mutationType { name } } }`, nil)
	if r.status != 200 || len(r.Errors) > 0 || get(r.Data, "__schema.queryType.name") != "Query" ||
		get(r.Data, "__schema.mutationType.name") != "Mutation" {
		t.Fatalf("introspection without a token: %d %s", r.status, r.raw)
	}
	r = s.gql("", `{ __type(name: "Invitation") { fields { name } } }`, nil)
	if r.status != 200 || len(r.Errors) > 0 || len(get(r.Data, "__type.fields").([]any)) == 0 {
		t.Fatalf("__type without a token: %d %s", r.status, r.raw)
	}
	// Asking for data and the schema in one document: the schema part is answered,
	// the data part is refused.
	r = s.gql("", `{ __typename viewer { handle } }`, nil)
	if r.code() != "UNAUTHENTICATED" {
		t.Fatalf("viewer without a token: %s", r.raw)
	}
}

func TestAuthAdminTokenWorks(t *testing.T) {
	s := startServer(t, nil)
	s.member("ada")
	s.member("bob")
	admin, err := graph.SignToken([]byte(testSecret), "ada", true, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	d := s.ok(admin, `{ viewer { handle } member(handle: "bob") { handle connectionStatus } invitationQuota { limit }
		pendingInvitations { totalCount } receivedInvitations { totalCount } sentInvitations { totalCount } }`, nil)
	if get(d, "viewer.handle") != "ada" || get(d, "member.connectionStatus") != "NONE" || get(d, "invitationQuota.limit") != 100.0 {
		t.Fatalf("admin token: %v", d)
	}
	bobID := s.memberID(admin, "bob")
	d = s.ok(admin, sendMutation, map[string]any{"to": bobID})
	if get(d, "sendInvitation.invitation.sender.handle") != "ada" {
		t.Fatalf("admin token send: %v", d)
	}
	// Lowercase scheme is accepted (RFC 7235: the scheme is case-insensitive).
	h := "bearer " + admin
	if r := authPost(s, &h, `{ viewer { handle } }`, nil); get(r.Data, "viewer.handle") != "ada" {
		t.Fatalf("lowercase bearer: %s", r.raw)
	}
}
