-- A new invitation reaches the daily rollup through a row-level trigger.
--
-- Every insert into invitations is a single row (a send, an import line); the seed
-- disables this trigger and rebuilds the rollups. The statement-level trigger of 0003
-- registered the statement's transition table for its queries, which PostgreSQL then
-- planned again on every call: 8–15% of PostgreSQL's CPU for a whole send transaction
-- (pgbench on the bench's data: 2,860–3,130 transactions/s with it, 3,390 with this one,
-- 3,310 with no trigger at all). Updates and deletes, which change many rows at once
-- (a withdrawal of 20, the sweep's batches of 500), keep 0003's statement-level trigger,
-- which nets a statement's changes per key and writes them in key order.
--
-- A multi-row INSERT would lock rollup rows in row order rather than key order, so two of
-- them running at once could deadlock (a retryable error); none is issued.

LOCK TABLE invitations IN SHARE ROW EXCLUSIVE MODE;

CREATE FUNCTION invitation_stats_insert_row() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO invitation_stats_daily AS d (day, source, has_note, state, shard, n)
    VALUES ((NEW.sent_at AT TIME ZONE 'UTC')::date, NEW.source, NEW.message IS NOT NULL,
            CASE WHEN NEW.status IN ('PENDING', 'IGNORED') THEN 'LIVE' ELSE NEW.status END,
            invitation_stats_shard(NEW.sender_id, NEW.status), 1)
    ON CONFLICT (day, source, has_note, state, shard) DO UPDATE SET n = d.n + 1;
    IF NEW.status = 'ACCEPTED' THEN
        INSERT INTO invitation_stats_tta AS t (day, bucket, n)
        VALUES ((NEW.sent_at AT TIME ZONE 'UTC')::date, invitation_tta_bucket(NEW.sent_at, NEW.responded_at), 1)
        ON CONFLICT (day, bucket) DO UPDATE SET n = t.n + 1;
    END IF;
    RETURN NULL;
END $$;

-- The same name, so that the seed's DISABLE TRIGGER finds it.
DROP TRIGGER invitations_stats_insert ON invitations;
CREATE TRIGGER invitations_stats_insert AFTER INSERT ON invitations
    FOR EACH ROW EXECUTE FUNCTION invitation_stats_insert_row();
