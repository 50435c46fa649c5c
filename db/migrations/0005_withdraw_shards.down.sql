LOCK TABLE invitations IN SHARE ROW EXCLUSIVE MODE;

CREATE OR REPLACE FUNCTION invitation_stats_shard(sender bigint, status text) RETURNS smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (CASE WHEN status IN ('PENDING', 'IGNORED') THEN sender % 16
                      WHEN status = 'ACCEPTED' THEN sender % 4 ELSE 0 END)::smallint $$;

SELECT invitation_stats_rebuild();
