-- In-app notifications: one when an invitation arrives (for its recipient), one when
-- it is accepted (for its sender). Withdrawals and ignores create none.
CREATE TABLE notifications (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    member_id     bigint NOT NULL REFERENCES members (id),
    kind          text NOT NULL CHECK (kind IN ('INVITATION_RECEIVED', 'INVITATION_ACCEPTED')),
    invitation_id bigint NOT NULL REFERENCES invitations (id),
    created_at    timestamptz NOT NULL,
    read_at       timestamptz,
    CONSTRAINT notifications_once UNIQUE (invitation_id, kind)
);
CREATE INDEX notifications_member_idx ON notifications (member_id, created_at, id);
CREATE INDEX notifications_unread_idx ON notifications (member_id) WHERE read_at IS NULL;

-- The reminder outbox: written in the transaction that sends an invitation, delivered
-- by a worker (at most two per invitation, 7 and 14 days after sending).
CREATE TABLE reminders (
    invitation_id bigint NOT NULL REFERENCES invitations (id),
    seq           smallint NOT NULL CHECK (seq IN (1, 2)),
    due_at        timestamptz NOT NULL,
    state         text NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'SENT', 'CANCELLED')),
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    done_at       timestamptz,
    PRIMARY KEY (invitation_id, seq)
);
CREATE INDEX reminders_due_idx ON reminders (due_at) WHERE state = 'PENDING';
