CREATE INDEX events_at_idx ON events (at);
-- expect: create-index-non-concurrently
CREATE UNIQUE INDEX users_email_key ON users (email);
