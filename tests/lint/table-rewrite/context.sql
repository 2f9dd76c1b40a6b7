CREATE TABLE t (a int);
ALTER TABLE t ALTER COLUMN a TYPE bigint;
-- expect: table-rewrite
ALTER TABLE u ADD COLUMN r float8 DEFAULT random();
