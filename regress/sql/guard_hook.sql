-- guard_hook: with keel.so preloaded, its ProcessUtility_hook refuses what
-- event triggers never see: TRUNCATE (wherever it is sent from), DROP
-- DATABASE, DROP ROLE, and ALTER / DROP / rename / re-own of keel's own event
-- triggers; lowering the guard is audited. Run by regress/preload_schedule
-- in a server started with regress/preload.conf (no worker slot: each
-- refusal's row waits in the spool and is logged as one parseable line).
\set SHOW_CONTEXT never
-- the recycle bin has its own tests (trash, trash_hook); here drops are final
SET keel.trash = off;
CREATE EXTENSION IF NOT EXISTS keel;
SELECT coalesce(max(id), 0) AS audit_mark FROM keel.guard_audit \gset
SELECT keel.guard_audit_flush() IS NOT NULL AS flushed;
-- logged_refusals(): keel's parseable audit lines in the server log so far.
CREATE FUNCTION logged_refusals() RETURNS int LANGUAGE sql AS $$
    SELECT regexp_count(pg_read_file(pg_current_logfile()),
                        'LOG:  keel\.guard_audit: \{"action":"blocked"')
$$;
-- wait_for_log(n): the logging collector writes asynchronously; wait up to 10 s.
CREATE FUNCTION wait_for_log(n int) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    FOR i IN 1..100 LOOP
        IF logged_refusals() >= n THEN RETURN true; END IF;
        PERFORM pg_sleep(0.1);
    END LOOP;
    RETURN false;
END $$;
SELECT logged_refusals() AS log_mark \gset

CREATE TABLE ledger_copy (id int PRIMARY KEY, amount int);
INSERT INTO ledger_copy VALUES (1, 10);
CREATE TABLE ledger_lines (id int, copy_id int REFERENCES ledger_copy);
INSERT INTO ledger_lines VALUES (1, 1);
CREATE TABLE parted (id int) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100);
INSERT INTO parted VALUES (5);

-- TRUNCATE, with or without CASCADE, and from a DO block and a function.
TRUNCATE ledger_copy;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
TRUNCATE ledger_copy CASCADE;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
TRUNCATE parted;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DO $$ BEGIN EXECUTE 'TRUNCATE ledger_lines'; END $$;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CREATE FUNCTION truncate_lines() RETURNS void LANGUAGE sql AS 'TRUNCATE ledger_lines';
SELECT truncate_lines();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT (SELECT count(*) FROM ledger_copy) AS copies, (SELECT count(*) FROM ledger_lines) AS lines,
       (SELECT count(*) FROM parted) AS parted_rows;
-- Allowed: a table created in this transaction, a temporary table.
BEGIN;
CREATE TABLE staging (id int);
INSERT INTO staging VALUES (1);
TRUNCATE staging;
COMMIT;
CREATE TEMP TABLE temp_staging (id int);
TRUNCATE temp_staging;
-- PostgreSQL's own permission check comes first.
CREATE ROLE keel_regress_intruder;
SET ROLE keel_regress_intruder;
TRUNCATE ledger_copy;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP ROLE keel_regress_intruder;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;

-- DROP DATABASE and DROP ROLE.
CREATE DATABASE keel_regress_victim;
DROP DATABASE keel_regress_victim;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP DATABASE IF EXISTS keel_regress_no_such_db;
CREATE ROLE keel_regress_victim;
DROP ROLE keel_regress_victim;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP USER keel_regress_victim;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP ROLE IF EXISTS keel_regress_no_such_role;
BEGIN;
CREATE ROLE keel_regress_passing;
DROP ROLE keel_regress_passing;
COMMIT;

-- keel's own event triggers.
ALTER EVENT TRIGGER keel_guard_sql_drop DISABLE;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER EVENT TRIGGER keel_guard_ddl_command_start ENABLE REPLICA;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER EVENT TRIGGER keel_guard_table_rewrite RENAME TO harmless;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER EVENT TRIGGER keel_guard_sql_drop OWNER TO keel_regress_victim;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP EVENT TRIGGER keel_guard_sql_drop;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT evtname, evtenabled FROM pg_event_trigger WHERE evtname LIKE 'keel%' ORDER BY 1;
-- Another event trigger is not keel's business.
CREATE FUNCTION other_et() RETURNS event_trigger LANGUAGE plpgsql AS 'BEGIN END';
CREATE EVENT TRIGGER other_et ON ddl_command_end EXECUTE FUNCTION other_et();
ALTER EVENT TRIGGER other_et DISABLE;
DROP EVENT TRIGGER other_et;

-- No worker slot: every refusal above waits in the spool, and is logged once
-- in a parseable line. Count both paths.
SELECT wait_for_log(:log_mark + 13) AS all_logged, logged_refusals() - :log_mark AS logged;
SELECT keel.guard_audit_flush() AS flushed_from_spool;

-- Under the break-glass TRUNCATE goes through, audited.
BEGIN;
SELECT keel.allow_destructive('reset the copy (ticket 9)');
TRUNCATE ledger_lines;
COMMIT;
-- Lowering the guard writes an audit row: SET, SET LOCAL, per database, per role.
SET keel.guard = warn;
TRUNCATE ledger_copy CASCADE;
RESET keel.guard;
BEGIN;
SET LOCAL keel.guard_rules = 'truncate=off';
TRUNCATE ledger_copy CASCADE;
COMMIT;
SELECT current_database() AS dbname \gset
ALTER DATABASE :"dbname" SET keel.guard = off;
ALTER DATABASE :"dbname" RESET keel.guard;
ALTER ROLE keel_regress_victim SET keel.guard_rules = 'drop-table=warn';
ALTER ROLE keel_regress_victim RESET keel.guard_rules;
-- Raising it or setting it back is not a lowering.
SET keel.guard = enforce;
SET keel.guard_rules = 'truncate=error';
RESET keel.guard_rules;

SELECT action, rule, command_tag, objects, reason FROM keel.guard_audit
WHERE id > :audit_mark ORDER BY occurred_at, id;

-- Clean up.
SET keel.guard_rules = 'drop-role=off, drop-database=off';
DROP ROLE keel_regress_victim;
DROP ROLE keel_regress_intruder;
RESET keel.guard_rules;
