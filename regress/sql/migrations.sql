--
-- migrations: keel.migration_history and the keel.migration_*() functions
-- (sql/keel--0.1.0.sql, region "migrations"; extension/migrations/history.cpp).
-- Output must be deterministic: timestamps are never printed, only compared.
--
-- (keel may already be installed by an earlier test of the schedule)
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS keel;
RESET client_min_messages;
\set SHOW_CONTEXT never

-- The table starts empty and is readable by everyone.
SELECT count(*) AS history_rows FROM keel.migration_history;

--
-- Lock: session level, idempotent, released by one unlock.
-- (A second session holding it, KL004, needs two connections: see
-- tests/integration/client_migrate_test.cpp.)
--
SELECT keel.migration_lock();
-- taking it again in the same session is a no-op, not a second hold
SELECT keel.migration_lock();
-- the key's second half is keel.migration_lock_state's, which only keel reads
SELECT locktype, classid, objid::text::bigint = (SELECT lock_key::bigint & 4294967295
                                                   FROM keel.migration_lock_state) AS keels_key,
       objsubid, mode, granted
  FROM pg_locks
 WHERE locktype = 'advisory' AND pid = pg_backend_pid();
SELECT holder_pid = pg_backend_pid() AS recorded_holder, since IS NOT NULL AS since_known
  FROM keel.migration_lock_state;
SELECT keel.migration_unlock() AS released;
-- nothing held any more: false, and no warning
SELECT keel.migration_unlock() AS released_again;
SELECT count(*) AS advisory_locks_held
  FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid();
-- 0.1.0's fixed key (1801807212, 1) is no longer keel's lock: holding it by
-- hand blocks nothing (a squatter on the current key is moved away from:
-- tests/integration/migrate_lock_test.cpp, two sessions)
SELECT pg_advisory_lock(1801807212, 1) AS squatting_old_key;
SELECT keel.migration_lock();
SELECT keel.migration_unlock() AS released;
SELECT pg_advisory_unlock(1801807212, 1) AS squatter_released;
-- an ordinary role may neither take the lock nor read its key
CREATE ROLE regress_keel_squatter;
SET ROLE regress_keel_squatter;
SELECT keel.migration_lock();
SELECT lock_key FROM keel.migration_lock_state;
RESET ROLE;
DROP ROLE regress_keel_squatter;

--
-- The happy path: start, then applied inside the migration's transaction.
--
SELECT keel.migration_lock();
SELECT keel.migration_start(1, '0001_base.sql', repeat('a', 64)) AS started_1 \gset
BEGIN;
CREATE TEMP TABLE regress_mig_base (id int);
SELECT keel.migration_applied(1, '0001_base.sql', repeat('a', 64), :'started_1') > 0 AS recorded;
COMMIT;

-- Versions are numbers: 0011 is 11, and long versions do not overflow.
SELECT keel.migration_start('0011', '0011_more.sql', repeat('b', 64)) IS NOT NULL AS started;
SELECT keel.migration_applied(0011, '0011_more.sql', repeat('b', 64), clock_timestamp()) > 0 AS recorded;
SELECT keel.migration_applied(20240101120000123456789, '20240101120000123456789_long.sql',
                              repeat('c', 64), clock_timestamp()) > 0 AS recorded;

-- A migration rolled back with its transaction leaves no history row.
SELECT keel.migration_start(2, '0002_rolled_back.sql', repeat('d', 64)) AS started_2 \gset
BEGIN;
CREATE TEMP TABLE regress_mig_rolled_back (id int);
SELECT keel.migration_applied(2, '0002_rolled_back.sql', repeat('d', 64), :'started_2') > 0 AS recorded;
ROLLBACK;
SELECT count(*) AS rows_for_version_2 FROM keel.migration_history WHERE version = 2;

-- ... and the failure is then recorded on its own, with the error text.
SELECT keel.migration_failed(2, '0002_rolled_back.sql', repeat('d', 64), :'started_2',
                             'relation "nope" does not exist') > 0 AS recorded;
-- failed attempts may repeat
SELECT keel.migration_failed(2, '0002_rolled_back.sql', repeat('d', 64), :'started_2',
                             'relation "nope" does not exist') > 0 AS recorded;
-- and a later success is allowed
SELECT keel.migration_applied(2, '0002_rolled_back.sql', repeat('d', 64), :'started_2') > 0 AS recorded;

