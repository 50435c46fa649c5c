package main

import (
	"embed"
	"fmt"
)

// A benchCase is one kind of request: the GraphQL document, the SQL that makes its
// requests (who sends what), and the pgbench script of the SQL the repository runs
// for one of them.
type benchCase struct {
	name, title string
	query       string
	// requests is a SELECT of the case's requests with columns handle (the viewer),
	// vars (the GraphQL variables, JSON) and the parameters the pgbench script reads
	// (as :column). $1 is how many rows to make, $2 the first member id, $3 the number
	// of members.
	requests string
	// writes: each request may be used once (the rows are split between the phases);
	// otherwise every phase cycles through all of them.
	writes bool
	// script is the pgbench script under sql/, "" for none.
	script string
	// bareScript, when set: the reference server (bench/bare) answers the case's query
	// too, and is measured beside the invitations server, against the raw SQL of its
	// own statements (this pgbench script under sql/).
	bareScript string
	// hot: every request comes from one sender; the bench checks the exact quota.
	hot bool
}

//go:embed sql/*.sql wrk.lua
var files embed.FS

// pageQuery is what the "Sent" tab of a "Manage invitations" page shows: whom, when,
// the note, and the ids to withdraw.
const pageQuery = `query Pending($filter: PendingInvitationFilter) {
  pendingInvitations(first: 20, filter: $filter) {
    totalCount
    edges { node { id sentAt message recipient { id name headline } } }
    pageInfo { hasNextPage endCursor }
  }
}`

const sendQuery = `mutation Send($input: SendInvitationInput!) {
  sendInvitation(input: $input) {
    userErrors { code message field availableAt }
    invitation { id status sentAt }
  }
}`

const withdrawQuery = `mutation Withdraw($input: WithdrawSelectedInput!) {
  withdrawSelected(input: $input) {
    userErrors { code message }
    withdrawnCount
    results { invitationId outcome }
  }
}`

const statsQuery = `query Stats {
  invitationStats {
    sent pending accepted withdrawn expired acceptanceRate medianTimeToAccept
    byNote { withNote sent accepted acceptanceRate }
    bySource { source sent accepted acceptanceRate }
  }
}`

// gid is the SQL for a global id: base64url of "Kind:id" without padding.
func gid(kind, expr string) string {
	return fmt.Sprintf(`translate(rtrim(encode(convert_to('%s:' || %s, 'UTF8'), 'base64'), '='), '+/', '-_')`, kind, expr)
}

// pageRequests adds to the viewers of members (columns handle, id) what page.sql
// needs: whether the page has rows (loads, 0 or 1) and their recipients (the members
// the request's loader reads).
func pageRequests(members string) string {
	return `SELECT handle, viewer, '{"filter":{"olderThanDays":14}}' AS vars, (ids <> '{}')::int AS loads, ids::text AS recipients
  FROM (SELECT s.handle, s.id AS viewer, (
          SELECT coalesce(array_agg(DISTINCT recipient_id), '{}') FROM (
            SELECT recipient_id FROM invitations i
             WHERE i.sender_id = s.id AND i.status IN ('PENDING', 'IGNORED')
               AND i.sent_at <= now() - interval '14 days' AND i.sent_at > now() - interval '180 days'
             ORDER BY i.sent_at DESC, i.id DESC LIMIT 20) p) AS ids
          FROM (` + members + `) s) x`
}

// sendPair are the columns send.sql needs besides viewer and recipient.
func sendPair() string {
	rc := freshRecipient("r")
	return `least(s.id, ` + rc + `) AS lo, greatest(s.id, ` + rc + `) AS hi`
}

// Members in a fixed pseudo-random order, each with its position in id order.
const randomMembers = `SELECT id, handle, id - $2 AS p FROM members ORDER BY md5(id::text)`

// Freshly invitable pairs: sender position p and recipient position p + members/2 + r
// (mod members), for small r ≥ 1. The seed only ever invites the next k ≤ 2,400
// members in id order, so such pairs have no invitation in either direction and are
// not connected, and two of them are never the same pair crossed.
func freshRecipient(r string) string {
	return fmt.Sprintf(`$2 + (s.p + $3 / 2 + %s) %% $3`, r)
}

