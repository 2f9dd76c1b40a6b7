--
-- credits: keel.allocate_plan_credits, keel.get_available_credits,
-- keel.consume_credits, keel.consume_specific_credits and keel.verify_credits
-- (sql/keel--0.1.0.sql, region "credits"; extension/credits/credits.cpp).
-- Rules from seed 003 ("Multi-Credit Migration", step 2.2). Every refused call
-- is followed by its SQLSTATE; accounts are fixed uuid literals and no
-- timestamp is printed, so the output is deterministic.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS keel;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- The built-in credit types and plan rules (seed 003's table).
SELECT credit_type, builtin FROM keel.credit_types ORDER BY credit_type;
SELECT plan, credit_type, fixed_amount, share, floor_amount
  FROM keel.credit_plans ORDER BY plan, credit_type;

--
-- Allocation by plan.
--
-- enterprise and premium: fixed amounts, whatever the total
SELECT * FROM keel.allocate_plan_credits('00000000-0000-0000-0000-00000000000e', 'enterprise', 999999);
SELECT * FROM keel.allocate_plan_credits('00000000-0000-0000-0000-00000000000f', 'premium');
-- any other plan: a share of the total with floors; 12345 * 0.4 = 4938,
-- 12345 * 0.3 = 3703.5 -> 3704 (half away from zero), 12345 * 0.1 = 1234.5 -> 1235
SELECT * FROM keel.allocate_plan_credits('00000000-0000-0000-0000-000000000001', 'basic', 12345);
-- total 0 (the default) and NULL total (the seed's COALESCE) give the floors
SELECT * FROM keel.allocate_plan_credits('00000000-0000-0000-0000-000000000002', 'free');
SELECT * FROM keel.allocate_plan_credits('00000000-0000-0000-0000-000000000003', 'free', NULL);
-- every allocation wrote one ledger row per type
SELECT account, credit_type, kind, amount, allocated_after, used_after, plan, total_credits, description
  FROM keel.credit_ledger ORDER BY id;

--
-- Available credits and consumption.
--
SELECT keel.get_available_credits('00000000-0000-0000-0000-000000000001', 'ai') AS ai_available;
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000001', 'ai', 38) AS ai_remaining;
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000001', 'sms', 35, 'campaign 7') AS sms_remaining;
SELECT keel.get_available_credits('00000000-0000-0000-0000-000000000001', 'ai') AS ai_available;
-- an account with nothing allocated has 0 available (as the seed)
SELECT keel.get_available_credits('00000000-0000-0000-0000-0000000000ff', 'email') AS unknown_account;
-- consuming everything that is left is allowed, one more credit is not
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000001', 'sms', 1200) AS sms_remaining;

--
-- Over-consumption: KL002, and nothing changes.
--
-- one credit more than is left
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000001', 'sms', 1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- far more than is left
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000001', 'ai', 1000000);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- an account with nothing allocated
SELECT keel.consume_credits('00000000-0000-0000-0000-0000000000ff', 'ai', 1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- inside a transaction that goes on: the error aborts only what failed
BEGIN;
SAVEPOINT s;
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000001', 'ai', 4901);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK TO SAVEPOINT s;
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000001', 'ai', 100) AS ai_remaining;
COMMIT;
SELECT credit_type, allocated, used FROM keel.credit_balances
 WHERE account = '00000000-0000-0000-0000-000000000001' ORDER BY credit_type;
SELECT count(*) AS consumption_rows FROM keel.credit_ledger WHERE kind = 'consumption';

--
-- Bad input: each case on its own line, with its SQLSTATE. The state before,
-- to show afterwards that no refused call changed anything:
--
SELECT keel.consume_credits('00000000-0000-0000-0000-00000000000e', 'email', 15000) AS email_remaining;
SELECT count(*) AS balances_before, sum(allocated) AS allocated_before, sum(used) AS used_before
  FROM keel.credit_balances \gset
SELECT count(*) AS ledger_before FROM keel.credit_ledger \gset
-- unknown credit type (22023, HINT lists the known types)
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000001', 'fax', 1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- unknown credit type in get_available_credits (22023; the seed returned 0)
SELECT keel.get_available_credits('00000000-0000-0000-0000-000000000001', 'AI');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- negative amount (22023)
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000001', 'ai', -5);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- zero amount (22023)
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000001', 'ai', 0);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- NULL account (22004)
SELECT keel.consume_credits(NULL, 'ai', 1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- NULL credit type (22004)
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000001', NULL, 1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- NULL amount (22004)
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000001', 'ai', NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- NULL account in get_available_credits (22004)
SELECT keel.get_available_credits(NULL, 'ai');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- NULL credit type in get_available_credits (22004)
SELECT keel.get_available_credits('00000000-0000-0000-0000-000000000001', NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- empty idempotency key (22023)
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000001', 'ai', 1, NULL, '');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- negative total credits (22023)
SELECT * FROM keel.allocate_plan_credits('00000000-0000-0000-0000-000000000004', 'basic', -1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- NULL account in allocate_plan_credits (22004)
SELECT * FROM keel.allocate_plan_credits(NULL, 'basic', 10);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- NULL plan (22004)
SELECT * FROM keel.allocate_plan_credits('00000000-0000-0000-0000-000000000004', NULL, 10);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- empty plan (22023)
SELECT * FROM keel.allocate_plan_credits('00000000-0000-0000-0000-000000000004', '', 10);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- a share of a total so large the allocation exceeds bigint (22003)
INSERT INTO keel.credit_plans (plan, credit_type, share, floor_amount) VALUES ('whale', 'ai', 1000, 0);
SELECT * FROM keel.allocate_plan_credits('00000000-0000-0000-0000-000000000004', 'whale', 9223372036854775807);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DELETE FROM keel.credit_plans WHERE plan = 'whale';
-- downgrading below what was already used (23514, as the seed's CHECK)
SELECT * FROM keel.allocate_plan_credits('00000000-0000-0000-0000-00000000000e', 'basic', 100);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- none of the refused calls changed anything
SELECT count(*) = :balances_before AS same_balances, sum(allocated) = :allocated_before AS same_allocated,
       sum(used) = :used_before AS same_used
  FROM keel.credit_balances;
SELECT count(*) = :ledger_before AS same_ledger FROM keel.credit_ledger;

--
-- Re-allocation keeps what was used and writes the change to the ledger.
--
-- account ...01 had basic with 12345 and used 138 ai and 1235 sms credits
SELECT * FROM keel.allocate_plan_credits('00000000-0000-0000-0000-000000000001', 'basic', 20000);
SELECT credit_type, kind, amount, allocated_after, used_after FROM keel.credit_ledger
 WHERE account = '00000000-0000-0000-0000-000000000001' AND kind = 'allocation' AND total_credits = 20000
 ORDER BY credit_type;
SELECT count(*) AS problems FROM keel.verify_credits();

--
-- Idempotency keys.
--
-- first use consumes
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000002', 'email', 10, 'newsletter', 'req-1') AS remaining;
-- the same call again returns the same result and consumes nothing
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000002', 'email', 10, 'newsletter', 'req-1') AS remaining;
SELECT keel.get_available_credits('00000000-0000-0000-0000-000000000002', 'email') AS email_available;
SELECT count(*) AS ledger_rows_for_key FROM keel.credit_ledger WHERE idempotency_key = 'req-1';
-- the same key with another amount (KL003)
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000002', 'email', 11, 'newsletter', 'req-1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- the same key with another description (KL003)
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000002', 'email', 10, NULL, 'req-1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- the same key for another account is that account's own key (0.2.0: keys
-- are scoped to their account, and no message names another account)
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000003', 'email', 10, 'newsletter', 'req-1');
-- a key whose consumption failed is not recorded, so a retry can succeed
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000002', 'sms', 101, NULL, 'req-2');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000002', 'sms', 100, NULL, 'req-2') AS remaining;
SELECT idempotency_key, account, credit_type, amount, description, remaining
  FROM keel.credit_idempotency ORDER BY idempotency_key, account;

--
-- consume_specific_credits: the seed's signature, drop-in.
--
SELECT keel.consume_specific_credits('00000000-0000-0000-0000-00000000000f', 'whatsapp', 200) AS consumed;
SELECT keel.consume_specific_credits('00000000-0000-0000-0000-00000000000f', 'whatsapp', 1000, 'bulk send') AS consumed;
-- the seed raised 'Insufficient whatsapp credits'; keel raises KL002
SELECT keel.consume_specific_credits('00000000-0000-0000-0000-00000000000f', 'whatsapp', 1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- the seed raised 'Invalid credit type'; keel raises 22023
SELECT keel.consume_specific_credits('00000000-0000-0000-0000-00000000000f', 'pigeon', 1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- the seed let a negative amount add credits; keel raises 22023
SELECT keel.consume_specific_credits('00000000-0000-0000-0000-00000000000f', 'ai', -100);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT description FROM keel.credit_ledger
 WHERE account = '00000000-0000-0000-0000-00000000000f' AND kind = 'consumption' ORDER BY id;

--
-- The ledger is append-only, even for its owner (42501).
--
-- UPDATE is refused
UPDATE keel.credit_ledger SET amount = 0 WHERE kind = 'consumption';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- DELETE is refused
DELETE FROM keel.credit_ledger;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- TRUNCATE is refused
TRUNCATE keel.credit_ledger;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT privilege_type FROM information_schema.role_table_grants
 WHERE table_schema = 'keel' AND table_name = 'credit_ledger' AND grantee = 'PUBLIC';

--
-- verify_credits(): no rows when sound.
--
SELECT * FROM keel.verify_credits();
-- a balance changed behind the ledger's back is reported (then put back)
BEGIN;
UPDATE keel.credit_balances SET used = used + 1
 WHERE account = '00000000-0000-0000-0000-000000000002' AND credit_type = 'ai';
SELECT * FROM keel.verify_credits();
ROLLBACK;
SELECT count(*) AS problems FROM keel.verify_credits();

--
-- An ordinary role can neither read nor consume any account until it is
-- granted EXECUTE (0.2.0, issue 13: any role could drain any account);
-- allocation and verification need their own GRANT; the tables stay closed.
--
CREATE ROLE regress_keel_credits_app LOGIN;
SET ROLE regress_keel_credits_app;
SELECT keel.get_available_credits('00000000-0000-0000-0000-000000000003', 'ai');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000003', 'ai', 1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.consume_specific_credits('00000000-0000-0000-0000-000000000003', 'ai', 1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;
GRANT EXECUTE ON FUNCTION keel.get_available_credits(uuid, text),
    keel.consume_credits(uuid, text, bigint, text, text),
    keel.consume_specific_credits(uuid, text, integer, text) TO regress_keel_credits_app;
SET ROLE regress_keel_credits_app;
SELECT keel.get_available_credits('00000000-0000-0000-0000-000000000003', 'ai') AS ai_available;
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000003', 'ai', 25, 'chat reply') AS ai_remaining;
SELECT keel.consume_specific_credits('00000000-0000-0000-0000-000000000003', 'ai', 5) AS consumed;
-- allocation without the grant (42501)
SELECT * FROM keel.allocate_plan_credits('00000000-0000-0000-0000-000000000005', 'premium');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- verification without the grant (42501)
SELECT * FROM keel.verify_credits();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- direct access to the balances (42501)
SELECT * FROM keel.credit_balances;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- direct writes to the ledger (42501)
INSERT INTO keel.credit_ledger (account, credit_type, kind, amount, allocated_after, used_after, actor)
VALUES ('00000000-0000-0000-0000-000000000003', 'ai', 'allocation', 1000000, 1000000, 0, 'x');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;
GRANT EXECUTE ON FUNCTION keel.allocate_plan_credits(uuid, text, bigint), keel.verify_credits()
   TO regress_keel_credits_app;
SET ROLE regress_keel_credits_app;
SELECT * FROM keel.allocate_plan_credits('00000000-0000-0000-0000-000000000005', 'premium');
SELECT count(*) AS problems FROM keel.verify_credits();
RESET ROLE;
-- the ledger records the calling role, not the functions' owner
SELECT actor = 'regress_keel_credits_app' AS by_app_role, kind, count(*) FROM keel.credit_ledger
 WHERE account IN ('00000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-000000000005')
 GROUP BY 1, 2 ORDER BY 1, 2;
REVOKE EXECUTE ON FUNCTION keel.allocate_plan_credits(uuid, text, bigint), keel.verify_credits(),
    keel.get_available_credits(uuid, text), keel.consume_credits(uuid, text, bigint, text, text),
    keel.consume_specific_credits(uuid, text, integer, text)
   FROM regress_keel_credits_app;
DROP ROLE regress_keel_credits_app;

-- A description longer than 1,024 bytes is refused (22001): the ledger keeps every byte.
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000003', 'ai', 1, repeat('x', 1025));
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000003', 'ai', 1, repeat('x', 1024)) > 0 AS fits;

-- keel.consume_credits_batch: one call, one row per item; by default each item
-- succeeds or fails alone; atomic: all or nothing; bad arrays are 22023.
SELECT * FROM keel.consume_credits_batch(
    ARRAY['00000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-000000000003',
          '00000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-000000000003']::uuid[],
    ARRAY['ai', 'ai', 'no_such_type', 'ai'],
    ARRAY[1, 1000000, 1, -1]::bigint[],
    ARRAY['b-1', NULL, NULL, NULL], 'batch');
-- the same key again replays, charging nothing
SELECT * FROM keel.consume_credits_batch(ARRAY['00000000-0000-0000-0000-000000000003']::uuid[],
    ARRAY['ai'], ARRAY[1]::bigint[], ARRAY['b-1'], 'batch');
SELECT keel.get_available_credits('00000000-0000-0000-0000-000000000003', 'ai') AS before_atomic \gset
SELECT * FROM keel.consume_credits_batch(
    ARRAY['00000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-000000000003']::uuid[],
    ARRAY['ai', 'ai'], ARRAY[1, 1000000]::bigint[], NULL, 'batch', true);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.get_available_credits('00000000-0000-0000-0000-000000000003', 'ai') = :before_atomic AS nothing_changed;
SELECT * FROM keel.consume_credits_batch(ARRAY['00000000-0000-0000-0000-000000000003']::uuid[],
    ARRAY['ai', 'sms'], ARRAY[1]::bigint[]);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) AS empty_batch FROM keel.consume_credits_batch('{}'::uuid[], '{}'::text[], '{}'::bigint[]);
SELECT count(*) AS problems FROM keel.verify_credits();
-- the balance row's CHECK (keel.credit_balance_row_ok) holds even against
-- the table's owner writing it directly: used above allocated, a negative
-- part, used + held above allocated; each 23514 and nothing changes
SELECT allocated, used, held FROM keel.credit_balances
 WHERE account = '00000000-0000-0000-0000-000000000003' AND credit_type = 'ai' \gset row_
UPDATE keel.credit_balances SET used = allocated + 1
 WHERE account = '00000000-0000-0000-0000-000000000003' AND credit_type = 'ai';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
UPDATE keel.credit_balances SET granted = -1
 WHERE account = '00000000-0000-0000-0000-000000000003' AND credit_type = 'ai';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
UPDATE keel.credit_balances SET held = allocated - used + 1
 WHERE account = '00000000-0000-0000-0000-000000000003' AND credit_type = 'ai';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT allocated = :row_allocated AND used = :row_used AND held = :row_held AS unchanged
  FROM keel.credit_balances
 WHERE account = '00000000-0000-0000-0000-000000000003' AND credit_type = 'ai';
SELECT keel.credit_balance_row_ok(10, 4, 6, 0, 10) AS edge_ok,
       keel.credit_balance_row_ok(10, 4, 7, 0, 10) AS over,
       keel.credit_balance_row_ok(9223372036854775807, 0, 9223372036854775807, 0, 0) AS max_ok,
       keel.credit_balance_row_ok(10, -1, 0, 0, 10) AS negative,
       keel.credit_balance_row_ok(10, NULL, 0, 0, 10) AS null_part;
-- The fast path of consume_credits (extension/credits/consume_direct.cpp)
-- and the SQL it falls back to agree. Two consumptions in one transaction:
-- the second sees the first.
SELECT keel.get_available_credits('00000000-0000-0000-0000-000000000003', 'ai') AS before_two \gset
BEGIN;
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000003', 'ai', 2) = :before_two - 2 AS first;
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000003', 'ai', 3) = :before_two - 5 AS second;
COMMIT;
-- REPEATABLE READ and SERIALIZABLE take the SQL path: the same result
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000003', 'ai', 1) = :before_two - 6 AS repeatable_read;
COMMIT;
BEGIN ISOLATION LEVEL SERIALIZABLE;
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000003', 'ai', 1) = :before_two - 7 AS serializable;
COMMIT;
-- a ledger with a column the fast path does not know gets its default from
-- the SQL path (rolled back: keel's tables stay as shipped)
BEGIN;
ALTER TABLE keel.credit_ledger ADD COLUMN regress_note text DEFAULT 'from the default';
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000003', 'ai', 1) = :before_two - 8 AS with_new_column;
SELECT regress_note, description, kind, amount FROM keel.credit_ledger
 WHERE account = '00000000-0000-0000-0000-000000000003' ORDER BY id DESC LIMIT 1;
ROLLBACK;
-- a CHECK added to the ledger holds on the fast path too, which keeps the
-- tables' CHECK trees between calls and reads them again when a table
-- changes (NOT VALID: for new rows only; rolled back)
BEGIN;
ALTER TABLE keel.credit_ledger ADD CONSTRAINT regress_small CHECK (amount OPERATOR(pg_catalog.<) 2) NOT VALID;
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000003', 'ai', 1) = :before_two - 8 AS small_ok;
SAVEPOINT too_big;
\set VERBOSITY terse
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000003', 'ai', 2);
\set VERBOSITY default
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO too_big;
ROLLBACK;
-- the fast path's ledger row: what the SQL path writes, key and default
-- description included; the key replays without a second row
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000003', 'ai', 4, NULL, 'fast-1') = :before_two - 11 AS fast;
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000003', 'ai', 4, NULL, 'fast-1') = :before_two - 11 AS replayed;
SELECT kind, amount, allocated_after - used_after - held_after = :before_two - 11 AS after_ok,
       description, idempotency_key, actor = current_user AS actor_ok,
       recorded_at <= now() AS recorded_ok, plan IS NULL AND grant_id IS NULL AND hold_id IS NULL
       AND refund_of IS NULL AS rest_null,
       id = (SELECT max(id) FROM keel.credit_ledger) AS newest
  FROM keel.credit_ledger
 WHERE account = '00000000-0000-0000-0000-000000000003' ORDER BY id DESC LIMIT 1;
SELECT count(*) AS problems FROM keel.verify_credits();
-- a keyed batch on the SQL path (REPEATABLE READ) records its keys as the
-- fast path does: the replay returns the first result and charges nothing
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT item, remaining IS NOT NULL AS has_remaining, error_code FROM keel.consume_credits_batch(
    ARRAY['00000000-0000-0000-0000-000000000003', '00000000-0000-0000-0000-000000000003']::uuid[],
    ARRAY['ai', 'ai'], ARRAY[1, 2]::bigint[], ARRAY['rr-1', 'rr-2']);
COMMIT;
SELECT keel.get_available_credits('00000000-0000-0000-0000-000000000003', 'ai') AS after_rr \gset
SELECT (SELECT remaining FROM keel.consume_credits_batch(
            ARRAY['00000000-0000-0000-0000-000000000003']::uuid[], ARRAY['ai'],
            ARRAY[2]::bigint[], ARRAY['rr-2'])) = :after_rr AS replayed,
       keel.get_available_credits('00000000-0000-0000-0000-000000000003', 'ai') = :after_rr AS charged_nothing;
SELECT count(*) AS keys_with_ledger_rows FROM keel.credit_idempotency i
  JOIN keel.credit_ledger l ON l.id = i.ledger_id AND l.idempotency_key = i.idempotency_key
 WHERE i.account = '00000000-0000-0000-0000-000000000003' AND i.idempotency_key IN ('rr-1', 'rr-2');
