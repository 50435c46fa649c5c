package main

// TESTPLAN S1: the IDOR matrix. Every operation that takes an id is called by one
// member with ids of invitations that belong to others (in every status), with
// invitations they may not see (withdrawn or expired ones they received), with a
// well-formed id of nothing, and with malformed ids. Each answer must be byte-identical
// to the answer for an id that does not exist, and the database must not change.
// Plus the sender side of SPEC section 2: a sender never learns of an ignore.

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jmoiron/sqlx"
)

// privacyGID is a Relay global ID as the API makes it: base64url, no padding, of "Kind:id".
func privacyGID(kind string, id any) string {
	return base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf("%s:%v", kind, id)))
}

// checksumTables returns an md5 over the rows of every table of the public schema, so a
// test can prove that a series of requests wrote nothing anywhere.
func checksumTables(t *testing.T, conn *sqlx.DB) map[string]string {
	t.Helper()
	var tables []string
	if err := conn.Select(&tables, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename`); err != nil {
		t.Fatal(err)
	}
	if len(tables) == 0 {
		t.Fatal("checksum: no tables")
	}
	sums := make(map[string]string, len(tables))
	for _, name := range tables {
		var sum string
		err := conn.Get(&sum, `SELECT coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), 'empty') FROM `+pgx.Identifier{name}.Sanitize()+` t`)
		if err != nil {
			t.Fatalf("checksum %s: %v", name, err)
		}
		sums[name] = sum
	}
	return sums
}

// privacyInvite inserts an invitation from one handle to another, sent `age` ago (a
// PostgreSQL interval), with the timestamps its status requires, and returns its id.
func privacyInvite(t *testing.T, s *server, from, to, status, age string) int64 {
	t.Helper()
	var id int64
	err := s.conn.Get(&id, `
INSERT INTO invitations (sender_id, recipient_id, status, sent_at, responded_at, withdrawn_at)
SELECT f.id, r.id, $3::text, now() - $4::interval,
       CASE WHEN $3::text IN ('ACCEPTED', 'IGNORED') THEN now() - $4::interval + interval '1 hour' END,
       CASE WHEN $3::text = 'WITHDRAWN' THEN now() - $4::interval + interval '2 hours' END
  FROM members f, members r
 WHERE f.handle = $1 AND r.handle = $2
RETURNING id`, from, to, status, age)
	if err != nil {
		t.Fatalf("insert invitation %s→%s %s: %v", from, to, status, err)
	}
	return id
}

// privacyConnect connects two members directly, counters included.
func privacyConnect(t *testing.T, s *server, a, b string) {
	t.Helper()
	s.conn.MustExec(`
