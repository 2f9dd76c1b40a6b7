-- guard_audit: keel.guard_audit is complete, append-only, in the dump, and
-- the row of a blocked statement survives its ERROR, also when the database
-- defaults to read-only transactions (issue 5, "Policy and the way out",
-- "Holes found by a hostile-role review").
\set SHOW_CONTEXT never
-- the recycle bin has its own tests (trash, trash_hook); here drops are final
SET keel.trash = off;
SELECT coalesce(max(id), 0) AS audit_mark FROM keel.guard_audit \gset
CREATE TABLE audited (id int);
SET application_name = 'keel-regress';

-- An override carries the transaction id and the WAL position before the change.
BEGIN;
SELECT keel.allow_destructive('audited drop (ticket 7)');
SELECT pg_current_xact_id() AS xid \gset
DROP TABLE audited;
COMMIT;
SELECT action, rule, command_tag, objects, reason, database_name = current_database() AS db,
       application_name, transaction_id = :'xid'::xid8 AS same_xid,
       wal_lsn IS NOT NULL AND wal_lsn <= pg_current_wal_insert_lsn() AS lsn_before
FROM keel.guard_audit WHERE id > :audit_mark ORDER BY id;

-- Blocked rows go through the spool, and the background worker has already
-- moved them into the table when the ERROR arrives: nothing is left to flush.
-- With no worker slot (regress/preload.conf) the row waits in the spool until
-- the flush (guard_hook counts that path).
CREATE TABLE audited (id int);
DROP TABLE audited;
SELECT CASE current_setting('max_worker_processes') WHEN '0' THEN keel.guard_audit_flush() = 1
            ELSE keel.guard_audit_flush() = 0 END AS written_by_worker_or_flushed;
SELECT action, rule, spool_id IS NOT NULL AS spooled, application_name
FROM keel.guard_audit WHERE id > :audit_mark AND action = 'blocked' ORDER BY id;
-- A second flush inserts nothing twice.
SELECT keel.guard_audit_flush() AS flushed_again;

-- A database that defaults to read-only transactions still gets the row.
SELECT current_database() AS dbname \gset
ALTER DATABASE :"dbname" SET default_transaction_read_only = on;
\c
BEGIN READ WRITE;
DROP TABLE audited;
ROLLBACK;
SET default_transaction_read_only = off;
SELECT CASE current_setting('max_worker_processes') WHEN '0' THEN keel.guard_audit_flush() = 1
            ELSE keel.guard_audit_flush() = 0 END AS written_by_worker_or_flushed;
SELECT count(*) AS blocked_rows FROM keel.guard_audit
WHERE id > :audit_mark AND action = 'blocked' AND objects = '{"table public.audited"}';
ALTER DATABASE :"dbname" RESET default_transaction_read_only;
\c

-- Append-only, whoever asks, also with session_replication_role = replica.
UPDATE keel.guard_audit SET reason = 'edited';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DELETE FROM keel.guard_audit;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
BEGIN;
SET LOCAL keel.guard_rules = 'truncate=off';  -- preloaded, the hook's truncate rule would refuse first
TRUNCATE keel.guard_audit;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;
SET session_replication_role = replica;
DELETE FROM keel.guard_audit;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET session_replication_role;

-- The table and its id sequence are in pg_dump's data (pg_extension_config_dump).
SELECT c.relname FROM pg_extension e, unnest(e.extconfig) AS cfg(oid)
JOIN pg_class c ON c.oid = cfg.oid
WHERE e.extname = 'keel' AND c.relname LIKE 'guard_audit%' ORDER BY 1;

-- Ordinary roles can neither read nor flush.
CREATE ROLE keel_regress_reader;
SET ROLE keel_regress_reader;
SELECT count(*) FROM keel.guard_audit;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.guard_audit_flush();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;
SET keel.guard_rules = 'drop-role=off';
DROP ROLE keel_regress_reader;
RESET keel.guard_rules;
DROP TABLE IF EXISTS no_such_audited;
