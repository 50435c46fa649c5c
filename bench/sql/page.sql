-- (a), (b): pendingInvitations(first: 20, filter: {olderThanDays: 14}) with totalCount
-- and each invitation's recipient, both read in the page's statement. The bench
-- prepends the line that sets the parameters of the request (bench_pg); -D sets older
-- (now − 14 days) and expiry (now − 180 days).
SELECT id, handle, name, headline, plan, connection_count, created_at FROM members WHERE handle = :handle;
SELECT i.id, i.sender_id, i.recipient_id, i.message, i.source, i.status, i.sent_at, i.responded_at, i.withdrawn_at,
       r.id, r.handle, r.name, r.headline, r.plan, r.connection_count, r.created_at,
       (SELECT count(*) FROM invitations i
         WHERE i.sent_at <= :older AND i.sender_id = :viewer AND i.status IN ('PENDING', 'IGNORED') AND i.sent_at > :expiry) AS total
  FROM invitations i JOIN members r ON r.id = i.recipient_id
 WHERE i.sent_at <= :older AND i.sender_id = :viewer AND i.status IN ('PENDING', 'IGNORED') AND i.sent_at > :expiry
 ORDER BY i.sent_at DESC, i.id DESC LIMIT 21;