INSERT INTO connections (member_a, member_b, since)
SELECT LEAST(x.id, y.id), GREATEST(x.id, y.id), now() - interval '20 days'
  FROM members x, members y WHERE x.handle = $1 AND y.handle = $2`, a, b)
	s.conn.MustExec(`UPDATE members SET connection_count = connection_count + 1 WHERE handle IN ($1, $2)`, a, b)
}

// jsonString is s as a JSON string literal, as the server writes it.
func jsonString(s string) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}

const privacyUserErrors = `userErrors { code message field availableAt }`
const privacyQuota = `quota { plan limit used remaining resetsAt pendingCount pendingLimit notesUsed notesLimit noteMaxLength }`
const privacyInvitationFields = `id status message source sentAt ageDays expiresAt respondedAt withdrawnAt
	sender { id handle connectionStatus } recipient { id handle connectionStatus }`

// privacyOp is one operation that takes an id.
type privacyOp struct {
	name   string
	kind   string // the kind of id the operation expects
	query  string // takes $id (or $ids)
	list   bool   // the variable is a list: $ids
	expect func(d map[string]any) bool
}

var privacyOps = []privacyOp{
	{name: "node", kind: "Invitation", query: `query($id: ID!) { node(id: $id) { __typename id
		... on Invitation { ` + privacyInvitationFields + ` } ... on Member { handle connectionStatus } } }`,
		expect: func(d map[string]any) bool { _, ok := d["node"]; return ok && d["node"] == nil }},
	{name: "nodes", kind: "Invitation", list: true, query: `query($ids: [ID!]!) { nodes(ids: $ids) { __typename id
		... on Invitation { ` + privacyInvitationFields + ` } ... on Member { handle connectionStatus } } }`,
		expect: func(d map[string]any) bool {
			l, ok := d["nodes"].([]any)
			return ok && len(l) == 1 && l[0] == nil
		}},
	{name: "sendInvitation", kind: "Member", query: `mutation($id: ID!) { sendInvitation(input: {recipientId: $id, clientMutationId: "m"}) {
		invitation { id status } connected ` + privacyQuota + ` ` + privacyUserErrors + ` clientMutationId } }`,
		expect: func(d map[string]any) bool {
			return get(d, "sendInvitation.userErrors.0.code") == "NOT_FOUND" && get(d, "sendInvitation.invitation") == nil &&
				get(d, "sendInvitation.connected") == false
		}},
	{name: "withdrawInvitation", kind: "Invitation", query: `mutation($id: ID!) { withdrawInvitation(input: {invitationId: $id, clientMutationId: "m"}) {
		invitation { id status } ` + privacyQuota + ` ` + privacyUserErrors + ` clientMutationId } }`,
		expect: func(d map[string]any) bool {
			return get(d, "withdrawInvitation.userErrors.0.code") == "NOT_FOUND" && get(d, "withdrawInvitation.invitation") == nil
		}},
	{name: "withdrawSelected", kind: "Invitation", list: true, query: `mutation($ids: [ID!]!) { withdrawSelected(input: {invitationIds: $ids, clientMutationId: "m"}) {
		results { invitationId outcome invitation { id status } } withdrawnCount ` + privacyQuota + ` ` + privacyUserErrors + ` clientMutationId } }`,
		expect: func(d map[string]any) bool {
			l, _ := get(d, "withdrawSelected.results").([]any)
			return len(l) == 1 && get(d, "withdrawSelected.results.0.outcome") == "NOT_FOUND" &&
				get(d, "withdrawSelected.results.0.invitation") == nil && get(d, "withdrawSelected.withdrawnCount") == 0.0 &&
				len(get(d, "withdrawSelected.userErrors").([]any)) == 0
		}},
	{name: "acceptInvitation", kind: "Invitation", query: `mutation($id: ID!) { acceptInvitation(input: {invitationId: $id, clientMutationId: "m"}) {
		invitation { id status } ` + privacyUserErrors + ` clientMutationId } }`,
		expect: func(d map[string]any) bool {
			return get(d, "acceptInvitation.userErrors.0.code") == "NOT_FOUND" && get(d, "acceptInvitation.invitation") == nil
		}},
	{name: "ignoreInvitation", kind: "Invitation", query: `mutation($id: ID!) { ignoreInvitation(input: {invitationId: $id, clientMutationId: "m"}) {
		invitation { id status } ` + privacyUserErrors + ` clientMutationId } }`,
		expect: func(d map[string]any) bool {
			return get(d, "ignoreInvitation.userErrors.0.code") == "NOT_FOUND" && get(d, "ignoreInvitation.invitation") == nil
		}},
	{name: "markNotificationsRead", kind: "Notification", list: true, query: `mutation($ids: [ID!]!) { markNotificationsRead(input: {ids: $ids, clientMutationId: "m"}) {
		count ` + privacyUserErrors + ` clientMutationId } }`,
		expect: func(d map[string]any) bool {
			return get(d, "markNotificationsRead.count") == 0.0 && len(get(d, "markNotificationsRead.userErrors").([]any)) == 0
		}},
	{name: "removeConnection", kind: "Member", query: `mutation($id: ID!) { removeConnection(input: {memberId: $id, clientMutationId: "m"}) {
		removed ` + privacyUserErrors + ` clientMutationId } }`,
		expect: func(d map[string]any) bool {
			return get(d, "removeConnection.userErrors.0.code") == "NOT_FOUND" && get(d, "removeConnection.removed") == false
		}},
}

// privacyProbe is one id to try.
type privacyProbe struct {
	label string
	id    string
	// foreign: a real invitation the viewer may not see or act on this way. Its answer
	// must match a nonexistent id of the same kind, or it is a leak.
	foreign bool
	kind    string // for foreign ids: the kind inside the id
}

// call runs op with one id (as a one-element list for list operations).
func (op privacyOp) call(s *server, token, id string) *response {
	s.t.Helper()
	if op.list {
		return s.gql(token, op.query, map[string]any{"ids": []string{id}})
	}
	return s.gql(token, op.query, map[string]any{"id": id})
}

// normalized is the raw response with the echoed id (withdrawSelected's invitationId)
// replaced by a placeholder.
func (op privacyOp) normalized(r *response, id string) string {
	return strings.ReplaceAll(r.raw, `"invitationId":`+jsonString(id), `"invitationId":"<ID>"`)
}

func TestPrivacyIDORMatrix(t *testing.T) {
	// No background jobs: the matrix checks that no probe changes a table, and the
	// expiry sweep, whose first pass may start late on a loaded machine, would expire
	// "eve→hal" (a pending invitation past its expiry) in the middle of it.
	s := startServer(t, map[string]string{"SWEEP_INTERVAL": "0", "REMINDER_INTERVAL": "0"})
	ada := s.member("ada")
	tokens := map[string]string{"ada": ada}
	for _, h := range []string{"bob", "eve", "cy", "dan", "fay", "gus", "hal", "ivy", "jon", "kim", "lee", "max", "ned"} {
		tokens[h] = s.member(h)
	}
	var eveMember, adaMember int64
	s.conn.Get(&eveMember, `SELECT id FROM members WHERE handle = 'eve'`)
	s.conn.Get(&adaMember, `SELECT id FROM members WHERE handle = 'ada'`)

	// Eve's invitations, every status, sent and received; one between two others.
	privacyConnect(t, s, "eve", "cy")
	foreign := []struct {
		label, owner string
		id           int64
		ownerSees    string // the status the owner sees through node
	}{
		{"eve→bob pending", "eve", privacyInvite(t, s, "eve", "bob", "PENDING", "3 days"), "PENDING"},
		{"eve→cy accepted", "eve", privacyInvite(t, s, "eve", "cy", "ACCEPTED", "30 days"), "ACCEPTED"},
		{"eve→dan withdrawn", "eve", privacyInvite(t, s, "eve", "dan", "WITHDRAWN", "10 days"), "WITHDRAWN"},
		{"eve→fay ignored", "eve", privacyInvite(t, s, "eve", "fay", "IGNORED", "5 days"), "PENDING"},
		{"eve→gus expired (swept)", "eve", privacyInvite(t, s, "eve", "gus", "EXPIRED", "200 days"), "EXPIRED"},
		{"eve→hal expired (not swept)", "eve", privacyInvite(t, s, "eve", "hal", "PENDING", "181 days"), "EXPIRED"},
		{"ivy→eve pending (eve's received)", "eve", privacyInvite(t, s, "ivy", "eve", "PENDING", "2 days"), "PENDING"},
		{"jon→eve ignored by eve", "eve", privacyInvite(t, s, "jon", "eve", "IGNORED", "4 days"), "IGNORED"},
		{"bob→cy pending (third parties)", "bob", privacyInvite(t, s, "bob", "cy", "PENDING", "1 day"), "PENDING"},
		// Invitations to ada that she must never see again.
		{"kim→ada withdrawn", "kim", privacyInvite(t, s, "kim", "ada", "WITHDRAWN", "3 days"), "WITHDRAWN"},
		{"lee→ada expired (not swept)", "lee", privacyInvite(t, s, "lee", "ada", "PENDING", "181 days"), "EXPIRED"},
		{"fay→ada expired (swept)", "fay", privacyInvite(t, s, "fay", "ada", "EXPIRED", "190 days"), "EXPIRED"},
	}
	// Ada's own: one she sent, one she received, one she ignored.
	adaBob := privacyInvite(t, s, "ada", "bob", "PENDING", "1 day")
	maxAda := privacyInvite(t, s, "max", "ada", "PENDING", "1 day")
	nedAda := privacyInvite(t, s, "ned", "ada", "IGNORED", "6 days")
	// Notifications: eve's (foreign), and ada's of invitations she may no longer see.
	notify := func(member string, kind string, invitation int64) int64 {
		t.Helper()
		var id int64
		err := s.conn.Get(&id, `INSERT INTO notifications (member_id, kind, invitation_id, created_at)
