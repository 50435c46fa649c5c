LOCK TABLE invitations IN SHARE ROW EXCLUSIVE MODE;

DROP TRIGGER invitations_stats_insert ON invitations;
CREATE TRIGGER invitations_stats_insert AFTER INSERT ON invitations
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION invitation_stats_trigger();
DROP FUNCTION invitation_stats_insert_row();