var cases = []benchCase{{
	// The floor: an authenticated request that reads nothing (the viewer lookup only).
	name: "0", title: "authenticated { __typename }", query: `query Floor { __typename }`, script: "floor.sql",
	requests: `SELECT handle, id AS viewer, '{}' AS vars FROM (` + randomMembers + `) s LIMIT $1`,
}, {
	name: "a", title: "pending page, random senders", query: pageQuery, script: "page.sql", bareScript: "page-bare.sql",
	requests: pageRequests(`SELECT * FROM (` + randomMembers + `) x LIMIT $1`),
}, {
	name: "b", title: "pending page, heaviest senders", query: pageQuery, script: "page.sql", bareScript: "page-bare.sql",
	requests: pageRequests(`SELECT m.* FROM (SELECT sender_id, count(*) AS n FROM invitations WHERE status IN ('PENDING', 'IGNORED')
                          GROUP BY sender_id ORDER BY n DESC, sender_id LIMIT 20) h
          JOIN members m ON m.id = h.sender_id`),
}, {
	name: "c", title: "send, many senders", query: sendQuery, script: "send.sql", writes: true,
	// Light senders (every 100th member is a heavy one, with the weekly window nearly
	// used), each sending to 1..r fresh members.
	requests: `SELECT s.handle, s.id AS viewer, ` + freshRecipient("r") + ` AS recipient, ` + sendPair() + `,
       json_build_object('input', json_build_object('recipientId', ` + gid("Member", freshRecipient("r")) + `, 'source', 'SEARCH'))::text AS vars
  FROM (SELECT * FROM (` + randomMembers + `) x WHERE p % 100 <> 99 LIMIT 5000) s,
       generate_series(1, least(2000, $3 / 2 - 2500)) r
 ORDER BY r, md5(s.id::text) LIMIT $1`,
}, {
	name: "d", title: "send, one hot sender", query: sendQuery, writes: true, hot: true,
	requests: `SELECT s.handle, s.id AS viewer, ` + freshRecipient("r") + ` AS recipient, ` + sendPair() + `,
       json_build_object('input', json_build_object('recipientId', ` + gid("Member", freshRecipient("r")) + `, 'source', 'SEARCH'))::text AS vars
  FROM (SELECT * FROM (` + randomMembers + `) x WHERE p % 100 <> 99 LIMIT 1) s,
       generate_series(1, least($1, $3 / 2 - 2500)) r
 ORDER BY r`,
}, {
	name: "e", title: "withdraw 20 selected", query: withdrawQuery, script: "withdraw.sql", writes: true,
	// Chunks of 20 live invitations of one sender (pending, or ignored: to the sender
	// they are pending); consecutive requests come from different senders.
	requests: `WITH p AS (
  SELECT sender_id, id, (row_number() OVER (PARTITION BY sender_id ORDER BY id) - 1) / 20 AS c
    FROM invitations
   -- Live for the whole run: not within a day of its 180-day lifetime.
   WHERE status IN ('PENDING', 'IGNORED') AND sent_at > now() - interval '179 days'
), chunks AS (
  SELECT sender_id, c, array_agg(id ORDER BY id) AS ids FROM p
   -- At most 30 chunks a sender: ordered by chunk number, the last ones would otherwise
   -- all come from the few heaviest senders, and concurrent withdrawals by one member
   -- wait for each other on that member's row. (On 100k members / 2M invitations:
   -- 22,395 chunks, the last from 398 senders.)
   WHERE c < 30
   GROUP BY sender_id, c HAVING count(*) = 20
)
SELECT m.handle, m.id AS viewer, ch.ids::text AS ids,
       json_build_object('input', json_build_object('invitationIds',
         (SELECT json_agg(` + gid("Invitation", "i") + `) FROM unnest(ch.ids) i)))::text AS vars
  FROM chunks ch JOIN members m ON m.id = ch.sender_id
 ORDER BY ch.c, md5(m.id::text) LIMIT $1`,
}, {
	name: "f", title: "invitationStats, random members", query: statsQuery, script: "stats.sql",
	requests: `SELECT handle, id AS viewer, '{}' AS vars FROM (` + randomMembers + `) s LIMIT $1`,
}}

func caseByName(name string) (benchCase, bool) {
	for _, c := range cases {
		if c.name == name {
			return c, true
		}
	}
	return benchCase{}, false
}