-- Superseded: version 4 is retired by 12, which is applied first (keel
-- migrate does both in one transaction); the file may be absent (NULLs).
SELECT keel.migration_superseded(4, '0004_billing_models.sql', repeat('e', 64), 12);
\echo :LAST_ERROR_SQLSTATE
SELECT keel.migration_applied(12, '0012_models.sql', repeat('9', 64), clock_timestamp()) > 0 AS recorded;
SELECT keel.migration_superseded(4, '0004_billing_models.sql', repeat('e', 64), 12) > 0 AS recorded;
SELECT keel.migration_superseded(5, NULL, NULL, 12) > 0 AS recorded;

SELECT version, name, left(checksum, 8) AS checksum, status, applied_by = current_user AS by_me,
       finished_at >= started_at AS ordered, execution_time = finished_at - started_at AS duration,
       error, superseded_by
  FROM keel.migration_history ORDER BY id;

--
-- KL005: history disagrees with the request.
--
-- re-applying an applied version (same checksum)
SELECT keel.migration_start(1, '0001_base.sql', repeat('a', 64));
\echo :LAST_ERROR_SQLSTATE
-- re-applying an applied version whose file changed
SELECT keel.migration_applied(1, '0001_base.sql', repeat('f', 64), clock_timestamp());
\echo :LAST_ERROR_SQLSTATE
-- applying a superseded version
SELECT keel.migration_start(4, '0004_billing_models.sql', repeat('e', 64));
\echo :LAST_ERROR_SQLSTATE
-- recording a failure of an applied version
SELECT keel.migration_failed(11, '0011_more.sql', repeat('b', 64), clock_timestamp(), 'boom');
\echo :LAST_ERROR_SQLSTATE
-- superseding an applied version
SELECT keel.migration_superseded(11, NULL, NULL, 12);
\echo :LAST_ERROR_SQLSTATE
-- superseding twice
SELECT keel.migration_superseded(5, NULL, NULL, 13);
\echo :LAST_ERROR_SQLSTATE

--
-- Bad inputs: 22023 malformed, 22004 NULL.
--
-- negative version
SELECT keel.migration_start(-1, '0001_base.sql', repeat('a', 64));
\echo :LAST_ERROR_SQLSTATE
-- fractional version
SELECT keel.migration_start(1.5, '0001_base.sql', repeat('a', 64));
\echo :LAST_ERROR_SQLSTATE
-- NaN version
SELECT keel.migration_start('NaN', '0001_base.sql', repeat('a', 64));
\echo :LAST_ERROR_SQLSTATE
-- checksum too short
SELECT keel.migration_start(7, '0007_x.sql', 'abc123');
\echo :LAST_ERROR_SQLSTATE
-- checksum in upper case
SELECT keel.migration_start(7, '0007_x.sql', upper(repeat('ab', 32)));
\echo :LAST_ERROR_SQLSTATE
-- checksum with a non-hex character
SELECT keel.migration_start(7, '0007_x.sql', repeat('g', 64));
\echo :LAST_ERROR_SQLSTATE
-- empty name
SELECT keel.migration_start(7, '', repeat('a', 64));
\echo :LAST_ERROR_SQLSTATE
-- NULL version
SELECT keel.migration_start(NULL, '0007_x.sql', repeat('a', 64));
\echo :LAST_ERROR_SQLSTATE
-- NULL name
SELECT keel.migration_applied(7, NULL, repeat('a', 64), clock_timestamp());
\echo :LAST_ERROR_SQLSTATE
-- NULL checksum
SELECT keel.migration_applied(7, '0007_x.sql', NULL, clock_timestamp());
\echo :LAST_ERROR_SQLSTATE
-- NULL started_at
SELECT keel.migration_applied(7, '0007_x.sql', repeat('a', 64), NULL);
\echo :LAST_ERROR_SQLSTATE
-- NULL error text
SELECT keel.migration_failed(7, '0007_x.sql', repeat('a', 64), clock_timestamp(), NULL);
\echo :LAST_ERROR_SQLSTATE
-- empty error text
SELECT keel.migration_failed(7, '0007_x.sql', repeat('a', 64), clock_timestamp(), '');
\echo :LAST_ERROR_SQLSTATE
-- NULL superseded_by
SELECT keel.migration_superseded(7, NULL, NULL, NULL);
\echo :LAST_ERROR_SQLSTATE
-- a version superseding itself
SELECT keel.migration_superseded(7, NULL, NULL, 7);
\echo :LAST_ERROR_SQLSTATE
-- started_at in the future
SELECT keel.migration_applied(7, '0007_x.sql', repeat('a', 64), clock_timestamp() + interval '1 hour');
\echo :LAST_ERROR_SQLSTATE
-- started_at infinite
SELECT keel.migration_applied(7, '0007_x.sql', repeat('a', 64), 'infinity');
\echo :LAST_ERROR_SQLSTATE
-- nothing of the above was recorded
SELECT count(*) AS rows_for_version_7 FROM keel.migration_history WHERE version = 7;

