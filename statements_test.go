package main

// No N+1: the statements one GraphQL request sends to PostgreSQL, counted by
// pg_stat_statements (loaded by the throwaway test cluster, see db/dbtest), are the
// same constant number for 1, 10 and 100 invitations, thanks to the per-request
// loaders of graph/loaders.go: 5 for a page of pendingInvitations, sentInvitations or
// receivedInvitations with both members and their connectionStatus, 4 for nodes(ids:)
// of invitations, 7 for nodes(ids:) of every kind.

import (
	"encoding/base64"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/jmoiron/sqlx"
)

// stmtCounter counts the top-level statements run in one database of the cluster.
type stmtCounter struct {
	t    *testing.T
	conn *sqlx.DB
	dbid uint32
}

// newStmtCounter creates pg_stat_statements in the test's database. It skips the test
// on a server named by TEST_DATABASE_URL that does not load the module, and fails it
// on the throwaway cluster, which always should.
func newStmtCounter(t *testing.T, conn *sqlx.DB) *stmtCounter {
	t.Helper()
	_, err := conn.Exec(`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`)
	if err == nil {
		var n int64
		err = conn.Get(&n, `SELECT count(*) FROM pg_stat_statements`)
	}
	if err != nil {
		if os.Getenv("TEST_DATABASE_URL") != "" {
			t.Skipf("pg_stat_statements is not available on TEST_DATABASE_URL's server (%v): it must be in "+
				"shared_preload_libraries; unset TEST_DATABASE_URL to use the throwaway cluster, which loads it", err)
		}
		t.Fatalf("pg_stat_statements is not available on the throwaway test cluster: %v", err)
	}
	c := &stmtCounter{t: t, conn: conn}
	if err := conn.Get(&c.dbid, `SELECT oid FROM pg_database WHERE datname = current_database()`); err != nil {
		t.Fatal(err)
	}
	return c
}

// stmtSnapshot is calls per statement (userid and queryid) and the module's count of
// evictions.
type stmtSnapshot struct {
	calls   map[string]int64
	text    map[string]string
	dealloc int64
}

func (c *stmtCounter) snapshot() stmtSnapshot {
	c.t.Helper()
	var rows []struct {
		Key   string `db:"key"`
		Query string `db:"query"`
		Calls int64  `db:"calls"`
	}
	// Other tests run in other databases of the same cluster: only this database's
	// statements count, and not the counter's own.
	err := c.conn.Select(&rows, `
SELECT userid || ':' || queryid AS key, query, calls FROM pg_stat_statements
 WHERE dbid = $1 AND toplevel AND query NOT LIKE '%pg_stat_statements%'`, c.dbid)
	if err != nil {
		c.t.Fatal(err)
	}
	s := stmtSnapshot{calls: map[string]int64{}, text: map[string]string{}}
	for _, r := range rows {
		s.calls[r.Key], s.text[r.Key] = r.Calls, r.Query
	}
	if err := c.conn.Get(&s.dealloc, `SELECT dealloc FROM pg_stat_statements_info`); err != nil {
		c.t.Fatal(err)
	}
	return s
}

// count runs do and returns how many statements it sent, with a line per statement.
func (c *stmtCounter) count(do func()) (int, []string) {
	c.t.Helper()
	for try := 1; ; try++ {
		before := c.snapshot()
		do()
		after := c.snapshot()
		if after.dealloc != before.dealloc {
			// Entries were evicted meanwhile (the counts may have lost some): again.
			if try == 5 {
				c.t.Fatal("pg_stat_statements keeps evicting entries: raise pg_stat_statements.max")
			}
			continue
		}
		n, lines := 0, []string{}
		for k, calls := range after.calls {
			if d := calls - before.calls[k]; d > 0 {
				n += int(d)
				lines = append(lines, fmt.Sprintf("%3d× %s", d, strings.Join(strings.Fields(after.text[k]), " ")))
			}
		}
		slices.Sort(lines)
		return n, lines
	}
}