SELECT id, $2, $3, now() - interval '1 day' FROM members WHERE handle = $1 RETURNING id`, member, kind, invitation)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	foreignNotifications := []privacyProbe{
		{label: "eve's notification of ivy→eve", id: privacyGID("Notification", notify("eve", "INVITATION_RECEIVED", foreign[6].id))},
		{label: "eve's notification of eve→cy accepted", id: privacyGID("Notification", notify("eve", "INVITATION_ACCEPTED", foreign[1].id))},
		{label: "ada's notification of kim→ada withdrawn", id: privacyGID("Notification", notify("ada", "INVITATION_RECEIVED", foreign[9].id))},
		{label: "ada's notification of lee→ada expired (not swept)", id: privacyGID("Notification", notify("ada", "INVITATION_RECEIVED", foreign[10].id))},
		{label: "ada's notification of fay→ada expired (swept)", id: privacyGID("Notification", notify("ada", "INVITATION_RECEIVED", foreign[11].id))},
	}
	for i := range foreignNotifications {
		foreignNotifications[i].foreign, foreignNotifications[i].kind = true, "Notification"
	}
	notify("ada", "INVITATION_RECEIVED", maxAda) // her one visible notification

	nodeQuery := `query($id: ID!) { node(id: $id) { ... on Invitation { status } } }`
	// Controls: the ids are real, their owners see them, and ada sees her own.
	for _, f := range foreign {
		d := s.ok(tokens[f.owner], nodeQuery, map[string]any{"id": privacyGID("Invitation", f.id)})
		if got := get(d, "node.status"); got != f.ownerSees {
			t.Fatalf("control: %s seen by %s as %v, want %s", f.label, f.owner, got, f.ownerSees)
		}
	}
	for id, want := range map[int64]string{adaBob: "PENDING", maxAda: "PENDING", nedAda: "IGNORED"} {
		if got := get(s.ok(ada, nodeQuery, map[string]any{"id": privacyGID("Invitation", id)}), "node.status"); got != want {
			t.Fatalf("control: ada's invitation %d seen as %v, want %s", id, got, want)
		}
	}
	// A recipient never sees withdrawn or expired invitations: not by node, not in the list.
	for _, f := range foreign[9:] {
		if d := s.ok(ada, nodeQuery, map[string]any{"id": privacyGID("Invitation", f.id)}); d["node"] != nil {
			t.Errorf("recipient sees %s: %v", f.label, d)
		}
	}
	d := s.ok(ada, `{ receivedInvitations { totalCount nodes { id } }
		kim: member(handle: "kim") { connectionStatus } lee: member(handle: "lee") { connectionStatus }
		fay: member(handle: "fay") { connectionStatus } max: member(handle: "max") { connectionStatus } }`, nil)
	if get(d, "receivedInvitations.totalCount") != 1.0 || get(d, "receivedInvitations.nodes.0.id") != privacyGID("Invitation", maxAda) {
		t.Errorf("ada's received list: %v", d)
	}
	if get(d, "kim.connectionStatus") != "NONE" || get(d, "lee.connectionStatus") != "NONE" || get(d, "fay.connectionStatus") != "NONE" ||
		get(d, "max.connectionStatus") != "INVITATION_RECEIVED" {
		t.Errorf("connection statuses reveal withdrawn or expired invitations: %v", d)
	}

	// The probes.
	var common []privacyProbe
	for _, f := range foreign {
		common = append(common, privacyProbe{label: f.label, id: privacyGID("Invitation", f.id), foreign: true, kind: "Invitation"})
	}
	eveBob := foreign[0].id
	malformed := []privacyProbe{
		{label: "empty", id: ""},
		{label: "bogus", id: "bogus"},
		{label: "!!!", id: "!!!"},
		{label: "space", id: " "},
		{label: "Invitation:abc", id: privacyGID("Invitation", "abc")},
		{label: "Invitation:-1", id: privacyGID("Invitation", -1)},
		{label: "Invitation:0", id: privacyGID("Invitation", 0)},
		{label: "Invitation:0N (leading zero)", id: privacyGID("Invitation", fmt.Sprintf("0%d", eveBob))},
		{label: "Invitation:N+space", id: privacyGID("Invitation", fmt.Sprintf("%d ", eveBob))},
		{label: "Invitation:N:x", id: privacyGID("Invitation", fmt.Sprintf("%d:x", eveBob))},
		{label: "Invitation: overflow", id: privacyGID("Invitation", "99999999999999999999")},
		{label: "invitation:N (lowercase kind)", id: privacyGID("invitation", eveBob)},
		{label: ":N (no kind)", id: privacyGID("", eveBob)},
		{label: "Invitation:N unencoded", id: fmt.Sprintf("Invitation:%d", eveBob)},
		{label: "Invitation:N padded std base64", id: base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("Invitation:%d", eveBob))) + "=="},
		{label: "Invitation:N with trailing junk", id: privacyGID("Invitation", eveBob) + "$"},
		{label: "Invitation:max int64", id: privacyGID("Invitation", "9223372036854775807")},
		{label: "Invitation:nonexistent 123456789", id: privacyGID("Invitation", 123456789)},
		{label: "Member:999999", id: privacyGID("Member", 999999)},
		{label: "Widget:1 (unknown kind)", id: privacyGID("Widget", 1)},
		{label: "unicode", id: "Ïnvitätiön:1"},
		{label: "very long", id: strings.Repeat("QUJD", 2500)},
	}
	// Per operation: the kind-confused ids, and ada's own invitations that the
	// operation may not act on (only the sender withdraws; only the recipient answers).
	specific := map[string][]privacyProbe{
		"withdrawInvitation": {
			{label: "max→ada (ada is the recipient)", id: privacyGID("Invitation", maxAda), foreign: true, kind: "Invitation"},
			{label: "ned→ada ignored (ada is the recipient)", id: privacyGID("Invitation", nedAda), foreign: true, kind: "Invitation"},
			{label: "member id eve", id: privacyGID("Member", eveMember)},
			{label: "member id ada", id: privacyGID("Member", adaMember)},
		},
		"acceptInvitation": {
			{label: "ada→bob (ada is the sender)", id: privacyGID("Invitation", adaBob), foreign: true, kind: "Invitation"},
			{label: "member id eve", id: privacyGID("Member", eveMember)},
		},
		"sendInvitation": {
			{label: "Invitation:999999 (wrong kind)", id: privacyGID("Invitation", 999999)},
			{label: "Member:abc", id: privacyGID("Member", "abc")},
			{label: "Member:-1", id: privacyGID("Member", -1)},
		},
		"node": {{label: "Member:-1", id: privacyGID("Member", -1)}},
	}
	specific["withdrawSelected"] = specific["withdrawInvitation"]
	specific["ignoreInvitation"] = specific["acceptInvitation"]
	specific["removeConnection"] = append(specific["sendInvitation"],
		privacyProbe{label: "ada herself", id: privacyGID("Member", adaMember)})
	specific["node"] = append(specific["node"], foreignNotifications...)
	specific["nodes"] = specific["node"]
	specific["markNotificationsRead"] = append(append([]privacyProbe{}, foreignNotifications...),
		privacyProbe{label: "Notification:-1", id: privacyGID("Notification", -1)},
		privacyProbe{label: "Notification:abc", id: privacyGID("Notification", "abc")})

	before := checksumTables(t, s.conn)
	probes, leaks, mismatches := 0, 0, 0
	inconsistent, examples := map[string][]string{}, map[string]string{}
	for _, op := range privacyOps {
		nonexistent := map[string]string{"Invitation": privacyGID("Invitation", 999999), "Member": privacyGID("Member", 999999),
			"Notification": privacyGID("Notification", 999999)}
		baseline := map[string]string{}
		for kind, id := range nonexistent {
			r := op.call(s, ada, id)
			if r.status != 200 || len(r.Errors) > 0 {
				t.Fatalf("%s(%s:999999): %d %s", op.name, kind, r.status, r.raw)
			}
			baseline[kind] = op.normalized(r, id)
		}
		want := baseline[op.kind]
		r := op.call(s, ada, nonexistent[op.kind])
		if !op.expect(r.Data) || strings.Contains(r.raw, "FORBIDDEN") {
			t.Errorf("%s: the answer for a nonexistent id is not NOT_FOUND/null: %s", op.name, r.raw)
		}
		all := append(append(append([]privacyProbe{}, common...), malformed...), specific[op.name]...)
		for _, p := range all {
			probes++
			r := op.call(s, ada, p.id)
			got := op.normalized(r, p.id)
			if r.status != 200 || len(r.Errors) > 0 || strings.Contains(r.raw, "FORBIDDEN") {
				t.Errorf("%s(%s): HTTP %d, want 200 without top-level errors: %s", op.name, p.label, r.status, r.raw)
			}
			if got == want {
				continue
			}
			if p.foreign && got != baseline[p.kind] {
				leaks++
				t.Errorf("LEAK %s(%s): answered unlike a nonexistent id\n got: %s\nwant: %s", op.name, p.label, got, baseline[p.kind])
			} else {
				mismatches++
				if len(inconsistent[op.name]) == 0 {
					examples[op.name] = fmt.Sprintf("\n got: %s\nwant: %s", got, want)
				}
				inconsistent[op.name] = append(inconsistent[op.name], p.label)
			}
		}
		if labels := inconsistent[op.name]; len(labels) > 0 {
			t.Errorf("%s: %d malformed or kind-confused ids are answered unlike the nonexistent %s id (%s); first:%s",
				op.name, len(labels), op.kind, strings.Join(labels, "; "), examples[op.name])
		}

		// All at once, for the list operations: each element answered like a nonexistent id.
		if op.list {
			var ids []string
			for _, p := range all {
				ids = append(ids, p.id)
			}
			r := s.gql(ada, op.query, map[string]any{"ids": ids})
			if r.status != 200 || len(r.Errors) > 0 {
				t.Errorf("%s(all %d ids): %d %s", op.name, len(ids), r.status, r.raw)
				continue
			}
			var one response
			json.Unmarshal([]byte(op.call(s, ada, nonexistent[op.kind]).raw), &one)
			switch op.name {
			case "nodes":
				l, _ := r.Data["nodes"].([]any)
				for i, v := range l {
					probes++
					if v != nil {
						leaks++
						t.Errorf("LEAK nodes(all)[%d] %s: %v", i, all[i].label, v)
					}
				}
				if len(l) != len(ids) {
					t.Errorf("nodes(all): %d results for %d ids", len(l), len(ids))
				}
			case "withdrawSelected":
				wantResult := get(one.Data, "withdrawSelected.results.0").(map[string]any)
				l, _ := get(r.Data, "withdrawSelected.results").([]any)
				for i, v := range l {
					probes++
					res, _ := v.(map[string]any)
					if res["invitationId"] != ids[i] || res["outcome"] != wantResult["outcome"] || res["invitation"] != nil || len(res) != len(wantResult) {
						leaks++
						t.Errorf("LEAK withdrawSelected(all)[%d] %s: %v", i, all[i].label, v)
					}
				}
				if len(l) != len(ids) || get(r.Data, "withdrawSelected.withdrawnCount") != 0.0 {
					t.Errorf("withdrawSelected(all): %s", r.raw)
				}
			case "markNotificationsRead":
				probes++
				if get(r.Data, "markNotificationsRead.count") != 0.0 {
					leaks++
					t.Errorf("LEAK markNotificationsRead(all %d ids): %s", len(ids), r.raw)
				}
			}
		}
	}
	// Counts: ada's notifications count only the one she can see.
	d = s.ok(ada, `{ notifications { totalCount unreadCount nodes { invitation { id } } } }`, nil)
	if get(d, "notifications.totalCount") != 1.0 || get(d, "notifications.unreadCount") != 1.0 ||
		get(d, "notifications.nodes.0.invitation.id") != privacyGID("Invitation", maxAda) {
		leaks++
		t.Errorf("LEAK notifications count hidden ones: %v", d)
	}
	after := checksumTables(t, s.conn)
	for table, sum := range before {
		if after[table] != sum {
			t.Errorf("table %s changed during the matrix", table)
		}
	}
	t.Logf("S1: %d probes, %d leaks", probes, leaks)
	t.Logf("S1: %d malformed or kind-confused ids answered unlike a nonexistent id", mismatches)
}

func TestPrivacyIgnoreInvisibleToSender(t *testing.T) {
	s := startServer(t, nil)
	ada, bob := s.member("ada"), s.member("bob")
	s.member("cy")
	s.member("dan")
	bobID, cyID := s.memberID(ada, "bob"), s.memberID(ada, "cy")
	sent := s.ok(ada, sendMutation, map[string]any{"to": bobID, "msg": "Hello Bob"})
	invID := get(sent, "sendInvitation.invitation.id").(string)
	privacyInvite(t, s, "ada", "cy", "PENDING", "20 days 1 hour")
	privacyInvite(t, s, "ada", "dan", "WITHDRAWN", "12 days")

	const everything = `query($id: ID!) {
  viewer { id connectionCount connectionStatus }
  node(id: $id) { id ... on Invitation { ` + privacyInvitationFields + ` } }
  nodes(ids: [$id]) { id ... on Invitation { status respondedAt } }
  member(handle: "bob") { id connectionCount connectionStatus }
  pendingInvitations { totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    edges { cursor node { ` + privacyInvitationFields + ` } } }
  pendingOld: pendingInvitations(filter: {olderThanDays: 14}) { totalCount nodes { id status } }
  pendingNew: pendingInvitations(filter: {newerThanDays: 1}, orderBy: {field: SENT_AT, direction: ASC}) { totalCount nodes { id status respondedAt } }
  sentInvitations { totalCount edges { cursor node { ` + privacyInvitationFields + ` } } }
  sentPending: sentInvitations(filter: {status: [PENDING]}) { totalCount nodes { id status respondedAt } }
  sentIgnored: sentInvitations(filter: {status: [IGNORED]}) { totalCount nodes { id status } }
  sentPendingIgnored: sentInvitations(filter: {status: [PENDING, IGNORED]}) { totalCount nodes { id status } }
  sentClosed: sentInvitations(filter: {status: [ACCEPTED, WITHDRAWN, EXPIRED]}) { totalCount nodes { id status } }
  receivedInvitations { totalCount }
  invitationQuota { plan limit used remaining resetsAt pendingCount pendingLimit notesUsed notesLimit noteMaxLength }
}`
	resend := func() string {
		r := s.gql(ada, `mutation($to: ID!) { sendInvitation(input: {recipientId: $to}) {
			invitation { id } connected quota { used pendingCount } userErrors { code message field availableAt } } }`, map[string]any{"to": bobID})
		if r.status != 200 || len(r.Errors) > 0 || get(r.Data, "sendInvitation.userErrors.0.code") != "ALREADY_PENDING" {
			t.Fatalf("resend: %s", r.raw)
		}
		return r.raw
	}
	vars := map[string]any{"id": invID}
	beforeIgnore := s.gql(ada, everything, vars)
	if len(beforeIgnore.Errors) > 0 || get(beforeIgnore.Data, "pendingInvitations.totalCount") != 2.0 ||
		get(beforeIgnore.Data, "member.connectionStatus") != "INVITATION_SENT" || get(beforeIgnore.Data, "invitationQuota.pendingCount") != 2.0 {
		t.Fatalf("before: %s", beforeIgnore.raw)
	}
	resendBefore := resend()
	if get(s.ok(bob, `{ member(handle: "ada") { connectionStatus } }`, nil), "member.connectionStatus") != "INVITATION_RECEIVED" {
		t.Fatal("bob does not see ada's invitation")
	}

	d := s.ok(bob, `mutation($id: ID!) { ignoreInvitation(input: {invitationId: $id}) { invitation { status respondedAt } userErrors { code } } }`, vars)
	if get(d, "ignoreInvitation.invitation.status") != "IGNORED" || get(d, "ignoreInvitation.invitation.respondedAt") == nil {
		t.Fatalf("ignore: %v", d)
	}
	var stored string
	s.conn.Get(&stored, `SELECT status FROM invitations WHERE sender_id = (SELECT id FROM members WHERE handle = 'ada')
		AND recipient_id = (SELECT id FROM members WHERE handle = 'bob')`)
	if stored != "IGNORED" {
		t.Fatalf("stored status %q, want IGNORED", stored)
	}
	if get(s.ok(bob, `{ member(handle: "ada") { connectionStatus } }`, nil), "member.connectionStatus") != "NONE" {
		t.Error("bob still sees ada's ignored invitation as received")
	}

	afterIgnore := s.gql(ada, everything, vars)
	if afterIgnore.raw != beforeIgnore.raw {
		t.Errorf("the sender can tell the invitation was ignored:\nbefore: %s\n after: %s", beforeIgnore.raw, afterIgnore.raw)
	}
	if resendAfter := resend(); resendAfter != resendBefore {
		t.Errorf("a refused resend tells the sender about the ignore:\nbefore: %s\n after: %s", resendBefore, resendAfter)
	}

	// Withdrawing the ignored one answers exactly like withdrawing a pending one.
	var cyInv string
	for _, n := range get(afterIgnore.Data, "pendingInvitations.edges").([]any) {
		if get(n, "node.recipient.id") == cyID {
			cyInv = get(n, "node.id").(string)
		}
	}
	d = s.ok(ada, `mutation($ids: [ID!]!) { withdrawSelected(input: {invitationIds: $ids}) {
		results { outcome invitation { status respondedAt withdrawnAt } } withdrawnCount userErrors { code } } }`,
		map[string]any{"ids": []string{invID, cyInv}})
	a, b := get(d, "withdrawSelected.results.0"), get(d, "withdrawSelected.results.1")
	if get(a, "outcome") != "WITHDRAWN" || get(a, "invitation.status") != "WITHDRAWN" || get(a, "invitation.respondedAt") != nil ||
		get(b, "outcome") != "WITHDRAWN" || get(b, "invitation.respondedAt") != nil {
		t.Errorf("withdrawing an ignored and a pending invitation: %v", d)
	}
	if got := get(s.ok(ada, `query($id: ID!) { node(id: $id) { ... on Invitation { status respondedAt } } }`, vars), "node"); get(got, "status") != "WITHDRAWN" || get(got, "respondedAt") != nil {
		t.Errorf("ignored then withdrawn, as the sender sees it: %v", got)
	}
}
