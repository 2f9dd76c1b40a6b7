DROP INDEX users_email_idx;
CREATE INDEX users_email_idx ON users (lower(email));
