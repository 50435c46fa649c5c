-- The expiry sweep takes the oldest live invitations first, across all senders.
CREATE INDEX invitations_live_sent_idx ON invitations (sent_at) WHERE status IN ('PENDING', 'IGNORED');
