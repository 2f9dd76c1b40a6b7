-- expect: set-not-null-without-check
ALTER TABLE users ALTER COLUMN email SET NOT NULL;
