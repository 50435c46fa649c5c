-- (f): invitationStats of the viewer over all time. -D sets expiry (now − 180 days).
SELECT id, handle, name, headline, plan, connection_count, created_at FROM members WHERE handle = :handle;
SELECT GROUPING(week, source, note) AS g, week, source, note, cls, sum(n) AS n, NULL::bigint AS median
  FROM (SELECT floor((date_part('epoch', sent_at) + 259200) / 604800)::int AS week,
               source COLLATE "C" AS source, note, (CASE WHEN status IN ('PENDING', 'IGNORED') THEN CASE WHEN sent_at > :expiry THEN 'P' ELSE 'E' END
            WHEN status = 'EXPIRED' THEN 'E' WHEN status = 'ACCEPTED' THEN 'A' ELSE 'W' END)::"char" AS cls,
               count(*) AS n
          FROM (SELECT false AS note, sent_at, status, source, responded_at FROM invitations WHERE message IS NULL AND sender_id = :viewer AND sent_at >= :after AND sent_at < :before
  UNION ALL
  SELECT true, sent_at, status, source, responded_at FROM invitations WHERE message IS NOT NULL AND sender_id = :viewer AND sent_at >= :after AND sent_at < :before) i
         GROUP BY 1, 2, 3, 4) r
 GROUP BY GROUPING SETS ((week, cls), (source, cls), (note, cls))
UNION ALL
SELECT 7, NULL, NULL, NULL, NULL, 0, percentile_disc(0.5) WITHIN GROUP (ORDER BY invitation_tta_seconds(sent_at, responded_at))
  FROM (SELECT false AS note, sent_at, status, source, responded_at FROM invitations WHERE message IS NULL AND sender_id = :viewer AND sent_at >= :after AND sent_at < :before AND status = 'ACCEPTED'
  UNION ALL
  SELECT true, sent_at, status, source, responded_at FROM invitations WHERE message IS NOT NULL AND sender_id = :viewer AND sent_at >= :after AND sent_at < :before AND status = 'ACCEPTED') a;
