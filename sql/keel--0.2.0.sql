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
CREATE INDEX credit_ledger_account_idx ON keel.credit_ledger (account, credit_type, id);
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
