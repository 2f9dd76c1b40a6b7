--
-- credits_errors: every refusal of a credit function that the other credit
-- suites do not show (issue 13, "each function and each error has a
-- pg_regress case"): argument checks reached through each function of its
-- own, the idempotency key's size, the plan allocation's overflow, share
-- and coverage errors, the states of a hold, the atomic batch, the pool
-- migration and the escrow slot's range; and a batch of 20,000 items.
-- Every refused call is followed by its SQLSTATE and changes nothing
-- (verify_credits() stays empty).
--
-- A database of its own, so ledger ids do not depend on the other tests.
SET keel.trash = off;
CREATE DATABASE keel_regress_credits_errors;
\c keel_regress_credits_errors
SET keel.trash = off;
CREATE EXTENSION keel;
\set SHOW_CONTEXT never
\set a '''00000000-0000-0000-0000-0000000000d1'''
\set b '''00000000-0000-0000-0000-0000000000d2'''
\set c '''00000000-0000-0000-0000-0000000000d3'''

-- with no credit types at all the HINT says so
BEGIN;
DELETE FROM keel.credit_plans WHERE true;
DELETE FROM keel.credit_types WHERE true;
SELECT keel.get_available_credits(:a, 'email');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;

SELECT credit_type, available FROM keel.allocate_plan_credits(:a, 'basic', 1000) WHERE credit_type = 'email';

--
-- allocate_plan_credits
--
-- no rules for the plan and none for the fallback plan '*'
BEGIN;
DELETE FROM keel.credit_plans WHERE plan = '*';
SELECT * FROM keel.allocate_plan_credits(:b, 'no_such_plan', 100);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;
-- a share with more digits than a bigint numerator holds
INSERT INTO keel.credit_plans (plan, credit_type, share, floor_amount) VALUES ('wide_share', 'email', 999999.999999999999999, 0);
SELECT * FROM keel.allocate_plan_credits(:b, 'wide_share', 100);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- grants near the top of bigint plus the plan's own credits
INSERT INTO keel.credit_plans (plan, credit_type, fixed_amount) VALUES ('small', 'email', 1000), ('tiny', 'email', 10);
SELECT keel.grant_credits(:b, 'email', 9223372036854775000) AS available;
SELECT * FROM keel.allocate_plan_credits(:b, 'small');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- a plan that no longer covers what was used, with grants and holds: the DETAIL counts them
SELECT credit_type, available FROM keel.allocate_plan_credits(:c, 'small') ORDER BY 1;
SELECT keel.grant_credits(:c, 'email', 100) AS available;
SELECT keel.consume_credits(:c, 'email', 150) AS remaining;
SELECT keel.hold_credits(:c, 'email', 20, now() + interval '1 hour') IS NOT NULL AS held;
SELECT * FROM keel.allocate_plan_credits(:c, 'tiny');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

--
-- consume_credits, consume_specific_credits
--
SELECT keel.consume_credits(:a, 'email', 1, NULL, repeat('k', 256));
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.consume_specific_credits(NULL, 'email', 1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.consume_specific_credits(:a, NULL, 1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.consume_specific_credits(:a, 'email', 1, repeat('d', 1025));
\echo SQLSTATE :LAST_ERROR_SQLSTATE

--
-- consume_credits_batch: a NULL element fails its item alone; with atomic
-- each kind of failure raises and nothing changes
--
SELECT keel.consume_credits(:a, 'email', 5, NULL, 'batch-key') AS remaining;
SELECT * FROM keel.consume_credits_batch(ARRAY[:a, :a]::uuid[], ARRAY['email', 'email'], ARRAY[NULL, 1]::bigint[]);
SELECT * FROM keel.consume_credits_batch(ARRAY[:a, :a]::uuid[], ARRAY['email', 'email'], ARRAY[1, NULL]::bigint[], atomic => true);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM keel.consume_credits_batch(ARRAY[:a, :a]::uuid[], ARRAY['email', 'postcards'], ARRAY[1, 1]::bigint[], atomic => true);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM keel.consume_credits_batch(ARRAY[:a, :a]::uuid[], ARRAY['email', 'email'], ARRAY[1, 6]::bigint[],
                                         ARRAY[NULL, 'batch-key'], atomic => true);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.get_available_credits(:a, 'email') AS available;

--
-- grant_credits
--
SELECT keel.grant_credits(:a, NULL, 10);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.grant_credits(:a, 'email', NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.grant_credits(:a, 'email', 10, idempotency_key => repeat('k', 256));
\echo SQLSTATE :LAST_ERROR_SQLSTATE

--
-- hold_credits
--
SELECT keel.hold_credits(NULL, 'email', 10, now() + interval '1 hour');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.hold_credits(:a, NULL, 10, now() + interval '1 hour');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.hold_credits(:a, 'email', NULL, now() + interval '1 hour');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.hold_credits(:a, 'postcards', 10, now() + interval '1 hour');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.hold_credits(:a, 'email', 0, now() + interval '1 hour');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.hold_credits(:a, 'email', 10, now() + interval '1 hour', '');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.hold_credits(:a, 'email', 10, now() + interval '1 hour', repeat('k', 256));
\echo SQLSTATE :LAST_ERROR_SQLSTATE

--
-- settle_hold(account, hold, amount) and release_hold, in every state (the
-- DETAILs name the hold's random id and a time: terse)
--
\set VERBOSITY terse
SELECT keel.hold_credits(:a, 'email', 30, now() + interval '1 hour') AS h1 \gset
SELECT keel.settle_hold(:a, :'h1', 31);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.settle_hold(:a, :'h1', 12) AS available;
-- settled: another amount is refused (the same one is a retry and returns)
SELECT keel.settle_hold(:a, :'h1', 13);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.release_hold(:a, :'h1');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- expired, not yet lapsed by expire_holds(): settling is refused
SELECT keel.hold_credits(:a, 'email', 30, now() + interval '1 hour') AS h2 \gset
UPDATE keel.credit_holds SET expires_at = now() - interval '1 second' WHERE hold = :'h2';
SELECT keel.settle_hold(:a, :'h2', 5);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- lapsed through expire_holds(): settling says so
SELECT keel.expire_holds() AS released;
SELECT keel.settle_hold(:'h2', 5);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.settle_hold(:a, :'h2', 5);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.release_hold('00000000-0000-0000-0000-00000000dead');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.release_hold(NULL, :'h2');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\set VERBOSITY default

--
-- refund_credits, refund_credits_by_key
--
SELECT keel.consume_credits(:a, 'email', 40, 'job 7', 'job-7') AS remaining;
SELECT id AS job7 FROM keel.credit_ledger WHERE account = :a AND idempotency_key = 'job-7' AND kind = 'consumption' \gset
SELECT keel.refund_credits(:job7, 5, repeat('r', 1025));
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.refund_credits(:job7, 5, NULL, '');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.refund_credits(:job7, 5, NULL, repeat('k', 256));
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.refund_credits(:job7, 5, 'partial', 'refund-7') AS available;
-- the same refund key with another amount
SELECT keel.refund_credits(:job7, 6, 'partial', 'refund-7');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- through the consumption's key: beyond what is left to refund, a reused key
SELECT keel.refund_credits_by_key(:a, 'job-7', 36);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.refund_credits_by_key(:a, 'job-7', 6, 'partial', 'refund-7');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.refund_credits_by_key(:a, 'job-7', 35, 'the rest') AS available;

--
-- migrate_unified_pool: an allocation error stops the batch whole
--
CREATE TABLE orgs (id uuid PRIMARY KEY, plan_name text, total_credits bigint);
INSERT INTO orgs VALUES ('00000000-0000-0000-0000-0000000000e1', 'basic', 100),
                        ('00000000-0000-0000-0000-0000000000e2', 'basic', -5);
SELECT * FROM keel.migrate_unified_pool('orgs-negative', 'orgs');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) AS allocated FROM keel.credit_balances WHERE account IN (SELECT id FROM orgs);
SELECT count(*) AS progress_rows FROM keel.pool_migrations;

--
-- credit_lend_escrow: a slot outside 0..31
--
SELECT keel.credit_lend_escrow(:a, 'email', -1, 10);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.credit_lend_escrow(:a, 'email', 32, 10);
\echo SQLSTATE :LAST_ERROR_SQLSTATE

--
-- a batch of 20,000 items (its item array is past malloc's mmap threshold)
-- returns one row per item: it once read its items after SPI had freed
-- them, and crashed the server on batches this large
--
SELECT count(*) AS accounts FROM generate_series(1, 20000) g,
       LATERAL keel.allocate_plan_credits(('00000000-0000-0000-0001-' || lpad(to_hex(g), 12, '0'))::uuid, 'small') a;
-- a new backend, whose malloc still maps large chunks of their own
\c keel_regress_credits_errors
SET keel.trash = off;
SELECT count(*) AS items, count(*) FILTER (WHERE remaining = 999) AS consumed, count(error_code) AS failed
  FROM keel.consume_credits_batch(
    ARRAY(SELECT ('00000000-0000-0000-0001-' || lpad(to_hex(g), 12, '0'))::uuid FROM generate_series(1, 20000) g),
    array_fill('email'::text, ARRAY[20000]), array_fill(1::bigint, ARRAY[20000]));

SELECT * FROM keel.verify_credits();

\c contrib_regression
SET keel.guard_rules = 'drop-database=off';
DROP DATABASE keel_regress_credits_errors;
RESET keel.guard_rules;
