-- keel:allow-destructive "accounts replaced by accounts_v2 (ticket 81)"
DROP TABLE accounts;
