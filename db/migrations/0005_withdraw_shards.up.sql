-- Withdrawals are sharded in the daily rollup as sends are (16 shards by sender).
--
-- A withdrawal of 20 selected invitations adds to the WITHDRAWN rows of their send days,
-- sources and notes. With one shard, two members withdrawing at the same time updated
-- the same rows about one time in five and the second waited for the first to commit:
-- waits on those row locks were the most frequent wait of bulk withdrawals under load
-- (`go run ./bench -cases e`, sampling pg_stat_activity). Sharded by sender, two
-- withdrawals share a row only when their senders share a shard.
--
-- The shard is a function of the row, so the rollup is rebuilt under the new one
-- (invitations are locked against writes meanwhile, as in 0003).

LOCK TABLE invitations IN SHARE ROW EXCLUSIVE MODE;

CREATE OR REPLACE FUNCTION invitation_stats_shard(sender bigint, status text) RETURNS smallint
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT (CASE WHEN status IN ('PENDING', 'IGNORED', 'WITHDRAWN') THEN sender % 16
                      WHEN status = 'ACCEPTED' THEN sender % 4 ELSE 0 END)::smallint $$;

SELECT invitation_stats_rebuild();
