ALTER TABLE t DROP COLUMN b;
-- expect: drop-column
ALTER TABLE u DROP COLUMN b;
