/*
 * sql/keel--0.1.0.sql
 *   Install script of keel 0.2.0: the guard, migration bookkeeping and credits.
 *   keel--0.1.0--0.2.0.sql takes a 0.1.0 install to the same catalog state
 *   (regress/sql/upgrade.sql checks it).
 *   Objects live in schema keel (keel.control: schema = keel, not relocatable).
 */
\echo Use "CREATE EXTENSION keel" to load this file. \quit

-- Refuse to install into a schema keel did not create for this role: a schema
-- named keel that another role created beforehand (a "schema squat") would let
-- that role rename it and plant objects that keel's SECURITY DEFINER functions
-- then use as their owner (issue 5).
DO $$
BEGIN
    IF (SELECT n.nspowner FROM pg_catalog.pg_namespace n
         WHERE n.nspname OPERATOR(pg_catalog.=) 'keel')
       OPERATOR(pg_catalog.<>) (SELECT r.oid FROM pg_catalog.pg_roles r
                                 WHERE r.rolname OPERATOR(pg_catalog.=) CURRENT_USER) THEN
        RAISE EXCEPTION USING
            ERRCODE = '42501',
            MESSAGE = 'schema "keel" is not owned by the role installing extension keel',
            DETAIL = pg_catalog.format('Schema "keel" is owned by role %s; keel''s functions would run as their owner on objects that role controls.',
                     (SELECT n.nspowner::pg_catalog.regrole FROM pg_catalog.pg_namespace n WHERE n.nspname OPERATOR(pg_catalog.=) 'keel')),
            HINT = 'Rename or drop that schema, then run CREATE EXTENSION keel again so that it creates its own schema.';
    END IF;
END
$$;


-- Schema keel is created by CREATE EXTENSION without USAGE for PUBLIC; every
-- capability has functions ordinary roles call, so grant it (object
-- privileges still decide what each role may do).
GRANT USAGE ON SCHEMA keel TO PUBLIC;

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
    action          text NOT NULL,
    command_tag     text,
    objects         text[] NOT NULL DEFAULT '{}',
    reason          text,
    statement       text,
    role_name       name NOT NULL,
    session_role    name NOT NULL,
    backend_pid     integer NOT NULL,
    transaction_id  xid8,
    rule            text,
    database_name   name,
    application_name text,
    client_addr     inet,
    wal_lsn         pg_lsn,
    spool_id        text,
    CONSTRAINT guard_audit_action_check
        CHECK (action OPERATOR(pg_catalog.=) ANY (ARRAY['blocked', 'warned', 'overridden', 'break_glass',
                                                       'unguarded', 'guard_lowered', 'restored', 'purged'])),
    CONSTRAINT guard_audit_spool_id_key UNIQUE (spool_id)
);
COMMENT ON TABLE keel.guard_audit IS 'destructive DDL blocked, warned about or allowed by keel.allow_destructive(), and every break-glass';
REVOKE ALL ON keel.guard_audit FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('keel.guard_audit', '');
-- ... and its id sequence, so a restored database continues after the last id.
SELECT pg_catalog.pg_extension_config_dump('keel.guard_audit_id_seq', '');

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
-- ... and its id sequence, so a restored database continues after the last id.
SELECT pg_catalog.pg_extension_config_dump(
    pg_catalog.pg_get_serial_sequence('keel.migration_history', 'id')::pg_catalog.regclass, '');

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

