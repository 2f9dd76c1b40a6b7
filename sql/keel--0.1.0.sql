/*
 * sql/keel--0.1.0.sql
 *   Install script of keel 0.1.0: the guard, migration bookkeeping and credits.
 *   Objects live in schema keel (keel.control: schema = keel, not relocatable).
 */
\echo Use "CREATE EXTENSION keel" to load this file. \quit

/* ---------------------------------------------------------------------------
 * Guard
 * ------------------------------------------------------------------------- */

-- keel.guard_audit: one row per destructive statement the guard blocked,
-- warned about or let through under the break-glass, and one per call of
-- keel.allow_destructive(). Rows of blocked statements are written by a
-- background worker in their own transaction, so they survive the ERROR.
CREATE TABLE keel.guard_audit (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at     timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    action          text NOT NULL
                    CHECK (action OPERATOR(pg_catalog.=) ANY (ARRAY['blocked', 'warned', 'overridden', 'break_glass'])),
    command_tag     text,
    objects         text[] NOT NULL DEFAULT '{}',
    reason          text,
    statement       text,
    role_name       name NOT NULL,
    session_role    name NOT NULL,
    backend_pid     integer NOT NULL,
    transaction_id  xid8
);
COMMENT ON TABLE keel.guard_audit IS 'destructive DDL blocked, warned about or allowed by keel.allow_destructive(), and every break-glass';
REVOKE ALL ON keel.guard_audit FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('keel.guard_audit', '');

-- keel.allow_destructive(reason): break-glass for the current transaction.
CREATE FUNCTION keel.allow_destructive(reason text)
RETURNS void
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'keel_allow_destructive';
COMMENT ON FUNCTION keel.allow_destructive(text) IS 'allow destructive DDL until the current transaction ends; needs a reason; superusers and members of keel.admin_role only';

CREATE FUNCTION keel.guard_ddl_command_start()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'keel_guard_ddl_command_start';

CREATE FUNCTION keel.guard_sql_drop()
RETURNS event_trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'keel_guard_sql_drop';

-- The event triggers themselves. ddl_command_start refuses before any work is
-- done; sql_drop is the backstop for whatever a command cascaded to.
CREATE EVENT TRIGGER keel_guard_ddl_command_start ON ddl_command_start
    WHEN TAG IN ('DROP TABLE', 'ALTER TABLE', 'DROP TYPE', 'DROP DOMAIN', 'DROP SCHEMA',
                 'DROP MATERIALIZED VIEW', 'DROP SEQUENCE', 'ALTER TYPE')
    EXECUTE FUNCTION keel.guard_ddl_command_start();

CREATE EVENT TRIGGER keel_guard_sql_drop ON sql_drop
    EXECUTE FUNCTION keel.guard_sql_drop();

/* ---------------------------------------------------------------------------
 * Migrations
 * ------------------------------------------------------------------------- */

-- BEGIN migrations
-- END migrations

/* ---------------------------------------------------------------------------
 * Credits
 * ------------------------------------------------------------------------- */

-- BEGIN credits
-- END credits
