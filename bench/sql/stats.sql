-- (f): invitationStats of the viewer over all time, without byWeek (not selected).
-- -D sets expiry (now − 180 days), after (-infinity) and before (infinity).
SELECT id, handle, name, headline, plan, connection_count, created_at FROM members WHERE handle = :handle;
SELECT GROUPING(source, note) + 4 AS g, NULL::int AS week, source, note, cls, sum(n) AS n, NULL::bigint AS median
  FROM (SELECT source COLLATE "C" AS source, note, (CASE WHEN status IN ('PENDING', 'IGNORED') THEN CASE WHEN sent_at > :expiry THEN 'P' ELSE 'E' END
            WHEN status = 'EXPIRED' THEN 'E' WHEN status = 'ACCEPTED' THEN 'A' ELSE 'W' END)::"char" AS cls,
               count(*) AS n
          FROM (SELECT false AS note, sent_at, status, source, responded_at FROM invitations WHERE message IS NULL AND sender_id = :viewer AND sent_at >= :after AND sent_at < :before
  UNION ALL
  SELECT true, sent_at, status, source, responded_at FROM invitations WHERE message IS NOT NULL AND sender_id = :viewer AND sent_at >= :after AND sent_at < :before) i
         GROUP BY 1, 2, 3) r
 GROUP BY GROUPING SETS ((source, cls), (note, cls))
UNION ALL
SELECT 7, NULL, NULL, NULL, NULL, 0, percentile_disc(0.5) WITHIN GROUP (ORDER BY invitation_tta_seconds(sent_at, responded_at))
  FROM (SELECT false AS note, sent_at, status, source, responded_at FROM invitations WHERE message IS NULL AND sender_id = :viewer AND sent_at >= :after AND sent_at < :before AND status = 'ACCEPTED'
  UNION ALL
  SELECT true, sent_at, status, source, responded_at FROM invitations WHERE message IS NOT NULL AND sender_id = :viewer AND sent_at >= :after AND sent_at < :before AND status = 'ACCEPTED') a;