-- Credits (seed 003, "Multi-Credit Migration"): per-type credits allocated by
-- plan, an append-only ledger of every change, and balances that reconcile
-- with it. The functions are C (extension/credits/credits.cpp); consumption is
-- one conditional UPDATE, so no interleaving of sessions can overdraw.
-- Amounts are whole credits (bigint). SQLSTATEs: KL002 not enough credits,
-- KL003 idempotency key reused with other arguments, 22023 invalid argument
-- (unknown type or plan, amount <= 0, negative total), 22004 NULL argument,
-- 22003 allocation beyond bigint, 23514 allocation below credits used, 42501
-- change to the ledger.
--
-- Grants: any role may call keel.get_available_credits(),
-- keel.consume_credits() and keel.consume_specific_credits() (EXECUTE stays
-- with PUBLIC, as for the seed's SECURITY DEFINER functions);
-- keel.allocate_plan_credits() and keel.verify_credits() are revoked from
-- PUBLIC: grant them to the role that provisions accounts, e.g.
--   GRANT EXECUTE ON FUNCTION keel.allocate_plan_credits(uuid, text, bigint),
--       keel.verify_credits() TO billing_admin;
-- The tables are readable and writable only through these functions (REVOKE
-- ALL FROM PUBLIC); operators edit keel.credit_types and keel.credit_plans as
-- their owner.

-- keel.credit_types: the known credit types (seed 003: ai, whatsapp, email,
-- sms). Rows with builtin = true come with the extension and are not dumped.
-- Identifiers (types, plans, keys) use COLLATE "C": byte-wise comparison,
-- the same in every database locale and cheaper in the indexes.
CREATE TABLE keel.credit_types (
    credit_type text COLLATE "C" PRIMARY KEY
                CONSTRAINT credit_types_name_check
                CHECK (credit_type OPERATOR(pg_catalog.~) '^[a-z][a-z0-9_]*$'),
    description text,
    builtin     boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE keel.credit_types IS 'known credit types; consuming any other type raises 22023';
INSERT INTO keel.credit_types (credit_type, description, builtin) VALUES
    ('ai', 'AI requests', true),
    ('whatsapp', 'WhatsApp messages', true),
    ('email', 'emails', true),
    ('sms', 'SMS messages', true);
REVOKE ALL ON keel.credit_types FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('keel.credit_types', 'WHERE NOT builtin');

-- keel.credit_plans: allocation rules, one row per plan and credit type.
-- Either fixed_amount (credits, whatever the total) or share with
-- floor_amount: GREATEST(total_credits * share, floor_amount) rounded half
-- away from zero, exactly as the seed's
-- GREATEST(COALESCE(total_credits, 0) * 0.4, 500)::INTEGER. Plan '*' holds
-- the rules of every plan without rows of its own (the seed's ELSE branch).
-- Add a plan by inserting its rows; builtin rows are not dumped.
CREATE TABLE keel.credit_plans (
    plan          text COLLATE "C" NOT NULL
                  CONSTRAINT credit_plans_plan_check CHECK (plan OPERATOR(pg_catalog.<>) ''),
    credit_type   text COLLATE "C" NOT NULL REFERENCES keel.credit_types (credit_type),
    fixed_amount  bigint
                  CONSTRAINT credit_plans_fixed_amount_check CHECK (fixed_amount OPERATOR(pg_catalog.>=) 0),
    share         numeric
                  CONSTRAINT credit_plans_share_check
                  CHECK (share OPERATOR(pg_catalog.>=) 0
                         AND share OPERATOR(pg_catalog.<=) 1000000
                         AND pg_catalog.scale(share) OPERATOR(pg_catalog.<=) 18),
    floor_amount  bigint NOT NULL DEFAULT 0
                  CONSTRAINT credit_plans_floor_amount_check CHECK (floor_amount OPERATOR(pg_catalog.>=) 0),
    builtin       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (plan, credit_type),
    CONSTRAINT credit_plans_rule_check
        CHECK ((fixed_amount IS NULL) OPERATOR(pg_catalog.<>) (share IS NULL))
);
COMMENT ON TABLE keel.credit_plans IS 'credits per plan and type: a fixed amount, or a share of total_credits with a floor; plan * is the fallback';
INSERT INTO keel.credit_plans (plan, credit_type, fixed_amount, share, floor_amount, builtin) VALUES
    ('enterprise', 'ai', 1500, NULL, 0, true),
    ('enterprise', 'whatsapp', 1200, NULL, 0, true),
    ('enterprise', 'email', 20000, NULL, 0, true),
    ('enterprise', 'sms', 500, NULL, 0, true),
    ('premium', 'ai', 1500, NULL, 0, true),
    ('premium', 'whatsapp', 1200, NULL, 0, true),
    ('premium', 'email', 20000, NULL, 0, true),
    ('premium', 'sms', 500, NULL, 0, true),
    ('*', 'ai', NULL, 0.4, 500, true),
    ('*', 'whatsapp', NULL, 0.3, 300, true),
    ('*', 'email', NULL, 0.3, 1000, true),
    ('*', 'sms', NULL, 0.1, 100, true);
REVOKE ALL ON keel.credit_plans FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('keel.credit_plans', 'WHERE NOT builtin');

-- keel.credit_balances: one row per account and credit type; allocated and
-- used in credits, available = allocated - used. Written only by the credit
-- functions; every change has its row in keel.credit_ledger.
CREATE TABLE keel.credit_balances (
    account      uuid NOT NULL,
    credit_type  text COLLATE "C" NOT NULL REFERENCES keel.credit_types (credit_type),
    allocated    bigint NOT NULL DEFAULT 0,
    used         bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (account, credit_type),
    CONSTRAINT credit_balances_used_check
        CHECK (used OPERATOR(pg_catalog.>=) 0 AND used OPERATOR(pg_catalog.<=) allocated)
);
COMMENT ON TABLE keel.credit_balances IS 'allocated and used credits per account and type; reconciles with keel.credit_ledger';
REVOKE ALL ON keel.credit_balances FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('keel.credit_balances', '');

-- keel.credit_ledger: append-only, one row per change of a balance.
--   kind 'allocation': amount = change of allocated (may be 0 or negative),
--                      with plan and total_credits
--   kind 'consumption': amount = credits consumed (> 0)
--   allocated_after, used_after: the balance right after this row
--   actor: the role that called the credit function
-- So for each account and type: allocated = sum(amount) of allocations and
-- used = sum(amount) of consumptions (keel.verify_credits() checks it).
CREATE TABLE keel.credit_ledger (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account          uuid NOT NULL,
    credit_type      text COLLATE "C" NOT NULL,
    kind             text NOT NULL
                     CONSTRAINT credit_ledger_kind_check
                     CHECK (kind OPERATOR(pg_catalog.=) ANY (ARRAY['allocation', 'consumption'])),
    amount           bigint NOT NULL,
    allocated_after  bigint NOT NULL,
    used_after       bigint NOT NULL,
    plan             text,
    total_credits    bigint,
    description      text,
    idempotency_key  text,
    actor            name NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT credit_ledger_consumption_check
        CHECK (kind OPERATOR(pg_catalog.<>) 'consumption' OR amount OPERATOR(pg_catalog.>) 0)
);
COMMENT ON TABLE keel.credit_ledger IS 'append-only ledger of every allocation and consumption of credits';
REVOKE ALL ON keel.credit_ledger FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('keel.credit_ledger', '');
SELECT pg_catalog.pg_extension_config_dump('keel.credit_ledger_id_seq', '');

-- keel.credit_ledger_append_only(): trigger refusing UPDATE, DELETE and
-- TRUNCATE of the ledger with 42501, whoever runs them (privileges alone do
-- not stop the owner or a superuser).
CREATE FUNCTION keel.credit_ledger_append_only()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'keel_credit_ledger_append_only';
REVOKE ALL ON FUNCTION keel.credit_ledger_append_only() FROM PUBLIC;
CREATE TRIGGER credit_ledger_append_only
    BEFORE UPDATE OR DELETE ON keel.credit_ledger
    FOR EACH ROW EXECUTE FUNCTION keel.credit_ledger_append_only();
CREATE TRIGGER credit_ledger_no_truncate
    BEFORE TRUNCATE ON keel.credit_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION keel.credit_ledger_append_only();

-- keel.credit_idempotency: one row per idempotency key of a committed
-- consumption: its arguments and the credits that remained (the result a
-- repeated call returns). Keys are scoped to their account (0.2.0), at most 255 bytes.
CREATE TABLE keel.credit_idempotency (
    idempotency_key  text COLLATE "C" NOT NULL,
    account          uuid NOT NULL,
    credit_type      text COLLATE "C" NOT NULL,
    amount           bigint NOT NULL,
    description      text,
    remaining        bigint,
    ledger_id        bigint,
    created_at       timestamptz NOT NULL DEFAULT pg_catalog.now(),
    -- scoped to the account (0.2.0): another account's key never collides
    CONSTRAINT credit_idempotency_pkey PRIMARY KEY (account, idempotency_key)
);
COMMENT ON TABLE keel.credit_idempotency IS 'idempotency keys of consumptions, with their arguments and result';
REVOKE ALL ON keel.credit_idempotency FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('keel.credit_idempotency', '');

-- keel.allocate_plan_credits(account, plan, total_credits DEFAULT 0):
-- set the account's allocation of each credit type to what the plan gives
-- (keel.credit_plans; seed 003 step 2.2 allocate_plan_credits, which took the
-- total from organizations.total_credits). What was used is kept; one ledger
-- row per type. Returns the resulting balance of each type, in credits.
-- NULL total counts as 0. Errors: 22004 NULL account or plan; 22023 empty
-- plan, negative total, plan without rules; 22003 beyond bigint; 23514 new
-- allocation below credits already used.
CREATE FUNCTION keel.allocate_plan_credits(account uuid, plan text, total_credits bigint DEFAULT 0)
RETURNS TABLE (credit_type text, allocated bigint, used bigint, available bigint)
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'keel_allocate_plan_credits';
COMMENT ON FUNCTION keel.allocate_plan_credits(uuid, text, bigint) IS 'allocate credits of every type by plan (keel.credit_plans); returns the balances; not executable by PUBLIC';
REVOKE ALL ON FUNCTION keel.allocate_plan_credits(uuid, text, bigint) FROM PUBLIC;

-- keel.get_available_credits(account, credit_type): credits still available
-- (allocated - used); 0 when nothing is allocated (as the seed). Errors:
-- 22004 NULL argument; 22023 unknown credit type (HINT lists known types).
CREATE FUNCTION keel.get_available_credits(account uuid, credit_type text)
RETURNS bigint
LANGUAGE c STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'keel_get_available_credits';
COMMENT ON FUNCTION keel.get_available_credits(uuid, text) IS 'credits of a type an account may still consume (allocated - used); 0 when none allocated';

-- keel.consume_credits(account, credit_type, amount, description,
-- idempotency_key): consume amount (> 0) credits atomically and return what
-- remains available. One ledger row (description defaults to the seed's
-- 'Consumed <n> <type> credits'). A key already used with the same
-- arguments (account, type, amount, description) returns the first result
-- and consumes nothing; only committed consumptions record their key.
-- Errors: 22004 NULL account, type or amount; 22023 unknown type, amount
-- <= 0, empty or overlong key; KL002 not enough credits (nothing changes);
-- KL003 key reused with other arguments.
CREATE FUNCTION keel.consume_credits(account uuid, credit_type text, amount bigint,
                                     description text DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'keel_consume_credits';
COMMENT ON FUNCTION keel.consume_credits(uuid, text, bigint, text, text) IS 'consume credits atomically (KL002 if not enough, KL003 on a reused idempotency key); returns credits remaining';

-- keel.consume_specific_credits(uuid, text, integer, text DEFAULT NULL): the
-- seed's signature and result (true once consumed), for drop-in use; raises
-- KL002 where the seed raised 'Insufficient ... credits', and never
-- overdraws. Same errors as keel.consume_credits.
CREATE FUNCTION keel.consume_specific_credits(p_organization_id uuid, p_credit_type text,
                                              p_credits integer, p_description text DEFAULT NULL)
RETURNS boolean
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'keel_consume_specific_credits';
COMMENT ON FUNCTION keel.consume_specific_credits(uuid, text, integer, text) IS 'seed 003 drop-in: consume credits atomically, true when done; KL002 if not enough';

-- keel.verify_credits(): one row per inconsistency, none when sound.
-- problem is one of: allocated_mismatch, used_mismatch (balance vs. the sum
-- of its ledger rows), used_exceeds_allocated, negative_balance,
-- ledger_without_balance, running_total_mismatch (a ledger row's
-- allocated_after/used_after vs. the running sums up to it),
-- unknown_credit_type, idempotency_without_ledger.
CREATE FUNCTION keel.verify_credits()
RETURNS TABLE (account uuid, credit_type text, problem text, detail text)
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
WITH sums AS (
    SELECT l.account, l.credit_type,
           COALESCE(sum(l.amount) FILTER (WHERE l.kind OPERATOR(pg_catalog.=) 'allocation'), 0) AS allocated,
           COALESCE(sum(l.amount) FILTER (WHERE l.kind OPERATOR(pg_catalog.=) 'consumption'), 0) AS used
      FROM keel.credit_ledger l
     GROUP BY l.account, l.credit_type
),
running AS (
    SELECT l.id, l.account, l.credit_type, l.allocated_after, l.used_after,
           sum(l.amount) FILTER (WHERE l.kind OPERATOR(pg_catalog.=) 'allocation')
               OVER w AS allocated_sum,
           sum(l.amount) FILTER (WHERE l.kind OPERATOR(pg_catalog.=) 'consumption')
               OVER w AS used_sum
      FROM keel.credit_ledger l
    WINDOW w AS (PARTITION BY l.account, l.credit_type ORDER BY l.id)
)
SELECT b.account, b.credit_type, 'allocated_mismatch',
       format('The balance has %s credits allocated; its ledger allocations sum to %s.',
              b.allocated, COALESCE(s.allocated, 0))
  FROM keel.credit_balances b
  LEFT JOIN sums s ON s.account OPERATOR(pg_catalog.=) b.account
                  AND s.credit_type OPERATOR(pg_catalog.=) b.credit_type
 WHERE b.allocated IS DISTINCT FROM COALESCE(s.allocated, 0)
UNION ALL
SELECT b.account, b.credit_type, 'used_mismatch',
       format('The balance has %s credits used; its ledger consumptions sum to %s.',
              b.used, COALESCE(s.used, 0))
  FROM keel.credit_balances b
  LEFT JOIN sums s ON s.account OPERATOR(pg_catalog.=) b.account
                  AND s.credit_type OPERATOR(pg_catalog.=) b.credit_type
 WHERE b.used IS DISTINCT FROM COALESCE(s.used, 0)
UNION ALL
SELECT b.account, b.credit_type, 'used_exceeds_allocated',
       format('%s credits are used but only %s are allocated.', b.used, b.allocated)
  FROM keel.credit_balances b
 WHERE b.used OPERATOR(pg_catalog.>) b.allocated
UNION ALL
SELECT b.account, b.credit_type, 'negative_balance',
       format('The balance has %s allocated and %s used; neither may be negative.', b.allocated, b.used)
  FROM keel.credit_balances b
 WHERE b.allocated OPERATOR(pg_catalog.<) 0 OR b.used OPERATOR(pg_catalog.<) 0
UNION ALL
SELECT s.account, s.credit_type, 'ledger_without_balance',
       format('The ledger has entries (%s allocated, %s used) but there is no balance row.', s.allocated, s.used)
  FROM sums s
 WHERE NOT EXISTS (SELECT FROM keel.credit_balances b
                    WHERE b.account OPERATOR(pg_catalog.=) s.account
                      AND b.credit_type OPERATOR(pg_catalog.=) s.credit_type)
UNION ALL
SELECT r.account, r.credit_type, 'running_total_mismatch',
       format('Ledger entry %s records %s allocated and %s used; the entries up to it sum to %s and %s.',
              r.id, r.allocated_after, r.used_after,
              COALESCE(r.allocated_sum, 0), COALESCE(r.used_sum, 0))
  FROM running r
 WHERE r.allocated_after IS DISTINCT FROM COALESCE(r.allocated_sum, 0)
    OR r.used_after IS DISTINCT FROM COALESCE(r.used_sum, 0)
UNION ALL
SELECT s.account, s.credit_type, 'unknown_credit_type',
       format('Credit type %L has ledger entries but is not in keel.credit_types.', s.credit_type)
  FROM sums s
 WHERE NOT EXISTS (SELECT FROM keel.credit_types t
                    WHERE t.credit_type OPERATOR(pg_catalog.=) s.credit_type)
UNION ALL
SELECT i.account, i.credit_type, 'idempotency_without_ledger',
       format('Idempotency key %L has no matching consumption in the ledger.', i.idempotency_key)
  FROM keel.credit_idempotency i
 WHERE NOT EXISTS (SELECT FROM keel.credit_ledger l
                    WHERE l.id OPERATOR(pg_catalog.=) i.ledger_id
                      AND l.kind OPERATOR(pg_catalog.=) 'consumption'
                      AND l.account OPERATOR(pg_catalog.=) i.account
                      AND l.credit_type OPERATOR(pg_catalog.=) i.credit_type
                      AND l.amount OPERATOR(pg_catalog.=) i.amount
                      AND l.idempotency_key OPERATOR(pg_catalog.=) i.idempotency_key)
$$;
COMMENT ON FUNCTION keel.verify_credits() IS 'one row per inconsistency between credit balances and the ledger; none when sound; not executable by PUBLIC';
REVOKE ALL ON FUNCTION keel.verify_credits() FROM PUBLIC;

-- END credits

/* ---------------------------------------------------------------------------
 * Guard, 0.2.0: append-only audit, spool flush, table_rewrite, ENABLE ALWAYS
 * ------------------------------------------------------------------------- */

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

-- keel.consume_credits_batch(account[], credit_type[], amount[],
--   idempotency_key[] DEFAULT NULL, description DEFAULT NULL, atomic DEFAULT false)
--   RETURNS TABLE (item integer, remaining bigint, error_code text)
-- Consumes many items in one call, one result row per item (1-based), with
-- a fixed number of statements whatever the count (extension/credits/
-- batch.cpp). Default: each item succeeds or fails alone (error_code 22004,
-- 22023, KL002, KL003; that item changes nothing), in item order, as a loop
-- of keel.consume_credits() would. With atomic, the first failure raises and
-- nothing changes. Arrays of different lengths are 22023; a description
-- over 1,024 bytes 22001; on a standby or in a read-only transaction, 25006.
CREATE FUNCTION keel.consume_credits_batch(account uuid[], credit_type text[], amount bigint[],
                                           idempotency_key text[] DEFAULT NULL,
                                           description text DEFAULT NULL, atomic boolean DEFAULT false)
RETURNS TABLE (item integer, remaining bigint, error_code text)
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'keel_consume_credits_batch';
REVOKE ALL ON FUNCTION keel.consume_credits_batch(uuid[], text[], bigint[], text[], text, boolean) FROM PUBLIC;
COMMENT ON FUNCTION keel.consume_credits_batch(uuid[], text[], bigint[], text[], text, boolean) IS 'consume many items in one call; per item remaining or error_code; atomic: all or nothing';

/* ---------------------------------------------------------------------------
 * Credits, 0.2.0: grants, holds, refunds (the same text ends
 * keel--0.2.0.sql and keel--0.1.0--0.2.0.sql, so both reach one catalog)
 * ------------------------------------------------------------------------- */

-- What changes for existing callers (0.1.0 -> 0.2.0):
--   * keel.consume_credits() and keel.get_available_credits() now count
--     held credits: available = allocated - used - held. With no holds
--     (every 0.1.0 account) nothing changes.
--   * keel.allocate_plan_credits() sets the plan's part of the allocation
--     and keeps granted credits: allocated = plan_allocated + live grants.
--     An 0.1.0 allocation becomes plan_allocated as it is.
--   * Ledger rows gain held_after (0 for 0.1.0 rows), grant_id, hold_id and
--     refund_of; new kinds are grant, expiry, refund, hold and release.
--   * An idempotency key now also covers grants, holds and refunds: a key
--     an account used for one operation raises KL003 when reused for
--     another. 0.1.0 keys are consumptions.
--   * New functions are not granted to PUBLIC: see keel install
--     --grant-credits / --grant-credits-admin and docs/credits.md.
--   * A hot account is striped over escrow slots (keel.credit_escrow):
--     keel.credit_balances.used then also counts credits lent to its
--     slots (the new column lent); read balances with
--     keel.get_available_credits(). Ledger rows gain escrow_slot and the
--     kind escrow. See docs/credits.md, "One hot account".

-- Balances: plan_allocated (the plan's part of allocated), held (reserved
-- by open holds) and granted (unburned credits of grants), all in credits.
ALTER TABLE keel.credit_balances
    ADD COLUMN plan_allocated bigint NOT NULL DEFAULT 0,
    ADD COLUMN held bigint NOT NULL DEFAULT 0,
    ADD COLUMN granted bigint NOT NULL DEFAULT 0;
UPDATE keel.credit_balances SET plan_allocated = allocated;
ALTER TABLE keel.credit_balances
    ADD CONSTRAINT credit_balances_parts_check
        CHECK (plan_allocated OPERATOR(pg_catalog.>=) 0
               AND held OPERATOR(pg_catalog.>=) 0
               AND granted OPERATOR(pg_catalog.>=) 0
               AND used OPERATOR(pg_catalog.+) held OPERATOR(pg_catalog.<=) allocated);
-- (used + granted <= allocated holds too, but a consumption writes used and
-- granted in two steps, so keel.verify_credits() checks it: over_allocated.)
COMMENT ON TABLE keel.credit_balances IS 'per account and type: allocated (plan_allocated + live grants), used, held by open holds, granted (unburned grant credits); available = allocated - used - held';

-- Ledger kinds, all amounts in credits:
--   allocation  change of allocated by a plan (any sign)
--   grant       credits granted (> 0), adds to allocated
--   expiry      minus what a grant lapsed unused (< 0), from allocated
--   consumption credits consumed (> 0), adds to used
--   refund      credits refunded (> 0), from used; refund_of = the consumption
--   hold        credits reserved (> 0), adds to held
--   release     reserved credits let go (> 0), from held (a settle writes a
--               release of the whole hold and a consumption of what it kept)
-- One CHECK, a C function, replaces 0.1.0's kind and consumption CHECKs:
-- PostgreSQL re-reads every CHECK expression from its node string on each
-- INSERT statement, and the SQL form of these rules cost a quarter of a
-- consumption (bench/credits/README.md).
CREATE FUNCTION keel.credit_ledger_row_ok(kind text, amount bigint, refund_of bigint)
RETURNS boolean
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'keel_credit_ledger_row_ok';
COMMENT ON FUNCTION keel.credit_ledger_row_ok(text, bigint, bigint) IS 'the CHECK of keel.credit_ledger: a known kind, the sign of amount for it, refund_of exactly for refunds';
ALTER TABLE keel.credit_ledger
    ADD COLUMN held_after bigint NOT NULL DEFAULT 0,
    ADD COLUMN grant_id bigint,
    ADD COLUMN hold_id uuid,
    ADD COLUMN refund_of bigint,
    DROP CONSTRAINT credit_ledger_kind_check,
    DROP CONSTRAINT credit_ledger_consumption_check,
    ADD CONSTRAINT credit_ledger_row_check CHECK (keel.credit_ledger_row_ok(kind, amount, refund_of));
CREATE INDEX credit_ledger_refund_of_idx ON keel.credit_ledger (refund_of) WHERE refund_of IS NOT NULL;
-- Every key starts with account, so the ledger can be distributed by account
-- (docs/scale-out.md): the primary key becomes (account, id), which also
-- serves per-account history in id order; a plain index on id serves
-- keel.refund_credits(ledger_id).
ALTER TABLE keel.credit_ledger
    DROP CONSTRAINT credit_ledger_pkey,
    ADD CONSTRAINT credit_ledger_pkey PRIMARY KEY (account, id);
CREATE INDEX credit_ledger_id_idx ON keel.credit_ledger (id);
COMMENT ON TABLE keel.credit_ledger IS 'append-only ledger of every allocation, grant, expiry, consumption, refund, hold and release of credits';

-- Idempotency across functions: operation (consume, grant, hold, refund),
-- request (the other arguments, canonical text) and result (a hold's id).
ALTER TABLE keel.credit_idempotency
    ADD COLUMN operation text COLLATE "C" NOT NULL DEFAULT 'consume',
    ADD COLUMN request text,
    ADD COLUMN result text;

-- keel.credit_grants: one row per grant. remaining is what consumption has
-- not burned yet and expiry has not lapsed; lapsed is what expired unused.
-- Consumption burns grants by priority (0 first), then soonest expiry (none
-- last), then oldest; the plan allocation burns after every grant.
CREATE TABLE keel.credit_grants (
    account      uuid NOT NULL,
    id           bigint GENERATED ALWAYS AS IDENTITY,
    credit_type  text COLLATE "C" NOT NULL REFERENCES keel.credit_types (credit_type),
    amount       bigint NOT NULL CONSTRAINT credit_grants_amount_check CHECK (amount OPERATOR(pg_catalog.>) 0),
    remaining    bigint NOT NULL,
    lapsed       bigint NOT NULL DEFAULT 0,
    priority     integer NOT NULL DEFAULT 0,
    expires_at   timestamptz,
    granted_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    description  text,
    ledger_id    bigint NOT NULL,
    PRIMARY KEY (account, id),
    CONSTRAINT credit_grants_remaining_check
        CHECK (remaining OPERATOR(pg_catalog.>=) 0 AND lapsed OPERATOR(pg_catalog.>=) 0
               AND remaining OPERATOR(pg_catalog.+) lapsed OPERATOR(pg_catalog.<=) amount)
);
CREATE INDEX credit_grants_burn_idx ON keel.credit_grants
    (account, credit_type, priority, expires_at, id) WHERE remaining OPERATOR(pg_catalog.>) 0;
CREATE INDEX credit_grants_expiry_idx ON keel.credit_grants (expires_at)
    WHERE remaining OPERATOR(pg_catalog.>) 0 AND expires_at IS NOT NULL;
COMMENT ON TABLE keel.credit_grants IS 'credit grants: amount, what remains unburned, what lapsed; burned by priority, soonest expiry, oldest';
REVOKE ALL ON keel.credit_grants FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('keel.credit_grants', '');
SELECT pg_catalog.pg_extension_config_dump('keel.credit_grants_id_seq', '');

-- keel.credit_holds: one row per hold; state open until settled, released
-- or expired.
CREATE TABLE keel.credit_holds (
    account      uuid NOT NULL,
    hold         uuid NOT NULL DEFAULT pg_catalog.gen_random_uuid(),
    credit_type  text COLLATE "C" NOT NULL REFERENCES keel.credit_types (credit_type),
    amount       bigint NOT NULL CONSTRAINT credit_holds_amount_check CHECK (amount OPERATOR(pg_catalog.>) 0),
    expires_at   timestamptz NOT NULL,
    state        text NOT NULL DEFAULT 'open'
                 CONSTRAINT credit_holds_state_check
                 CHECK (state OPERATOR(pg_catalog.=) ANY (ARRAY['open', 'settled', 'released', 'expired'])),
    settled      bigint,
    created_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    closed_at    timestamptz,
    PRIMARY KEY (account, hold),
    CONSTRAINT credit_holds_settled_check
        CHECK ((state OPERATOR(pg_catalog.=) 'settled') OPERATOR(pg_catalog.=) (settled IS NOT NULL)
               AND (settled IS NULL OR (settled OPERATOR(pg_catalog.>=) 0 AND settled OPERATOR(pg_catalog.<=) amount)))
);
-- not UNIQUE: a distributed table's unique keys must hold account; the
-- primary key (account, hold) and gen_random_uuid() keep holds apart
CREATE INDEX credit_holds_hold_idx ON keel.credit_holds (hold);
CREATE INDEX credit_holds_open_idx ON keel.credit_holds (expires_at) WHERE state OPERATOR(pg_catalog.=) 'open';
COMMENT ON TABLE keel.credit_holds IS 'credit holds: reserved until settled, released or expired';
REVOKE ALL ON keel.credit_holds FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('keel.credit_holds', '');

-- keel.require_writable(function text): 25006 on a standby or in a
-- read-only transaction, naming function (extension/pg/writable.hpp). The
-- first step of every mutating PL/pgSQL function of keel.
CREATE FUNCTION keel.require_writable(function text)
RETURNS void
LANGUAGE c VOLATILE PARALLEL SAFE STRICT
AS 'MODULE_PATHNAME', 'keel_require_writable';
COMMENT ON FUNCTION keel.require_writable(text) IS 'raise 25006 naming the function on a standby or in a read-only transaction';

-- keel.credit_actor() -> name: the role that called keel's SECURITY DEFINER
-- credit function (GetOuterUserId(), as the C functions record it), for the
-- ledger's actor column.
CREATE FUNCTION keel.credit_actor()
RETURNS name
LANGUAGE c STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'keel_credit_actor';
REVOKE ALL ON FUNCTION keel.credit_actor() FROM PUBLIC;

-- keel.credit_check_args(credit_type, amount, description, key): the
-- argument checks every credit function shares. 22004 NULL type or amount;
-- 22023 unknown type (HINT lists the known ones), amount <= 0, empty or
-- overlong key (255 bytes); 22001 description over 1,024 bytes.
CREATE FUNCTION keel.credit_check_args(credit_type text, amount bigint, description text, idempotency_key text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $check$
BEGIN
    IF credit_type IS NULL OR amount IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004',
            MESSAGE = pg_catalog.format('%s must not be null', CASE WHEN credit_type IS NULL THEN 'credit_type' ELSE 'amount' END),
            HINT = 'Pass a value for every required argument.';
    END IF;
    IF NOT EXISTS (SELECT FROM keel.credit_types t WHERE t.credit_type OPERATOR(pg_catalog.=) credit_check_args.credit_type) THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('unknown credit type "%s"', credit_type),
            HINT = pg_catalog.format('Known credit types are: %s.',
                (SELECT pg_catalog.string_agg(t.credit_type, ', ' ORDER BY t.credit_type) FROM keel.credit_types t));
    END IF;
    IF amount OPERATOR(pg_catalog.<=) 0 THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'credit amount must be positive',
            DETAIL = pg_catalog.format('The amount was %s.', amount), HINT = 'Pass at least 1 credit.';
    END IF;
    IF pg_catalog.octet_length(description) OPERATOR(pg_catalog.>) 1024 THEN
        RAISE EXCEPTION USING ERRCODE = '22001', MESSAGE = 'description is too long',
            DETAIL = pg_catalog.format('The description has %s bytes; at most 1024 are kept in the append-only ledger.',
                                       pg_catalog.octet_length(description)),
            HINT = 'Keep the details elsewhere and put their reference in the description.';
    END IF;
    IF idempotency_key IS NOT NULL AND idempotency_key OPERATOR(pg_catalog.=) '' THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'idempotency key must not be empty',
            HINT = 'Pass NULL for no key, or a unique string such as a request id.';
    END IF;
    IF pg_catalog.octet_length(idempotency_key) OPERATOR(pg_catalog.>) 255 THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'idempotency key is too long',
            DETAIL = pg_catalog.format('The key has %s bytes; at most 255 are allowed.', pg_catalog.octet_length(idempotency_key));
    END IF;
END
$check$;
REVOKE ALL ON FUNCTION keel.credit_check_args(text, bigint, text, text) FROM PUBLIC;

-- keel.credit_claim_key(account, key, operation, credit_type, amount,
-- description, request) -> text: NULL when the key is new (it is now
-- claimed by this transaction; a concurrent caller with the same key waits
-- on the primary key until it ends), else the first call's result. KL003
-- when the key was used for another operation or other arguments.
CREATE FUNCTION keel.credit_claim_key(account uuid, idempotency_key text, operation text,
                                      credit_type text, amount bigint, description text, request text)
RETURNS text
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $claim$
DECLARE
    k keel.credit_idempotency;
BEGIN
    INSERT INTO keel.credit_idempotency AS i (idempotency_key, account, credit_type, amount, description, operation, request)
    VALUES (idempotency_key, account, credit_type, amount, description, operation, request)
    ON CONFLICT ON CONSTRAINT credit_idempotency_pkey DO NOTHING;
    IF FOUND THEN
        RETURN NULL;
    END IF;
    SELECT * INTO k FROM keel.credit_idempotency i
     WHERE i.account OPERATOR(pg_catalog.=) credit_claim_key.account
       AND i.idempotency_key OPERATOR(pg_catalog.=) credit_claim_key.idempotency_key;
    IF k.operation OPERATOR(pg_catalog.<>) operation OR k.credit_type OPERATOR(pg_catalog.<>) credit_type
       OR k.amount OPERATOR(pg_catalog.<>) amount OR k.description IS DISTINCT FROM description
       OR k.request IS DISTINCT FROM request THEN
        RAISE EXCEPTION USING ERRCODE = 'KL003',
            MESSAGE = pg_catalog.format('idempotency key "%s" was already used with other arguments', idempotency_key),
            DETAIL = pg_catalog.format('This account first used the key to %s %s %s credits.',
                                       k.operation, k.amount, k.credit_type),
            HINT = 'Use a new idempotency key for a different call; keys are scoped to their account and cover every credit function.';
    END IF;
    RETURN coalesce(k.result, k.remaining::text);
END
$claim$;
REVOKE ALL ON FUNCTION keel.credit_claim_key(uuid, text, text, text, bigint, text, text) FROM PUBLIC;

-- keel.credit_lock_balance(account, credit_type): the balance row, locked
-- FOR UPDATE (created empty when missing). Every credit function locks it
-- first, so each account and type has one writer at a time.
CREATE FUNCTION keel.credit_lock_balance(account uuid, credit_type text)
RETURNS keel.credit_balances
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $lock$
DECLARE
    b keel.credit_balances;
BEGIN
    SELECT * INTO b FROM keel.credit_balances x
     WHERE x.account OPERATOR(pg_catalog.=) credit_lock_balance.account
       AND x.credit_type OPERATOR(pg_catalog.=) credit_lock_balance.credit_type FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO keel.credit_balances AS x (account, credit_type) VALUES (account, credit_type)
        ON CONFLICT ON CONSTRAINT credit_balances_pkey DO NOTHING;
        SELECT * INTO b FROM keel.credit_balances x
         WHERE x.account OPERATOR(pg_catalog.=) credit_lock_balance.account
           AND x.credit_type OPERATOR(pg_catalog.=) credit_lock_balance.credit_type FOR UPDATE;
    END IF;
    RETURN b;
END
$lock$;
REVOKE ALL ON FUNCTION keel.credit_lock_balance(uuid, text) FROM PUBLIC;

-- keel.credit_burn_grants(account, credit_type, amount) -> bigint: burns up
-- to amount credits from the account's grants in burn order (priority,
-- soonest expiry, oldest) and returns how many it burned. The caller holds
-- the balance row lock and updates granted.
CREATE FUNCTION keel.credit_burn_grants(account uuid, credit_type text, amount bigint)
RETURNS bigint
LANGUAGE sql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $burn$
WITH g AS (
    SELECT x.id, x.remaining,
           pg_catalog.sum(x.remaining) OVER (ORDER BY x.priority, x.expires_at NULLS LAST, x.id)
               OPERATOR(pg_catalog.-) x.remaining AS before
      FROM keel.credit_grants x
     WHERE x.account OPERATOR(pg_catalog.=) $1 AND x.credit_type OPERATOR(pg_catalog.=) $2
       AND x.remaining OPERATOR(pg_catalog.>) 0
), burned AS (
    UPDATE keel.credit_grants c
       SET remaining = c.remaining OPERATOR(pg_catalog.-) LEAST(g.remaining, $3 OPERATOR(pg_catalog.-) g.before)
      FROM g
     WHERE c.account OPERATOR(pg_catalog.=) $1 AND c.id OPERATOR(pg_catalog.=) g.id
       AND g.before OPERATOR(pg_catalog.<) $3
    RETURNING LEAST(g.remaining, $3 OPERATOR(pg_catalog.-) g.before) AS n
)
SELECT coalesce(pg_catalog.sum(n), 0)::bigint FROM burned
$burn$;
REVOKE ALL ON FUNCTION keel.credit_burn_grants(uuid, text, bigint) FROM PUBLIC;

-- keel.grant_credits(account, credit_type, amount, expires_at DEFAULT NULL,
-- priority DEFAULT 0, description DEFAULT NULL, idempotency_key DEFAULT
-- NULL) -> bigint: adds a grant of amount credits (> 0) and returns the
-- credits available after it. Consumption burns grants by priority (0
-- first), then soonest expiry, then oldest (as Stripe credit grants);
-- keel.expire_grants() lapses what is left at expires_at. Errors: 22004 NULL
-- account, type or amount; 22023 unknown type, amount <= 0, expires_at not
-- in the future, bad key; 22001 description over 1,024 bytes; KL003 key
-- reused with other arguments; 25006 standby or read-only transaction.
CREATE FUNCTION keel.grant_credits(account uuid, credit_type text, amount bigint,
                                   expires_at timestamptz DEFAULT NULL, priority integer DEFAULT 0,
                                   description text DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $grant$
DECLARE
    b keel.credit_balances;
    replay text;
    ledger bigint;
    gid bigint;
BEGIN
    PERFORM keel.require_writable('keel.grant_credits()');
    IF account IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'account must not be null';
    END IF;
    PERFORM keel.credit_check_args(credit_type, amount, description, idempotency_key);
    IF expires_at IS NOT NULL AND expires_at OPERATOR(pg_catalog.<=) pg_catalog.now() THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a grant must expire in the future',
            DETAIL = pg_catalog.format('expires_at was %s.', expires_at),
            HINT = 'Pass a later expires_at, or NULL for a grant that never expires.';
    END IF;
    IF priority IS NULL OR priority OPERATOR(pg_catalog.<) 0 THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'grant priority must be 0 or more',
            HINT = '0 is the highest priority: lower numbers burn first.';
    END IF;
    b := keel.credit_lock_balance(account, credit_type);
    IF idempotency_key IS NOT NULL THEN
        replay := keel.credit_claim_key(account, idempotency_key, 'grant', credit_type, amount, description,
                                        pg_catalog.format('%s|%s', expires_at, priority));
        IF replay IS NOT NULL THEN
            RETURN replay::bigint;
        END IF;
    END IF;
    IF b.allocated OPERATOR(pg_catalog.>) (9223372036854775807 OPERATOR(pg_catalog.-) amount) THEN
        RAISE EXCEPTION USING ERRCODE = '22003', MESSAGE = 'grant would take the allocation beyond bigint';
    END IF;
    UPDATE keel.credit_balances x
       SET allocated = x.allocated OPERATOR(pg_catalog.+) amount, granted = x.granted OPERATOR(pg_catalog.+) amount
     WHERE x.account OPERATOR(pg_catalog.=) grant_credits.account
       AND x.credit_type OPERATOR(pg_catalog.=) grant_credits.credit_type
    RETURNING * INTO b;
    -- the ledger row names its grant and the grant its ledger row: take the
    -- grant's id first (the ledger is append-only, so it is written once)
    gid := pg_catalog.nextval('keel.credit_grants_id_seq'::pg_catalog.regclass);
    INSERT INTO keel.credit_ledger AS l (account, credit_type, kind, amount, allocated_after, used_after, held_after,
                                         grant_id, description, idempotency_key, actor)
    VALUES (account, credit_type, 'grant', amount, b.allocated, b.used, b.held, gid,
            coalesce(description, pg_catalog.format('Granted %s %s credits', amount, credit_type)),
            idempotency_key, keel.credit_actor())
    RETURNING l.id INTO ledger;
    INSERT INTO keel.credit_grants AS g (account, id, credit_type, amount, remaining, priority, expires_at, description, ledger_id)
    OVERRIDING SYSTEM VALUE
    VALUES (account, gid, credit_type, amount, amount, priority, expires_at, description, ledger);
    IF idempotency_key IS NOT NULL THEN
        UPDATE keel.credit_idempotency i
           SET remaining = b.allocated OPERATOR(pg_catalog.-) b.used OPERATOR(pg_catalog.-) b.held,
               ledger_id = ledger, result = NULL
         WHERE i.account OPERATOR(pg_catalog.=) grant_credits.account
           AND i.idempotency_key OPERATOR(pg_catalog.=) grant_credits.idempotency_key;
    END IF;
    RETURN b.allocated OPERATOR(pg_catalog.-) b.used OPERATOR(pg_catalog.-) b.held;
END
$grant$;
REVOKE ALL ON FUNCTION keel.grant_credits(uuid, text, bigint, timestamptz, integer, text, text) FROM PUBLIC;
COMMENT ON FUNCTION keel.grant_credits(uuid, text, bigint, timestamptz, integer, text, text) IS 'grant credits (burned by priority, soonest expiry, oldest; lapse at expires_at); returns credits available';

-- keel.expire_grants() -> integer: lapses the unburned credits of every grant
-- past its expires_at, one expiry ledger row per grant, and returns how many
-- grants lapsed credits. Credits reserved by open holds do not lapse while
-- the hold is open: a later run lapses them once it is released. Run it from
-- pg_cron: SELECT cron.schedule('keel-expire-grants', '* * * * *',
-- 'SELECT keel.expire_grants()'). 25006 on a standby.
CREATE FUNCTION keel.expire_grants()
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $expire$
DECLARE
    g record;
    b keel.credit_balances;
    lapse bigint;
    n integer := 0;
BEGIN
    PERFORM keel.require_writable('keel.expire_grants()');
    FOR g IN SELECT x.account, x.id, x.credit_type FROM keel.credit_grants x
              WHERE x.remaining OPERATOR(pg_catalog.>) 0 AND x.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()
              ORDER BY x.account, x.credit_type, x.id LOOP
        b := keel.credit_lock_balance(g.account, g.credit_type);
        SELECT LEAST(x.remaining, b.allocated OPERATOR(pg_catalog.-) b.used OPERATOR(pg_catalog.-) b.held)
          INTO lapse FROM keel.credit_grants x
         WHERE x.account OPERATOR(pg_catalog.=) g.account AND x.id OPERATOR(pg_catalog.=) g.id;
        CONTINUE WHEN lapse OPERATOR(pg_catalog.<=) 0;
        UPDATE keel.credit_grants x
           SET remaining = x.remaining OPERATOR(pg_catalog.-) lapse, lapsed = x.lapsed OPERATOR(pg_catalog.+) lapse
         WHERE x.account OPERATOR(pg_catalog.=) g.account AND x.id OPERATOR(pg_catalog.=) g.id;
        UPDATE keel.credit_balances x
           SET allocated = x.allocated OPERATOR(pg_catalog.-) lapse, granted = x.granted OPERATOR(pg_catalog.-) lapse
         WHERE x.account OPERATOR(pg_catalog.=) g.account AND x.credit_type OPERATOR(pg_catalog.=) g.credit_type
        RETURNING * INTO b;
        INSERT INTO keel.credit_ledger (account, credit_type, kind, amount, allocated_after, used_after, held_after,
                                        grant_id, description, actor)
        VALUES (g.account, g.credit_type, 'expiry', OPERATOR(pg_catalog.-) lapse, b.allocated, b.used, b.held, g.id,
                pg_catalog.format('Grant %s lapsed %s unused credits', g.id, lapse), keel.credit_actor());
        n := n OPERATOR(pg_catalog.+) 1;
    END LOOP;
    RETURN n;
END
$expire$;
REVOKE ALL ON FUNCTION keel.expire_grants() FROM PUBLIC;
COMMENT ON FUNCTION keel.expire_grants() IS 'lapse the unburned credits of expired grants; returns the number of grants that lapsed credits';

-- keel.refund_credits(ledger_id, amount DEFAULT NULL, reason DEFAULT NULL,
-- idempotency_key DEFAULT NULL) -> bigint: reverses amount credits (default:
-- all that is still refundable) of the consumption ledger_id with a refund
-- row pointing at it, and returns the credits available after it. Refunded
-- credits return to the plan's part, never to a grant. Errors: 22004 NULL
-- ledger_id; 22023 no such consumption, amount <= 0, bad key; KL006 amount
-- above what is still refundable (the refunds of one consumption never sum
-- above it); KL003 key reused; 25006 standby.
CREATE FUNCTION keel.refund_credits(ledger_id bigint, amount bigint DEFAULT NULL, reason text DEFAULT NULL,
                                    idempotency_key text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $refund$
DECLARE
    c keel.credit_ledger;
    b keel.credit_balances;
    refunded bigint;
    replay text;
    ledger bigint;
BEGIN
    PERFORM keel.require_writable('keel.refund_credits()');
    IF ledger_id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'ledger_id must not be null';
    END IF;
    SELECT * INTO c FROM keel.credit_ledger l WHERE l.id OPERATOR(pg_catalog.=) refund_credits.ledger_id;
    IF NOT FOUND OR c.kind OPERATOR(pg_catalog.<>) 'consumption' THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('ledger entry %s is not a consumption', ledger_id),
            DETAIL = CASE WHEN c.id IS NULL THEN 'There is no such ledger entry.'
                          ELSE pg_catalog.format('It is a %s.', c.kind) END,
            HINT = 'Pass the id of a consumption; keel.refund_credits_by_key() finds it from the account and the consumption''s idempotency key.';
    END IF;
    IF amount IS NOT NULL THEN
        PERFORM keel.credit_check_args(c.credit_type, amount, reason, idempotency_key);
    ELSE
        PERFORM keel.credit_check_args(c.credit_type, 1, reason, idempotency_key);
    END IF;
    b := keel.credit_lock_balance(c.account, c.credit_type);
    IF idempotency_key IS NOT NULL THEN
        replay := keel.credit_claim_key(c.account, idempotency_key, 'refund', c.credit_type, coalesce(amount, 0), reason,
                                        ledger_id::text);
        IF replay IS NOT NULL THEN
            RETURN replay::bigint;
        END IF;
    END IF;
    SELECT coalesce(pg_catalog.sum(l.amount), 0) INTO refunded FROM keel.credit_ledger l
     WHERE l.refund_of OPERATOR(pg_catalog.=) c.id;
    IF amount IS NULL THEN
        amount := c.amount OPERATOR(pg_catalog.-) refunded;
        IF amount OPERATOR(pg_catalog.=) 0 THEN
            RAISE EXCEPTION USING ERRCODE = 'KL006',
                MESSAGE = pg_catalog.format('consumption %s is already refunded in full', c.id),
                DETAIL = pg_catalog.format('It consumed %s credits; %s are refunded.', c.amount, refunded);
        END IF;
    ELSIF amount OPERATOR(pg_catalog.>) (c.amount OPERATOR(pg_catalog.-) refunded) THEN
        RAISE EXCEPTION USING ERRCODE = 'KL006',
            MESSAGE = pg_catalog.format('refund of %s credits exceeds what consumption %s has left to refund', amount, c.id),
            DETAIL = pg_catalog.format('It consumed %s credits; %s are already refunded, so at most %s can be.',
                                       c.amount, refunded, c.amount OPERATOR(pg_catalog.-) refunded);
    END IF;
    UPDATE keel.credit_balances x SET used = x.used OPERATOR(pg_catalog.-) amount
     WHERE x.account OPERATOR(pg_catalog.=) c.account AND x.credit_type OPERATOR(pg_catalog.=) c.credit_type
    RETURNING * INTO b;
    INSERT INTO keel.credit_ledger AS l (account, credit_type, kind, amount, allocated_after, used_after, held_after,
                                         refund_of, description, idempotency_key, actor)
    VALUES (c.account, c.credit_type, 'refund', amount, b.allocated, b.used, b.held, c.id,
            coalesce(reason, pg_catalog.format('Refund of ledger entry %s', c.id)), idempotency_key, keel.credit_actor())
    RETURNING l.id INTO ledger;
    IF idempotency_key IS NOT NULL THEN
        UPDATE keel.credit_idempotency i
           SET remaining = b.allocated OPERATOR(pg_catalog.-) b.used OPERATOR(pg_catalog.-) b.held, ledger_id = ledger
         WHERE i.account OPERATOR(pg_catalog.=) c.account
           AND i.idempotency_key OPERATOR(pg_catalog.=) refund_credits.idempotency_key;
    END IF;
    RETURN b.allocated OPERATOR(pg_catalog.-) b.used OPERATOR(pg_catalog.-) b.held;
END
$refund$;
REVOKE ALL ON FUNCTION keel.refund_credits(bigint, bigint, text, text) FROM PUBLIC;
COMMENT ON FUNCTION keel.refund_credits(bigint, bigint, text, text) IS 'refund all or part of a consumption (KL006 beyond what it consumed); returns credits available';

-- keel.refund_credits_by_key(account, consumption_key, amount DEFAULT NULL,
-- reason DEFAULT NULL, idempotency_key DEFAULT NULL) -> bigint: the same,
-- for a caller that kept only the consumption's idempotency key (22023 when
-- the account has no consumption under that key; 25006 standby or
-- read-only transaction, checked first).
CREATE FUNCTION keel.refund_credits_by_key(account uuid, consumption_key text, amount bigint DEFAULT NULL,
                                           reason text DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $byk$
DECLARE
    id bigint;
BEGIN
    PERFORM keel.require_writable('keel.refund_credits_by_key()');
    SELECT i.ledger_id INTO id FROM keel.credit_idempotency i
     WHERE i.account OPERATOR(pg_catalog.=) refund_credits_by_key.account
       AND i.idempotency_key OPERATOR(pg_catalog.=) consumption_key
       AND i.operation OPERATOR(pg_catalog.=) 'consume';
    IF id IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('account %s has no consumption with idempotency key "%s"', account, consumption_key);
    END IF;
    RETURN keel.refund_credits(id, amount, reason, idempotency_key);
END
$byk$;
REVOKE ALL ON FUNCTION keel.refund_credits_by_key(uuid, text, bigint, text, text) FROM PUBLIC;
COMMENT ON FUNCTION keel.refund_credits_by_key(uuid, text, bigint, text, text) IS 'refund a consumption found by its account and idempotency key';

-- keel.hold_credits(account, credit_type, amount, expires_at,
-- idempotency_key DEFAULT NULL) -> uuid: reserves amount credits until
-- settled, released or expired, and returns the hold's id. available =
-- allocated - used - held. Errors: 22004 NULL argument; 22023 unknown type,
-- amount <= 0, expires_at not in the future, bad key; KL002 not enough
-- credits available (nothing changes); KL003 key reused; 25006 standby.
CREATE FUNCTION keel.hold_credits(account uuid, credit_type text, amount bigint, expires_at timestamptz,
                                  idempotency_key text DEFAULT NULL)
RETURNS uuid
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $hold$
DECLARE
    b keel.credit_balances;
    replay text;
    h uuid;
    ledger bigint;
BEGIN
    PERFORM keel.require_writable('keel.hold_credits()');
    IF account IS NULL OR expires_at IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004',
            MESSAGE = pg_catalog.format('%s must not be null', CASE WHEN account IS NULL THEN 'account' ELSE 'expires_at' END);
    END IF;
    PERFORM keel.credit_check_args(credit_type, amount, NULL, idempotency_key);
    IF expires_at OPERATOR(pg_catalog.<=) pg_catalog.now() THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'a hold must expire in the future',
            DETAIL = pg_catalog.format('expires_at was %s.', expires_at);
    END IF;
    b := keel.credit_lock_balance(account, credit_type);
    IF idempotency_key IS NOT NULL THEN
        replay := keel.credit_claim_key(account, idempotency_key, 'hold', credit_type, amount, NULL, expires_at::text);
        IF replay IS NOT NULL THEN
            RETURN replay::uuid;
        END IF;
    END IF;
    IF b.allocated OPERATOR(pg_catalog.-) b.used OPERATOR(pg_catalog.-) b.held OPERATOR(pg_catalog.<) amount THEN
        RAISE EXCEPTION USING ERRCODE = 'KL002', MESSAGE = pg_catalog.format('insufficient %s credits', credit_type),
            DETAIL = pg_catalog.format('Account %s has %s %s credits available; the hold was for %s.', account,
                                       b.allocated OPERATOR(pg_catalog.-) b.used OPERATOR(pg_catalog.-) b.held, credit_type, amount);
    END IF;
    UPDATE keel.credit_balances x SET held = x.held OPERATOR(pg_catalog.+) amount
     WHERE x.account OPERATOR(pg_catalog.=) hold_credits.account
       AND x.credit_type OPERATOR(pg_catalog.=) hold_credits.credit_type
    RETURNING * INTO b;
    INSERT INTO keel.credit_holds AS x (account, credit_type, amount, expires_at)
    VALUES (account, credit_type, amount, expires_at) RETURNING x.hold INTO h;
    INSERT INTO keel.credit_ledger AS l (account, credit_type, kind, amount, allocated_after, used_after, held_after,
                                         hold_id, description, idempotency_key, actor)
    VALUES (account, credit_type, 'hold', amount, b.allocated, b.used, b.held, h,
            pg_catalog.format('Held %s %s credits', amount, credit_type), idempotency_key, keel.credit_actor())
    RETURNING l.id INTO ledger;
    IF idempotency_key IS NOT NULL THEN
        UPDATE keel.credit_idempotency i
           SET result = h::text, ledger_id = ledger
         WHERE i.account OPERATOR(pg_catalog.=) hold_credits.account
           AND i.idempotency_key OPERATOR(pg_catalog.=) hold_credits.idempotency_key;
    END IF;
    RETURN h;
END
$hold$;
REVOKE ALL ON FUNCTION keel.hold_credits(uuid, text, bigint, timestamptz, text) FROM PUBLIC;
COMMENT ON FUNCTION keel.hold_credits(uuid, text, bigint, timestamptz, text) IS 'reserve credits until settled, released or expired; returns the hold id';

-- keel.credit_close_hold(hold, settle_amount, new_state, hold_account) ->
-- bigint: the common part of settle, release and expiry. Locks the balance,
-- then the hold; releases the whole hold, consumes settle_amount (burning
-- grants), and returns the credits available after it. With hold_account
-- the hold is looked up by (account, hold), so under Citus the call stays on
-- the account's shard; a hold of another account "does not exist".
CREATE FUNCTION keel.credit_close_hold(hold uuid, settle_amount bigint, new_state text, hold_account uuid)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $close$
DECLARE
    h keel.credit_holds;
    b keel.credit_balances;
    burned bigint := 0;
BEGIN
    IF hold_account IS NULL THEN
        SELECT * INTO h FROM keel.credit_holds x WHERE x.hold OPERATOR(pg_catalog.=) credit_close_hold.hold;
    ELSE
        SELECT * INTO h FROM keel.credit_holds x
         WHERE x.account OPERATOR(pg_catalog.=) hold_account AND x.hold OPERATOR(pg_catalog.=) credit_close_hold.hold;
    END IF;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'hold does not exist',
            DETAIL = pg_catalog.format('No hold has the id %s.', hold);
    END IF;
    b := keel.credit_lock_balance(h.account, h.credit_type);
    SELECT * INTO h FROM keel.credit_holds x
     WHERE x.account OPERATOR(pg_catalog.=) h.account AND x.hold OPERATOR(pg_catalog.=) credit_close_hold.hold FOR UPDATE;
    IF h.state OPERATOR(pg_catalog.<>) 'open' THEN
        -- a retried call after an unacknowledged commit gets the first result
        IF h.state OPERATOR(pg_catalog.=) new_state AND h.settled IS NOT DISTINCT FROM settle_amount THEN
            RETURN b.allocated OPERATOR(pg_catalog.-) b.used OPERATOR(pg_catalog.-) b.held;
        END IF;
        RAISE EXCEPTION USING ERRCODE = '55000',
            MESSAGE = pg_catalog.format('hold is already %s', h.state),
            DETAIL = CASE WHEN h.state OPERATOR(pg_catalog.=) 'settled'
                          THEN pg_catalog.format('Hold %s was settled for %s of its %s credits.', hold, h.settled, h.amount)
                          ELSE pg_catalog.format('Hold %s was %s at %s.', hold, h.state, h.closed_at) END;
    END IF;
    IF new_state OPERATOR(pg_catalog.=) 'settled' THEN
        IF h.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now() THEN
            RAISE EXCEPTION USING ERRCODE = '55000', MESSAGE = 'hold has expired',
                DETAIL = pg_catalog.format('Hold %s expired at %s.', hold, h.expires_at),
                HINT = 'An expired hold can only be released; consume the credits with keel.consume_credits() instead.';
        END IF;
        IF settle_amount IS NULL OR settle_amount OPERATOR(pg_catalog.<) 0 OR settle_amount OPERATOR(pg_catalog.>) h.amount THEN
            RAISE EXCEPTION USING ERRCODE = '22023',
                MESSAGE = pg_catalog.format('a hold of %s credits cannot be settled for %s', h.amount, coalesce(settle_amount::text, 'NULL')),
                HINT = 'Settle for 0 up to the held amount; the rest is released.';
        END IF;
    END IF;
    IF b.granted OPERATOR(pg_catalog.>) 0 AND settle_amount OPERATOR(pg_catalog.>) 0 THEN
        burned := keel.credit_burn_grants(h.account, h.credit_type, LEAST(b.granted, settle_amount));
    END IF;
    UPDATE keel.credit_balances x
       SET held = x.held OPERATOR(pg_catalog.-) h.amount,
           used = x.used OPERATOR(pg_catalog.+) coalesce(settle_amount, 0),
           granted = x.granted OPERATOR(pg_catalog.-) burned
     WHERE x.account OPERATOR(pg_catalog.=) h.account AND x.credit_type OPERATOR(pg_catalog.=) h.credit_type
    RETURNING * INTO b;
    INSERT INTO keel.credit_ledger (account, credit_type, kind, amount, allocated_after, used_after, held_after,
                                    hold_id, description, actor)
    VALUES (h.account, h.credit_type, 'release', h.amount, b.allocated,
            b.used OPERATOR(pg_catalog.-) coalesce(settle_amount, 0), b.held, hold,
            pg_catalog.format('Hold %s %s', hold, new_state), keel.credit_actor());
    IF coalesce(settle_amount, 0) OPERATOR(pg_catalog.>) 0 THEN
        INSERT INTO keel.credit_ledger (account, credit_type, kind, amount, allocated_after, used_after, held_after,
                                        hold_id, description, actor)
        VALUES (h.account, h.credit_type, 'consumption', settle_amount, b.allocated, b.used, b.held, hold,
                pg_catalog.format('Settled hold %s for %s %s credits', hold, settle_amount, h.credit_type), keel.credit_actor());
    END IF;
    UPDATE keel.credit_holds x SET state = new_state, settled = settle_amount, closed_at = pg_catalog.now()
     WHERE x.account OPERATOR(pg_catalog.=) h.account AND x.hold OPERATOR(pg_catalog.=) credit_close_hold.hold;
    RETURN b.allocated OPERATOR(pg_catalog.-) b.used OPERATOR(pg_catalog.-) b.held;
END
$close$;
REVOKE ALL ON FUNCTION keel.credit_close_hold(uuid, bigint, text, uuid) FROM PUBLIC;

-- keel.settle_hold(hold, amount) -> bigint: consumes amount (0 up to the
-- held amount) of an open, unexpired hold, releases the rest, and returns
-- the credits available after it. Settling a settled hold again for the
-- same amount returns the same way and changes nothing. Errors: 22023 no
-- such hold, amount outside 0..held; 55000 hold already released, expired
-- or settled for another amount, or past its expires_at; 25006 standby.
CREATE FUNCTION keel.settle_hold(hold uuid, amount bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $settle$
BEGIN
    PERFORM keel.require_writable('keel.settle_hold()');
    RETURN keel.credit_close_hold(hold, amount, 'settled', NULL);
END
$settle$;
REVOKE ALL ON FUNCTION keel.settle_hold(uuid, bigint) FROM PUBLIC;
COMMENT ON FUNCTION keel.settle_hold(uuid, bigint) IS 'consume up to the held amount and release the rest; returns credits available';

-- keel.release_hold(hold): releases all of an open hold (again: nothing).
-- Errors: 22023 no such hold; 55000 hold settled or expired; 25006 standby.
CREATE FUNCTION keel.release_hold(hold uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $release$
BEGIN
    PERFORM keel.require_writable('keel.release_hold()');
    PERFORM keel.credit_close_hold(hold, NULL, 'released', NULL);
END
$release$;
REVOKE ALL ON FUNCTION keel.release_hold(uuid) FROM PUBLIC;
COMMENT ON FUNCTION keel.release_hold(uuid) IS 'release all of a hold';

-- keel.expire_holds() -> integer: releases every open hold past its
-- expires_at (state expired) and returns how many. Schedule it with
-- pg_cron: SELECT cron.schedule('keel-expire-holds', '* * * * *',
-- 'SELECT keel.expire_holds()'). 25006 on a standby.
CREATE FUNCTION keel.expire_holds()
RETURNS integer
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $expire_holds$
DECLARE
    h record;
    n integer := 0;
BEGIN
    PERFORM keel.require_writable('keel.expire_holds()');
    FOR h IN SELECT x.hold, x.account FROM keel.credit_holds x
              WHERE x.state OPERATOR(pg_catalog.=) 'open' AND x.expires_at OPERATOR(pg_catalog.<=) pg_catalog.now()
              ORDER BY x.account, x.credit_type, x.hold LOOP
        BEGIN
            PERFORM keel.credit_close_hold(h.hold, NULL, 'expired', h.account);
            n := n OPERATOR(pg_catalog.+) 1;
        EXCEPTION WHEN object_not_in_prerequisite_state THEN
            NULL; -- closed meanwhile by its owner
        END;
    END LOOP;
    RETURN n;
END
$expire_holds$;
REVOKE ALL ON FUNCTION keel.expire_holds() FROM PUBLIC;
COMMENT ON FUNCTION keel.expire_holds() IS 'release holds past their expires_at; returns how many';

-- keel.verify_credits(): one row per inconsistency, none when sound (0.2.0:
-- grants, holds and refunds included). problem is one of:
--   allocated_mismatch  allocated vs. the sum of allocation, grant and expiry rows
--   used_mismatch       used vs. consumptions minus refunds
--   held_mismatch       held vs. holds minus releases, and vs. the open holds
--   granted_mismatch    granted vs. the remaining credits of the grants
--   plan_mismatch       plan_allocated vs. the sum of allocation rows
--   over_allocated      used + held or used + granted above allocated
--   negative_balance    a negative part
--   ledger_without_balance, unknown_credit_type
--   running_total_mismatch  a ledger row's allocated_after/used_after/held_after
--                           vs. the running sums up to it
--   over_refunded       refunds of a consumption above its amount
--   idempotency_without_ledger  a key without its ledger row
CREATE OR REPLACE FUNCTION keel.verify_credits()
RETURNS TABLE (account uuid, credit_type text, problem text, detail text)
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
WITH signed AS (
    SELECT l.id, l.account, l.credit_type, l.kind, l.allocated_after, l.used_after, l.held_after,
           CASE WHEN l.kind OPERATOR(pg_catalog.=) ANY (ARRAY['allocation', 'grant', 'expiry']) THEN l.amount ELSE 0 END AS d_allocated,
           CASE WHEN l.kind OPERATOR(pg_catalog.=) 'allocation' THEN l.amount ELSE 0 END AS d_plan,
           CASE l.kind WHEN 'consumption' THEN l.amount WHEN 'refund' THEN OPERATOR(pg_catalog.-) l.amount ELSE 0 END AS d_used,
           CASE l.kind WHEN 'hold' THEN l.amount WHEN 'release' THEN OPERATOR(pg_catalog.-) l.amount ELSE 0 END AS d_held
      FROM keel.credit_ledger l
),
sums AS (
    SELECT s.account, s.credit_type, pg_catalog.sum(s.d_allocated) AS allocated, pg_catalog.sum(s.d_plan) AS plan_allocated,
           pg_catalog.sum(s.d_used) AS used, pg_catalog.sum(s.d_held) AS held
      FROM signed s GROUP BY s.account, s.credit_type
),
running AS (
    SELECT s.id, s.account, s.credit_type, s.allocated_after, s.used_after, s.held_after,
           pg_catalog.sum(s.d_allocated) OVER w AS allocated_sum, pg_catalog.sum(s.d_used) OVER w AS used_sum,
           pg_catalog.sum(s.d_held) OVER w AS held_sum
      FROM signed s
    WINDOW w AS (PARTITION BY s.account, s.credit_type ORDER BY s.id)
),
grants AS (
    SELECT g.account, g.credit_type, pg_catalog.sum(g.remaining) AS remaining
      FROM keel.credit_grants g GROUP BY g.account, g.credit_type
),
holds AS (
    SELECT h.account, h.credit_type, pg_catalog.sum(h.amount) AS held
      FROM keel.credit_holds h WHERE h.state OPERATOR(pg_catalog.=) 'open' GROUP BY h.account, h.credit_type
),
bal AS (
    SELECT b.*, COALESCE(s.allocated, 0) AS l_allocated, COALESCE(s.plan_allocated, 0) AS l_plan,
           COALESCE(s.used, 0) AS l_used, COALESCE(s.held, 0) AS l_held,
           COALESCE(g.remaining, 0) AS g_remaining, COALESCE(h.held, 0) AS h_held
      FROM keel.credit_balances b
      LEFT JOIN sums s ON s.account OPERATOR(pg_catalog.=) b.account AND s.credit_type OPERATOR(pg_catalog.=) b.credit_type
      LEFT JOIN grants g ON g.account OPERATOR(pg_catalog.=) b.account AND g.credit_type OPERATOR(pg_catalog.=) b.credit_type
      LEFT JOIN holds h ON h.account OPERATOR(pg_catalog.=) b.account AND h.credit_type OPERATOR(pg_catalog.=) b.credit_type
)
SELECT b.account, b.credit_type, 'allocated_mismatch',
       format('The balance has %s credits allocated; its ledger allocations, grants and expiries sum to %s.', b.allocated, b.l_allocated)
  FROM bal b WHERE b.allocated OPERATOR(pg_catalog.<>) b.l_allocated
UNION ALL
SELECT b.account, b.credit_type, 'plan_mismatch',
       format('The balance has %s credits allocated by plan; its ledger allocations sum to %s.', b.plan_allocated, b.l_plan)
  FROM bal b WHERE b.plan_allocated OPERATOR(pg_catalog.<>) b.l_plan
UNION ALL
SELECT b.account, b.credit_type, 'used_mismatch',
       format('The balance has %s credits used; its ledger consumptions minus refunds sum to %s.', b.used, b.l_used)
  FROM bal b WHERE b.used OPERATOR(pg_catalog.<>) b.l_used
UNION ALL
SELECT b.account, b.credit_type, 'held_mismatch',
       format('The balance has %s credits held; its ledger holds minus releases sum to %s and its open holds to %s.',
              b.held, b.l_held, b.h_held)
  FROM bal b WHERE b.held OPERATOR(pg_catalog.<>) b.l_held OR b.held OPERATOR(pg_catalog.<>) b.h_held
UNION ALL
SELECT b.account, b.credit_type, 'granted_mismatch',
       format('The balance has %s unburned grant credits; its grants have %s remaining.', b.granted, b.g_remaining)
  FROM bal b WHERE b.granted OPERATOR(pg_catalog.<>) b.g_remaining
UNION ALL
SELECT b.account, b.credit_type, 'over_allocated',
       format('%s credits are used, %s held and %s granted unburned, but only %s are allocated.', b.used, b.held, b.granted, b.allocated)
  FROM bal b WHERE b.used OPERATOR(pg_catalog.+) b.held OPERATOR(pg_catalog.>) b.allocated
            OR b.used OPERATOR(pg_catalog.+) b.granted OPERATOR(pg_catalog.>) b.allocated
UNION ALL
SELECT b.account, b.credit_type, 'negative_balance',
       format('The balance has %s allocated, %s used, %s held and %s granted; none may be negative.', b.allocated, b.used, b.held, b.granted)
  FROM bal b WHERE b.allocated OPERATOR(pg_catalog.<) 0 OR b.used OPERATOR(pg_catalog.<) 0 OR b.held OPERATOR(pg_catalog.<) 0
            OR b.granted OPERATOR(pg_catalog.<) 0
UNION ALL
SELECT s.account, s.credit_type, 'ledger_without_balance',
       format('The ledger has entries (%s allocated, %s used) but there is no balance row.', s.allocated, s.used)
  FROM sums s
 WHERE NOT EXISTS (SELECT FROM keel.credit_balances b
                    WHERE b.account OPERATOR(pg_catalog.=) s.account AND b.credit_type OPERATOR(pg_catalog.=) s.credit_type)
UNION ALL
SELECT r.account, r.credit_type, 'running_total_mismatch',
       format('Ledger entry %s records %s allocated, %s used and %s held; the entries up to it sum to %s, %s and %s.',
              r.id, r.allocated_after, r.used_after, r.held_after, r.allocated_sum, r.used_sum, r.held_sum)
  FROM running r
 WHERE r.allocated_after OPERATOR(pg_catalog.<>) r.allocated_sum OR r.used_after OPERATOR(pg_catalog.<>) r.used_sum
    OR r.held_after OPERATOR(pg_catalog.<>) r.held_sum
UNION ALL
SELECT s.account, s.credit_type, 'unknown_credit_type',
       format('Credit type %L has ledger entries but is not in keel.credit_types.', s.credit_type)
  FROM sums s
 WHERE NOT EXISTS (SELECT FROM keel.credit_types t WHERE t.credit_type OPERATOR(pg_catalog.=) s.credit_type)
UNION ALL
SELECT c.account, c.credit_type, 'over_refunded',
       format('Consumption %s of %s credits has %s refunded.', c.id, c.amount, pg_catalog.sum(r.amount))
  FROM keel.credit_ledger c JOIN keel.credit_ledger r ON r.refund_of OPERATOR(pg_catalog.=) c.id
 WHERE c.kind OPERATOR(pg_catalog.=) 'consumption'
 GROUP BY c.id, c.account, c.credit_type, c.amount
HAVING pg_catalog.sum(r.amount) OPERATOR(pg_catalog.>) c.amount
UNION ALL
SELECT i.account, i.credit_type, 'idempotency_without_ledger',
       format('Idempotency key %L (%s) has no matching ledger entry.', i.idempotency_key, i.operation)
  FROM keel.credit_idempotency i
 WHERE NOT EXISTS (SELECT FROM keel.credit_ledger l
                    WHERE l.id OPERATOR(pg_catalog.=) i.ledger_id
                      AND l.kind OPERATOR(pg_catalog.=) CASE i.operation WHEN 'consume' THEN 'consumption' ELSE i.operation END
                      AND l.account OPERATOR(pg_catalog.=) i.account
                      AND l.credit_type OPERATOR(pg_catalog.=) i.credit_type
                      AND (i.operation OPERATOR(pg_catalog.<>) 'consume' OR l.amount OPERATOR(pg_catalog.=) i.amount)
                      AND l.idempotency_key OPERATOR(pg_catalog.=) i.idempotency_key)
$$;
COMMENT ON FUNCTION keel.verify_credits() IS 'one row per inconsistency between credit balances, grants, holds and the ledger; none when sound; not executable by PUBLIC';
REVOKE ALL ON FUNCTION keel.verify_credits() FROM PUBLIC;

-- The C credit functions of 0.2.0 name the new columns (held, granted,
-- plan_allocated, held_after, operation): bind them to keel.so's _v2 symbols.
-- The 0.1.0 symbols stay in keel.so for databases not yet updated.
CREATE OR REPLACE FUNCTION keel.allocate_plan_credits(account uuid, plan text, total_credits bigint DEFAULT 0)
RETURNS TABLE (credit_type text, allocated bigint, used bigint, available bigint)
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'keel_allocate_plan_credits_v2';
COMMENT ON FUNCTION keel.allocate_plan_credits(uuid, text, bigint) IS 'set the plan part of every type''s allocation (keel.credit_plans), keeping grants; returns the balances; not executable by PUBLIC';
-- get_available_credits reads the balance row straight from its index
-- (extension/credits/balance_read.cpp): no SPI and no SECURITY DEFINER, as it
-- runs no SQL; EXECUTE on it is the gate.
CREATE OR REPLACE FUNCTION keel.get_available_credits(account uuid, credit_type text)
RETURNS bigint
LANGUAGE c STABLE PARALLEL RESTRICTED SECURITY INVOKER
AS 'MODULE_PATHNAME', 'keel_get_available_credits_v2';
COMMENT ON FUNCTION keel.get_available_credits(uuid, text) IS 'credits of a type an account may still consume (allocated - used - held); 0 when none allocated';
CREATE OR REPLACE FUNCTION keel.consume_credits(account uuid, credit_type text, amount bigint,
                                                description text DEFAULT NULL, idempotency_key text DEFAULT NULL)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'keel_consume_credits_v2';
COMMENT ON FUNCTION keel.consume_credits(uuid, text, bigint, text, text) IS 'consume credits atomically, burning grants first (KL002 if not enough, KL003 on a reused idempotency key); returns credits available';
CREATE OR REPLACE FUNCTION keel.consume_specific_credits(p_organization_id uuid, p_credit_type text,
                                                         p_credits integer, p_description text DEFAULT NULL)
RETURNS boolean
LANGUAGE c VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'keel_consume_specific_credits_v2';

/* ---------------------------------------------------------------------------
 * Credits, 0.2.0: the unified pool moved into per-type credits (seed 003 step 3)
 * ------------------------------------------------------------------------- */

-- keel.pool_migrations: one row per named move of a unified total_credits
-- column into per-type allocations; last_account is where the next batch
-- starts, so an interrupted move resumes and never allocates an account
-- twice (each batch commits with its progress row). Not per account: an
-- administrative table (a Citus reference table, docs/scale-out.md).
CREATE TABLE keel.pool_migrations (
    name          text COLLATE "C" PRIMARY KEY,
    source        text NOT NULL,
    id_column     name NOT NULL,
    plan_column   name NOT NULL,
    total_column  name NOT NULL,
    last_account  uuid,
    rows_done     bigint NOT NULL DEFAULT 0,
    rows_total    bigint NOT NULL,
    started_by    name NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    updated_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),
    finished_at   timestamptz
);
COMMENT ON TABLE keel.pool_migrations IS 'progress of each move of a unified credit pool into per-type allocations (keel.migrate_unified_pool)';
REVOKE ALL ON keel.pool_migrations FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('keel.pool_migrations', '');

-- keel.migrate_unified_pool(name, source, id_column DEFAULT 'id',
-- plan_column DEFAULT 'plan_name', total_column DEFAULT 'total_credits',
-- batch_size DEFAULT 1000) -> TABLE (rows_done, rows_total, finished):
-- allocates the next batch_size rows of source (in id order, after the last
-- account done) with keel.allocate_plan_credits(id, plan, total) and
-- records the progress in keel.pool_migrations, all in the caller's
-- transaction. Call it once per transaction until finished (keel credits
-- migrate-pool does, with progress and ETA): each batch commits whole or
-- not at all, so a killed run resumes where it stopped and no account is
-- allocated twice. A NULL or empty plan takes plan '*' (the seed's ELSE
-- branch); a NULL total counts as 0. Errors: 42501 the caller may not read
-- the columns; 22023 batch_size outside 1..100000, a column missing or of
-- the wrong type (id uuid; plan text; total integer or bigint), name reused
-- for another source; the errors of keel.allocate_plan_credits; 25006
-- standby.
CREATE FUNCTION keel.migrate_unified_pool(name text, source regclass, id_column name DEFAULT 'id',
                                          plan_column name DEFAULT 'plan_name',
                                          total_column name DEFAULT 'total_credits',
                                          batch_size integer DEFAULT 1000)
RETURNS TABLE (rows_done bigint, rows_total bigint, finished boolean)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $pool$
DECLARE
    m keel.pool_migrations;
    caller name := keel.credit_actor();
    col name;
    typ regtype;
    r record;
    n bigint := 0;
    last uuid;
BEGIN
    PERFORM keel.require_writable('keel.migrate_unified_pool()');
    IF name IS NULL OR name OPERATOR(pg_catalog.=) '' OR source IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'name and source must not be null or empty';
    END IF;
    IF batch_size IS NULL OR batch_size OPERATOR(pg_catalog.<) 1 OR batch_size OPERATOR(pg_catalog.>) 100000 THEN
        RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'batch_size must be between 1 and 100000',
            DETAIL = pg_catalog.format('batch_size was %s.', batch_size);
    END IF;
    -- the caller reads the source, not keel's owner
    FOREACH col IN ARRAY ARRAY[id_column, plan_column, total_column] LOOP
        SELECT a.atttypid::regtype INTO typ FROM pg_catalog.pg_attribute a
         WHERE a.attrelid OPERATOR(pg_catalog.=) source AND a.attname OPERATOR(pg_catalog.=) col
           AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
        IF typ IS NULL THEN
            RAISE EXCEPTION USING ERRCODE = '22023',
                MESSAGE = pg_catalog.format('column %s of %s does not exist', col, source);
        END IF;
        IF NOT pg_catalog.has_column_privilege(caller, source, col, 'SELECT') THEN
            RAISE EXCEPTION USING ERRCODE = '42501',
                MESSAGE = pg_catalog.format('permission denied for column %s of %s', col, source),
                HINT = pg_catalog.format('Role %s needs SELECT on the column.', caller);
        END IF;
        IF (col OPERATOR(pg_catalog.=) id_column AND typ OPERATOR(pg_catalog.<>) 'uuid'::regtype)
           OR (col OPERATOR(pg_catalog.=) plan_column AND typ OPERATOR(pg_catalog.<>) ALL (ARRAY['text', 'character varying']::regtype[]))
           OR (col OPERATOR(pg_catalog.=) total_column AND typ OPERATOR(pg_catalog.<>) ALL (ARRAY['integer', 'bigint', 'smallint']::regtype[])) THEN
            RAISE EXCEPTION USING ERRCODE = '22023',
                MESSAGE = pg_catalog.format('column %s of %s has type %s', col, source, typ),
                HINT = 'The id column must be uuid, the plan column text, the total column integer or bigint.';
        END IF;
    END LOOP;

    INSERT INTO keel.pool_migrations AS p (name, source, id_column, plan_column, total_column, rows_total, started_by)
    SELECT migrate_unified_pool.name, source::text, id_column, plan_column, total_column, 0, caller
    ON CONFLICT ON CONSTRAINT pool_migrations_pkey DO NOTHING;
    -- one runner per name at a time: a second one waits here, then goes on after the first's batch
    SELECT * INTO m FROM keel.pool_migrations p WHERE p.name OPERATOR(pg_catalog.=) migrate_unified_pool.name FOR UPDATE;
    IF m.source OPERATOR(pg_catalog.<>) source::text OR m.id_column OPERATOR(pg_catalog.<>) id_column
       OR m.plan_column OPERATOR(pg_catalog.<>) plan_column OR m.total_column OPERATOR(pg_catalog.<>) total_column THEN
        RAISE EXCEPTION USING ERRCODE = '22023',
            MESSAGE = pg_catalog.format('pool migration "%s" was started on %s (%s, %s, %s)', name, m.source,
                                        m.id_column, m.plan_column, m.total_column),
            HINT = 'Use another name for another source.';
    END IF;
    IF m.finished_at IS NOT NULL THEN
        RETURN QUERY SELECT m.rows_done, m.rows_total, true;
        RETURN;
    END IF;
    IF m.rows_done OPERATOR(pg_catalog.=) 0 AND m.last_account IS NULL THEN
        EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %s', source) INTO m.rows_total;
    END IF;

    FOR r IN EXECUTE pg_catalog.format(
        'SELECT %1$I AS id, %2$I::text AS plan, %3$I::bigint AS total FROM %4$s '
        'WHERE %1$I IS NOT NULL AND ($1 IS NULL OR %1$I OPERATOR(pg_catalog.>) $1) ORDER BY %1$I LIMIT $2',
        id_column, plan_column, total_column, source) USING m.last_account, batch_size LOOP
        PERFORM keel.allocate_plan_credits(r.id, coalesce(NULLIF(r.plan, ''), '*'), coalesce(r.total, 0));
        n := n OPERATOR(pg_catalog.+) 1;
        last := r.id;
    END LOOP;

    UPDATE keel.pool_migrations p
       SET last_account = coalesce(last, p.last_account),
           rows_done = p.rows_done OPERATOR(pg_catalog.+) n,
           rows_total = GREATEST(m.rows_total, p.rows_done OPERATOR(pg_catalog.+) n),
           updated_at = pg_catalog.now(),
           finished_at = CASE WHEN n OPERATOR(pg_catalog.<) batch_size THEN pg_catalog.now() END
     WHERE p.name OPERATOR(pg_catalog.=) migrate_unified_pool.name
    RETURNING p.rows_done, p.rows_total, p.finished_at IS NOT NULL INTO rows_done, rows_total, finished;
    RETURN NEXT;
END
$pool$;
REVOKE ALL ON FUNCTION keel.migrate_unified_pool(text, regclass, name, name, name, integer) FROM PUBLIC;
COMMENT ON FUNCTION keel.migrate_unified_pool(text, regclass, name, name, name, integer) IS 'allocate the next batch of a unified total_credits pool by plan; resumable, never allocates twice';

/* ---------------------------------------------------------------------------
 * Migrations, 0.2.0: where each row came from, why a failure failed,
 * baselines and repairs
 * ------------------------------------------------------------------------- */

-- New columns of keel.migration_history:
--   client_host, tool_version  the machine and tool that recorded the row
--                              (keel.client_host, keel.tool_version: keel's
--                              client sets them; NULL when unset)
--   sqlstate, error_line, error_statement  for a failure: the SQLSTATE, the
--                              line of the file and the statement reached
--   reason                     why a row was repaired (required there)
-- New statuses: baselined (the database had the change before keel; counts
-- as applied and never runs) and repaired (the file as it is now, after an
-- edit or a removal, with its reason; the latest one is what keel compares
-- with).
ALTER TABLE keel.migration_history
    ADD COLUMN client_host text DEFAULT NULLIF(pg_catalog.current_setting('keel.client_host', true), ''),
    ADD COLUMN tool_version text DEFAULT NULLIF(pg_catalog.current_setting('keel.tool_version', true), ''),
    ADD COLUMN sqlstate text
        CONSTRAINT migration_history_sqlstate_check CHECK (sqlstate OPERATOR(pg_catalog.~) '^[0-9A-Z]{5}$'),
    ADD COLUMN error_line integer
        CONSTRAINT migration_history_error_line_check CHECK (error_line OPERATOR(pg_catalog.>) 0),
    ADD COLUMN error_statement text,
    ADD COLUMN reason text,
    DROP CONSTRAINT migration_history_status_check,
    ADD CONSTRAINT migration_history_status_check
        CHECK (status OPERATOR(pg_catalog.=) ANY (ARRAY['applied', 'failed', 'superseded', 'baselined', 'repaired'])),
    DROP CONSTRAINT migration_history_file_check,
    ADD CONSTRAINT migration_history_file_check
        CHECK (status OPERATOR(pg_catalog.=) ANY (ARRAY['superseded', 'repaired'])
               OR (name IS NOT NULL AND checksum IS NOT NULL)),
    ADD CONSTRAINT migration_history_reason_check
        CHECK ((status OPERATOR(pg_catalog.=) 'repaired') OPERATOR(pg_catalog.=) (reason IS NOT NULL));
DROP INDEX keel.migration_history_one_done_per_version;
CREATE UNIQUE INDEX migration_history_one_done_per_version
    ON keel.migration_history (version)
    WHERE status OPERATOR(pg_catalog.=) ANY (ARRAY['applied', 'superseded', 'baselined']);
COMMENT ON TABLE keel.migration_history IS 'one row per applied, failed, superseded, baselined or repaired migration; written by keel.migration_*()';

-- keel.migration_superseded (0.2.0): superseded_by must be applied first.
CREATE OR REPLACE FUNCTION keel.migration_superseded(version numeric, name text, checksum text, superseded_by numeric)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'keel_migration_superseded_v2';
COMMENT ON FUNCTION keel.migration_superseded(numeric, text, text, numeric) IS 'record a never-applied version as superseded by an applied one; returns the history id';

-- keel.migration_failed(..., sqlstate, error_line, error_statement): a
-- failed attempt with where it failed.
CREATE FUNCTION keel.migration_failed(version numeric, name text, checksum text, started_at timestamptz,
                                      error text, sqlstate text, error_line integer, error_statement text)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'keel_migration_failed_v2';
COMMENT ON FUNCTION keel.migration_failed(numeric, text, text, timestamptz, text, text, integer, text) IS 'record a failed attempt with its SQLSTATE, file line and statement; returns the history id';
REVOKE ALL ON FUNCTION keel.migration_failed(numeric, text, text, timestamptz, text, text, integer, text) FROM PUBLIC;

-- keel.migration_baselined(version, name, checksum): the database already
-- holds this migration's change (keel baseline VERSION).
CREATE FUNCTION keel.migration_baselined(version numeric, name text, checksum text)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'keel_migration_baselined';
COMMENT ON FUNCTION keel.migration_baselined(numeric, text, text) IS 'record a migration the database already holds as baselined (counts as applied, never runs); returns the history id';
REVOKE ALL ON FUNCTION keel.migration_baselined(numeric, text, text) FROM PUBLIC;

-- keel.migration_repaired(version, name, checksum, reason): re-record an
-- applied file as it is now (NULL name and checksum: it is gone), with why.
CREATE FUNCTION keel.migration_repaired(version numeric, name text, checksum text, reason text)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'keel_migration_repaired';
COMMENT ON FUNCTION keel.migration_repaired(numeric, text, text, text) IS 'record an applied migration''s file as it is now (edited, or gone), with a reason; returns the history id';
REVOKE ALL ON FUNCTION keel.migration_repaired(numeric, text, text, text) FROM PUBLIC;

/* ---------------------------------------------------------------------------
 * Migrations, 0.2.0: a migration lock no other role can squat, token
 * checksums (edits of only comments and whitespace), keel down, and the
 * journal of keel:no-transaction files
 * ------------------------------------------------------------------------- */

-- New columns of keel.migration_history:
--   token_checksum  SHA-256 of the file's token stream (libpg_query's scanner,
--                   comments and whitespace left out, keel directives kept):
--                   a later edit that changes only comments or whitespace is
--                   reported as cosmetic; NULL when the client did not send it
--   revision        how many times the version was reverted (keel down)
--                   before this row; a version is done when it has an
--                   applied, baselined or superseded row at its current
--                   revision
-- New status: reverted (keel down ran the version's .down.sql; name and
-- checksum are the down file's).
ALTER TABLE keel.migration_history
    ADD COLUMN token_checksum text
        CONSTRAINT migration_history_token_checksum_check CHECK (token_checksum OPERATOR(pg_catalog.~) '^[0-9a-f]{64}$'),
    ADD COLUMN revision integer NOT NULL DEFAULT 0
        CONSTRAINT migration_history_revision_check CHECK (revision OPERATOR(pg_catalog.>=) 0),
    DROP CONSTRAINT migration_history_status_check,
    ADD CONSTRAINT migration_history_status_check
        CHECK (status OPERATOR(pg_catalog.=) ANY (ARRAY['applied', 'failed', 'superseded', 'baselined', 'repaired', 'reverted']));
DROP INDEX keel.migration_history_one_done_per_version;
CREATE UNIQUE INDEX migration_history_one_done_per_version
    ON keel.migration_history (version, revision)
    WHERE status OPERATOR(pg_catalog.=) ANY (ARRAY['applied', 'superseded', 'baselined']);
CREATE UNIQUE INDEX migration_history_one_revert_per_revision
    ON keel.migration_history (version, revision)
    WHERE status OPERATOR(pg_catalog.=) 'reverted';
COMMENT ON TABLE keel.migration_history IS 'one row per applied, failed, superseded, baselined, repaired or reverted migration; written by keel.migration_*()';

-- The 0.2.0 writers: on the version's current revision, with token checksums.
CREATE OR REPLACE FUNCTION keel.migration_start(version numeric, name text, checksum text)
RETURNS timestamptz
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'keel_migration_start_v2';
CREATE OR REPLACE FUNCTION keel.migration_applied(version numeric, name text, checksum text, started_at timestamptz)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'keel_migration_applied_v2';
CREATE OR REPLACE FUNCTION keel.migration_failed(version numeric, name text, checksum text, started_at timestamptz, error text)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'keel_migration_failed_v2';

-- keel.migration_applied(version, name, checksum, started_at, token_checksum):
-- as the 4-argument form, with the file's token checksum.
CREATE FUNCTION keel.migration_applied(version numeric, name text, checksum text, started_at timestamptz, token_checksum text)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'keel_migration_applied_v2';
COMMENT ON FUNCTION keel.migration_applied(numeric, text, text, timestamptz, text) IS 'record a migration as applied, with its token checksum (call inside its transaction); returns the history id';
REVOKE ALL ON FUNCTION keel.migration_applied(numeric, text, text, timestamptz, text) FROM PUBLIC;

-- keel.migration_baselined / keel.migration_repaired with the token checksum.
CREATE FUNCTION keel.migration_baselined(version numeric, name text, checksum text, token_checksum text)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'keel_migration_baselined';
COMMENT ON FUNCTION keel.migration_baselined(numeric, text, text, text) IS 'record a migration the database already holds as baselined, with its token checksum; returns the history id';
REVOKE ALL ON FUNCTION keel.migration_baselined(numeric, text, text, text) FROM PUBLIC;
CREATE FUNCTION keel.migration_repaired(version numeric, name text, checksum text, reason text, token_checksum text)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'keel_migration_repaired';
COMMENT ON FUNCTION keel.migration_repaired(numeric, text, text, text, text) IS 'record an applied migration''s file as it is now, with a reason and its token checksum; returns the history id';
REVOKE ALL ON FUNCTION keel.migration_repaired(numeric, text, text, text, text) FROM PUBLIC;

-- keel.migration_reverted(version, name, checksum, started_at): keel down ran
-- the version's down file (name and checksum are the down file's); the
-- version is pending again. Call it inside the down file's transaction.
CREATE FUNCTION keel.migration_reverted(version numeric, name text, checksum text, started_at timestamptz)
RETURNS bigint
LANGUAGE c VOLATILE PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'keel_migration_reverted';
COMMENT ON FUNCTION keel.migration_reverted(numeric, text, text, timestamptz) IS 'record that a migration''s down file ran; the version is pending again; returns the history id';
REVOKE ALL ON FUNCTION keel.migration_reverted(numeric, text, text, timestamptz) FROM PUBLIC;

-- The migration lock: the second half of its advisory key and the session
-- that holds it. Only keel's owner reads it (keel.migration_lock() is
-- SECURITY DEFINER), so a session holding the key that keel did not give it
-- to is found out, and keel moves to a new key (extension/migrations/
-- migration_lock.cpp). Not dumped: a restored database gets a new key.
CREATE TABLE keel.migration_lock_state (
    singleton       boolean PRIMARY KEY DEFAULT true
                    CONSTRAINT migration_lock_state_singleton_check CHECK (singleton),
    lock_key        integer NOT NULL,
    holder_pid      integer,
    holder_started  timestamptz,
    since           timestamptz
);
INSERT INTO keel.migration_lock_state (lock_key)
    VALUES (('x' OPERATOR(pg_catalog.||) pg_catalog.substr(pg_catalog.md5(pg_catalog.gen_random_uuid()::pg_catalog.text), 1, 8))::pg_catalog.bit(32)::integer);
REVOKE ALL ON keel.migration_lock_state FROM PUBLIC;
COMMENT ON TABLE keel.migration_lock_state IS 'the key of keel''s migration advisory lock and the session holding it; read only by keel.migration_lock()';

-- keel.migration_lock() / keel.migration_unlock(), 0.2.0: the lock on the
-- key above; KL004 names the holder and since when; a squatter is moved
-- away from. Granted to the roles that run migrations, not to PUBLIC.
CREATE OR REPLACE FUNCTION keel.migration_lock()
RETURNS void
LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'keel_migration_lock_v2';
CREATE OR REPLACE FUNCTION keel.migration_unlock()
RETURNS boolean
LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'keel_migration_unlock_v2';
REVOKE ALL ON FUNCTION keel.migration_lock() FROM PUBLIC;
REVOKE ALL ON FUNCTION keel.migration_unlock() FROM PUBLIC;

-- keel.migration_steps: the journal of a keel:no-transaction file, one row
-- per statement that completed (each commits on its own), keyed by the
-- attempt (version, started_at). After a failure, or a client killed
-- midway, keel migrate resumes at the first statement whose text differs
-- from the journal's or that has no row; keel status shows where it stopped.
--   step       1-based statement number in the file
--   line       the file line the statement starts on
--   checksum   SHA-256 of the statement's text
CREATE TABLE keel.migration_steps (
    version      numeric NOT NULL,
    started_at   timestamptz NOT NULL,
    step         integer NOT NULL CONSTRAINT migration_steps_step_check CHECK (step OPERATOR(pg_catalog.>) 0),
    line         integer CONSTRAINT migration_steps_line_check CHECK (line OPERATOR(pg_catalog.>) 0),
    checksum     text NOT NULL CONSTRAINT migration_steps_checksum_check CHECK (checksum OPERATOR(pg_catalog.~) '^[0-9a-f]{64}$'),
    finished_at  timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    PRIMARY KEY (version, started_at, step)
);
REVOKE ALL ON keel.migration_steps FROM PUBLIC;
GRANT SELECT ON keel.migration_steps TO PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('keel.migration_steps', '');
COMMENT ON TABLE keel.migration_steps IS 'statements completed by keel:no-transaction migrations, per attempt; written by keel.migration_step()';

-- keel.migration_step(version, started_at, step, line, checksum) -> void:
-- journal one completed statement of a keel:no-transaction file. Errors:
-- 22004 NULL version, started_at, step or checksum; 22023 step below 1,
-- malformed checksum, started_at in the future; KL005 the version is done.
CREATE FUNCTION keel.migration_step(version numeric, started_at timestamptz, step integer, line integer, checksum text)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $step$
BEGIN
    PERFORM keel.require_writable('keel.migration_step()');
    IF version IS NULL OR started_at IS NULL OR step IS NULL OR checksum IS NULL THEN
        RAISE EXCEPTION 'migration step arguments must not be null' USING ERRCODE = '22004';
    END IF;
    IF started_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp() THEN
        RAISE EXCEPTION 'migration started_at must be a finite time no later than now'
            USING ERRCODE = '22023', HINT = 'Pass the value keel.migration_start() returned.';
    END IF;
    IF EXISTS (SELECT 1 FROM keel.migration_history h
               WHERE h.version OPERATOR(pg_catalog.=) migration_step.version
                 AND h.status OPERATOR(pg_catalog.=) ANY (ARRAY['applied', 'superseded', 'baselined'])
                 AND h.revision OPERATOR(pg_catalog.=)
                     (SELECT pg_catalog.count(*)::integer FROM keel.migration_history r
                      WHERE r.version OPERATOR(pg_catalog.=) migration_step.version
                        AND r.status OPERATOR(pg_catalog.=) 'reverted')) THEN
        RAISE EXCEPTION 'cannot journal a step of migration %: it is already done', version
            USING ERRCODE = 'KL005';
    END IF;
    IF step OPERATOR(pg_catalog.<) 1 OR line OPERATOR(pg_catalog.<) 1 THEN
        RAISE EXCEPTION 'migration step and line must be 1 or more'
            USING ERRCODE = '22023', DETAIL = pg_catalog.format('The step given was %s, the line %s.', step, line);
    END IF;
    IF checksum OPERATOR(pg_catalog.!~) '^[0-9a-f]{64}$' THEN
        RAISE EXCEPTION 'migration step checksum must be 64 lowercase hexadecimal digits'
            USING ERRCODE = '22023', HINT = 'Pass the SHA-256 of the statement''s text.';
    END IF;
    INSERT INTO keel.migration_steps (version, started_at, step, line, checksum)
    VALUES (migration_step.version, migration_step.started_at, migration_step.step,
            migration_step.line, migration_step.checksum);
END
$step$;
COMMENT ON FUNCTION keel.migration_step(numeric, timestamptz, integer, integer, text) IS 'journal one completed statement of a keel:no-transaction migration';
REVOKE ALL ON FUNCTION keel.migration_step(numeric, timestamptz, integer, integer, text) FROM PUBLIC;

/* ---------------------------------------------------------------------------
 * Credits, 0.2.0: hold calls routed by account
 * ------------------------------------------------------------------------- */

-- keel.settle_hold(account, hold, amount) / keel.release_hold(account, hold):
-- as settle_hold(hold, amount) and release_hold(hold), with the hold looked
-- up by (account, hold). Under Citus (docs/scale-out.md) they are delegated
-- to the account's shard and touch nothing else; the one-argument forms
-- must search every shard for the hold. A hold of another account is
-- reported as not existing (22023), so a caller learns nothing of it.
CREATE FUNCTION keel.settle_hold(account uuid, hold uuid, amount bigint)
RETURNS bigint
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $settle$
BEGIN
    PERFORM keel.require_writable('keel.settle_hold()');
    IF account IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'account must not be null';
    END IF;
    RETURN keel.credit_close_hold(hold, amount, 'settled', account);
END
$settle$;
REVOKE ALL ON FUNCTION keel.settle_hold(uuid, uuid, bigint) FROM PUBLIC;
COMMENT ON FUNCTION keel.settle_hold(uuid, uuid, bigint) IS 'settle a hold of this account (single-shard under Citus); returns credits available';

CREATE FUNCTION keel.release_hold(account uuid, hold uuid)
RETURNS void
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $release$
BEGIN
    PERFORM keel.require_writable('keel.release_hold()');
    IF account IS NULL THEN
        RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'account must not be null';
    END IF;
    PERFORM keel.credit_close_hold(hold, NULL, 'released', account);
END
$release$;
REVOKE ALL ON FUNCTION keel.release_hold(uuid, uuid) FROM PUBLIC;
COMMENT ON FUNCTION keel.release_hold(uuid, uuid) IS 'release all of a hold of this account (single-shard under Citus)';

-- keel.credit_balance_row_ok(allocated, used, held, granted, plan_allocated):
-- the one CHECK of keel.credit_balances, in C: every part non-negative,
-- used <= allocated and used + held <= allocated (in credits). It replaces
-- credit_balances_used_check and credit_balances_parts_check, whose
-- expression trees PostgreSQL read back from their stored node strings on
-- every consumption (a fifth of it, profiled under pgbench; issue 13, "the
-- floor"). A NULL part is false (the columns are NOT NULL). Errors: none
-- (a violating row gets 23514 from the constraint).
CREATE FUNCTION keel.credit_balance_row_ok(allocated bigint, used bigint, held bigint, granted bigint, plan_allocated bigint)
RETURNS boolean
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'keel_credit_balance_row_ok';
COMMENT ON FUNCTION keel.credit_balance_row_ok(bigint, bigint, bigint, bigint, bigint) IS 'the CHECK of keel.credit_balances: parts non-negative, used + held <= allocated';
ALTER TABLE keel.credit_balances
    DROP CONSTRAINT credit_balances_used_check,
    DROP CONSTRAINT credit_balances_parts_check,
    ADD CONSTRAINT credit_balances_row_check
        CHECK (keel.credit_balance_row_ok(allocated, used, held, granted, plan_allocated));

-- keel.migration_history_row_ok(...): the one CHECK of
-- keel.migration_history, in C (extension/migrations/history_row_check.cpp).
-- It holds what the thirteen SQL CHECKs it replaces held (each passing on
-- NULL, as a CHECK does): a whole version >= 0; a non-empty name; 64
-- lowercase hex digits for checksum and token_checksum; a known status;
-- error exactly for failed rows, reason exactly for repaired rows,
-- superseded_by exactly for superseded rows (a whole number >= 0 other than
-- version); name and checksum except for superseded and repaired rows;
-- error_line > 0; finished_at >= started_at; revision >= 0; a five-character
-- [0-9A-Z] sqlstate. PostgreSQL read the thirteen back from 11 kB of stored
-- node text, with three regular expressions, at every history INSERT: most
-- of what keel.migration_applied cost per file (issue 12, tiny migrations).
-- Errors: none (a violating row gets 23514 from the constraint).
CREATE FUNCTION keel.migration_history_row_ok(version numeric, name text, checksum text, status text,
    error text, error_line integer, started_at timestamptz, finished_at timestamptz,
    superseded_by numeric, sqlstate text, reason text, token_checksum text, revision integer)
RETURNS boolean
LANGUAGE c IMMUTABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'keel_migration_history_row_ok';
COMMENT ON FUNCTION keel.migration_history_row_ok(numeric, text, text, text, text, integer, timestamptz, timestamptz, numeric, text, text, text, integer) IS 'the CHECK of keel.migration_history: what a history row must hold';
ALTER TABLE keel.migration_history
    DROP CONSTRAINT migration_history_checksum_check,
    DROP CONSTRAINT migration_history_error_check,
    DROP CONSTRAINT migration_history_error_line_check,
    DROP CONSTRAINT migration_history_file_check,
    DROP CONSTRAINT migration_history_finished_check,
    DROP CONSTRAINT migration_history_name_check,
    DROP CONSTRAINT migration_history_reason_check,
    DROP CONSTRAINT migration_history_revision_check,
    DROP CONSTRAINT migration_history_sqlstate_check,
    DROP CONSTRAINT migration_history_status_check,
    DROP CONSTRAINT migration_history_superseded_check,
    DROP CONSTRAINT migration_history_token_checksum_check,
    DROP CONSTRAINT migration_history_version_check,
    ADD CONSTRAINT migration_history_row_check
        CHECK (keel.migration_history_row_ok(version, name, checksum, status, error, error_line,
                                             started_at, finished_at, superseded_by, sqlstate,
                                             reason, token_checksum, revision));

-- Escrow for one hot account (issue 13: "hot throughput at least 0.8x
-- spread"). A balance row is one writer at a time, and its lock is held
-- across the commit's WAL flush, so one account's consumptions queue on it.
-- When a consumption had to wait for that lock, it lends its backend's slot
-- a small allowance from the balance (keel.credit_escrow); the backend's
-- next consumptions of that account take from its slot and leave the
-- balance row alone. Lending moves credits into the balance's used (so the
-- balance never lends what it does not have) and lent counts them until
-- the slots give back what they did not use (keel.credit_fold_escrow).
-- Every other credit function folds the slots first (keel.credit_lock_balance),
-- a consumption or batch that finds too few credits folds before it refuses,
-- and slots lend only while no grant is unburned, so grants still burn
-- first and no refusal is spurious. Available stays exact:
-- allocated - used - held + the slots' unused allowances.
--   keel.credit_balances.lent: credits lent to slots since the last fold
--   keel.credit_ledger kind 'escrow': amount lent to (> 0) or given back by
--     (< 0) slot escrow_slot, with the balance's figures after it
--   a 'consumption' with escrow_slot set came from that slot: its
--     allocated_after and used_after are the slot's allowance and used
--     after it (cumulative), held_after 0
ALTER TABLE keel.credit_balances
    ADD COLUMN lent bigint NOT NULL DEFAULT 0
        CONSTRAINT credit_balances_lent_check CHECK (lent OPERATOR(pg_catalog.>=) 0);
ALTER TABLE keel.credit_ledger ADD COLUMN escrow_slot integer;

-- keel.credit_escrow: one row per account, type and slot. allowance is all
-- the slot was ever lent minus what it gave back; used is all it consumed.
-- Both only grow, except that a fold sets allowance to used. slot is
-- MyBackendId modulo 32 (kEscrowSlots in extension/credits/consume_direct.cpp).
CREATE TABLE keel.credit_escrow (
    account      uuid NOT NULL,
    credit_type  text COLLATE "C" NOT NULL,
    slot         integer NOT NULL CONSTRAINT credit_escrow_slot_check
                 CHECK (slot OPERATOR(pg_catalog.>=) 0 AND slot OPERATOR(pg_catalog.<) 32),
    allowance    bigint NOT NULL DEFAULT 0,
    used         bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (account, credit_type, slot),
    CONSTRAINT credit_escrow_used_check
        CHECK (used OPERATOR(pg_catalog.>=) 0 AND used OPERATOR(pg_catalog.<=) allowance)
)
-- a few rows a page, so that backends updating their slots rarely share a
-- page, and pages are pruned before their update chains grow
WITH (fillfactor = 10);
COMMENT ON TABLE keel.credit_escrow IS 'escrow slots of hot accounts: credits lent by the balance, and what each slot consumed of them';
REVOKE ALL ON keel.credit_escrow FROM PUBLIC;
SELECT pg_catalog.pg_extension_config_dump('keel.credit_escrow', '');

-- keel.credit_fold_escrow(account, credit_type) -> bigint: gives every
-- slot's unused allowance back to the balance (one 'escrow' ledger row per
-- slot, amount < 0) and returns how many credits came back. Locks the
-- balance row, then the slots in slot order: the one lock order of escrow,
-- so a fold waits only for consumptions in flight on a slot. 0 when the
-- balance has nothing lent or no row.
CREATE FUNCTION keel.credit_fold_escrow(account uuid, credit_type text)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $fold$
DECLARE
    b keel.credit_balances;
    s record;
    total bigint := 0;
BEGIN
    SELECT * INTO b FROM keel.credit_balances x
     WHERE x.account OPERATOR(pg_catalog.=) credit_fold_escrow.account
       AND x.credit_type OPERATOR(pg_catalog.=) credit_fold_escrow.credit_type FOR UPDATE;
    IF NOT FOUND OR b.lent OPERATOR(pg_catalog.=) 0 THEN
        RETURN 0;
    END IF;
    FOR s IN SELECT e.slot, e.allowance OPERATOR(pg_catalog.-) e.used AS unused FROM keel.credit_escrow e
              WHERE e.account OPERATOR(pg_catalog.=) credit_fold_escrow.account
                AND e.credit_type OPERATOR(pg_catalog.=) credit_fold_escrow.credit_type
                AND e.allowance OPERATOR(pg_catalog.>) e.used
              ORDER BY e.slot FOR UPDATE LOOP
        UPDATE keel.credit_escrow e SET allowance = e.used
         WHERE e.account OPERATOR(pg_catalog.=) credit_fold_escrow.account
           AND e.credit_type OPERATOR(pg_catalog.=) credit_fold_escrow.credit_type
           AND e.slot OPERATOR(pg_catalog.=) s.slot;
        UPDATE keel.credit_balances x SET used = x.used OPERATOR(pg_catalog.-) s.unused
         WHERE x.account OPERATOR(pg_catalog.=) credit_fold_escrow.account
           AND x.credit_type OPERATOR(pg_catalog.=) credit_fold_escrow.credit_type
        RETURNING * INTO b;
        INSERT INTO keel.credit_ledger (account, credit_type, kind, amount, allocated_after, used_after, held_after,
                                        escrow_slot, description, actor)
        VALUES (account, credit_type, 'escrow', OPERATOR(pg_catalog.-) s.unused, b.allocated, b.used, b.held, s.slot,
                pg_catalog.format('Escrow slot %s gave back %s unused credits', s.slot, s.unused), keel.credit_actor());
        total := total OPERATOR(pg_catalog.+) s.unused;
    END LOOP;
    UPDATE keel.credit_balances x SET lent = 0
     WHERE x.account OPERATOR(pg_catalog.=) credit_fold_escrow.account
       AND x.credit_type OPERATOR(pg_catalog.=) credit_fold_escrow.credit_type;
    RETURN total;
END
$fold$;
REVOKE ALL ON FUNCTION keel.credit_fold_escrow(uuid, text) FROM PUBLIC;

-- keel.credit_lend_escrow(account, credit_type, slot, amount) -> boolean:
-- lends amount (> 0) credits of the balance to slot (one 'escrow' ledger
-- row); false, lending nothing, when the balance has fewer available or
-- an unburned grant (grants burn before the plan's credits, and a slot
-- holds plan credits only). Locks the balance row, then the slot.
CREATE FUNCTION keel.credit_lend_escrow(account uuid, credit_type text, slot integer, amount bigint)
RETURNS boolean
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $lend$
DECLARE
    b keel.credit_balances;
BEGIN
    SELECT * INTO b FROM keel.credit_balances x
     WHERE x.account OPERATOR(pg_catalog.=) credit_lend_escrow.account
       AND x.credit_type OPERATOR(pg_catalog.=) credit_lend_escrow.credit_type FOR UPDATE;
    IF NOT FOUND OR amount OPERATOR(pg_catalog.<=) 0 OR b.granted OPERATOR(pg_catalog.>) 0
       OR b.allocated OPERATOR(pg_catalog.-) b.used OPERATOR(pg_catalog.-) b.held OPERATOR(pg_catalog.<) amount THEN
        RETURN false;
    END IF;
    INSERT INTO keel.credit_escrow AS e (account, credit_type, slot, allowance)
    VALUES (account, credit_type, slot, amount)
    ON CONFLICT ON CONSTRAINT credit_escrow_pkey DO UPDATE SET allowance = e.allowance OPERATOR(pg_catalog.+) amount;
    UPDATE keel.credit_balances x
       SET used = x.used OPERATOR(pg_catalog.+) amount, lent = x.lent OPERATOR(pg_catalog.+) amount
     WHERE x.account OPERATOR(pg_catalog.=) credit_lend_escrow.account
       AND x.credit_type OPERATOR(pg_catalog.=) credit_lend_escrow.credit_type
    RETURNING * INTO b;
    INSERT INTO keel.credit_ledger (account, credit_type, kind, amount, allocated_after, used_after, held_after,
                                    escrow_slot, description, actor)
    VALUES (account, credit_type, 'escrow', amount, b.allocated, b.used, b.held, slot,
            pg_catalog.format('Lent %s credits to escrow slot %s', amount, slot), keel.credit_actor());
    RETURN true;
END
$lend$;
REVOKE ALL ON FUNCTION keel.credit_lend_escrow(uuid, text, integer, bigint) FROM PUBLIC;

-- keel.credit_lock_balance(account, credit_type) (0.2.0, escrow): as
-- before, the balance row locked FOR UPDATE, created empty when missing;
-- its escrow slots folded back first, so the caller sees every credit.
CREATE OR REPLACE FUNCTION keel.credit_lock_balance(account uuid, credit_type text)
RETURNS keel.credit_balances
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $lock$
DECLARE
    b keel.credit_balances;
BEGIN
    SELECT * INTO b FROM keel.credit_balances x
     WHERE x.account OPERATOR(pg_catalog.=) credit_lock_balance.account
       AND x.credit_type OPERATOR(pg_catalog.=) credit_lock_balance.credit_type FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO keel.credit_balances AS x (account, credit_type) VALUES (account, credit_type)
        ON CONFLICT ON CONSTRAINT credit_balances_pkey DO NOTHING;
        SELECT * INTO b FROM keel.credit_balances x
         WHERE x.account OPERATOR(pg_catalog.=) credit_lock_balance.account
           AND x.credit_type OPERATOR(pg_catalog.=) credit_lock_balance.credit_type FOR UPDATE;
    END IF;
    IF b.lent OPERATOR(pg_catalog.>) 0 THEN
        PERFORM keel.credit_fold_escrow(account, credit_type);
        SELECT * INTO b FROM keel.credit_balances x
         WHERE x.account OPERATOR(pg_catalog.=) credit_lock_balance.account
           AND x.credit_type OPERATOR(pg_catalog.=) credit_lock_balance.credit_type;
    END IF;
    RETURN b;
END
$lock$;

-- keel.verify_credits() (0.2.0, escrow): as before, and the escrow slots:
-- escrow_mismatch (a slot's allowance or used vs. its ledger rows, or
-- more unused in the slots than the balance lent) and the running totals of
-- each slot's consumptions.
CREATE OR REPLACE FUNCTION keel.verify_credits()
RETURNS TABLE (account uuid, credit_type text, problem text, detail text)
LANGUAGE sql STABLE PARALLEL RESTRICTED SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
WITH signed AS (
    SELECT l.id, l.account, l.credit_type, l.kind, l.allocated_after, l.used_after, l.held_after,
           CASE WHEN l.kind OPERATOR(pg_catalog.=) ANY (ARRAY['allocation', 'grant', 'expiry']) THEN l.amount ELSE 0 END AS d_allocated,
           CASE WHEN l.kind OPERATOR(pg_catalog.=) 'allocation' THEN l.amount ELSE 0 END AS d_plan,
           CASE WHEN l.kind OPERATOR(pg_catalog.=) 'consumption' AND l.escrow_slot IS NOT NULL THEN 0
                WHEN l.kind OPERATOR(pg_catalog.=) ANY (ARRAY['consumption', 'escrow']) THEN l.amount
                WHEN l.kind OPERATOR(pg_catalog.=) 'refund' THEN OPERATOR(pg_catalog.-) l.amount ELSE 0 END AS d_used,
           l.kind OPERATOR(pg_catalog.=) 'consumption' AND l.escrow_slot IS NOT NULL AS from_slot, l.escrow_slot,
           CASE WHEN l.kind OPERATOR(pg_catalog.=) 'escrow' THEN l.amount ELSE 0 END AS d_allowance,
           CASE WHEN l.kind OPERATOR(pg_catalog.=) 'consumption' AND l.escrow_slot IS NOT NULL THEN l.amount ELSE 0 END AS d_slot_used,
           CASE l.kind WHEN 'hold' THEN l.amount WHEN 'release' THEN OPERATOR(pg_catalog.-) l.amount ELSE 0 END AS d_held
      FROM keel.credit_ledger l
),
sums AS (
    SELECT s.account, s.credit_type, pg_catalog.sum(s.d_allocated) AS allocated, pg_catalog.sum(s.d_plan) AS plan_allocated,
           pg_catalog.sum(s.d_used) AS used, pg_catalog.sum(s.d_held) AS held
      FROM signed s GROUP BY s.account, s.credit_type
),
running AS (
    SELECT s.id, s.account, s.credit_type, s.allocated_after, s.used_after, s.held_after,
           pg_catalog.sum(s.d_allocated) OVER w AS allocated_sum, pg_catalog.sum(s.d_used) OVER w AS used_sum,
           pg_catalog.sum(s.d_held) OVER w AS held_sum
      FROM signed s WHERE NOT s.from_slot
    WINDOW w AS (PARTITION BY s.account, s.credit_type ORDER BY s.id)
),
slot_running AS (
    SELECT s.id, s.account, s.credit_type, s.escrow_slot, s.from_slot, s.allocated_after, s.used_after, s.held_after,
           pg_catalog.sum(s.d_allowance) OVER w AS allowance_sum, pg_catalog.sum(s.d_slot_used) OVER w AS slot_used_sum
      FROM signed s WHERE s.escrow_slot IS NOT NULL
    WINDOW w AS (PARTITION BY s.account, s.credit_type, s.escrow_slot ORDER BY s.id)
),
slot_sums AS (
    SELECT s.account, s.credit_type, s.escrow_slot AS slot, pg_catalog.sum(s.d_allowance) AS allowance,
           pg_catalog.sum(s.d_slot_used) AS used
      FROM signed s WHERE s.escrow_slot IS NOT NULL GROUP BY s.account, s.credit_type, s.escrow_slot
),
slots AS (
    SELECT COALESCE(e.account, s.account) AS account, COALESCE(e.credit_type, s.credit_type) AS credit_type,
           COALESCE(e.slot, s.slot) AS slot, COALESCE(e.allowance, 0) AS allowance, COALESCE(e.used, 0) AS used,
           COALESCE(s.allowance, 0) AS l_allowance, COALESCE(s.used, 0) AS l_used
      FROM keel.credit_escrow e
      FULL JOIN slot_sums s ON s.account OPERATOR(pg_catalog.=) e.account AND s.credit_type OPERATOR(pg_catalog.=) e.credit_type
                           AND s.slot OPERATOR(pg_catalog.=) e.slot
),
unused AS (
    SELECT e.account, e.credit_type, pg_catalog.sum(e.allowance OPERATOR(pg_catalog.-) e.used) AS unused
      FROM keel.credit_escrow e GROUP BY e.account, e.credit_type
),
grants AS (
    SELECT g.account, g.credit_type, pg_catalog.sum(g.remaining) AS remaining
      FROM keel.credit_grants g GROUP BY g.account, g.credit_type
),
holds AS (
    SELECT h.account, h.credit_type, pg_catalog.sum(h.amount) AS held
      FROM keel.credit_holds h WHERE h.state OPERATOR(pg_catalog.=) 'open' GROUP BY h.account, h.credit_type
),
bal AS (
    SELECT b.*, COALESCE(s.allocated, 0) AS l_allocated, COALESCE(s.plan_allocated, 0) AS l_plan,
           COALESCE(s.used, 0) AS l_used, COALESCE(s.held, 0) AS l_held,
           COALESCE(g.remaining, 0) AS g_remaining, COALESCE(h.held, 0) AS h_held, COALESCE(u.unused, 0) AS unused
      FROM keel.credit_balances b
      LEFT JOIN sums s ON s.account OPERATOR(pg_catalog.=) b.account AND s.credit_type OPERATOR(pg_catalog.=) b.credit_type
      LEFT JOIN grants g ON g.account OPERATOR(pg_catalog.=) b.account AND g.credit_type OPERATOR(pg_catalog.=) b.credit_type
      LEFT JOIN holds h ON h.account OPERATOR(pg_catalog.=) b.account AND h.credit_type OPERATOR(pg_catalog.=) b.credit_type
      LEFT JOIN unused u ON u.account OPERATOR(pg_catalog.=) b.account AND u.credit_type OPERATOR(pg_catalog.=) b.credit_type
)
SELECT b.account, b.credit_type, 'allocated_mismatch',
       format('The balance has %s credits allocated; its ledger allocations, grants and expiries sum to %s.', b.allocated, b.l_allocated)
  FROM bal b WHERE b.allocated OPERATOR(pg_catalog.<>) b.l_allocated
UNION ALL
SELECT b.account, b.credit_type, 'plan_mismatch',
       format('The balance has %s credits allocated by plan; its ledger allocations sum to %s.', b.plan_allocated, b.l_plan)
  FROM bal b WHERE b.plan_allocated OPERATOR(pg_catalog.<>) b.l_plan
UNION ALL
SELECT b.account, b.credit_type, 'used_mismatch',
       format('The balance has %s credits used; its ledger consumptions minus refunds, with what it lent to escrow slots, sum to %s.', b.used, b.l_used)
  FROM bal b WHERE b.used OPERATOR(pg_catalog.<>) b.l_used
UNION ALL
SELECT b.account, b.credit_type, 'held_mismatch',
       format('The balance has %s credits held; its ledger holds minus releases sum to %s and its open holds to %s.',
              b.held, b.l_held, b.h_held)
  FROM bal b WHERE b.held OPERATOR(pg_catalog.<>) b.l_held OR b.held OPERATOR(pg_catalog.<>) b.h_held
UNION ALL
SELECT b.account, b.credit_type, 'granted_mismatch',
       format('The balance has %s unburned grant credits; its grants have %s remaining.', b.granted, b.g_remaining)
  FROM bal b WHERE b.granted OPERATOR(pg_catalog.<>) b.g_remaining
UNION ALL
SELECT b.account, b.credit_type, 'over_allocated',
       format('%s credits are used, %s held and %s granted unburned, but only %s are allocated.', b.used, b.held, b.granted, b.allocated)
  FROM bal b WHERE b.used OPERATOR(pg_catalog.+) b.held OPERATOR(pg_catalog.>) b.allocated
            OR b.used OPERATOR(pg_catalog.+) b.granted OPERATOR(pg_catalog.>) b.allocated
UNION ALL
SELECT b.account, b.credit_type, 'negative_balance',
       format('The balance has %s allocated, %s used, %s held and %s granted; none may be negative.', b.allocated, b.used, b.held, b.granted)
  FROM bal b WHERE b.allocated OPERATOR(pg_catalog.<) 0 OR b.used OPERATOR(pg_catalog.<) 0 OR b.held OPERATOR(pg_catalog.<) 0
            OR b.granted OPERATOR(pg_catalog.<) 0
UNION ALL
SELECT b.account, b.credit_type, 'escrow_mismatch',
       format('The escrow slots hold %s unused credits, but the balance has %s lent.', b.unused, b.lent)
  FROM bal b WHERE b.unused OPERATOR(pg_catalog.>) b.lent OR b.unused OPERATOR(pg_catalog.<) 0
UNION ALL
SELECT s.account, s.credit_type, 'escrow_mismatch',
       format('Escrow slot %s has %s credits lent and %s used; its ledger rows sum to %s and %s.',
              s.slot, s.allowance, s.used, s.l_allowance, s.l_used)
  FROM slots s WHERE s.allowance OPERATOR(pg_catalog.<>) s.l_allowance OR s.used OPERATOR(pg_catalog.<>) s.l_used
UNION ALL
SELECT r.account, r.credit_type, 'running_total_mismatch',
       format('Ledger entry %s records %s lent and %s used in escrow slot %s; the entries of the slot up to it sum to %s and %s.',
              r.id, r.allocated_after, r.used_after, r.escrow_slot, r.allowance_sum, r.slot_used_sum)
  FROM slot_running r
 WHERE r.from_slot AND (r.allocated_after OPERATOR(pg_catalog.<>) r.allowance_sum
                        OR r.used_after OPERATOR(pg_catalog.<>) r.slot_used_sum OR r.held_after OPERATOR(pg_catalog.<>) 0)
UNION ALL
SELECT s.account, s.credit_type, 'ledger_without_balance',
       format('The ledger has entries (%s allocated, %s used) but there is no balance row.', s.allocated, s.used)
  FROM sums s
 WHERE NOT EXISTS (SELECT FROM keel.credit_balances b
                    WHERE b.account OPERATOR(pg_catalog.=) s.account AND b.credit_type OPERATOR(pg_catalog.=) s.credit_type)
UNION ALL
SELECT r.account, r.credit_type, 'running_total_mismatch',
       format('Ledger entry %s records %s allocated, %s used and %s held; the entries up to it sum to %s, %s and %s.',
              r.id, r.allocated_after, r.used_after, r.held_after, r.allocated_sum, r.used_sum, r.held_sum)
  FROM running r
 WHERE r.allocated_after OPERATOR(pg_catalog.<>) r.allocated_sum OR r.used_after OPERATOR(pg_catalog.<>) r.used_sum
    OR r.held_after OPERATOR(pg_catalog.<>) r.held_sum
UNION ALL
SELECT s.account, s.credit_type, 'unknown_credit_type',
       format('Credit type %L has ledger entries but is not in keel.credit_types.', s.credit_type)
  FROM sums s
 WHERE NOT EXISTS (SELECT FROM keel.credit_types t WHERE t.credit_type OPERATOR(pg_catalog.=) s.credit_type)
UNION ALL
SELECT c.account, c.credit_type, 'over_refunded',
       format('Consumption %s of %s credits has %s refunded.', c.id, c.amount, pg_catalog.sum(r.amount))
  FROM keel.credit_ledger c JOIN keel.credit_ledger r ON r.refund_of OPERATOR(pg_catalog.=) c.id
 WHERE c.kind OPERATOR(pg_catalog.=) 'consumption'
 GROUP BY c.id, c.account, c.credit_type, c.amount
HAVING pg_catalog.sum(r.amount) OPERATOR(pg_catalog.>) c.amount
UNION ALL
SELECT i.account, i.credit_type, 'idempotency_without_ledger',
       format('Idempotency key %L (%s) has no matching ledger entry.', i.idempotency_key, i.operation)
  FROM keel.credit_idempotency i
 WHERE NOT EXISTS (SELECT FROM keel.credit_ledger l
                    WHERE l.id OPERATOR(pg_catalog.=) i.ledger_id
                      AND l.kind OPERATOR(pg_catalog.=) CASE i.operation WHEN 'consume' THEN 'consumption' ELSE i.operation END
                      AND l.account OPERATOR(pg_catalog.=) i.account
                      AND l.credit_type OPERATOR(pg_catalog.=) i.credit_type
                      AND (i.operation OPERATOR(pg_catalog.<>) 'consume' OR l.amount OPERATOR(pg_catalog.=) i.amount)
                      AND l.idempotency_key OPERATOR(pg_catalog.=) i.idempotency_key)
$$;
COMMENT ON FUNCTION keel.verify_credits() IS 'one row per inconsistency between credit balances, grants, holds and the ledger; none when sound; not executable by PUBLIC';
REVOKE ALL ON FUNCTION keel.verify_credits() FROM PUBLIC;
