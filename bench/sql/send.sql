-- (c): sendInvitation to a member never invited before, without a note. -D sets now,
-- week (now − 7 days), expiry (now − 180 days), month (the month's first instant),
-- refund ('true': withdrawn invitations count in the window), due1 and due2 (the
-- reminders' due times) and payload (an event of the usual length).
SELECT id, handle, name, headline, plan, connection_count, created_at FROM members WHERE handle = :handle;
BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE;
SELECT id, handle, name, headline, plan, connection_count, created_at FROM members WHERE id = ANY(:pair) ORDER BY id FOR NO KEY UPDATE;
SELECT EXISTS (SELECT 1 FROM connections WHERE member_a = :lo AND member_b = :hi);
UPDATE invitations SET status = 'EXPIRED'
 WHERE LEAST(sender_id, recipient_id) = :lo AND GREATEST(sender_id, recipient_id) = :hi
   AND status IN ('PENDING', 'IGNORED') AND sent_at <= :expiry;
SELECT id, sender_id, recipient_id, message, source, status, sent_at, responded_at, withdrawn_at FROM invitations
 WHERE LEAST(sender_id, recipient_id) = :lo AND GREATEST(sender_id, recipient_id) = :hi
   AND status IN ('PENDING', 'IGNORED')
   FOR UPDATE;
SELECT max(withdrawn_at) FROM invitations
 WHERE sender_id = :viewer AND recipient_id = :recipient AND status = 'WITHDRAWN';
SELECT w.used, w.oldest,
       (SELECT count(*) FROM invitations
         WHERE sender_id = :viewer AND status IN ('PENDING', 'IGNORED') AND sent_at > :expiry) AS pending,
       (SELECT count(*) FROM invitations
         WHERE sender_id = :viewer AND sent_at >= :month AND message IS NOT NULL) AS notes
  FROM (SELECT count(*) AS used, min(sent_at) AS oldest FROM invitations
         WHERE sender_id = :viewer AND sent_at > :week AND (:refund OR status <> 'WITHDRAWN')) AS w;
INSERT INTO invitations (sender_id, recipient_id, message, source, status, sent_at)
VALUES (:viewer, :recipient, NULL, :source, 'PENDING', :now)
RETURNING id, sender_id, recipient_id, message, source, status, sent_at, responded_at, withdrawn_at \gset
INSERT INTO notifications (member_id, kind, invitation_id, created_at) VALUES (:recipient, :kind, :id, :now)
ON CONFLICT (invitation_id, kind) DO NOTHING;
SELECT pg_notify(:channel, :payload);
INSERT INTO reminders (invitation_id, seq, due_at)
VALUES (:id, 1, :due1), (:id, 2, :due2);
COMMIT;
