package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// httpDo sends one request with the given headers and returns the response with its
// body read.
func httpDo(t *testing.T, method, target string, headers map[string]string, body io.Reader) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, target, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res, raw
}

// corsHeaders are the response headers by which a server grants cross-origin access.
var corsHeaders = []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Methods", "Access-Control-Allow-Headers",
	"Access-Control-Allow-Credentials", "Access-Control-Expose-Headers", "Access-Control-Max-Age"}

func preflight(t *testing.T, s *server, origin, headers string) *http.Response {
	t.Helper()
	res, _ := httpDo(t, "OPTIONS", s.url+"/query", map[string]string{
		"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": headers,
	}, nil)
	return res
}

func TestCORS(t *testing.T) {
	const app = "https://app.example.com"
	s := startServer(t, map[string]string{"CORS_ALLOWED_ORIGINS": app + ", http://localhost:5173"})

	t.Run("AllowedOriginPreflight", func(t *testing.T) {
		// Browsers send the header names lowercase, sorted, without spaces.
		res := preflight(t, s, app, "apollographql-client-name,authorization,content-type")
		h := res.Header
		if res.StatusCode/100 != 2 || h.Get("Access-Control-Allow-Origin") != app ||
			!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "authorization") ||
			h.Get("Access-Control-Max-Age") != "600" || h.Get("Access-Control-Allow-Credentials") != "" ||
			!strings.Contains(strings.Join(h.Values("Vary"), ","), "Origin") {
			t.Fatalf("%d %v", res.StatusCode, h)
		}
		// The second origin of the list, too.
		if res := preflight(t, s, "http://localhost:5173", "content-type"); res.Header.Get("Access-Control-Allow-Origin") != "http://localhost:5173" {
			t.Fatalf("second origin: %v", res.Header)
		}
	})
	t.Run("AllowedOriginRequest", func(t *testing.T) {
		res, raw := httpDo(t, "POST", s.url+"/query", map[string]string{"Origin": app, "Content-Type": "application/json"},
			strings.NewReader(`{"query": "{ __typename }"}`))
		expose := strings.ToLower(res.Header.Get("Access-Control-Expose-Headers"))
		if res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != app ||
			!strings.Contains(expose, "x-request-id") || !strings.Contains(expose, "retry-after") {
			t.Fatalf("%d %v %s", res.StatusCode, res.Header, raw)
		}
	})
	t.Run("UnknownOriginPreflight", func(t *testing.T) {
		for _, origin := range []string{"https://evil.example", "https://app.example.com.evil.example", "http://app.example.com", "null"} {
			res := preflight(t, s, origin, "authorization,content-type")
			for _, name := range corsHeaders {
				if v := res.Header.Get(name); v != "" {
					t.Errorf("%s: %s: %s", origin, name, v)
				}
			}
		}
	})
	t.Run("DisallowedHeaderPreflight", func(t *testing.T) {
		res := preflight(t, s, app, "content-type,x-evil")
		if v := res.Header.Get("Access-Control-Allow-Origin"); v != "" {
			t.Fatalf("a header outside the list was allowed: %v", res.Header)
		}
	})
	t.Run("WebSocketOrigin", func(t *testing.T) {
		for origin, want := range map[string]int{app: http.StatusSwitchingProtocols, "https://evil.example": http.StatusForbidden} {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			c, res, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(s.url, "http")+"/query", &websocket.DialOptions{
				HTTPHeader: http.Header{"Origin": {origin}}, Subprotocols: []string{"graphql-transport-ws"},
			})
			cancel()
			if res == nil || res.StatusCode != want {
				t.Errorf("%s: %v %v", origin, res, err)
			}
			if c != nil {
				c.Close(websocket.StatusNormalClosure, "")
			}
		}
	})
	t.Run("UnknownOriginSimpleGET", func(t *testing.T) {
		res, _ := httpDo(t, "GET", s.url+"/query?query="+url.QueryEscape("{ __typename }"), map[string]string{"Origin": "https://evil.example"}, nil)
		for _, name := range corsHeaders {
			if v := res.Header.Get(name); v != "" {
				t.Errorf("%s: %s", name, v)
			}
		}
	})
}

// Without CORS_ALLOWED_ORIGINS, no origin gets cross-origin access.
func TestCORSDefaultAllowsNoOrigin(t *testing.T) {
	s := startServer(t, nil)
	for _, origin := range []string{"https://app.example.com", "http://localhost:5173"} {
		res := preflight(t, s, origin, "content-type")
		for _, name := range corsHeaders {
			if v := res.Header.Get(name); v != "" {
				t.Errorf("%s: %s: %s", origin, name, v)
			}
		}
	}
	// Same-origin and non-browser requests are unaffected.
	if d := s.ok("", `{ __typename }`, nil); d["__typename"] != "Query" {
		t.Fatal(d)
	}
}

