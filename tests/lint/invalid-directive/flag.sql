-- expect: invalid-directive
-- keel:allow-destructive
DROP TABLE accounts;
