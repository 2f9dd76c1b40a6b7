-- expect: unclosed-transaction
BEGIN;
CREATE TABLE t (a int);
