-- (e): withdrawSelected of 20 pending invitations of the viewer. -D sets now.
SELECT id, handle, name, headline, plan, connection_count, created_at FROM members WHERE handle = :handle;
begin isolation level read committed;
SELECT id, handle, name, headline, plan, connection_count, created_at FROM members WHERE id = :viewer ORDER BY id FOR NO KEY UPDATE;
SELECT id, sender_id, recipient_id, message, source, status, sent_at, responded_at, withdrawn_at FROM invitations
 WHERE id = ANY(:ids) AND sender_id = :viewer
 ORDER BY id
   FOR UPDATE;
WITH done AS (
  UPDATE invitations SET status = 'WITHDRAWN', withdrawn_at = :now
   WHERE id = ANY(:ids)
  RETURNING id, sender_id, recipient_id, message, source, status, sent_at, responded_at, withdrawn_at),
cancelled AS (
  UPDATE reminders SET state = 'CANCELLED', done_at = :now
   WHERE invitation_id = ANY(:ids) AND state = 'PENDING')
SELECT * FROM done;
commit;
