-- expect: drop-table
DROP TABLE accounts;
-- expect: drop-table
DROP TABLE IF EXISTS audit.events CASCADE;
-- expect: drop-table
DROP OWNED BY old_app;
