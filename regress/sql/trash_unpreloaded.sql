-- trash_unpreloaded: without keel.so preloaded no utility hook runs, so a
-- DROP TABLE the guard lets through is final, and keel says so with a
-- WARNING (docs/guard.md, "Recycle bin"); columns are still kept (trash).
\set SHOW_CONTEXT never
CREATE EXTENSION IF NOT EXISTS keel;
CREATE TABLE doomed (id int PRIMARY KEY);
BEGIN;
SELECT keel.allow_destructive('gone for good');
DROP TABLE doomed;
COMMIT;
SELECT to_regclass('doomed') AS doomed;
