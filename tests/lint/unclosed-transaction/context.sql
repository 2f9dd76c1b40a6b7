-- keel:no-transaction
START TRANSACTION;
CREATE TABLE t (a int);
COMMIT;
BEGIN;
CREATE TABLE u (a int);
ROLLBACK;
-- expect: unclosed-transaction
BEGIN;
