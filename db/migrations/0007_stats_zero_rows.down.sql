-- 0003's trigger function again; the rows at 0 that the up migration deleted held no
-- count, and the trigger leaves new ones as before.
LOCK TABLE invitations IN SHARE ROW EXCLUSIVE MODE;

CREATE OR REPLACE FUNCTION invitation_stats_trigger() RETURNS trigger
    LANGUAGE plpgsql AS $$
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
        INSERT INTO invitation_stats_daily AS d (day, source, has_note, state, shard, n)
        SELECT (sent_at AT TIME ZONE 'UTC')::date, source, message IS NOT NULL,
               CASE WHEN status IN ('PENDING', 'IGNORED') THEN 'LIVE' ELSE status END,
               invitation_stats_shard(sender_id, status), -count(*)
          FROM old_rows
         GROUP BY 1, 2, 3, 4, 5
         ORDER BY 1, 2, 3, 4, 5
        ON CONFLICT (day, source, has_note, state, shard) DO UPDATE SET n = d.n + EXCLUDED.n;
        INSERT INTO invitation_stats_tta AS t (day, bucket, n)
        SELECT (sent_at AT TIME ZONE 'UTC')::date, invitation_tta_bucket(sent_at, responded_at), -count(*)
          FROM old_rows
         WHERE status = 'ACCEPTED'
         GROUP BY 1, 2
         ORDER BY 1, 2
        ON CONFLICT (day, bucket) DO UPDATE SET n = t.n + EXCLUDED.n;
        RETURN NULL;
    END IF;
    -- UPDATE: from PENDING to IGNORED (the same LIVE state) nothing is written.
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
    ON CONFLICT (day, source, has_note, state, shard) DO UPDATE SET n = d.n + EXCLUDED.n;
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
    ON CONFLICT (day, bucket) DO UPDATE SET n = t.n + EXCLUDED.n;
    RETURN NULL;
END
$$;