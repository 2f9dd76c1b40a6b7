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

-- keel.migration_history: one row per applied, failed or superseded migration
-- (DESIGN.md, "Contract"). Rows are written only by the keel.migration_*()
-- functions below, which run the insert as the owner of this table, so
-- ordinary roles may read the history but never write it directly.
--   version         the file's leading digits as a whole number (0011 -> 11)
--   name            the file name, e.g. 0011_safe_billing_models.sql; NULL
--                   only for a superseded version whose file is not present
--   checksum        SHA-256 (64 lowercase hex digits) of the file with line
--                   endings normalised to LF; NULL like name
--   status          applied | failed | superseded
--   applied_by      the database role that ran the migration (current_user of
--                   the caller, captured before keel switches user)
--   started_at, finished_at, execution_time (finished_at - started_at)
--   error           the server's message for a failed attempt
--   superseded_by   the version whose keel:supersedes directive retired this one
-- At most one applied-or-superseded row per version (partial unique index);
-- failed attempts may repeat.
CREATE TABLE keel.migration_history (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    version         numeric NOT NULL
                    CONSTRAINT migration_history_version_check
                    CHECK (pg_catalog.scale(version) IS NOT NULL
                           AND pg_catalog.scale(version) OPERATOR(pg_catalog.=) 0
                           AND version OPERATOR(pg_catalog.>=) 0),
    name            text
                    CONSTRAINT migration_history_name_check
                    CHECK (name OPERATOR(pg_catalog.<>) ''),
    checksum        text
                    CONSTRAINT migration_history_checksum_check
                    CHECK (checksum OPERATOR(pg_catalog.~) '^[0-9a-f]{64}$'),
    status          text NOT NULL
                    CONSTRAINT migration_history_status_check
                    CHECK (status OPERATOR(pg_catalog.=) ANY (ARRAY['applied', 'failed', 'superseded'])),
    applied_by      name NOT NULL,
    started_at      timestamptz NOT NULL,
    finished_at     timestamptz NOT NULL,
    execution_time  interval GENERATED ALWAYS AS (finished_at OPERATOR(pg_catalog.-) started_at) STORED,
    error           text,
    superseded_by   numeric,
    CONSTRAINT migration_history_finished_check
        CHECK (finished_at OPERATOR(pg_catalog.>=) started_at),
    CONSTRAINT migration_history_file_check
        CHECK (status OPERATOR(pg_catalog.=) 'superseded' OR (name IS NOT NULL AND checksum IS NOT NULL)),
    CONSTRAINT migration_history_error_check
        CHECK ((status OPERATOR(pg_catalog.=) 'failed') OPERATOR(pg_catalog.=) (error IS NOT NULL)),
    CONSTRAINT migration_history_superseded_check
        CHECK ((status OPERATOR(pg_catalog.=) 'superseded') OPERATOR(pg_catalog.=) (superseded_by IS NOT NULL)
               AND (superseded_by IS NULL
                    OR (pg_catalog.scale(superseded_by) OPERATOR(pg_catalog.=) 0
                        AND superseded_by OPERATOR(pg_catalog.>=) 0
                        AND superseded_by OPERATOR(pg_catalog.<>) version)))
);
CREATE UNIQUE INDEX migration_history_one_done_per_version
    ON keel.migration_history (version)
    WHERE status OPERATOR(pg_catalog.=) ANY (ARRAY['applied', 'superseded']);
COMMENT ON TABLE keel.migration_history IS 'one row per applied, failed or superseded migration; written by keel.migration_*()';
REVOKE ALL ON keel.migration_history FROM PUBLIC;
GRANT SELECT ON keel.migration_history TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('keel.migration_history', '');

-- keel.migration_lock(): take keel's session-level migration lock (an
-- advisory lock on this database, keys 1801807212 ('keel') and 1, visible in
-- pg_locks); KL004 when another session holds it. Idempotent in a session.
CREATE FUNCTION keel.migration_lock()
RETURNS void
LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'keel_migration_lock';
COMMENT ON FUNCTION keel.migration_lock() IS 'take the session-level keel migration lock of this database; KL004 when another session holds it';

-- keel.migration_unlock(): release it; false when this session did not hold it.
CREATE FUNCTION keel.migration_unlock()
RETURNS boolean
LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'keel_migration_unlock';
COMMENT ON FUNCTION keel.migration_unlock() IS 'release the keel migration lock; false when this session did not hold it';

-- keel.migration_start(version, name, checksum): validate a migration about to
-- run (KL005 when the version is already applied or superseded) and return
-- clock_timestamp() to pass on as started_at. Writes nothing.
CREATE FUNCTION keel.migration_start(version numeric, name text, checksum text)
RETURNS timestamptz
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'keel_migration_start';
COMMENT ON FUNCTION keel.migration_start(numeric, text, text) IS 'validate a migration about to run; KL005 when already applied or superseded; returns started_at';

-- keel.migration_applied(version, name, checksum, started_at): record success.
-- Call it inside the migration's own transaction so the row commits with it.
CREATE FUNCTION keel.migration_applied(version numeric, name text, checksum text, started_at timestamptz)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'keel_migration_applied';
COMMENT ON FUNCTION keel.migration_applied(numeric, text, text, timestamptz) IS 'record a migration as applied (call inside its transaction); returns the history id';

-- keel.migration_failed(version, name, checksum, started_at, error): record a
-- failed attempt, after the migration's transaction was rolled back.
CREATE FUNCTION keel.migration_failed(version numeric, name text, checksum text, started_at timestamptz, error text)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'keel_migration_failed';
COMMENT ON FUNCTION keel.migration_failed(numeric, text, text, timestamptz, text) IS 'record a failed migration attempt (call after rollback); returns the history id';

-- keel.migration_superseded(version, name, checksum, superseded_by): retire a
-- version that was never applied; name and checksum may be NULL when its file
-- is not present.
CREATE FUNCTION keel.migration_superseded(version numeric, name text, checksum text, superseded_by numeric)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'keel_migration_superseded';
COMMENT ON FUNCTION keel.migration_superseded(numeric, text, text, numeric) IS 'record a never-applied version as superseded by another; returns the history id';

-- Schema keel is created by CREATE EXTENSION without USAGE for PUBLIC; every
-- capability has functions ordinary roles call, so grant it (object
-- privileges still decide what each role may do).
GRANT USAGE ON SCHEMA keel TO PUBLIC;

-- Grants. Anyone may take the lock and validate (nothing is written); the
-- functions that write history are for the roles that run migrations:
--   GRANT EXECUTE ON FUNCTION keel.migration_applied(numeric, text, text, timestamptz),
--       keel.migration_failed(numeric, text, text, timestamptz, text),
--       keel.migration_superseded(numeric, text, text, numeric) TO app_migrator;
-- They insert as the owner of keel.migration_history and record the caller
-- as applied_by.
REVOKE ALL ON FUNCTION keel.migration_applied(numeric, text, text, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION keel.migration_failed(numeric, text, text, timestamptz, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION keel.migration_superseded(numeric, text, text, numeric) FROM PUBLIC;

-- END migrations

/* ---------------------------------------------------------------------------
 * Credits
 * ------------------------------------------------------------------------- */

-- BEGIN credits
-- END credits
