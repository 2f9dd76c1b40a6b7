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
                                                       'unguarded', 'guard_lowered', 'restored', 'purged'])),
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

/* ---------------------------------------------------------------------------
 * Recycle bin (issue 8): keel_trash and keel.dropped_objects
 * ------------------------------------------------------------------------- */

-- Schema keel_trash holds what the recycle bin keeps. It is NOT a member of
-- the extension, so DROP EXTENSION keel never destroys the data in it. A
-- keel_trash schema that a role other than a superuser owns is refused (the
-- schema squat of issue 5).
DO $$
BEGIN
    IF pg_catalog.to_regnamespace('keel_trash') IS NULL THEN
        EXECUTE 'CREATE SCHEMA keel_trash';
        EXECUTE 'ALTER EXTENSION keel DROP SCHEMA keel_trash';
    ELSIF NOT (SELECT r.rolsuper FROM pg_catalog.pg_namespace n
                 JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) n.nspowner
                WHERE n.nspname OPERATOR(pg_catalog.=) 'keel_trash') THEN
        RAISE EXCEPTION USING
            ERRCODE = '42501',
            MESSAGE = 'schema "keel_trash" is not owned by a superuser',
            HINT = 'Rename or drop that schema, then install keel again.';
    END IF;
END
$$;
REVOKE ALL ON SCHEMA keel_trash FROM PUBLIC;

-- keel.dropped_objects: one row per thing the recycle bin keeps.
--   kind               table | column | rows (TRUNCATE)
--   original_identity  schema.table, or schema.table.column
--   trash_name         the relation in keel_trash that holds it
--   size_bytes, row_count  at the time of the drop (row_count: exact for
--                      column and rows; for a table, pg_class.reltuples)
--   dropped_at, dropped_by, reason (the break-glass reason), statement
--   expires_at         dropped_at + keel.trash_retention: purge_dropped() may destroy it after
--   restored_at, restored_by, purged_at
--   details            what a restore needs: original index and sequence names,
--                      definitions of dependent views and foreign keys, a column's
--                      type, default, NOT NULL and key columns
CREATE TABLE keel.dropped_objects (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind               text NOT NULL
                       CONSTRAINT dropped_objects_kind_check
                       CHECK (kind OPERATOR(pg_catalog.=) ANY (ARRAY['table', 'column', 'rows'])),
    original_identity  text NOT NULL,
    trash_name         name NOT NULL,
    size_bytes         bigint NOT NULL,
    row_count          bigint NOT NULL,
    dropped_at         timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    dropped_by         name NOT NULL,
    reason             text,
    statement          text,
    expires_at         timestamptz NOT NULL,
    restored_at        timestamptz,
    restored_by        name,
    purged_at          timestamptz,
    details            jsonb NOT NULL DEFAULT '{}'
);
COMMENT ON TABLE keel.dropped_objects IS 'what keel''s recycle bin keeps in schema keel_trash; keel.restore_dropped() puts it back';
REVOKE ALL ON keel.dropped_objects FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('keel.dropped_objects', '');
SELECT pg_catalog.pg_extension_config_dump('keel.dropped_objects_id_seq', '');

-- keel.restore_dropped(id, new_name DEFAULT NULL): put a dropped table, a
-- dropped column or truncated rows back; returns what was restored.
CREATE FUNCTION keel.restore_dropped(id bigint, new_name text DEFAULT NULL)
RETURNS text
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'keel_restore_dropped';
REVOKE ALL ON FUNCTION keel.restore_dropped(bigint, text) FROM PUBLIC;
COMMENT ON FUNCTION keel.restore_dropped(bigint, text) IS 'put a dropped table, column or truncated rows back from keel_trash; superusers and members of keel.admin_role';

