CREATE TABLE t (a int CONSTRAINT a_pos CHECK (a > 0));
ALTER TABLE t DROP CONSTRAINT a_pos;
-- expect: drop-constraint
ALTER TABLE u DROP CONSTRAINT u_pos;
