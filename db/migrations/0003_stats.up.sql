-- Acceptance analytics (see db/stats.go and the README's "Analytics" section).
--
-- A member's own statistics are a plain aggregate, read from the covering indexes
-- below without touching the table. Network-wide statistics read two rollups kept
-- exact by statement-level triggers, in the transaction of every change to
-- invitations (send, accept, ignore, withdraw, expiry sweep, import):
--   invitation_stats_daily  invitations by UTC send day, source, note or not, stored
--                           state and shard (so that concurrent sends of different
--                           senders rarely update the same row);
--   invitation_stats_tta    accepted invitations by UTC send day and time-to-accept
--                           bucket, from which the median's bucket is found.
-- The rollups hold stored states only: whether a LIVE (pending or ignored) invitation
-- has expired depends on "now" and is decided when they are read.

LOCK TABLE invitations IN SHARE ROW EXCLUSIVE MODE;

-- Whole seconds from sending to answering (rounded down). Plain SQL functions, not
-- STRICT, so that the planner inlines them (a call per row costs ten times as much).
CREATE FUNCTION invitation_tta_seconds(sent timestamptz, responded timestamptz) RETURNS bigint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT floor(date_part('epoch', responded - sent))::bigint $$;

-- The time-to-accept bucket: floor(24 × ln(1 + seconds)), about 4% wide. It is a
-- non-decreasing function of invitation_tta_seconds, so buckets are contiguous ranges
-- of that value: the median is found by counting buckets, then sorting one of them.
CREATE FUNCTION invitation_tta_bucket(sent timestamptz, responded timestamptz) RETURNS smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT floor(24 * ln(1 + greatest(floor(date_part('epoch', responded - sent)), 0)))::smallint $$;

-- invitation_stats_shard spreads the rollup rows that concurrent transactions update
-- most: sends add to today's LIVE rows (16 shards by sender), answers to recent
-- ACCEPTED rows (4 shards); withdrawals and expiry are rarer and need none. Fewer rows
-- make the rollups quicker to read.
CREATE FUNCTION invitation_stats_shard(sender bigint, status text) RETURNS smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (CASE WHEN status IN ('PENDING', 'IGNORED') THEN sender % 16
                      WHEN status = 'ACCEPTED' THEN sender % 4 ELSE 0 END)::smallint $$;

CREATE TABLE invitation_stats_daily (
    day      date NOT NULL,
    source   text NOT NULL,
    has_note boolean NOT NULL,
    state    text NOT NULL CHECK (state IN ('LIVE', 'ACCEPTED', 'WITHDRAWN', 'EXPIRED')),
    shard    smallint NOT NULL, -- invitation_stats_shard
    n        integer NOT NULL, -- no CHECK (n >= 0): the upserts propose negative deltas
    PRIMARY KEY (day, source, has_note, state, shard)
) WITH (fillfactor = 70);

CREATE TABLE invitation_stats_tta (
    day    date NOT NULL,
    bucket smallint NOT NULL,
    n      integer NOT NULL,
    PRIMARY KEY (day, bucket)
) WITH (fillfactor = 70);

-- The parts of a range that do not cover whole days are counted from invitations, and
-- so is the day in which "now − lifetime" falls (its LIVE rows are part pending, part
-- expired); a member's statistics always are. These covering indexes let both be read
-- from the index alone (once vacuumed), in pairs split by note: an index-only scan
-- cannot compute "message IS NOT NULL", and the message itself is too big to copy.
CREATE INDEX invitations_sent_plain_idx ON invitations (sent_at)
    INCLUDE (status, source, responded_at) WHERE message IS NULL;
CREATE INDEX invitations_sent_note_idx ON invitations (sent_at)
    INCLUDE (status, source, responded_at) WHERE message IS NOT NULL;
CREATE INDEX invitations_sender_plain_idx ON invitations (sender_id, sent_at)
    INCLUDE (status, source, responded_at) WHERE message IS NULL;
CREATE INDEX invitations_sender_note_idx ON invitations (sender_id, sent_at)
    INCLUDE (status, source, responded_at) WHERE message IS NOT NULL;

-- The median: the accepted invitations of one time-to-accept bucket sent in a range,
-- read from the index alone.
CREATE INDEX invitations_accepted_tta_idx
    ON invitations (invitation_tta_bucket(sent_at, responded_at), sent_at) INCLUDE (responded_at)
    WHERE status = 'ACCEPTED';

-- invitation_stats_trigger applies one statement's changes (its transition tables) to
-- the rollups: +1 per new row version, -1 per old one, netted per key, so a statement
-- that changes nothing the rollups see (PENDING to IGNORED, or no row at all) writes
-- nothing. Keys are upserted in key order, so two statements cannot deadlock over
-- rollup rows.
CREATE FUNCTION invitation_stats_trigger() RETURNS trigger
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

CREATE TRIGGER invitations_stats_insert AFTER INSERT ON invitations
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION invitation_stats_trigger();
CREATE TRIGGER invitations_stats_update AFTER UPDATE ON invitations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION invitation_stats_trigger();
CREATE TRIGGER invitations_stats_delete AFTER DELETE ON invitations
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION invitation_stats_trigger();

CREATE FUNCTION invitation_stats_truncate() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE invitation_stats_daily, invitation_stats_tta;
    RETURN NULL;
END
$$;
CREATE TRIGGER invitations_stats_truncate AFTER TRUNCATE ON invitations
    FOR EACH STATEMENT EXECUTE FUNCTION invitation_stats_truncate();

-- invitation_stats_rebuild recomputes both rollups from invitations (after a bulk load
-- with the triggers disabled, or to check them). Invitations are locked against writes
-- meanwhile.
CREATE FUNCTION invitation_stats_rebuild() RETURNS void
    LANGUAGE plpgsql AS $$
BEGIN
    LOCK TABLE invitations IN SHARE MODE;
    DELETE FROM invitation_stats_daily;
    DELETE FROM invitation_stats_tta;
    INSERT INTO invitation_stats_daily (day, source, has_note, state, shard, n)
    SELECT (sent_at AT TIME ZONE 'UTC')::date, source, message IS NOT NULL,
           CASE WHEN status IN ('PENDING', 'IGNORED') THEN 'LIVE' ELSE status END,
           invitation_stats_shard(sender_id, status), count(*)
      FROM invitations
     GROUP BY 1, 2, 3, 4, 5
     ORDER BY 1, 2, 3, 4, 5; -- rows of a day together, as when they are written day by day
    INSERT INTO invitation_stats_tta (day, bucket, n)
    SELECT (sent_at AT TIME ZONE 'UTC')::date, invitation_tta_bucket(sent_at, responded_at), count(*)
      FROM invitations
     WHERE status = 'ACCEPTED'
     GROUP BY 1, 2
     ORDER BY 1, 2;
END
$$;

SELECT invitation_stats_rebuild();
