-- (a), (b), the reference server (bench/bare): the statements of page.sql as a bare
-- gqlgen server issues them, the recipients read by a dataloader in a statement of their
-- own. The bench prepends the line that sets the parameters of the request (bench_pg);
-- -D sets older (now − 14 days) and expiry (now − 180 days).
SELECT id, handle, name, headline, plan, connection_count, created_at FROM members WHERE handle = :handle;
SELECT i.id, i.sender_id, i.recipient_id, i.message, i.source, i.status, i.sent_at, i.responded_at, i.withdrawn_at,
       (SELECT count(*) FROM invitations i
         WHERE i.sent_at <= :older AND i.sender_id = :viewer AND i.status IN ('PENDING', 'IGNORED') AND i.sent_at > :expiry) AS total
  FROM invitations i
 WHERE i.sent_at <= :older AND i.sender_id = :viewer AND i.status IN ('PENDING', 'IGNORED') AND i.sent_at > :expiry
 ORDER BY i.sent_at DESC, i.id DESC LIMIT 21;
\if :loads
SELECT id, handle, name, headline, plan, connection_count, created_at FROM members WHERE id = ANY(:recipients);
\endif
