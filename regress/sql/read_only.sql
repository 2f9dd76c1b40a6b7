--
-- read_only: every mutating keel function refuses a read-only transaction up
-- front with SQLSTATE 25006 and its own name, instead of failing later on
-- keel's internal UPDATE or INSERT (extension/pg/writable.hpp). The standby
-- case (pg_is_in_recovery()) is the same check; scripts/test-ha runs it on a
-- real hot standby. Read functions keep working.
--
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS keel;
RESET client_min_messages;
SET keel.trash = off;
\set VERBOSITY default
\set SHOW_CONTEXT never

SELECT count(*) FROM keel.allocate_plan_credits('00000000-0000-0000-0000-0000000000a1', 'premium');

BEGIN TRANSACTION READ ONLY;
-- reads work
SELECT keel.get_available_credits('00000000-0000-0000-0000-0000000000a1', 'email') > 0 AS has_credits;
SELECT count(*) FROM keel.verify_credits();
SAVEPOINT s;
SELECT keel.consume_credits('00000000-0000-0000-0000-0000000000a1', 'email', 1);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT keel.consume_specific_credits('00000000-0000-0000-0000-0000000000a1', 'email', 1);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT * FROM keel.consume_credits_batch(ARRAY['00000000-0000-0000-0000-0000000000a1']::uuid[],
                                         ARRAY['email'], ARRAY[1]::bigint[]);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT * FROM keel.allocate_plan_credits('00000000-0000-0000-0000-0000000000a1', 'basic');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT keel.migration_start(1, '1_a.sql', repeat('0', 64));
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT keel.migration_applied(1, '1_a.sql', repeat('0', 64), now());
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT keel.migration_failed(1, '1_a.sql', repeat('0', 64), now(), 'boom');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT keel.migration_superseded(1, '1_a.sql', repeat('0', 64), 2);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT keel.restore_dropped(1);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT keel.purge_dropped();
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT keel.guard_audit_flush();
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT * FROM keel.migrate_unified_pool('p', 'pg_class');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT keel.grant_credits('00000000-0000-0000-0000-0000000000a1', 'email', 1);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT keel.expire_grants();
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT keel.refund_credits(1);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT keel.refund_credits_by_key('00000000-0000-0000-0000-0000000000a1', 'k');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT keel.hold_credits('00000000-0000-0000-0000-0000000000a1', 'email', 1, now() + interval '1 hour');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT keel.settle_hold('00000000-0000-0000-0000-00000000000f', 1);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT keel.settle_hold('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000f', 1);
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT keel.release_hold('00000000-0000-0000-0000-00000000000f');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT keel.release_hold('00000000-0000-0000-0000-0000000000a1', '00000000-0000-0000-0000-00000000000f');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT keel.expire_holds();
\echo :LAST_ERROR_SQLSTATE
ROLLBACK TO s;
SELECT keel.allow_destructive('read-only test');
\echo :LAST_ERROR_SQLSTATE
ROLLBACK;

-- nothing was consumed
SELECT keel.get_available_credits('00000000-0000-0000-0000-0000000000a1', 'email') =
       (SELECT allocated FROM keel.credit_balances
         WHERE account = '00000000-0000-0000-0000-0000000000a1' AND credit_type = 'email') AS untouched;