func TestStatementCounts(t *testing.T) {
	// Background jobs off: only the request's statements run in this database.
	s := startServer(t, map[string]string{"SWEEP_INTERVAL": "0", "REMINDER_INTERVAL": "0"})
	counter := newStmtCounter(t, s.conn)

	// Fixture: viewers s1, s10, s100 with that many pending sent invitations (to
	// r1..rN), and inboxes i1, i10, i100 with that many received ones (from r1..rN,
	// each a distinct sender), each with its notification.
	s.conn.MustExec(`INSERT INTO members (handle, name, headline)
		SELECT 'r' || g, 'Member r' || g, 'Headline ' || g FROM generate_series(1, 100) g`)
	sizes := []int{1, 10, 100}
	for _, n := range sizes {
		s.conn.MustExec(`INSERT INTO members (handle, name) VALUES ('s' || $1::int, 'Sender'), ('i' || $1::int, 'Inbox')`, n)
		s.conn.MustExec(`
INSERT INTO invitations (sender_id, recipient_id, message, sent_at)
SELECT v.id, r.id, CASE WHEN g % 2 = 0 THEN 'Hello' END, now() - g * interval '1 hour'
  FROM generate_series(1, $1) g JOIN members r ON r.handle = 'r' || g, members v
 WHERE v.handle = 's' || $1::int`, n)
		s.conn.MustExec(`
WITH sent AS (
  INSERT INTO invitations (sender_id, recipient_id, sent_at)
  SELECT r.id, v.id, now() - g * interval '1 hour'
    FROM generate_series(1, $1) g JOIN members r ON r.handle = 'r' || g, members v
   WHERE v.handle = 'i' || $1::int
  RETURNING id, recipient_id, sent_at)
INSERT INTO notifications (member_id, kind, invitation_id, created_at)
SELECT recipient_id, 'INVITATION_RECEIVED', id, sent_at FROM sent`, n)
	}
	gid := func(kind string, id int64) string {
		return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%s:%d", kind, id)))
	}
	ids := func(kind, query string, args ...any) []string {
		var nums []int64
		if err := s.conn.Select(&nums, query, args...); err != nil {
			t.Fatal(err)
		}
		out := make([]string, len(nums))
		for i, n := range nums {
			out[i] = gid(kind, n)
		}
		return out
	}

	const member = `id name headline connectionStatus`
	const invitationFields = `id status sentAt ageDays sender { ` + member + ` } recipient { ` + member + ` }`
	listQuery := func(field string) string {
		return `{ ` + field + `(first: 100) { totalCount pageInfo { hasNextPage endCursor }
			edges { cursor node { ` + invitationFields + ` } } } }`
	}
	const nodesQuery = `query($ids: [ID!]!) { nodes(ids: $ids) { __typename id
		... on Invitation { ` + invitationFields + ` }
		... on Member { ` + member + ` }
		... on Notification { kind read createdAt } } }`

	type request struct {
		viewer string
		query  string
		vars   map[string]any
		items  int // the list's length, checked in the response
	}
	cases := []struct {
		name string
		want int // statements per request, whatever the size
		// size returns the request for n invitations.
		size func(n int) request
	}{
		// Viewer; the page with its totalCount and the members that are not the viewer
		// (the recipients here), in one statement; statuses.
		{"pendingInvitations", 3, func(n int) request {
			return request{fmt.Sprint("s", n), listQuery("pendingInvitations"), nil, n}
		}},
		// The "Sent" tab (bench case a): viewer; the page with its totalCount and its
		// recipients.
		{"pendingInvitations(page)", 2, func(n int) request {
			return request{fmt.Sprint("s", n), `{ pendingInvitations(first: 100) { totalCount
				edges { node { id sentAt message sender { id name } recipient { id name headline } } }
				pageInfo { hasNextPage endCursor } } }`, nil, n}
		}},
		{"sentInvitations", 3, func(n int) request {
			return request{fmt.Sprint("s", n), listQuery("sentInvitations"), nil, n}
		}},
		// n received invitations from n distinct senders.
		{"receivedInvitations", 3, func(n int) request {
			return request{fmt.Sprint("i", n), listQuery("receivedInvitations"), nil, n}
		}},
		// n notifications of received invitations, each with its invitation: viewer, the
		// page with its totalCount, the invitations, their members, the statuses.
		{"notifications", 5, func(n int) request {
			return request{fmt.Sprint("i", n), `{ notifications(first: 100) { totalCount
				edges { node { id kind invitation { ` + invitationFields + ` } } } } }`, nil, n}
		}},
		// Viewer, invitations, members, statuses.
		{"nodes(invitations)", 4, func(n int) request {
			return request{fmt.Sprint("s", n), nodesQuery, map[string]any{"ids": ids("Invitation",
				`SELECT i.id FROM invitations i JOIN members m ON m.id = i.sender_id WHERE m.handle = 's' || $1::int ORDER BY i.id`, n)}, n}
		}},
		// The results of a withdrawal, each with its invitation (a dry run, which changes
		// nothing): viewer; begin, the member's lock, the ids, their invitations, commit;
		// the invitations' members; the statuses. Its results are marshalled one
		// goroutine each when they select the invitation, so that every item joins the
		// loaders' batches (graph.marshalSliceInOrderUnless).
		{"withdrawOlderThan(results)", 8, func(n int) request {
			return request{fmt.Sprint("s", n), `mutation { withdrawOlderThan(input: {olderThanDays: 0, dryRun: true}) {
				results { invitationId outcome invitation { ` + invitationFields + ` } } } }`, nil, n}
		}},
		// Every kind at once (n/3 of each, at most 99 ids): viewer; the invitations,
		// notifications and members named by the ids; those members' statuses; then the
		// invitations' members not loaded yet (the viewer, their recipient) and theirs.
		{"nodes(mixed)", 7, func(n int) request {
			k := max(1, n/3)
			var all []string
			all = append(all, ids("Invitation", `SELECT i.id FROM invitations i JOIN members m ON m.id = i.recipient_id
				WHERE m.handle = 'i' || $1::int ORDER BY i.id LIMIT $2`, n, k)...)
			all = append(all, ids("Notification", `SELECT n.id FROM notifications n JOIN members m ON m.id = n.member_id
				WHERE m.handle = 'i' || $1::int ORDER BY n.id LIMIT $2`, n, k)...)
			all = append(all, ids("Member", `SELECT id FROM members WHERE handle LIKE 'r%' ORDER BY id LIMIT $1`, k)...)
			return request{fmt.Sprint("i", n), nodesQuery, map[string]any{"ids": all}, len(all)}
		}},
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			counts := make([]int, len(sizes))
			for i, n := range sizes {
				r := c.size(n)
				tok := s.token(r.viewer)
				run := func() {
					res := s.gql(tok, r.query, r.vars)
					if res.status != 200 || len(res.Errors) > 0 {
						t.Fatalf("%d %s", res.status, res.raw)
					}
					checkItems(t, res.Data, r.items)
				}
				// A loader's batch closes once no key has joined it for a moment
				// (graph/loaders.go): on a starved machine the resolvers of one list
				// can be descheduled longer than that and a batch splits in two, so a
				// count over the expected one is measured again, a few times (an N+1
				// is over it every time).
				var lines []string
				for attempt := 1; ; attempt++ {
					counts[i], lines = counter.count(run)
					if counts[i] == c.want || attempt == 8 {
						break
					}
					t.Logf("%d items, attempt %d: %d statements, measuring again:\n  %s", n, attempt, counts[i], strings.Join(lines, "\n  "))
				}
				if counts[i] != c.want {
					t.Errorf("%d items: %d statements, want %d:\n  %s", n, counts[i], c.want, strings.Join(lines, "\n  "))
				} else if n == sizes[len(sizes)-1] {
					t.Logf("%d statements:\n  %s", counts[i], strings.Join(lines, "\n  "))
				}
			}
			if slices.Min(counts) != slices.Max(counts) {
				t.Errorf("statements for %v items: %v, want the same number", sizes, counts)
			}
		})
	}
}