--
-- An ordinary role that runs migrations.
--
CREATE ROLE regress_keel_migrator;
CREATE ROLE regress_keel_bystander;
GRANT EXECUTE ON FUNCTION keel.migration_lock(), keel.migration_unlock(),
                          keel.migration_applied(numeric, text, text, timestamptz),
                          keel.migration_failed(numeric, text, text, timestamptz, text),
                          keel.migration_superseded(numeric, text, text, numeric)
   TO regress_keel_migrator;
SET ROLE regress_keel_migrator;
SELECT keel.migration_lock();
SELECT keel.migration_start(20, '0020_by_role.sql', repeat('1', 64)) AS started_20 \gset
SELECT keel.migration_applied(20, '0020_by_role.sql', repeat('1', 64), :'started_20') > 0 AS recorded;
SELECT keel.migration_failed(21, '0021_by_role.sql', repeat('2', 64), clock_timestamp(), 'boom') > 0 AS recorded;
SELECT keel.migration_superseded(22, NULL, NULL, 20) > 0 AS recorded;
-- it can read the history, not write it directly
SELECT version, status, applied_by FROM keel.migration_history WHERE version BETWEEN 20 AND 29 ORDER BY id;
INSERT INTO keel.migration_history (version, name, checksum, status, applied_by, started_at, finished_at)
VALUES (23, '0023_forged.sql', repeat('3', 64), 'applied', 'postgres', now(), now());
DELETE FROM keel.migration_history;
SELECT keel.migration_unlock() AS released;
RESET ROLE;
-- a role without the grant may validate but not record
SET ROLE regress_keel_bystander;
SELECT keel.migration_start(24, '0024_x.sql', repeat('4', 64)) IS NOT NULL AS started;
SELECT keel.migration_applied(24, '0024_x.sql', repeat('4', 64), clock_timestamp());
RESET ROLE;

-- 0.2.0: forged or inconsistent bookkeeping is refused.
-- a name that is not the version's migration file name
SELECT keel.migration_applied(30, 'notes.txt', repeat('3', 64), clock_timestamp());
\echo :LAST_ERROR_SQLSTATE
SELECT keel.migration_applied(30, '0031_other.sql', repeat('3', 64), clock_timestamp());
\echo :LAST_ERROR_SQLSTATE
SELECT keel.migration_applied(30, '../0030_x.sql', repeat('3', 64), clock_timestamp());
\echo :LAST_ERROR_SQLSTATE
-- a start in the future (the finish would come before it)
SELECT keel.migration_applied(30, '0030_x.sql', repeat('3', 64), clock_timestamp() + interval '1 hour');
\echo :LAST_ERROR_SQLSTATE
-- superseding by a version that does not exist
SELECT keel.migration_superseded(31, NULL, NULL, 999);
\echo :LAST_ERROR_SQLSTATE

-- 0.2.0: a failure with where it failed; the tool and host keel's client sets
SET keel.client_host = 'ci-runner-7';
SET keel.tool_version = 'keel 0.2.0';
SELECT keel.migration_failed(32, '0032_fails.sql', repeat('4', 64), clock_timestamp(),
                             'relation "nope" does not exist', '42P01', 40, 'SELECT * FROM nope') > 0 AS recorded;
SELECT version, status, sqlstate, error_line, error_statement, client_host, tool_version
  FROM keel.migration_history WHERE version = 32;
