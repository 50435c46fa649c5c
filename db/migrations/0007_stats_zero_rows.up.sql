-- The rollups hold no row with n = 0, as invitation_stats_rebuild() writes none.
--
-- An update or a delete that moved the last invitation of a key out of it (the sweep
-- expiring the last live invitations of a day, a withdrawal, an accept) left that key's
-- row at n = 0 for good. The figures stayed right, but the rollups no longer matched a
-- rebuild row for row, so a comparison with one reported every such row as changed; and
-- each day gained up to 160 of them (sources × note or not × 16 shards) once its live
-- invitations expired, rows that the network statistics read and sum for nothing.
-- invitation_stats_trigger now deletes the rows its statement brought to 0, and the rows
-- already at 0 go here. The insert trigger (0006) only adds, so it never leaves one.

LOCK TABLE invitations IN SHARE ROW EXCLUSIVE MODE;

CREATE OR REPLACE FUNCTION invitation_stats_trigger() RETURNS trigger
    LANGUAGE plpgsql AS $$
DECLARE
    emptied     invitation_stats_daily[]; -- the daily rows this statement brought to 0
    emptied_tta invitation_stats_tta[];   -- likewise in invitation_stats_tta
BEGIN
    -- The send path's expiry of a stale pair is an UPDATE that usually changes no row.
    IF TG_OP = 'DELETE' THEN
        IF NOT EXISTS (SELECT FROM old_rows) THEN
            RETURN NULL;
        END IF;
    ELSIF NOT EXISTS (SELECT FROM new_rows) THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'INSERT' THEN
        -- Only positive deltas: no row reaches 0.
        INSERT INTO invitation_stats_daily AS d (day, source, has_note, state, shard, n)
        SELECT (sent_at AT TIME ZONE 'UTC')::date, source, message IS NOT NULL,
               CASE WHEN status IN ('PENDING', 'IGNORED') THEN 'LIVE' ELSE status END,
               invitation_stats_shard(sender_id, status), count(*)
          FROM new_rows
         GROUP BY 1, 2, 3, 4, 5
         ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (day, source, has_note, state, shard) DO UPDATE SET n = d.n + EXCLUDED.n;
        INSERT INTO invitation_stats_tta AS t (day, bucket, n)
        SELECT (sent_at AT TIME ZONE 'UTC')::date, invitation_tta_bucket(sent_at, responded_at), count(*)
          FROM new_rows
         WHERE status = 'ACCEPTED'
         GROUP BY 1, 2
         ORDER BY 1, 2
        ON CONFLICT (day, bucket) DO UPDATE SET n = t.n + EXCLUDED.n;
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        WITH up AS (
            INSERT INTO invitation_stats_daily AS d (day, source, has_note, state, shard, n)
            SELECT (sent_at AT TIME ZONE 'UTC')::date, source, message IS NOT NULL,
                   CASE WHEN status IN ('PENDING', 'IGNORED') THEN 'LIVE' ELSE status END,
                   invitation_stats_shard(sender_id, status), -count(*)
              FROM old_rows
             GROUP BY 1, 2, 3, 4, 5
             ORDER BY 1, 2, 3, 4, 5
            ON CONFLICT (day, source, has_note, state, shard) DO UPDATE SET n = d.n + EXCLUDED.n
            RETURNING d.*)
        SELECT array_agg((day, source, has_note, state, shard, n)::invitation_stats_daily) INTO emptied
          FROM up WHERE n = 0;
        WITH up AS (
            INSERT INTO invitation_stats_tta AS t (day, bucket, n)
            SELECT (sent_at AT TIME ZONE 'UTC')::date, invitation_tta_bucket(sent_at, responded_at), -count(*)
              FROM old_rows
             WHERE status = 'ACCEPTED'
             GROUP BY 1, 2
             ORDER BY 1, 2
            ON CONFLICT (day, bucket) DO UPDATE SET n = t.n + EXCLUDED.n
            RETURNING t.*)
        SELECT array_agg((day, bucket, n)::invitation_stats_tta) INTO emptied_tta
          FROM up WHERE n = 0;
    ELSE
        -- UPDATE: from PENDING to IGNORED (the same LIVE state) nothing is written.
        WITH up AS (
            INSERT INTO invitation_stats_daily AS d (day, source, has_note, state, shard, n)
            SELECT day, source, has_note, state, shard, sum(delta)
              FROM (SELECT (sent_at AT TIME ZONE 'UTC')::date AS day, source, message IS NOT NULL AS has_note,
                           CASE WHEN status IN ('PENDING', 'IGNORED') THEN 'LIVE' ELSE status END AS state,
                           invitation_stats_shard(sender_id, status) AS shard, 1 AS delta
                      FROM new_rows
                    UNION ALL
                    SELECT (sent_at AT TIME ZONE 'UTC')::date, source, message IS NOT NULL,
                           CASE WHEN status IN ('PENDING', 'IGNORED') THEN 'LIVE' ELSE status END,
                           invitation_stats_shard(sender_id, status), -1
                      FROM old_rows) c
             GROUP BY 1, 2, 3, 4, 5
            HAVING sum(delta) <> 0
             ORDER BY 1, 2, 3, 4, 5
            ON CONFLICT (day, source, has_note, state, shard) DO UPDATE SET n = d.n + EXCLUDED.n
            RETURNING d.*)
        SELECT array_agg((day, source, has_note, state, shard, n)::invitation_stats_daily) INTO emptied
          FROM up WHERE n = 0;
        WITH up AS (
            INSERT INTO invitation_stats_tta AS t (day, bucket, n)
            SELECT day, bucket, sum(delta)
              FROM (SELECT (sent_at AT TIME ZONE 'UTC')::date AS day, invitation_tta_bucket(sent_at, responded_at) AS bucket, 1 AS delta
                      FROM new_rows WHERE status = 'ACCEPTED'
                    UNION ALL
                    SELECT (sent_at AT TIME ZONE 'UTC')::date, invitation_tta_bucket(sent_at, responded_at), -1
                      FROM old_rows WHERE status = 'ACCEPTED') c
             GROUP BY 1, 2
            HAVING sum(delta) <> 0
             ORDER BY 1, 2
            ON CONFLICT (day, bucket) DO UPDATE SET n = t.n + EXCLUDED.n
            RETURNING t.*)
        SELECT array_agg((day, bucket, n)::invitation_stats_tta) INTO emptied_tta
          FROM up WHERE n = 0;
    END IF;
    -- Rows that reached 0 go, as a rebuild would not write them. This transaction holds
    -- their locks since its upserts above, so the deletes wait for no one; a concurrent
    -- upsert of the same key waits for this commit, then inserts the row again.
    IF emptied IS NOT NULL THEN
        DELETE FROM invitation_stats_daily d
         USING unnest(emptied) z
         WHERE (d.day, d.source, d.has_note, d.state, d.shard) = (z.day, z.source, z.has_note, z.state, z.shard)
           AND d.n = 0;
    END IF;
    IF emptied_tta IS NOT NULL THEN
        DELETE FROM invitation_stats_tta t
         USING unnest(emptied_tta) z
         WHERE (t.day, t.bucket) = (z.day, z.bucket) AND t.n = 0;
    END IF;
    RETURN NULL;
END
$$;

DELETE FROM invitation_stats_daily WHERE n = 0;
DELETE FROM invitation_stats_tta WHERE n = 0;