func TestCORSConfig(t *testing.T) {
	env := func(v string) func(string) string {
		return func(k string) string {
			if k == "CORS_ALLOWED_ORIGINS" {
				return v
			}
			return ""
		}
	}
	cfg, err := loadConfig(env(" https://App.Example.com ,http://localhost:5173,, https://[::1]:8443"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.HTTP.CORSOrigins, " "); got != "https://app.example.com http://localhost:5173 https://[::1]:8443" {
		t.Fatalf("origins: %q", got)
	}
	if cfg, err := loadConfig(env("")); err != nil || len(cfg.HTTP.CORSOrigins) != 0 {
		t.Fatalf("default: %v %v", cfg.HTTP.CORSOrigins, err)
	}
	for _, bad := range []string{"*", "https://*.example.com", "app.example.com", "https://app.example.com/", "https://app.example.com/spa",
		"ftp://app.example.com", "https://user@app.example.com", "null", "https://app.example.com?x", "https://"} {
		if _, err := loadConfig(env(bad)); err == nil || !strings.Contains(err.Error(), "CORS_ALLOWED_ORIGINS") {
			t.Errorf("%q: %v", bad, err)
		}
	}
	if got := websocketOriginPatterns([]string{"https://[::1]:8443"}); got[0] != `https://\[::1\]:8443` {
		t.Errorf("websocket pattern: %q", got)
	}
}

// TestCSRFTransports is TESTPLAN S3: a cross-site page can send "simple" requests
// (multipart/form-data, application/x-www-form-urlencoded, text/plain, GET) without a
// preflight; none of them may run a mutation. Each is sent with a valid token (which a
// cross-site page could not even attach) to show that the transport alone refuses it.
func TestCSRFTransports(t *testing.T) {
	s := startServer(t, map[string]string{"CORS_ALLOWED_ORIGINS": "https://app.example.com"})
	ada := s.member("ada")
	s.member("bob")
	mutation := `mutation { sendInvitation(input: {recipientId: "` + s.memberID(ada, "bob") + `"}) { invitation { id } userErrors { code } } }`
	jsonBody, _ := json.Marshal(map[string]string{"query": mutation})

	multipartBody := func() (string, io.Reader) {
		var b bytes.Buffer
		w := multipart.NewWriter(&b)
		w.WriteField("operations", string(jsonBody))
		w.WriteField("map", "{}")
		w.Close()
		return w.FormDataContentType(), &b
	}
	invitations := func() int {
		var n int
		if err := s.conn.Get(&n, `SELECT count(*) FROM invitations`); err != nil {
			t.Fatal(err)
		}
		return n
	}
	cases := []struct {
		name, method, path, contentType string
		body                            func() io.Reader
	}{
		{"Multipart", "POST", "/query", "", nil},
		{"URLEncoded", "POST", "/query", "application/x-www-form-urlencoded", func() io.Reader {
			return strings.NewReader(url.Values{"query": {mutation}}.Encode())
		}},
		{"URLEncodedJSONBody", "POST", "/query", "application/x-www-form-urlencoded", func() io.Reader { return bytes.NewReader(jsonBody) }},
		{"TextPlainJSONBody", "POST", "/query", "text/plain", func() io.Reader { return bytes.NewReader(jsonBody) }},
		{"TextPlainUTF8JSONBody", "POST", "/query", "text/plain;charset=UTF-8", func() io.Reader { return bytes.NewReader(jsonBody) }},
		{"NoContentTypeJSONBody", "POST", "/query", "", func() io.Reader { return bytes.NewReader(jsonBody) }},
		{"GET", "GET", "/query?" + url.Values{"query": {mutation}}.Encode(), "", nil},
	}
	accepting := 0
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			headers := map[string]string{"Authorization": "Bearer " + ada, "Origin": "https://evil.example"}
			var body io.Reader
			switch {
			case c.name == "Multipart":
				headers["Content-Type"], body = multipartBody()
			case c.body != nil:
				body = c.body()
				if c.contentType != "" {
					headers["Content-Type"] = c.contentType
				}
			}
			res, raw := httpDo(t, c.method, s.url+c.path, headers, body)
			t.Logf("%s %s: %d %.120s", c.method, headers["Content-Type"], res.StatusCode, raw)
			if res.StatusCode == 200 || strings.Contains(string(raw), `"sendInvitation"`) || invitations() != 0 {
				accepting++
				t.Errorf("%d %s", res.StatusCode, raw)
			}
			// POST refusals carry a code; gqlgen's own GET refusal (406) has none.
			r := new(response)
			if json.Unmarshal(raw, r) != nil || c.method == "POST" && (res.StatusCode != 415 || r.code() != "BAD_USER_INPUT") ||
				res.StatusCode >= 500 || res.Header.Get("Access-Control-Allow-Origin") != "" {
				t.Errorf("%d %v", res.StatusCode, res.Header)
			}
		})
	}
	// A preflight from an unknown origin, carrying the mutation, runs nothing either.
	res, _ := httpDo(t, "OPTIONS", s.url+"/query?"+url.Values{"query": {mutation}}.Encode(), map[string]string{
		"Origin": "https://evil.example", "Access-Control-Request-Method": "POST",
		"Access-Control-Request-Headers": "authorization,content-type", "Authorization": "Bearer " + ada,
	}, nil)
	if res.Header.Get("Access-Control-Allow-Origin") != "" || invitations() != 0 {
		accepting++
		t.Errorf("preflight: %v", res.Header)
	}
	t.Logf("transports accepting mutations: %d of %d", accepting, len(cases)+1)

	// The one transport for mutations works (the same mutation, as application/json).
	if d := s.ok(ada, mutation, nil); get(d, "sendInvitation.invitation.id") == nil || invitations() != 1 {
		t.Fatalf("application/json: %v", d)
	}
}