-- keel.purge_dropped(older_than DEFAULT NULL): really destroy what the
-- recycle bin keeps (entries past expires_at, or older than older_than);
-- returns how many entries it purged.
CREATE FUNCTION keel.purge_dropped(older_than interval DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'keel_purge_dropped';
REVOKE ALL ON FUNCTION keel.purge_dropped(interval) FROM PUBLIC;
COMMENT ON FUNCTION keel.purge_dropped(interval) IS 'destroy recycle-bin entries past their retention (or older than older_than); superusers and members of keel.admin_role';

/* ---------------------------------------------------------------------------
 * Credits, 0.2.0: no role drains another's account (issue 13)
 * ------------------------------------------------------------------------- */

-- Reading and consuming credits is no longer open to PUBLIC: any role could
-- read, drain or block any account. Grant it to the roles that need it
-- (keel install --grant-credits ROLE does):
--   GRANT EXECUTE ON FUNCTION keel.get_available_credits(uuid, text),
--       keel.consume_credits(uuid, text, bigint, text, text),
--       keel.consume_specific_credits(uuid, text, integer, text) TO app;
-- and for an admin role (keel install --grant-credits-admin ROLE) also
--   keel.allocate_plan_credits(uuid, text, bigint) and keel.verify_credits().
REVOKE ALL ON FUNCTION keel.get_available_credits(uuid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION keel.consume_credits(uuid, text, bigint, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION keel.consume_specific_credits(uuid, text, integer, text) FROM PUBLIC;

-- Idempotency keys are scoped to their account: account B may use a key
-- account A used, and a KL003 never names another account.
ALTER TABLE keel.credit_idempotency
    DROP CONSTRAINT credit_idempotency_pkey,
    ADD CONSTRAINT credit_idempotency_pkey PRIMARY KEY (account, idempotency_key);

-- keel.consume_credits_batch(account[], credit_type[], amount[],
--   idempotency_key[] DEFAULT NULL, description DEFAULT NULL, atomic DEFAULT false)
--   RETURNS TABLE (item integer, remaining bigint, error_code text)
-- Consumes many items in one call, one result row per item (1-based).
-- Default: each item succeeds or fails alone (error_code is its SQLSTATE,
-- KL002, KL003, 22023, ..., and that item changes nothing). With atomic, the
-- first failure raises and nothing changes. Arrays of different lengths are
-- 22023; on a standby or in a read-only transaction, 25006. Needs EXECUTE on keel.consume_credits (it calls it per item, as the
-- caller). Each non-atomic item runs in its own subtransaction.
CREATE FUNCTION keel.consume_credits_batch(account uuid[], credit_type text[], amount bigint[],
                                           idempotency_key text[] DEFAULT NULL,
                                           description text DEFAULT NULL, atomic boolean DEFAULT false)
RETURNS TABLE (item integer, remaining bigint, error_code text)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
SET search_path = pg_catalog, pg_temp
AS $batch$
DECLARE
    n integer := coalesce(pg_catalog.array_length(account, 1), 0);
BEGIN
    IF pg_catalog.pg_is_in_recovery() THEN
        RAISE EXCEPTION USING ERRCODE = '25006',
            MESSAGE = 'cannot run keel.consume_credits_batch() on a standby',
            DETAIL = 'The server is in recovery (a hot standby), and a standby accepts only reads.',
            HINT = 'Connect to the primary, or add target_session_attrs=read-write to a multi-host connection string.';
    END IF;
    IF pg_catalog.current_setting('transaction_read_only') OPERATOR(pg_catalog.=) 'on' THEN
        RAISE EXCEPTION USING ERRCODE = '25006',
            MESSAGE = 'cannot run keel.consume_credits_batch() in a read-only transaction',
            DETAIL = 'transaction_read_only is on for this transaction.',
            HINT = 'Run it in a read-write transaction.';
    END IF;
    IF coalesce(pg_catalog.array_length(credit_type, 1), 0) OPERATOR(pg_catalog.<>) n
       OR coalesce(pg_catalog.array_length(amount, 1), 0) OPERATOR(pg_catalog.<>) n
       OR (idempotency_key IS NOT NULL
           AND coalesce(pg_catalog.array_length(idempotency_key, 1), 0) OPERATOR(pg_catalog.<>) n) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = 'keel.consume_credits_batch() needs arrays of the same length',
            DETAIL = pg_catalog.format('account has %s items, credit_type %s, amount %s, idempotency_key %s.',
                n, coalesce(pg_catalog.array_length(credit_type, 1), 0),
                coalesce(pg_catalog.array_length(amount, 1), 0),
                coalesce(pg_catalog.array_length(idempotency_key, 1)::text, 'none'));
    END IF;
    FOR i IN 1..n LOOP
        item := i;
        IF atomic THEN
            remaining := keel.consume_credits(account[i], credit_type[i], amount[i], description,
                                              idempotency_key[i]);
            error_code := NULL;
        ELSE
            BEGIN
                remaining := keel.consume_credits(account[i], credit_type[i], amount[i], description,
                                                  idempotency_key[i]);
                error_code := NULL;
            EXCEPTION WHEN OTHERS THEN
                remaining := NULL;
                error_code := SQLSTATE;
            END;
        END IF;
        RETURN NEXT;
    END LOOP;
END
$batch$;
REVOKE ALL ON FUNCTION keel.consume_credits_batch(uuid[], text[], bigint[], text[], text, boolean) FROM PUBLIC;
COMMENT ON FUNCTION keel.consume_credits_batch(uuid[], text[], bigint[], text[], text, boolean) IS 'consume many items in one call; per item remaining or error_code; atomic: all or nothing';
