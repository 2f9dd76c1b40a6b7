-- guard_replace: refuse what destroys, allow what replaces (issue 5).
-- Derived objects dropped and re-created under the same name and kind before
-- COMMIT are replacements; dropped and not re-created, the pre-commit check
-- refuses the transaction (KL001). Objects created in the same transaction
-- may be dropped freely, by an ordinary role too. Renames, rewrites of tables
-- that hold rows and DROP INDEX CONCURRENTLY are refused before any work.
\set SHOW_CONTEXT never
-- the recycle bin has its own tests (trash, trash_hook); here drops are final
SET keel.trash = off;
SELECT coalesce(max(id), 0) AS audit_mark FROM keel.guard_audit \gset
CREATE ROLE keel_regress_owner2;
CREATE SCHEMA rp AUTHORIZATION keel_regress_owner2;
CREATE SCHEMA rp_empty AUTHORIZATION keel_regress_owner2;
SET ROLE keel_regress_owner2;
SET search_path = rp;
CREATE TABLE accounts (id int PRIMARY KEY, email text, plan text, balance int);
INSERT INTO accounts VALUES (1, 'a@example.com', 'pro', 10);
CREATE TABLE empty_table (id int, note text);
CREATE TABLE notes (id int, body varchar(100));
INSERT INTO notes VALUES (1, 'kept');
CREATE VIEW account_emails AS SELECT id, email FROM accounts;
CREATE MATERIALIZED VIEW plan_counts AS SELECT plan, count(*) FROM accounts GROUP BY plan;
CREATE FUNCTION account_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM rp.accounts';
CREATE PROCEDURE touch_accounts() LANGUAGE sql AS 'SELECT 1';
CREATE INDEX accounts_email ON accounts (email);
CREATE FUNCTION noop_trigger() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
CREATE TRIGGER accounts_touch BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION noop_trigger();
ALTER TABLE accounts ADD CONSTRAINT balance_positive CHECK (balance >= 0);
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE DOMAIN email_address AS text CHECK (VALUE LIKE '%@%');

