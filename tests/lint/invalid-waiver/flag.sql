-- expect: invalid-waiver
-- keel:allow drop-table
DROP TABLE accounts;
-- expect: invalid-waiver
-- keel:allow drop-tabel "typo"
SELECT 1;
