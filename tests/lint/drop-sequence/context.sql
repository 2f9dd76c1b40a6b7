CREATE SEQUENCE a;
DROP SEQUENCE a;
-- expect: drop-sequence
DROP SEQUENCE b;
