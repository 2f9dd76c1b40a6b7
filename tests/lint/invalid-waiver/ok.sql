-- keel:allow drop-table "replaced by accounts_v2 in release 12 (ticket 81)"
DROP TABLE accounts;