-- Allowed: every derived kind replaced in one transaction (a migration's usual shape).
BEGIN;
DROP VIEW account_emails;
CREATE VIEW account_emails AS SELECT id, email, plan FROM accounts;
DROP MATERIALIZED VIEW plan_counts;
CREATE MATERIALIZED VIEW plan_counts AS SELECT plan, count(*) AS n FROM accounts GROUP BY plan;
DROP FUNCTION account_count();
CREATE FUNCTION account_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM rp.accounts WHERE balance > 0';
DROP PROCEDURE touch_accounts();
CREATE PROCEDURE touch_accounts() LANGUAGE sql AS 'SELECT 2';
DROP INDEX accounts_email;
CREATE INDEX accounts_email ON accounts (lower(email));
DROP TRIGGER accounts_touch ON accounts;
CREATE TRIGGER accounts_touch BEFORE UPDATE OR INSERT ON accounts FOR EACH ROW EXECUTE FUNCTION noop_trigger();
ALTER TABLE accounts DROP CONSTRAINT balance_positive;
ALTER TABLE accounts ADD CONSTRAINT balance_positive CHECK (balance > -1) NOT VALID;
DROP DOMAIN email_address;
CREATE DOMAIN email_address AS text CHECK (VALUE LIKE '%_@_%');
COMMIT;
-- ... and a view dropped with CASCADE, its dependent view re-created too.
CREATE VIEW pro_emails AS SELECT * FROM account_emails WHERE plan = 'pro';
BEGIN;
DROP VIEW account_emails CASCADE;
CREATE VIEW account_emails AS SELECT id, email, plan FROM accounts;
CREATE VIEW pro_emails AS SELECT * FROM account_emails WHERE plan = 'pro';
COMMIT;

-- Refused at COMMIT: each derived kind dropped and not re-created; nothing changes.
DROP VIEW account_emails CASCADE;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP MATERIALIZED VIEW plan_counts;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP FUNCTION account_count();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP PROCEDURE touch_accounts();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP INDEX accounts_email;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP TRIGGER accounts_touch ON accounts;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER TABLE accounts DROP CONSTRAINT balance_positive;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP TYPE mood;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP SCHEMA rp_empty;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- a replacement under another kind is no replacement
BEGIN;
DROP VIEW pro_emails;
CREATE TABLE pro_emails (id int);
COMMIT;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- a drop inside a savepoint that rolls back counts for nothing
BEGIN;
SAVEPOINT s;
DROP VIEW pro_emails;
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT count(*) AS derived_left FROM pg_class
WHERE relnamespace = 'rp'::regnamespace
  AND relname IN ('account_emails', 'pro_emails', 'plan_counts', 'accounts_email');

-- DROP INDEX CONCURRENTLY can never be a replacement: refused at once.
DROP INDEX CONCURRENTLY accounts_email;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT indisvalid FROM pg_index WHERE indexrelid = 'accounts_email'::regclass;

-- Allowed: objects created in this transaction, whatever their kind, by the owner.
BEGIN;
CREATE TABLE scratch (id serial PRIMARY KEY, v int);
INSERT INTO scratch (v) VALUES (1), (2);
CREATE INDEX scratch_v ON scratch (v);
ALTER TABLE scratch ALTER COLUMN v TYPE bigint USING v::bigint;
CREATE VIEW scratch_view AS SELECT v FROM scratch;
ALTER TABLE scratch RENAME COLUMN v TO w;
ALTER TABLE scratch RENAME TO scratch2;
TRUNCATE scratch2;
DROP TABLE scratch2 CASCADE;
COMMIT;
-- ... and a column added in this transaction to an existing table.
BEGIN;
ALTER TABLE accounts ADD COLUMN temp_flag boolean;
ALTER TABLE accounts DROP COLUMN temp_flag;
COMMIT;
-- An existing column touched in this transaction is still an existing column.
BEGIN;
ALTER TABLE accounts ALTER COLUMN plan SET DEFAULT 'free';
ALTER TABLE accounts DROP COLUMN plan;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;
-- Allowed: NOT VALID constraints, CREATE INDEX CONCURRENTLY, additive DDL.
ALTER TABLE accounts ADD CONSTRAINT email_present CHECK (email IS NOT NULL) NOT VALID;
ALTER TABLE accounts VALIDATE CONSTRAINT email_present;
CREATE INDEX CONCURRENTLY accounts_plan ON accounts (plan);
ALTER TABLE accounts ADD COLUMN created_at timestamptz DEFAULT now();

-- Renames that break running clients, refused before any work.
ALTER TABLE accounts RENAME TO customer_accounts;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER TABLE accounts RENAME COLUMN email TO email_address;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER VIEW account_emails RENAME TO emails;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER VIEW account_emails RENAME COLUMN email TO mail;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER MATERIALIZED VIEW plan_counts RENAME TO plan_totals;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER TABLE accounts SET SCHEMA rp_empty;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER TYPE mood RENAME VALUE 'sad' TO 'blue';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Allowed renames: an index, a missing table (IF EXISTS), an enum value added here.
ALTER INDEX accounts_plan RENAME TO accounts_plan_idx;
ALTER TABLE IF EXISTS no_such_table RENAME TO other;
BEGIN;
CREATE TYPE color AS ENUM ('red');
ALTER TYPE color RENAME VALUE 'red' TO 'crimson';
COMMIT;

-- Rewrites of tables that hold rows (table_rewrite): the reason is in DETAIL.
ALTER TABLE accounts ALTER COLUMN balance TYPE bigint;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER TABLE accounts ADD COLUMN token uuid DEFAULT gen_random_uuid();
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER TABLE accounts SET UNLOGGED;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- Allowed: the same on an empty table, and a type change that needs no rewrite.
ALTER TABLE empty_table ALTER COLUMN id TYPE bigint;
ALTER TABLE empty_table SET UNLOGGED;
ALTER TABLE notes ALTER COLUMN body TYPE varchar(320);  -- a longer varchar: no rewrite
RESET ROLE;
RESET search_path;

-- Per-rule levels (superusers only): one rule at warn, another off.
SET keel.guard_rules = 'rename-column=warn, table-rewrite=off';
SHOW keel.guard_rules;
ALTER TABLE rp.accounts RENAME COLUMN email TO email_address;
ALTER TABLE rp.accounts ALTER COLUMN balance TYPE bigint;
ALTER TABLE rp.accounts RENAME TO customer_accounts;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET keel.guard_rules;
-- keel.guard caps every rule.
SET keel.guard = warn;
BEGIN;
DROP VIEW rp.pro_emails;
COMMIT;
RESET keel.guard;
-- Bad lists are refused with one message.
SET keel.guard_rules = 'rename-colum=warn';
SET keel.guard_rules = 'rename-column=sometimes';
SET keel.guard_rules = 'rename-column';
-- Only a superuser may set it, also per database and per role.
SET ROLE keel_regress_owner2;
SET keel.guard_rules = 'drop-table=off';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER ROLE keel_regress_owner2 SET keel.guard = off;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;
ALTER ROLE keel_regress_owner2 SET keel.guard_rules = 'rename-table=warn';
SELECT setconfig FROM pg_db_role_setting WHERE setrole = 'keel_regress_owner2'::regrole;
ALTER ROLE keel_regress_owner2 RESET keel.guard_rules;

SELECT keel.guard_audit_flush() IS NOT NULL AS flushed;
SELECT action, rule, command_tag, objects FROM keel.guard_audit
WHERE id > :audit_mark AND action <> 'guard_lowered' ORDER BY occurred_at, id;

-- Clean up.
SET keel.guard = off;
DROP SCHEMA rp, rp_empty CASCADE;
RESET keel.guard;
SET keel.guard_rules = 'drop-role=off';
DROP ROLE keel_regress_owner2;
RESET keel.guard_rules;
