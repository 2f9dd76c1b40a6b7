/*
 * sql/keel--0.1.0--0.2.0.sql
 *   Update of keel 0.1.0 to 0.2.0 (ALTER EXTENSION keel UPDATE). Ends in the
 *   same catalog state as a fresh keel--0.2.0.sql (regress/sql/upgrade.sql).
 *   Guard (issue 5): more audit columns, an append-only audit with its id
 *   sequence in the dump, the spool flush, the table_rewrite backstop, more
 *   command tags at ddl_command_start, and every trigger ENABLE ALWAYS.
 */
\echo Use "ALTER EXTENSION keel UPDATE TO '0.2.0'" to load this file. \quit

-- Refuse to update in a schema whose owner is not a superuser: see the
-- schema-squat check of keel--0.2.0.sql.
DO $$
BEGIN
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_namespace n
              JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
             WHERE n.nspname OPERATOR(pg_catalog.=) 'keel') THEN
        RAISE EXCEPTION USING
            ERRCODE = '42501',
            MESSAGE = 'schema "keel" is not owned by a superuser',
            DETAIL = 'keel''s functions run as their owner on the objects of that schema.',
            HINT = 'Have a superuser take it over (ALTER SCHEMA keel OWNER TO postgres) after checking its contents, then update again.';
    END IF;
END
$$;

ALTER TABLE keel.guard_audit
    ADD COLUMN rule text,
    ADD COLUMN database_name name,
    ADD COLUMN application_name text,
    ADD COLUMN client_addr inet,
    ADD COLUMN wal_lsn pg_lsn,
    ADD COLUMN spool_id text,
    DROP CONSTRAINT guard_audit_action_check,
    ADD CONSTRAINT guard_audit_action_check
        CHECK (action OPERATOR(pg_catalog.=) ANY (ARRAY['blocked', 'warned', 'overridden', 'break_glass',
                                                       'unguarded', 'guard_lowered'])),
    ADD CONSTRAINT guard_audit_spool_id_key UNIQUE (spool_id);
SELECT pg_catalog.pg_extension_config_dump('keel.guard_audit_id_seq', '');

-- The ddl_command_start trigger gets more tags: re-create it.
DROP EVENT TRIGGER keel_guard_ddl_command_start;

-- keel.guard_audit_append_only(): trigger refusing UPDATE, DELETE and
-- TRUNCATE of keel.guard_audit with 42501, whoever runs them: an audit trail
-- that its subject can edit records nothing (issue 5).
CREATE FUNCTION keel.guard_audit_append_only()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'keel_guard_audit_append_only';
REVOKE ALL ON FUNCTION keel.guard_audit_append_only() FROM PUBLIC;
CREATE TRIGGER guard_audit_append_only
    BEFORE UPDATE OR DELETE ON keel.guard_audit
    FOR EACH ROW EXECUTE FUNCTION keel.guard_audit_append_only();
CREATE TRIGGER guard_audit_no_truncate
    BEFORE TRUNCATE ON keel.guard_audit
    FOR EACH STATEMENT EXECUTE FUNCTION keel.guard_audit_append_only();
-- ENABLE ALWAYS: session_replication_role = replica must not silence them.
ALTER TABLE keel.guard_audit ENABLE ALWAYS TRIGGER guard_audit_append_only;
ALTER TABLE keel.guard_audit ENABLE ALWAYS TRIGGER guard_audit_no_truncate;
ALTER TABLE keel.credit_ledger ENABLE ALWAYS TRIGGER credit_ledger_append_only;
ALTER TABLE keel.credit_ledger ENABLE ALWAYS TRIGGER credit_ledger_no_truncate;

-- keel.guard_audit_flush(): move audit rows of blocked statements that were
-- spooled to disk (when no background worker could write them) into
-- keel.guard_audit; returns how many rows it inserted. Superusers only
-- (REVOKE below); keel also flushes on its own whenever it writes an audit row.
CREATE FUNCTION keel.guard_audit_flush()
RETURNS bigint
LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'keel_guard_audit_flush';
REVOKE ALL ON FUNCTION keel.guard_audit_flush() FROM PUBLIC;
COMMENT ON FUNCTION keel.guard_audit_flush() IS 'move spooled audit rows of blocked statements into keel.guard_audit; returns the number inserted';

-- keel.guard_table_rewrite(): refuses a rewrite of a table that holds rows.
CREATE FUNCTION keel.guard_table_rewrite()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'keel_guard_table_rewrite';

-- The event triggers. ddl_command_start refuses from the parse tree before
-- any work is done; sql_drop is the backstop for whatever a command dropped
-- (and records derived objects for the pre-commit replacement check);
-- table_rewrite refuses rewrites of tables that hold rows. All ENABLE ALWAYS.
CREATE EVENT TRIGGER keel_guard_ddl_command_start ON ddl_command_start
    WHEN TAG IN ('DROP TABLE', 'ALTER TABLE', 'DROP TYPE', 'DROP DOMAIN', 'DROP SCHEMA',
                 'DROP MATERIALIZED VIEW', 'DROP SEQUENCE', 'ALTER TYPE', 'DROP VIEW',
                 'DROP FUNCTION', 'DROP PROCEDURE', 'DROP ROUTINE', 'DROP AGGREGATE',
                 'DROP INDEX', 'DROP TRIGGER', 'DROP EXTENSION', 'ALTER EXTENSION',
                 'ALTER VIEW', 'ALTER MATERIALIZED VIEW', 'ALTER SEQUENCE', 'ALTER INDEX',
                 'ALTER FUNCTION', 'ALTER PROCEDURE', 'ALTER ROUTINE', 'ALTER SCHEMA',
                 'CREATE FUNCTION', 'CREATE PROCEDURE', 'DROP OWNED')
    EXECUTE FUNCTION keel.guard_ddl_command_start();
ALTER EVENT TRIGGER keel_guard_ddl_command_start ENABLE ALWAYS;
CREATE EVENT TRIGGER keel_guard_table_rewrite ON table_rewrite
    EXECUTE FUNCTION keel.guard_table_rewrite();
ALTER EVENT TRIGGER keel_guard_table_rewrite ENABLE ALWAYS;
ALTER EVENT TRIGGER keel_guard_sql_drop ENABLE ALWAYS;
