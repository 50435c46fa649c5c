-- Members, their connections and the invitations between them.
-- Every invariant the database can express is declared here, so that a bug in the
-- repository fails loudly instead of corrupting data.

CREATE TABLE members (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    handle           text NOT NULL CHECK (handle ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    name             text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    headline         text NOT NULL DEFAULT '' CHECK (char_length(headline) <= 300),
    plan             text NOT NULL DEFAULT 'STANDARD' CHECK (plan IN ('STANDARD', 'PREMIUM')),
    connection_count integer NOT NULL DEFAULT 0 CHECK (connection_count >= 0),
    created_at       timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT members_handle_key UNIQUE (handle)
);

-- One row per connected pair, smaller id first.
CREATE TABLE connections (
    member_a bigint NOT NULL REFERENCES members (id),
    member_b bigint NOT NULL REFERENCES members (id),
    since    timestamptz NOT NULL,
    PRIMARY KEY (member_a, member_b),
    CHECK (member_a < member_b)
);
CREATE INDEX connections_member_b_idx ON connections (member_b);

-- Stored statuses. PENDING and IGNORED rows are "live"; a live row whose sent_at is
-- older than the configured lifetime is expired whether or not the sweep has marked it.
CREATE TABLE invitations (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sender_id    bigint NOT NULL REFERENCES members (id),
    recipient_id bigint NOT NULL REFERENCES members (id),
    message      text CHECK (message <> ''),
    source       text NOT NULL DEFAULT 'OTHER'
                 CHECK (source IN ('PROFILE', 'SEARCH', 'SUGGESTION', 'ADDRESS_BOOK', 'OTHER')),
    status       text NOT NULL DEFAULT 'PENDING'
                 CHECK (status IN ('PENDING', 'ACCEPTED', 'IGNORED', 'WITHDRAWN', 'EXPIRED')),
    sent_at      timestamptz NOT NULL,
    responded_at timestamptz,
    withdrawn_at timestamptz,
    CONSTRAINT invitations_no_self CHECK (sender_id <> recipient_id),
    CONSTRAINT invitations_withdrawn_at CHECK ((status = 'WITHDRAWN') = (withdrawn_at IS NOT NULL)),
    CONSTRAINT invitations_responded_at CHECK (status NOT IN ('ACCEPTED', 'IGNORED') OR responded_at IS NOT NULL)
);

-- One live invitation per pair of members, in either direction.
CREATE UNIQUE INDEX invitations_live_pair_key
    ON invitations (LEAST(sender_id, recipient_id), GREATEST(sender_id, recipient_id))
    WHERE status IN ('PENDING', 'IGNORED');

-- The sender's pending list, by age; also the pending cap.
CREATE INDEX invitations_sender_live_idx
    ON invitations (sender_id, sent_at, id)
    WHERE status IN ('PENDING', 'IGNORED');

-- The recipient's received list.
CREATE INDEX invitations_recipient_pending_idx
    ON invitations (recipient_id, sent_at, id)
    WHERE status = 'PENDING';

-- The sender's history; the weekly window and the monthly note count.
CREATE INDEX invitations_sender_sent_idx ON invitations (sender_id, sent_at, id);

-- History of one pair (cooldown, connection status); makes import re-runs idempotent.
CREATE UNIQUE INDEX invitations_pair_sent_key ON invitations (sender_id, recipient_id, sent_at);

-- Idempotency keys: the first result of a keyed mutation, per viewer, kept 24 hours.
CREATE TABLE idempotency_keys (
    member_id    bigint NOT NULL REFERENCES members (id),
    key          text NOT NULL CHECK (char_length(key) BETWEEN 1 AND 255),
    request_hash bytea NOT NULL,
    response     jsonb NOT NULL,
    created_at   timestamptz NOT NULL,
    PRIMARY KEY (member_id, key)
);
