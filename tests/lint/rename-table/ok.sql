CREATE TABLE t (a int);
ALTER TABLE t RENAME TO t2;
ALTER INDEX orders_pkey RENAME TO orders_pk;
