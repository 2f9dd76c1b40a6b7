-- guard: the event triggers refuse destructive DDL with SQLSTATE KL001
-- before any work is done (seed 000: "No destructive operations",
-- "Additive-only approach"), and let additive and maintenance DDL through.
CREATE EXTENSION keel;
\set SHOW_CONTEXT never
-- the recycle bin has its own tests (trash, trash_hook); here drops are final
SET keel.trash = off;

CREATE TABLE organizations (id int PRIMARY KEY, name text, plan_name text);
CREATE TABLE coupons (id int PRIMARY KEY, code text);
CREATE TYPE plan_tier AS ENUM ('starter', 'growth', 'pro');
CREATE TABLE organization_billing (org_id int REFERENCES organizations, plan plan_tier);
CREATE VIEW billing_plans AS SELECT plan FROM organization_billing;
CREATE DOMAIN cents AS integer CHECK (VALUE >= 0);
CREATE TYPE money_pair AS (amount cents, currency text);
CREATE SEQUENCE invoice_no;
CREATE MATERIALIZED VIEW org_names AS SELECT name FROM organizations;
CREATE SCHEMA archive;
CREATE TABLE archive.old_orders (id int);

-- Each refused statement kind, one per line; SQLSTATE echoed after each.
DROP TABLE coupons;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP TABLE coupons, organizations CASCADE;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER TABLE organizations DROP COLUMN plan_name;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER TABLE organizations ADD COLUMN status text, DROP COLUMN name;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- without CASCADE PostgreSQL's own dependency error comes first (2BP01)
DROP TYPE plan_tier;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP TYPE plan_tier CASCADE;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP DOMAIN cents CASCADE;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER TYPE money_pair DROP ATTRIBUTE currency;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP SEQUENCE invoice_no;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP MATERIALIZED VIEW org_names;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP SCHEMA archive;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP SCHEMA archive CASCADE;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- whoever sends it: a DO block, a function
DO $$ BEGIN EXECUTE 'DROP TABLE coupons'; END $$;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- the sql_drop backstop: a view dropped with CASCADE takes a materialized view
CREATE VIEW org_view AS SELECT id, name FROM organizations;
CREATE MATERIALIZED VIEW org_view_snapshot AS SELECT * FROM org_view;
DROP VIEW org_view CASCADE;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- the sql_drop backstop: DROP OWNED takes every table a role owns
CREATE ROLE keel_regress_owner;
CREATE TABLE owned_data (id int);
ALTER TABLE owned_data OWNER TO keel_regress_owner;
DROP OWNED BY keel_regress_owner;
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- Nothing was destroyed.
SELECT count(*) AS tables_left FROM pg_class
WHERE relname IN ('coupons', 'organizations', 'organization_billing', 'org_names',
                  'invoice_no', 'old_orders', 'org_view_snapshot', 'owned_data');
SELECT count(*) AS columns_left FROM pg_attribute
WHERE attrelid = 'organizations'::regclass AND attname IN ('name', 'plan_name') AND NOT attisdropped;

-- Allowed: IF EXISTS on a missing object destroys nothing.
DROP TABLE IF EXISTS no_such_table;
ALTER TABLE IF EXISTS no_such_table DROP COLUMN x;
ALTER TABLE organizations DROP COLUMN IF EXISTS no_such_column;
DROP TYPE IF EXISTS no_such_type;
DROP SCHEMA IF EXISTS no_such_schema CASCADE;
DROP TABLE IF EXISTS no_such_schema.t;
-- Allowed: temporary objects.
CREATE TEMP TABLE scratch (id int, note text);
ALTER TABLE scratch DROP COLUMN note;
DROP TABLE scratch;
CREATE TEMP TABLE scratch2 (id int) ON COMMIT DROP;
-- Allowed: additive DDL.
CREATE TABLE IF NOT EXISTS ai_budgets (id int PRIMARY KEY, org_id int REFERENCES organizations);
ALTER TABLE organizations ADD COLUMN IF NOT EXISTS ai_credits integer DEFAULT 0;
CREATE INDEX IF NOT EXISTS ix_ai_budgets_org_id ON ai_budgets (org_id);
ALTER TYPE plan_tier ADD VALUE IF NOT EXISTS 'enterprise';
-- Allowed: maintenance, and derived objects replaced in the same transaction.
BEGIN;
DROP INDEX ix_ai_budgets_org_id;
CREATE INDEX ix_ai_budgets_org_id ON ai_budgets (org_id);
COMMIT;
REINDEX TABLE CONCURRENTLY ai_budgets;
VACUUM FULL ai_budgets;
CLUSTER ai_budgets USING ai_budgets_pkey;
BEGIN;
ALTER TABLE ai_budgets DROP CONSTRAINT ai_budgets_org_id_fkey;
ALTER TABLE ai_budgets ADD CONSTRAINT ai_budgets_org_id_fkey
    FOREIGN KEY (org_id) REFERENCES organizations NOT VALID;
COMMIT;
ALTER TABLE coupons ALTER COLUMN code TYPE varchar(200);
-- Refused at commit: a derived object dropped and not re-created.
DROP VIEW billing_plans;
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- An ordinary role runs additive migrations with the guard installed,
-- and is refused destructive ones like everybody else.
CREATE ROLE keel_regress_app;
CREATE SCHEMA app AUTHORIZATION keel_regress_app;
SET ROLE keel_regress_app;
CREATE TABLE app.users (id int PRIMARY KEY, email text);
ALTER TABLE app.users ADD COLUMN IF NOT EXISTS bio text;
CREATE INDEX IF NOT EXISTS ix_users_email ON app.users (email);
CREATE TEMP TABLE app_scratch (id int);
DROP TABLE app_scratch;
ALTER TABLE app.users DROP COLUMN bio;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- an ordinary role can neither lower keel.guard nor read or write the audit
SET keel.guard = off;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) FROM keel.guard_audit;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;

-- Every blocked statement is in keel.guard_audit (spooled to disk, then
-- written by a background worker, so the rows survive the ERROR).
SELECT keel.guard_audit_flush() IS NOT NULL AS flushed;
SELECT action, rule, command_tag, objects, role_name
FROM keel.guard_audit WHERE action <> 'guard_lowered' ORDER BY occurred_at, id;

-- keel.guard = warn lets it through with a WARNING, audited as warned.
SET keel.guard = warn;
DROP TABLE coupons;
RESET keel.guard;
-- keel.guard = off disables the guard.
SET keel.guard = off;
DROP SEQUENCE invoice_no;
RESET keel.guard;
SHOW keel.guard;
DROP MATERIALIZED VIEW org_names;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT action, rule, command_tag, objects FROM keel.guard_audit
WHERE action NOT IN ('blocked', 'guard_lowered') ORDER BY occurred_at, id;

-- Bad values for the GUCs.
SET keel.guard = maybe;
SET keel.no_such_setting = 1;

-- Clean up the cluster-wide roles.
DROP SCHEMA app CASCADE;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SET keel.guard = off;
DROP SCHEMA app CASCADE;
DROP TABLE owned_data;
RESET keel.guard;
SET keel.guard_rules = 'drop-role=off';
DROP ROLE keel_regress_app;
DROP ROLE keel_regress_owner;
RESET keel.guard_rules;
