--
-- credits_escrow: the escrow slots of a hot account (0.2.0, issue 13). A
-- consumption that waited for a balance row lends its backend's slot an
-- allowance (keel.credit_lend_escrow); this file lends directly, as the
-- table owner, and checks what every other function does with lent
-- credits: get_available_credits counts them, a consumption or batch that
-- needs them folds them back (keel.credit_fold_escrow), a grant, hold,
-- refund or allocation folds first, no slot is lent while a grant is
-- unburned, and verify_credits() checks slots against the ledger. The slot
-- path itself needs two sessions: tests/integration/credits_escrow_test.cpp.
--
SET keel.trash = off;
CREATE DATABASE keel_regress_credits_escrow;
\c keel_regress_credits_escrow
SET keel.trash = off;
CREATE EXTENSION keel;
\set SHOW_CONTEXT never
\set a '''00000000-0000-0000-0000-0000000000e1'''

SELECT credit_type, allocated, available FROM keel.allocate_plan_credits(:a, 'basic', 1000) WHERE credit_type = 'email';

-- lend 100 to slot 3 and 50 to slot 7: the balance's used counts them, lent too
SELECT keel.credit_lend_escrow(:a, 'email', 3, 100) AS lent;
SELECT keel.credit_lend_escrow(:a, 'email', 7, 50) AS lent;
SELECT allocated, used, held, lent FROM keel.credit_balances WHERE account = :a AND credit_type = 'email';
SELECT slot, allowance, used FROM keel.credit_escrow WHERE account = :a ORDER BY slot;
-- available is exact: the slots' unused allowance counts
SELECT keel.get_available_credits(:a, 'email') AS available;
SELECT * FROM keel.verify_credits();
-- nothing is lent beyond what is free, nor a zero amount
SELECT keel.credit_lend_escrow(:a, 'email', 4, 1000) AS lent;
SELECT keel.credit_lend_escrow(:a, 'email', 4, 0) AS lent;