// checkItems checks that the one list in data (a connection's edges, or nodes) has n
// items, each complete: no null node, invitations with both members (and the
// recipient's connection status, when selected).
func checkItems(t *testing.T, data map[string]any, n int) {
	t.Helper()
	for field, v := range data {
		var items []any
		switch field {
		case "nodes":
			items, _ = v.([]any)
		case "withdrawOlderThan":
			items, _ = get(v, "results").([]any)
			for i, it := range items {
				items[i] = get(it, "invitation")
			}
		default:
			items, _ = get(v, "edges").([]any)
			if get(v, "totalCount") != float64(n) {
				t.Fatalf("%s: totalCount %v, want %d", field, get(v, "totalCount"), n)
			}
		}
		if len(items) != n {
			t.Fatalf("%s: %d items, want %d", field, len(items), n)
		}
		for i, it := range items {
			node := it
			if field != "nodes" && field != "withdrawOlderThan" {
				node = get(it, "node")
			}
			m, _ := node.(map[string]any)
			if m == nil || m["id"] == nil {
				t.Fatalf("%s[%d] is %v", field, i, it)
			}
			recipient, _ := m["recipient"].(map[string]any)
			_, status := recipient["connectionStatus"]
			if _, isInvitation := m["sender"]; isInvitation && (get(m, "sender.name") == nil || get(m, "recipient.name") == nil ||
				status && get(m, "recipient.connectionStatus") == nil) {
				t.Fatalf("%s[%d] is incomplete: %v", field, i, m)
			}
		}
	}
}
