-- guard_breakglass: keel.allow_destructive(reason) lets destructive DDL
-- through for one transaction only, for superusers and members of
-- keel.admin_role, and every use is audited (DESIGN.md; seed 000
-- "Emergency Procedures").
\set SHOW_CONTEXT never
-- the recycle bin has its own tests (trash, trash_hook); here drops are final
SET keel.trash = off;
CREATE TABLE ai_budgets (id int PRIMARY KEY, daily_token_limit int);
CREATE TABLE billing_history (id int PRIMARY KEY, amount_cents int);
CREATE TABLE coupons (id int PRIMARY KEY, code text);
-- keel.guard_audit is append-only: later queries read the rows after this mark.
SELECT coalesce(max(id), 0) AS audit_mark FROM keel.guard_audit \gset

-- Bad input, one per line: no reason, an empty one, a blank one.
SELECT keel.allow_destructive(NULL);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.allow_destructive('');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.allow_destructive('   ');
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Outside a transaction block it ends with its own statement.
SELECT keel.allow_destructive('does nothing on its own');
DROP TABLE coupons;
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- In a transaction: the destructive statement goes through and is audited
-- as overridden, with the reason.
BEGIN;
SELECT keel.allow_destructive('ai budgets replaced by keel credits (ticket 42)');
DROP TABLE ai_budgets;
ALTER TABLE billing_history DROP COLUMN amount_cents;
COMMIT;
SELECT to_regclass('ai_budgets') AS ai_budgets_after;

-- It lasts one transaction only.
DROP TABLE billing_history;
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- A savepoint rolled back takes the break-glass (and its audit row) with it.
BEGIN;
SAVEPOINT before_glass;
SELECT keel.allow_destructive('rolled back');
ROLLBACK TO SAVEPOINT before_glass;
DROP TABLE billing_history;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;
-- A savepoint released keeps it.
BEGIN;
SAVEPOINT s1;
SELECT keel.allow_destructive('released savepoint keeps the break-glass');
RELEASE SAVEPOINT s1;
DROP TABLE coupons;
ROLLBACK;
-- A rolled-back transaction leaves no trace of its break-glass.
SELECT to_regclass('coupons') AS coupons_after_rollback;

-- An ordinary role may not break the glass.
CREATE ROLE keel_regress_dev;
GRANT CREATE ON SCHEMA public TO keel_regress_dev;
SET ROLE keel_regress_dev;
CREATE TABLE dev_table (id int);
BEGIN;
SELECT keel.allow_destructive('I am sure');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;
RESET ROLE;

-- A member of keel.admin_role may; a different admin role can be named.
CREATE ROLE keel_regress_admins;
GRANT keel_regress_admins TO keel_regress_dev;
SET keel.admin_role = 'keel_regress_admins';
SET ROLE keel_regress_dev;
BEGIN;
SELECT keel.allow_destructive('dev table no longer needed');
DROP TABLE dev_table;
COMMIT;
RESET ROLE;
-- keel.admin_role naming a missing role leaves only superusers.
SET keel.admin_role = 'no_such_role';
SET ROLE keel_regress_dev;
SELECT keel.allow_destructive('no admin role');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;
RESET keel.admin_role;
-- Only a superuser may change keel.admin_role.
SET ROLE keel_regress_dev;
SET keel.admin_role = 'keel_regress_dev';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;

-- The audit: every break-glass, every overridden statement, every refusal.
-- (flush: with the library preloaded and no worker slot, refusals wait in the spool)
SELECT keel.guard_audit_flush() IS NOT NULL AS flushed;
SELECT action, rule, command_tag, objects, reason, role_name
FROM keel.guard_audit WHERE id > :audit_mark AND action <> 'guard_lowered' ORDER BY occurred_at, id;
-- The audit is written by keel only.
SET ROLE keel_regress_dev;
INSERT INTO keel.guard_audit (action, role_name, session_role, backend_pid)
VALUES ('break_glass', 'x', 'x', 0);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;

REVOKE CREATE ON SCHEMA public FROM keel_regress_dev;
SET keel.guard_rules = 'drop-role=off';
DROP ROLE keel_regress_dev;
DROP ROLE keel_regress_admins;
RESET keel.guard_rules;