-- a slot that consumed: as the slot path writes it (its used, one ledger row
-- with escrow_slot and the slot's figures)
UPDATE keel.credit_escrow SET used = used + 30 WHERE account = :a AND slot = 3;
INSERT INTO keel.credit_ledger (account, credit_type, kind, amount, allocated_after, used_after, held_after, escrow_slot, actor)
VALUES (:a, 'email', 'consumption', 30, 100, 30, 0, 3, current_user);
SELECT keel.get_available_credits(:a, 'email') AS available;
SELECT * FROM keel.verify_credits();

-- a consumption the balance row can cover alone leaves the slots as they are;
-- what remains counts them, as get_available_credits does
SELECT keel.consume_credits(:a, 'email', 200) AS remaining;
SELECT allocated, used, held, lent FROM keel.credit_balances WHERE account = :a AND credit_type = 'email';
SELECT slot, allowance, used FROM keel.credit_escrow WHERE account = :a ORDER BY slot;
SELECT kind, amount, escrow_slot, used_after FROM keel.credit_ledger WHERE account = :a AND kind = 'escrow' ORDER BY id;
SELECT keel.get_available_credits(:a, 'email') AS available;
SELECT * FROM keel.verify_credits();
-- one that needs what the slots hold folds them back first: every credit
-- that get_available_credits counts can be consumed, and then no more
SELECT keel.credit_lend_escrow(:a, 'email', 3, 20) AS lent;
SELECT keel.consume_credits(:a, 'email', 770) AS remaining;
SELECT allocated, used, held, lent FROM keel.credit_balances WHERE account = :a AND credit_type = 'email';
SELECT slot, allowance, used FROM keel.credit_escrow WHERE account = :a ORDER BY slot;
SELECT kind, amount, escrow_slot, used_after FROM keel.credit_ledger WHERE account = :a AND kind = 'escrow' ORDER BY id;
SELECT keel.consume_credits(:a, 'email', 1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT * FROM keel.verify_credits();

-- a grant folds the slots first, and no slot is lent while it is unburned
\set b '''00000000-0000-0000-0000-0000000000e2'''
SELECT available FROM keel.allocate_plan_credits(:b, 'basic', 1000) WHERE credit_type = 'email';
SELECT keel.credit_lend_escrow(:b, 'email', 1, 40) AS lent;
SELECT keel.grant_credits(:b, 'email', 10) AS available;
SELECT lent FROM keel.credit_balances WHERE account = :b AND credit_type = 'email';
SELECT slot, allowance, used FROM keel.credit_escrow WHERE account = :b ORDER BY slot;
SELECT keel.credit_lend_escrow(:b, 'email', 1, 40) AS lent;
-- the grant burns first
SELECT keel.consume_credits(:b, 'email', 4) AS remaining;
SELECT remaining FROM keel.credit_grants WHERE account = :b;

-- a hold, a refund and an allocation fold first too
SELECT keel.consume_credits(:b, 'email', 6) AS remaining;
SELECT keel.credit_lend_escrow(:b, 'email', 1, 40) AS lent;
SELECT keel.hold_credits(:b, 'email', 280, now() + interval '1 hour') IS NOT NULL AS held;
SELECT used, held, lent FROM keel.credit_balances WHERE account = :b AND credit_type = 'email';
SELECT keel.credit_lend_escrow(:b, 'email', 2, 5) AS lent;
SELECT keel.refund_credits((SELECT max(id) FROM keel.credit_ledger WHERE account = :b AND kind = 'consumption'), 1) AS available;
SELECT used, held, lent FROM keel.credit_balances WHERE account = :b AND credit_type = 'email';
SELECT keel.credit_lend_escrow(:b, 'email', 2, 5) AS lent;
SELECT credit_type, allocated, used, available FROM keel.allocate_plan_credits(:b, 'basic', 2000) WHERE credit_type = 'email';
SELECT used, lent FROM keel.credit_balances WHERE account = :b AND credit_type = 'email';
SELECT * FROM keel.verify_credits();

-- a batch folds the balances it touches before it decides
\set c '''00000000-0000-0000-0000-0000000000e3'''
SELECT available FROM keel.allocate_plan_credits(:c, 'basic', 0) WHERE credit_type = 'sms';
SELECT keel.credit_lend_escrow(:c, 'sms', 5, 90) AS lent;
SELECT * FROM keel.consume_credits_batch(ARRAY[:c, :c]::uuid[], ARRAY['sms', 'sms'], ARRAY[60, 40]);
SELECT * FROM keel.consume_credits_batch(ARRAY[:c]::uuid[], ARRAY['sms'], ARRAY[1]);
SELECT used, lent FROM keel.credit_balances WHERE account = :c AND credit_type = 'sms';
SELECT * FROM keel.verify_credits();

-- outside READ COMMITTED keel runs its SQL, and folds the same way
\set d '''00000000-0000-0000-0000-0000000000e4'''
SELECT available FROM keel.allocate_plan_credits(:d, 'basic', 0) WHERE credit_type = 'sms';
SELECT keel.credit_lend_escrow(:d, 'sms', 2, 80) AS lent;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT keel.consume_credits(:d, 'sms', 5) AS remaining;
SELECT keel.consume_credits(:d, 'sms', 95) AS remaining;
COMMIT;
SELECT used, lent FROM keel.credit_balances WHERE account = :d AND credit_type = 'sms';
SELECT * FROM keel.verify_credits();

-- verify_credits() finds slots out of step with their ledger
BEGIN;
UPDATE keel.credit_escrow SET allowance = allowance + 5 WHERE account = :a AND slot = 3;
SELECT problem, detail FROM keel.verify_credits();
ROLLBACK;
BEGIN;
UPDATE keel.credit_balances SET lent = 0 WHERE account = :a AND credit_type = 'email';
UPDATE keel.credit_escrow SET allowance = allowance + 5 WHERE account = :a AND slot = 7;
INSERT INTO keel.credit_ledger (account, credit_type, kind, amount, allocated_after, used_after, held_after, escrow_slot, actor)
VALUES (:a, 'email', 'escrow', 5, 0, 0, 0, 7, current_user);
SELECT problem FROM keel.verify_credits() ORDER BY 1;
ROLLBACK;
BEGIN;
INSERT INTO keel.credit_ledger (account, credit_type, kind, amount, allocated_after, used_after, held_after, escrow_slot, actor)
VALUES (:a, 'email', 'consumption', 1, 999, 999, 0, 3, current_user);
UPDATE keel.credit_escrow SET allowance = allowance + 1, used = used + 1 WHERE account = :a AND slot = 3;
SELECT problem FROM keel.verify_credits() ORDER BY 1;
ROLLBACK;

-- the constraints: a slot never uses more than it was lent, lent is never
-- negative, an escrow ledger row is never 0
UPDATE keel.credit_escrow SET used = allowance + 1 WHERE account = :a AND slot = 3;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
UPDATE keel.credit_balances SET lent = -1 WHERE account = :a AND credit_type = 'email';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\set VERBOSITY terse
INSERT INTO keel.credit_ledger (account, credit_type, kind, amount, allocated_after, used_after, held_after, escrow_slot, actor)
VALUES (:a, 'email', 'escrow', 0, 0, 0, 0, 7, current_user);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\set VERBOSITY default

-- the escrow functions and table are keel's own: not PUBLIC's
SELECT has_function_privilege('public', 'keel.credit_fold_escrow(uuid, text)', 'EXECUTE') AS fold,
       has_function_privilege('public', 'keel.credit_lend_escrow(uuid, text, integer, bigint)', 'EXECUTE') AS lend,
       has_table_privilege('public', 'keel.credit_escrow', 'SELECT') AS escrow_select;

\c contrib_regression
DROP DATABASE keel_regress_credits_escrow;
