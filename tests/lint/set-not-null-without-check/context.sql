-- a NOT VALID check that was never validated proves nothing
ALTER TABLE users ADD CONSTRAINT users_email_nn CHECK (email IS NOT NULL) NOT VALID;
-- expect: set-not-null-without-check
ALTER TABLE users ALTER COLUMN email SET NOT NULL;
