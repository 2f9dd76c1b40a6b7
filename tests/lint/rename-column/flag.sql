-- expect: rename-column
ALTER TABLE users RENAME COLUMN email TO email_address;
-- expect: rename-column
ALTER TABLE users RENAME email TO mail;
