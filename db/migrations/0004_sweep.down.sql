DROP INDEX invitations_live_sent_idx;
