--
-- credits_grants: keel.grant_credits / expire_grants, keel.hold_credits /
-- settle_hold / release_hold / expire_holds, keel.refund_credits /
-- refund_credits_by_key, idempotency across functions, and verify_credits()
-- over all of them (0.2.0, issue 13). Every refused call is followed by its
-- SQLSTATE; expiry is made to happen by moving expires_at into the past as
-- the table owner, so no test sleeps.
--
-- A database of its own, so ledger ids do not depend on the other tests.
SET keel.trash = off;
CREATE DATABASE keel_regress_credits_grants;
\c keel_regress_credits_grants
SET keel.trash = off;
CREATE EXTENSION keel;
\set SHOW_CONTEXT never
\set a '''00000000-0000-0000-0000-0000000000b1'''
\set other '''00000000-0000-0000-0000-0000000000b2'''

SELECT credit_type, allocated, available FROM keel.allocate_plan_credits(:a, 'basic', 1000) WHERE credit_type = 'email';

--
-- Grants, and the burn order: priority (0 first), soonest expiry, oldest;
-- the plan allocation last.
--
SELECT keel.grant_credits(:a, 'email', 100, now() + interval '2 days', 1, 'promo, priority 1') AS available;
SELECT keel.grant_credits(:a, 'email', 50, now() + interval '1 day', 0, 'promo, expires first') AS available;
SELECT keel.grant_credits(:a, 'email', 30, NULL, 0, 'top-up, never expires', 'grant-1') AS available;
-- the same key and arguments: the first result, nothing granted
SELECT keel.grant_credits(:a, 'email', 30, NULL, 0, 'top-up, never expires', 'grant-1') AS available;
SELECT count(*) AS grants FROM keel.credit_grants WHERE account = :a;
-- the same key with other arguments
SELECT keel.grant_credits(:a, 'email', 31, NULL, 0, 'top-up, never expires', 'grant-1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- 60 credits burn the soonest-expiring priority-0 grant (50), then the
-- never-expiring priority-0 one (10 of 30)
SELECT keel.consume_credits(:a, 'email', 60, NULL, 'consume-1') AS available;
SELECT description, amount, remaining FROM keel.credit_grants WHERE account = :a ORDER BY id;
SELECT allocated, plan_allocated, used, held, granted FROM keel.credit_balances WHERE account = :a AND credit_type = 'email';

-- bad grants
SELECT keel.grant_credits(:a, 'email', 0);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.grant_credits(:a, 'email', -5);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.grant_credits(:a, 'gold', 5);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.grant_credits(NULL, 'email', 5);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\set VERBOSITY terse
SELECT keel.grant_credits(:a, 'email', 5, now() - interval '1 second');
\set VERBOSITY default
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.grant_credits(:a, 'email', 5, NULL, -1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.grant_credits(:a, 'email', 5, NULL, 0, repeat('x', 1025));
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.grant_credits(:a, 'email', 5, NULL, 0, NULL, '');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.grant_credits(:a, 'email', 9223372036854775807);
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- a plan change keeps the grants: allocated = plan + live grants
SELECT credit_type, allocated, used, available FROM keel.allocate_plan_credits(:a, 'basic', 2000) WHERE credit_type = 'email';

--
-- Expiry lapses what is left unburned, and only that.
--
UPDATE keel.credit_grants SET expires_at = now() - interval '1 second'
 WHERE account = :a AND description = 'promo, priority 1';
SELECT keel.expire_grants() AS grants_lapsed;
SELECT keel.expire_grants() AS again;
SELECT description, amount, remaining, lapsed FROM keel.credit_grants WHERE account = :a ORDER BY id;
SELECT kind, amount FROM keel.credit_ledger WHERE account = :a AND kind = 'expiry';
SELECT keel.get_available_credits(:a, 'email');

--
-- Holds: available = allocated - used - held.
--
SELECT now() + interval '1 hour' AS exp \gset
SELECT keel.hold_credits(:a, 'email', 300, :'exp', 'hold-1') AS h1 \gset
SELECT keel.hold_credits(:a, 'email', 300, :'exp', 'hold-1') = :'h1' AS replayed;
SELECT keel.get_available_credits(:a, 'email');
-- the key was a hold: reusing it to consume is KL003
SELECT keel.consume_credits(:a, 'email', 300, NULL, 'hold-1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- more than is available (held credits count as gone)
SELECT keel.hold_credits(:a, 'email', 100000, :'exp');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.consume_credits(:a, 'email', 830);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\set VERBOSITY terse
SELECT keel.hold_credits(:a, 'email', 10, now() - interval '1 second');
\set VERBOSITY default
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.hold_credits(:a, 'email', 10, NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- hold errors name the hold's random id in DETAIL: terse from here
\set VERBOSITY terse
-- settle 120 of 300: 120 consumed (burning the top-up's 20 first), 180 released
SELECT keel.settle_hold(:'h1', 120) AS available;
-- settling again for the same amount returns the same and changes nothing
SELECT keel.settle_hold(:'h1', 120) AS available;
SELECT keel.settle_hold(:'h1', 100);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.release_hold(:'h1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT state, amount, settled FROM keel.credit_holds WHERE hold = :'h1';
SELECT keel.settle_hold('00000000-0000-0000-0000-000000000000', 1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- a settle above the held amount
SELECT keel.hold_credits(:a, 'email', 50, :'exp') AS h2 \gset
SELECT keel.settle_hold(:'h2', 51);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.settle_hold(:'h2', -1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- release gives it all back; releasing twice is a no-op
SELECT keel.release_hold(:'h2');
SELECT keel.release_hold(:'h2');
SELECT keel.settle_hold(:'h2', 1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- the account-routed forms (single-shard under Citus): another account's
-- hold does not exist for the caller
SELECT keel.hold_credits(:a, 'email', 30, :'exp') AS h5 \gset
SELECT keel.settle_hold(:other, :'h5', 5);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.release_hold(:other, :'h5');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.settle_hold(NULL, :'h5', 5);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.settle_hold(:a, :'h5', 5) AS available;
SELECT keel.release_hold(:a, :'h5');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.hold_credits(:a, 'email', 30, :'exp') AS h6 \gset
SELECT keel.release_hold(:a, :'h6');
SELECT state, amount, settled FROM keel.credit_holds WHERE hold IN (:'h5', :'h6') ORDER BY amount, state;
-- expiry
SELECT keel.hold_credits(:a, 'email', 40, :'exp') AS h3 \gset
UPDATE keel.credit_holds SET expires_at = now() - interval '1 second' WHERE hold = :'h3';
SELECT keel.settle_hold(:'h3', 10);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.expire_holds() AS holds_expired;
SELECT keel.expire_holds() AS again;
SELECT state FROM keel.credit_holds WHERE hold = :'h3';
SELECT allocated, used, held, granted FROM keel.credit_balances WHERE account = :a AND credit_type = 'email';

\set VERBOSITY default
-- credits held when their grant expires do not lapse while the hold is open
SELECT keel.grant_credits(:other, 'sms', 100, now() + interval '1 day') AS available;
SELECT keel.hold_credits(:other, 'sms', 70, :'exp') AS h4 \gset
UPDATE keel.credit_grants SET expires_at = now() - interval '1 second' WHERE account = :other;
SELECT keel.expire_grants() AS grants_lapsed;
SELECT amount, remaining, lapsed FROM keel.credit_grants WHERE account = :other;
SELECT keel.release_hold(:'h4');
SELECT keel.expire_grants() AS grants_lapsed;
SELECT amount, remaining, lapsed FROM keel.credit_grants WHERE account = :other;
SELECT keel.get_available_credits(:other, 'sms');

--
-- Refunds: never more than was consumed, across any number of refunds.
--
SELECT id AS c1 FROM keel.credit_ledger WHERE account = :a AND idempotency_key = 'consume-1' \gset
SELECT keel.refund_credits(:c1, 25, 'partial refund', 'refund-1') AS available;
SELECT keel.refund_credits(:c1, 25, 'partial refund', 'refund-1') AS available;
SELECT keel.refund_credits(:c1, 36);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- the rest, found by the consumption's key
SELECT keel.refund_credits_by_key(:a, 'consume-1') AS available;
SELECT keel.refund_credits(:c1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.refund_credits(:c1, 1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT sum(amount) AS refunded FROM keel.credit_ledger WHERE refund_of = :c1;
SELECT keel.refund_credits_by_key(:a, 'no-such-key');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.refund_credits_by_key(:a, 'hold-1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.refund_credits(-1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT id AS grant_row FROM keel.credit_ledger WHERE account = :a AND kind = 'grant' ORDER BY id LIMIT 1 \gset
SELECT keel.refund_credits(:grant_row);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.refund_credits(:c1, 0);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.refund_credits(NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- a refund key reused for a grant
SELECT keel.grant_credits(:a, 'email', 25, NULL, 0, 'partial refund', 'refund-1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- a settled hold's consumption is refundable too
SELECT id AS c2 FROM keel.credit_ledger WHERE hold_id = :'h1' AND kind = 'consumption' \gset
SELECT keel.refund_credits(:c2, 20, 'settled too much') AS available;

--
-- keel.consume_credits_batch over grants, holds and keys (set-based, item order).
--
SELECT keel.grant_credits(:other, 'email', 10, NULL, 0, 'batch grant') AS available;
SELECT keel.get_available_credits(:other, 'email') AS before_batch;
SELECT * FROM keel.consume_credits_batch(
    ARRAY[:a, :other, :other, :other, :a, :other, :other, :a]::uuid[],
    ARRAY['email', 'email', 'email', 'email', 'email', 'email', 'gold', 'email'],
    ARRAY[1, 4, 4, 5, 1, 4, 1, 0]::bigint[],
    ARRAY['bk-1', 'bk-2', 'bk-2', 'bk-3', 'consume-1', 'bk-4', NULL, NULL], 'batch');
-- bk-2 twice: the second item replays the first; 'consume-1' was a
-- consumption of 60, so 1 is KL003; :other has only the 10 granted
-- credits: 4 + 5 fit, the last 4 (bk-4) fails alone with KL002
SELECT amount, remaining FROM keel.credit_grants WHERE account = :other AND description = 'batch grant';
-- the same keyed items again: each replays its first result, nothing is consumed
SELECT * FROM keel.consume_credits_batch(
    ARRAY[:a, :other]::uuid[], ARRAY['email', 'email'], ARRAY[1, 4]::bigint[], ARRAY['bk-1', 'bk-2'], 'batch');
-- a key the batch claimed for a failed item is not kept
SELECT idempotency_key, remaining FROM keel.credit_idempotency WHERE idempotency_key IN ('bk-3', 'bk-4');
-- a batch key reused for a hold
SELECT keel.hold_credits(:a, 'email', 1, now() + interval '1 hour', 'bk-1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- atomic: the first failure raises and nothing changes
SELECT keel.get_available_credits(:a, 'email') AS before_atomic \gset
SELECT * FROM keel.consume_credits_batch(ARRAY[:a, :a]::uuid[], ARRAY['email', 'email'],
                                         ARRAY[1, 100000]::bigint[], ARRAY['at-1', 'at-2'], NULL, true);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.get_available_credits(:a, 'email') = :before_atomic AS nothing_changed,
       (SELECT count(*) FROM keel.credit_idempotency WHERE idempotency_key IN ('at-1', 'at-2')) AS keys_kept;
SELECT * FROM keel.consume_credits_batch(ARRAY[:a]::uuid[], ARRAY['email', 'email'], ARRAY[1]::bigint[]);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM keel.consume_credits_batch(ARRAY[[:a]]::uuid[], ARRAY[['email']], ARRAY[[1]]::bigint[]);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM keel.consume_credits_batch(ARRAY[:a]::uuid[], ARRAY['email'], ARRAY[1]::bigint[], NULL, repeat('d', 1025));
\echo SQLSTATE :LAST_ERROR_SQLSTATE

--
-- The ledger reconciles, and is still append-only.
--
SELECT kind, count(*) FROM keel.credit_ledger WHERE account IN (:a, :other) GROUP BY kind ORDER BY kind;
SELECT * FROM keel.verify_credits();
UPDATE keel.credit_ledger SET amount = 1 WHERE refund_of = :c1;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- verify_credits() sees tampering with a grant and a hold
BEGIN;
UPDATE keel.credit_grants SET remaining = remaining + 1 WHERE account = :a AND description = 'top-up, never expires';
UPDATE keel.credit_holds SET state = 'open' WHERE hold = :'h2';
SELECT problem FROM keel.verify_credits() ORDER BY problem;
ROLLBACK;

--
-- The unified pool (seed 003 step 3) moved by plan, one batch per call.
--
CREATE TABLE organizations (id uuid PRIMARY KEY, name text, plan_name text, total_credits integer);
INSERT INTO organizations
SELECT md5('pool' || i)::uuid, 'org ' || i, (ARRAY['enterprise', 'basic', NULL, ''])[1 + i % 4], i * 100
  FROM generate_series(1, 25) i;
SELECT * FROM keel.migrate_unified_pool('orgs', 'organizations', batch_size => 10);
SELECT * FROM keel.migrate_unified_pool('orgs', 'organizations', batch_size => 10);
SELECT * FROM keel.migrate_unified_pool('orgs', 'organizations', batch_size => 10);
-- finished: another call changes nothing
SELECT * FROM keel.migrate_unified_pool('orgs', 'organizations', batch_size => 10);
SELECT b.credit_type, count(*), sum(b.plan_allocated)
  FROM keel.credit_balances b JOIN organizations o ON o.id = b.account GROUP BY 1 ORDER BY 1;
SELECT count(*) AS allocation_rows FROM keel.credit_ledger l JOIN organizations o ON o.id = l.account
 WHERE l.kind = 'allocation';
SELECT rows_done, rows_total, finished_at IS NOT NULL AS finished FROM keel.pool_migrations;
-- bad calls
SELECT * FROM keel.migrate_unified_pool('orgs', 'organizations', 'id', 'name');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM keel.migrate_unified_pool('o2', 'organizations', 'name');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM keel.migrate_unified_pool('o2', 'organizations', 'id', 'plan_name', 'credits');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM keel.migrate_unified_pool('o2', 'organizations', batch_size => 0);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM keel.migrate_unified_pool('o2', 'no_such_table');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM keel.migrate_unified_pool('', 'organizations');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- a role that may run it but not read the table
CREATE ROLE keel_regress_pool_admin;
GRANT USAGE ON SCHEMA keel TO keel_regress_pool_admin;
GRANT EXECUTE ON FUNCTION keel.migrate_unified_pool(text, regclass, name, name, name, integer) TO keel_regress_pool_admin;
SET ROLE keel_regress_pool_admin;
SELECT * FROM keel.migrate_unified_pool('o3', 'organizations');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;
REVOKE ALL ON SCHEMA keel FROM keel_regress_pool_admin;
REVOKE ALL ON FUNCTION keel.migrate_unified_pool(text, regclass, name, name, name, integer) FROM keel_regress_pool_admin;

--
-- Privileges: none of the new functions is open to PUBLIC.
--
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'keel' AND p.proname IN ('grant_credits', 'expire_grants', 'refund_credits',
       'refund_credits_by_key', 'hold_credits', 'settle_hold', 'release_hold', 'expire_holds',
       'credit_claim_key', 'credit_lock_balance', 'credit_burn_grants', 'credit_close_hold',
       'credit_check_args', 'credit_actor', 'migrate_unified_pool')
 ORDER BY 1;
-- every SECURITY DEFINER function of keel pins search_path
SELECT count(*) AS definer_without_search_path
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'keel' AND p.prosecdef
   AND NOT coalesce(p.proconfig::text[] @> ARRAY['search_path=pg_catalog, pg_temp'], false);

\c contrib_regression
SET keel.guard_rules = 'drop-database=off, drop-role=off';
DROP DATABASE keel_regress_credits_grants;
DROP ROLE keel_regress_pool_admin;
RESET keel.guard_rules;
