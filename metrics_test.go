package main

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// scrape reads /metrics.
func scrape(t *testing.T, s *server) string {
	t.Helper()
	res, raw := httpDo(t, "GET", s.url+"/metrics", nil, nil)
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	return string(raw)
}

// metricValue is the value of one series, written as in the exposition format
// (`name{label="value",...}`, labels in name order).
func metricValue(text, series string) (float64, bool) {
	for _, line := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(line, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return f, err == nil
		}
	}
	return 0, false
}

func TestMetrics(t *testing.T) {
	s := startServer(t, nil)
	ada := s.member("ada")
	adaID := s.memberID(ada, "ada") // an anonymous query
	s.ok(ada, `query ViewerHandle { viewer { handle } }`, nil)
	s.ok(ada, `query ViewerHandle { viewer { name } }`, nil)
	r := s.gql(ada, `mutation SelfInvite($to: ID!) { sendInvitation(input: {recipientId: $to}) { userErrors { code } } }`, map[string]any{"to": adaID})
	if get(r.Data, "sendInvitation.userErrors.0.code") != "SELF_INVITATION" {
		t.Fatalf("self invitation: %s", r.raw)
	}
	if r := s.gql("", `query NoToken { viewer { handle } }`, nil); r.code() != "UNAUTHENTICATED" {
		t.Fatalf("no token: %s", r.raw)
	}
	if r := s.gql(ada, `query Broken { nope }`, nil); r.code() != "GRAPHQL_VALIDATION_FAILED" {
		t.Fatalf("validation: %s", r.raw)
	}
	long := "Q" + strings.Repeat("x", 70) // a valid GraphQL name, too long for a label
	s.ok(ada, `query `+long+` { __typename }`, nil)
	httpDo(t, "POST", s.url+"/query", map[string]string{"Content-Type": "application/json"}, strings.NewReader("not json"))

	m := scrape(t, s)
	for series, want := range map[string]float64{
		`graphql_requests_total{operation="ViewerHandle",type="query"}`:    2,
		`graphql_requests_total{operation="anonymous",type="query"}`:       1,
		`graphql_requests_total{operation="SelfInvite",type="mutation"}`:   1,
		`graphql_requests_total{operation="NoToken",type="query"}`:         1,
		`graphql_requests_total{operation="anonymous",type="unknown"}`:     1, // Broken, refused in validation: no operation
		`graphql_requests_total{operation="other",type="query"}`:           1,
		`graphql_request_duration_seconds_count{operation="ViewerHandle"}`: 2,
		`invitation_refusals_total{code="SELF_INVITATION"}`:                1,
		`graphql_errors_total{code="UNAUTHENTICATED"}`:                     1,
		`graphql_errors_total{code="GRAPHQL_VALIDATION_FAILED"}`:           1,
		`graphql_errors_total{code="BAD_USER_INPUT"}`:                      1, // the body that is not JSON
		`http_requests_total{path="/query",status="200"}`:                  6,
		`http_requests_total{path="/query",status="422"}`:                  1, // Broken
		`http_requests_total{path="/query",status="400"}`:                  1,
	} {
		if got, ok := metricValue(m, series); !ok || got != want {
			t.Errorf("%s = %v (found: %v), want %v", series, got, ok, want)
		}
	}
	// Database pool statistics and the Go runtime.
	for _, series := range []string{
		`go_sql_open_connections{db_name="invitations"}`, `go_sql_in_use_connections{db_name="invitations"}`,
		`go_sql_idle_connections{db_name="invitations"}`, `go_sql_max_open_connections{db_name="invitations"}`,
		`go_sql_wait_count_total{db_name="invitations"}`, `go_goroutines`,
	} {
		if _, ok := metricValue(m, series); !ok {
			t.Errorf("no %s", series)
		}
	}
	if v, _ := metricValue(m, `go_sql_max_open_connections{db_name="invitations"}`); v < 1 {
		t.Errorf("pool size %v", v)
	}
	if strings.Contains(m, long) {
		t.Error("an over-long operation name became a label")
	}
	// The scrape itself is counted (at the next scrape).
	if v, _ := metricValue(scrape(t, s), `http_requests_total{path="/metrics",status="200"}`); v < 1 {
		t.Errorf("metrics scrapes: %v", v)
	}
}

// Operation names are labels only while they look like names and are few.
func TestMetricsOperationLabelCap(t *testing.T) {
	m := newMetrics(nil)
	g := gqlMetrics{m}
	for i := 0; i < maxOperationLabels+50; i++ {
		g.operationLabel(fmt.Sprintf("Op%d", i))
	}
	if got := g.operationLabel("Op3"); got != "Op3" {
		t.Errorf("known name: %q", got)
	}
	if got := g.operationLabel(fmt.Sprintf("Op%d", maxOperationLabels+10)); got != "other" {
		t.Errorf("past the cap: %q", got)
	}
	for _, bad := range []string{"", "a b", "x\n", strings.Repeat("a", 65), `a"b`} {
		if got := g.operationLabel(bad); got != "other" && !(bad == "" && got == "anonymous") {
			t.Errorf("%q: %q", bad, got)
		}
	}
	if got := m.codes.label("not a code"); got != "OTHER" {
		t.Errorf("code: %q", got)
	}
	if !regexp.MustCompile(`^[A-Z_]+$`).MatchString(m.codes.label("RATE_LIMITED")) {
		t.Error("RATE_LIMITED")
	}
	var nilMetrics *metrics
	nilMetrics.httpRequest("/query", 200) // a nil *metrics records nothing, without panicking
	nilMetrics.errorCode("X")
	nilMetrics.rateLimit("viewer")
}

// The README's table of metrics names every series the server exports besides the Go
// runtime's and the process's, and every one it names is exported.
func TestMetricsAreDocumented(t *testing.T) {
	s := startServer(t, map[string]string{"RATE_LIMIT_VIEWER_RPS": "0.001", "RATE_LIMIT_VIEWER_BURST": "3"})
	ada := s.member("ada")
	adaID := s.memberID(ada, "ada")
	s.gql(ada, `mutation($to: ID!) { sendInvitation(input: {recipientId: $to}) { userErrors { code } } }`, map[string]any{"to": adaID})
	s.gql(ada, `{ nope }`, nil)
	if r := s.gql(ada, `{ viewer { handle } }`, nil); r.code() != "RATE_LIMITED" {
		t.Fatalf("the fourth request was not rate limited: %s", r.raw)
	}
	exported := map[string]bool{}
	for _, line := range strings.Split(scrape(t, s), "\n") {
		if name, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, _, _ = strings.Cut(name, " ")
			if strings.HasPrefix(name, "go_sql_") || !strings.HasPrefix(name, "go_") && !strings.HasPrefix(name, "process_") {
				exported[name] = true
			}
		}
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(readme), "\n## Metrics\n")
	section, _, _ = strings.Cut(section, "\n## ")
	documented := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `([a-z_]+)` \\|").FindAllStringSubmatch(section, -1) {
		documented[m[1]] = true
	}
	if len(documented) < 10 {
		t.Fatalf("only %d metrics found in the README's Metrics section", len(documented))
	}
	for name := range exported {
		if !documented[name] {
			t.Errorf("%s is exported but not in the README's Metrics table", name)
		}
	}
	for name := range documented {
		if !exported[name] {
			t.Errorf("%s is in the README's Metrics table but not exported", name)
		}
	}
}