SELECT keel.migration_failed(32, '0032_fails.sql', repeat('4', 64), clock_timestamp(), 'x', 'bad', 1, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT keel.migration_failed(32, '0032_fails.sql', repeat('4', 64), clock_timestamp(), 'x', NULL, 0, NULL);
\echo :LAST_ERROR_SQLSTATE
RESET keel.client_host;
RESET keel.tool_version;

-- 0.2.0: baselined counts as applied and never runs
SELECT keel.migration_baselined(33, '0033_existing.sql', repeat('5', 64)) > 0 AS recorded;
SELECT keel.migration_start(33, '0033_existing.sql', repeat('5', 64));
\echo :LAST_ERROR_SQLSTATE
SELECT keel.migration_baselined(1, '0001_base.sql', repeat('a', 64));
\echo :LAST_ERROR_SQLSTATE
-- 0.2.0: repaired re-records an applied file (edited, or gone) with a reason
SELECT keel.migration_repaired(33, '0033_existing.sql', repeat('6', 64), 'comment fixed after review') > 0 AS recorded;
SELECT keel.migration_repaired(11, NULL, NULL, 'file deleted by mistake, schema unchanged') > 0 AS recorded;
SELECT keel.migration_repaired(11, NULL, NULL, '   ');
\echo :LAST_ERROR_SQLSTATE
SELECT keel.migration_repaired(11, NULL, NULL, NULL);
\echo :LAST_ERROR_SQLSTATE
SELECT keel.migration_repaired(34, '0034_pending.sql', repeat('7', 64), 'not applied');
\echo :LAST_ERROR_SQLSTATE
SELECT keel.migration_repaired(33, '0033_existing.sql', NULL, 'half');
\echo :LAST_ERROR_SQLSTATE
SELECT version, name, left(checksum, 8) AS checksum, status, reason
  FROM keel.migration_history WHERE status IN ('baselined', 'repaired') ORDER BY id;

-- At most one applied-or-superseded row per version, whoever writes.
INSERT INTO keel.migration_history (version, name, checksum, status, applied_by, started_at, finished_at)
VALUES (1, '0001_base.sql', repeat('a', 64), 'applied', current_user, now(), now());

--
-- 0.2.0: token checksums, keel down (reverted, revisions), the journal of
-- keel:no-transaction files.
--
SELECT keel.migration_applied(30, '0030_tok.sql', repeat('3', 64), clock_timestamp(), repeat('4', 64)) > 0 AS recorded;
SELECT keel.migration_applied(31, '0031_tok.sql', repeat('3', 64), clock_timestamp(), 'not hex');
SELECT token_checksum = repeat('4', 64) AS token_kept, revision FROM keel.migration_history WHERE version = 30;
-- a revert needs an applied version, and makes it pending again
SELECT keel.migration_reverted(32, '0032_x.down.sql', repeat('5', 64), clock_timestamp());
SELECT keel.migration_reverted(30, '0030_tok.down.sql', repeat('5', 64), clock_timestamp()) > 0 AS reverted;
SELECT keel.migration_reverted(30, '0030_tok.down.sql', repeat('5', 64), clock_timestamp());
SELECT keel.migration_reverted(30, '0031_tok.down.sql', repeat('5', 64), clock_timestamp());
SELECT keel.migration_start(30, '0030_tok.sql', repeat('3', 64)) IS NOT NULL AS may_start_again;
SELECT keel.migration_applied(30, '0030_tok.sql', repeat('3', 64), clock_timestamp()) > 0 AS reapplied;
SELECT keel.migration_applied(30, '0030_tok.sql', repeat('3', 64), clock_timestamp());
SELECT version, name, status, revision FROM keel.migration_history WHERE version = 30 ORDER BY id;
-- the journal: one row per completed statement of an attempt
SELECT keel.migration_step(40, '2026-01-01', 1, 3, repeat('6', 64));
SELECT keel.migration_step(40, '2026-01-01', 2, 9, repeat('7', 64));
SELECT keel.migration_step(40, '2026-01-01', 2, 9, repeat('7', 64));
SELECT keel.migration_step(40, '2026-01-01', 0, 9, repeat('7', 64));
SELECT keel.migration_step(40, '2026-01-01', 3, 9, 'x');
SELECT keel.migration_step(40, 'infinity', 3, 9, repeat('7', 64));
SELECT keel.migration_step(30, '2026-01-01', 1, 1, repeat('7', 64));
SELECT version, step, line FROM keel.migration_steps ORDER BY step;
SET ROLE regress_keel_bystander;
SELECT keel.migration_step(40, '2026-01-01', 3, 9, repeat('7', 64));
SELECT count(*) AS journal_readable FROM keel.migration_steps;
RESET ROLE;
DELETE FROM keel.migration_steps;

-- The history's row CHECK (keel.migration_history_row_ok) refuses a forged
-- row even from its owner: each bad row below gets 23514, the good ones go
-- in. Columns: version, name, checksum, status, error, error_line,
-- superseded_by, sqlstate, reason, token_checksum, finished before started.
CREATE TEMP TABLE forged (label text, v numeric, n text, c text, s text, e text, l integer,
                          sb numeric, st text, r text, tc text, backwards boolean);
INSERT INTO forged VALUES
  ('good applied',        9001, '9001_a.sql', repeat('a', 64), 'applied', NULL, NULL, NULL, NULL, NULL, repeat('b', 64), false),
  ('good failed',         9002, '9002_a.sql', repeat('a', 64), 'failed', 'boom', 3, NULL, '42P01', NULL, NULL, false),
  ('good superseded',     9003, NULL, NULL, 'superseded', NULL, NULL, 9004, NULL, NULL, NULL, false),
  ('good repaired',       9005, NULL, NULL, 'repaired', NULL, NULL, NULL, NULL, 'file gone', NULL, false),
  ('fraction version',    1.5, '9001_a.sql', repeat('a', 64), 'applied', NULL, NULL, NULL, NULL, NULL, NULL, false),
  ('negative version',    -1, '9001_a.sql', repeat('a', 64), 'applied', NULL, NULL, NULL, NULL, NULL, NULL, false),
  ('NaN version',         'NaN', '9001_a.sql', repeat('a', 64), 'applied', NULL, NULL, NULL, NULL, NULL, NULL, false),
  ('empty name',          9006, '', repeat('a', 64), 'applied', NULL, NULL, NULL, NULL, NULL, NULL, false),
  ('upper-case checksum', 9006, '9006_a.sql', repeat('A', 64), 'applied', NULL, NULL, NULL, NULL, NULL, NULL, false),
  ('short token sum',     9006, '9006_a.sql', repeat('a', 64), 'applied', NULL, NULL, NULL, NULL, NULL, repeat('b', 63), false),
  ('unknown status',      9006, '9006_a.sql', repeat('a', 64), 'done', NULL, NULL, NULL, NULL, NULL, NULL, false),
  ('failed, no error',    9006, '9006_a.sql', repeat('a', 64), 'failed', NULL, NULL, NULL, NULL, NULL, NULL, false),
  ('error, not failed',   9006, '9006_a.sql', repeat('a', 64), 'applied', 'boom', NULL, NULL, NULL, NULL, NULL, false),
  ('zero error line',     9006, '9006_a.sql', repeat('a', 64), 'failed', 'boom', 0, NULL, NULL, NULL, NULL, false),
  ('bad sqlstate',        9006, '9006_a.sql', repeat('a', 64), 'failed', 'boom', 1, NULL, '4201x', NULL, NULL, false),
  ('repaired, no reason', 9006, NULL, NULL, 'repaired', NULL, NULL, NULL, NULL, NULL, NULL, false),
  ('reason, not repaired',9006, '9006_a.sql', repeat('a', 64), 'applied', NULL, NULL, NULL, NULL, 'why', NULL, false),
  ('superseded by itself',9006, NULL, NULL, 'superseded', NULL, NULL, 9006, NULL, NULL, NULL, false),
  ('superseded, no by',   9006, NULL, NULL, 'superseded', NULL, NULL, NULL, NULL, NULL, NULL, false),
  ('by, not superseded',  9006, '9006_a.sql', repeat('a', 64), 'applied', NULL, NULL, 9007, NULL, NULL, NULL, false),
  ('applied, no file',    9006, NULL, NULL, 'applied', NULL, NULL, NULL, NULL, NULL, NULL, false),
  ('finished first',      9006, '9006_a.sql', repeat('a', 64), 'applied', NULL, NULL, NULL, NULL, NULL, NULL, true);
DO $forge$
DECLARE f record;
BEGIN
    FOR f IN SELECT * FROM forged LOOP
        BEGIN
            INSERT INTO keel.migration_history
                (version, name, checksum, status, applied_by, started_at, finished_at, error,
                 error_line, superseded_by, sqlstate, reason, token_checksum)
            VALUES (f.v, f.n, f.c, f.s, current_user, now(),
                    now() + CASE WHEN f.backwards THEN interval '-1 s' ELSE interval '0' END,
                    f.e, f.l, f.sb, f.st, f.r, f.tc);
            RAISE NOTICE '%: stored', f.label;
        EXCEPTION WHEN check_violation THEN
            RAISE NOTICE '%: refused (%)', f.label, SQLSTATE;
        END;
    END LOOP;
END
$forge$;
DELETE FROM keel.migration_history;

-- Clean up (the extension stays for the tests that follow; the temp table
-- goes with the session).
SELECT keel.migration_unlock() AS released;
DELETE FROM keel.migration_history;
REVOKE EXECUTE ON FUNCTION keel.migration_lock(), keel.migration_unlock(),
                           keel.migration_applied(numeric, text, text, timestamptz),
                           keel.migration_failed(numeric, text, text, timestamptz, text),
                           keel.migration_superseded(numeric, text, text, numeric)
  FROM regress_keel_migrator;
DROP ROLE regress_keel_migrator;
DROP ROLE regress_keel_bystander;
