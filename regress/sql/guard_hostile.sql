-- guard_hostile: no way around the guard (issue 5, "No way around it" and
-- "Holes found by a hostile-role review"). Each way is tried and refused.
\set SHOW_CONTEXT never
-- the recycle bin has its own tests (trash, trash_hook); here drops are final
SET keel.trash = off;
SELECT coalesce(max(id), 0) AS audit_mark FROM keel.guard_audit \gset
CREATE ROLE keel_regress_mallory LOGIN;
CREATE ROLE keel_regress_ops;
CREATE ROLE keel_regress_admin_group;
SET keel.admin_role = 'keel_regress_admin_group';
CREATE SCHEMA hx AUTHORIZATION keel_regress_mallory;
CREATE TABLE hx.precious (id int PRIMARY KEY, secret text);
INSERT INTO hx.precious VALUES (1, 'do not lose');
ALTER TABLE hx.precious OWNER TO keel_regress_mallory;

-- The statement inside DO ... EXECUTE, a SECURITY DEFINER function called by
-- an ordinary role, a procedure, and a prepared statement.
SET ROLE keel_regress_mallory;
DO $$ BEGIN EXECUTE 'DROP TABLE hx.precious'; END $$;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;
CREATE FUNCTION hx.definer_drop() RETURNS void LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog AS $$ BEGIN EXECUTE 'DROP TABLE hx.precious'; END $$;
GRANT EXECUTE ON FUNCTION hx.definer_drop() TO keel_regress_mallory;
SET ROLE keel_regress_mallory;
SELECT hx.definer_drop();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CREATE PROCEDURE hx.proc_drop() LANGUAGE plpgsql AS $$ BEGIN DROP TABLE hx.precious; END $$;
CALL hx.proc_drop();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CREATE FUNCTION hx.fn_drop_column() RETURNS int LANGUAGE plpgsql AS
    $$ BEGIN ALTER TABLE hx.precious DROP COLUMN secret; RETURN 1; END $$;
PREPARE drop_it AS SELECT hx.fn_drop_column();
EXECUTE drop_it;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DEALLOCATE drop_it;
-- A role that puts its own schema and operators before pg_catalog changes nothing.
CREATE FUNCTION hx.always_true(oid, oid) RETURNS boolean LANGUAGE sql AS 'SELECT true';
CREATE OPERATOR hx.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = hx.always_true);
SET search_path = hx, pg_catalog;
DROP TABLE precious;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET search_path;
-- PostgreSQL's own permission check comes first: no audit row for these.
DROP TABLE pg_catalog.pg_class;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP TABLE keel.guard_audit;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;

-- After SET session_replication_role = replica the triggers still fire (ENABLE ALWAYS).
SET session_replication_role = replica;
DROP TABLE hx.precious;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DELETE FROM keel.guard_audit;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET session_replication_role;
SELECT evtname, evtenabled FROM pg_event_trigger WHERE evtname LIKE 'keel%' ORDER BY 1;
SELECT tgname, tgenabled FROM pg_trigger
WHERE tgrelid IN ('keel.guard_audit'::regclass, 'keel.credit_ledger'::regclass) ORDER BY 1;

-- Disabling, altering or replacing keel's triggers, functions, schema and membership.
ALTER TABLE keel.credit_ledger DISABLE TRIGGER credit_ledger_append_only;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER TABLE keel.guard_audit ENABLE TRIGGER guard_audit_append_only;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
CREATE OR REPLACE FUNCTION keel.guard_sql_drop() RETURNS event_trigger
    LANGUAGE plpgsql AS 'BEGIN END';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER FUNCTION keel.guard_ddl_command_start() RENAME TO gone;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER FUNCTION keel.guard_sql_drop() OWNER TO keel_regress_mallory;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER FUNCTION keel.allow_destructive(text) SECURITY DEFINER;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER FUNCTION keel.guard_table_rewrite() SET SCHEMA public;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER EXTENSION keel DROP FUNCTION keel.guard_sql_drop();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER SCHEMA keel RENAME TO keel_old;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER SCHEMA keel OWNER TO keel_regress_mallory;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP FUNCTION keel.guard_sql_drop();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- DROP EXTENSION keel itself, with or without CASCADE.
DROP EXTENSION keel;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP EXTENSION keel CASCADE;
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Data dropped as a member of another extension.
CREATE EXTENSION IF NOT EXISTS pgcrypto;
ALTER EXTENSION pgcrypto ADD TABLE hx.precious;
DROP EXTENSION pgcrypto;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER EXTENSION pgcrypto DROP TABLE hx.precious;
-- An extension without data may be dropped and re-created in one transaction.
BEGIN;
DROP EXTENSION pgcrypto;
CREATE EXTENSION pgcrypto;
COMMIT;

-- The break-glass does not leak out of an admin's SECURITY DEFINER function.
GRANT keel_regress_admin_group TO keel_regress_ops;
CREATE FUNCTION hx.ops_glass() RETURNS void LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog AS $$ SELECT keel.allow_destructive('ops maintenance') $$;
ALTER FUNCTION hx.ops_glass() OWNER TO keel_regress_ops;
GRANT EXECUTE ON FUNCTION hx.ops_glass() TO keel_regress_mallory;
SET ROLE keel_regress_mallory;
BEGIN;
SELECT hx.ops_glass();
DROP TABLE hx.precious;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;
RESET ROLE;
-- Nor does a superuser's break-glass lend itself to a role it switches to.
BEGIN;
SELECT keel.allow_destructive('superuser session');
SET LOCAL ROLE keel_regress_mallory;
DROP TABLE hx.precious;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;

-- Blank reasons: Unicode spaces and zero-width characters say nothing.
SELECT keel.allow_destructive(E'\u00a0\u200b\u3000');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.allow_destructive(E'\ufeff\t');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- The audit is capped: a 64 kB statement is stored clipped to 8 kB.
SELECT 'DROP TABLE hx.precious /* ' || repeat('x', 65536) || ' */' AS long_drop \gset
:long_drop;
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Nothing was lost.
SELECT id, secret FROM hx.precious;
SELECT keel.guard_audit_flush() IS NOT NULL AS flushed;
SELECT action, rule, command_tag, objects, role_name FROM keel.guard_audit
WHERE id > :audit_mark AND action <> 'guard_lowered' ORDER BY occurred_at, id;
SELECT octet_length(statement) AS stored_bytes FROM keel.guard_audit
WHERE id > :audit_mark AND statement LIKE 'DROP TABLE hx.precious /*%';

-- Clean up.
BEGIN;
SELECT keel.allow_destructive('regress clean-up');
DROP SCHEMA hx CASCADE;
COMMIT;
SET keel.guard_rules = 'drop-role=off';
DROP ROLE keel_regress_mallory;
DROP ROLE keel_regress_ops;
DROP ROLE keel_regress_admin_group;
RESET keel.admin_role;
RESET keel.guard_rules;
