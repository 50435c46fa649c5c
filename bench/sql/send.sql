-- (c): sendInvitation to a member never invited before, without a note. -D sets now,
-- week (now − 7 days), expiry (now − 180 days), month (the month's first instant),
-- refund ('true': withdrawn invitations count in the window), due1 and due2 (the
-- reminders' due times), kind, channel and payloads (the event, published after the
-- commit, as an array literal).
SELECT id, handle, name, headline, plan, connection_count, created_at FROM members WHERE handle = :handle;
begin isolation level read committed;
SELECT id, handle, name, headline, plan, connection_count, created_at FROM members WHERE id IN (:lo, :hi) ORDER BY id FOR NO KEY UPDATE;
SET LOCAL plan_cache_mode = force_generic_plan;
SELECT w.used, w.oldest,
       (SELECT count(*) FROM invitations
         WHERE sender_id = :viewer AND status IN ('PENDING', 'IGNORED') AND sent_at > :expiry) AS pending,
       (SELECT count(*) FROM invitations
         WHERE sender_id = :viewer AND sent_at >= :month AND message IS NOT NULL) AS notes,
       EXISTS (SELECT 1 FROM connections WHERE member_a = :lo AND member_b = :hi) AS connected,
       (SELECT max(withdrawn_at) FROM invitations
         WHERE sender_id = :viewer AND recipient_id = :recipient AND status = 'WITHDRAWN') AS last_withdrawn
  FROM (SELECT count(*) AS used, min(sent_at) AS oldest FROM invitations
         WHERE sender_id = :viewer AND sent_at > :week AND (:refund OR status <> 'WITHDRAWN')) AS w;
WITH expired AS (
  UPDATE invitations SET status = 'EXPIRED'
   WHERE LEAST(sender_id, recipient_id) = :lo AND GREATEST(sender_id, recipient_id) = :hi
     AND status IN ('PENDING', 'IGNORED') AND sent_at <= :expiry)
SELECT id, sender_id, recipient_id, message, source, status, sent_at, responded_at, withdrawn_at FROM invitations
 WHERE LEAST(sender_id, recipient_id) = :lo AND GREATEST(sender_id, recipient_id) = :hi
   AND status IN ('PENDING', 'IGNORED') AND sent_at > :expiry
   FOR UPDATE;
WITH inv AS (
  INSERT INTO invitations (sender_id, recipient_id, message, source, status, sent_at)
  VALUES (:viewer, :recipient, NULL, :source, 'PENDING', :now)
  RETURNING id, sender_id, recipient_id, message, source, status, sent_at, responded_at, withdrawn_at),
reminders AS (
  INSERT INTO reminders (invitation_id, seq, due_at)
  SELECT id, 1, :due1::timestamptz FROM inv UNION ALL SELECT id, 2, :due2::timestamptz FROM inv),
notification AS (
  INSERT INTO notifications (member_id, kind, invitation_id, created_at)
  SELECT recipient_id, :kind::text, id, sent_at FROM inv
  ON CONFLICT (invitation_id, kind) DO NOTHING)
SELECT * FROM inv;
commit;
SELECT set_config('synchronous_commit', 'off', true), pg_notify(:channel, e) FROM unnest(:payloads::text[]) AS e;
