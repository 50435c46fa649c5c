DROP TABLE idempotency_keys;
DROP TABLE invitations;
DROP TABLE connections;
DROP TABLE members;
