-- a waiver covers the statement after it only
-- keel:allow drop-table "first one only"
DROP TABLE a;
-- expect: drop-table
DROP TABLE b;
