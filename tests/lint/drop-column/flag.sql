-- expect: drop-column
ALTER TABLE users DROP COLUMN bio;
-- expect: drop-column
ALTER TABLE users ADD COLUMN x int, DROP COLUMN legacy_flag;
-- expect: drop-column
DROP TYPE mood CASCADE;
