-- upgrade: keel 0.1.0 updated to 0.2.0 ends in the same catalog state as a
-- fresh 0.2.0 install (pg_cron's upgrade tests do the same). Runs in a
-- database of its own, so the other tests' keel is left alone.
\set SHOW_CONTEXT never
-- the recycle bin has its own tests (trash, trash_hook); here drops are final
SET keel.trash = off;
CREATE DATABASE keel_regress_upgrade;
\c keel_regress_upgrade
-- catalog_state(): one row per member of extension keel, with everything
-- that defines it (columns, constraints, indexes, triggers, event triggers,
-- functions, ACLs, comments, config dump) and nothing that varies (OIDs).
CREATE FUNCTION public.catalog_state() RETURNS TABLE (object text, definition text)
LANGUAGE sql AS $$
    WITH members AS (
        SELECT d.classid, d.objid FROM pg_depend d
        WHERE d.refclassid = 'pg_extension'::regclass AND d.deptype = 'e'
          AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'keel'))
    SELECT i.type || ' ' || i.identity,
           concat_ws(' | ',
               CASE WHEN m.classid = 'pg_class'::regclass THEN
                   (SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
                           || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                           || coalesce(' default ' || pg_get_expr(ad.adbin, ad.adrelid), '')
                           || CASE WHEN a.attidentity <> '' THEN ' identity ' || a.attidentity::text ELSE '' END
                           || CASE WHEN a.attgenerated <> '' THEN ' generated' ELSE '' END
                           || coalesce(' collate ' || co.collname, ''),
                           ', ' ORDER BY a.attnum)
                    FROM pg_attribute a
                    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
                    LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 100
                    WHERE a.attrelid = m.objid AND a.attnum > 0 AND NOT a.attisdropped) END,
               CASE WHEN m.classid = 'pg_class'::regclass THEN
                   (SELECT string_agg(con.conname || ' ' || pg_get_constraintdef(con.oid), ', ' ORDER BY con.conname)
                    FROM pg_constraint con WHERE con.conrelid = m.objid) END,
               CASE WHEN m.classid = 'pg_class'::regclass THEN
                   (SELECT string_agg(pg_get_indexdef(ix.indexrelid), ', ' ORDER BY pg_get_indexdef(ix.indexrelid))
                    FROM pg_index ix WHERE ix.indrelid = m.objid) END,
               CASE WHEN m.classid = 'pg_class'::regclass THEN
                   (SELECT string_agg(pg_get_triggerdef(t.oid) || ' enabled ' || t.tgenabled::text, ', ' ORDER BY t.tgname)
                    FROM pg_trigger t WHERE t.tgrelid = m.objid AND NOT t.tgisinternal) END,
               CASE WHEN m.classid = 'pg_class'::regclass THEN
                   (SELECT c.relkind::text || ' acl ' || coalesce(c.relacl::text, 'default')
                           || ' rls ' || c.relrowsecurity FROM pg_class c WHERE c.oid = m.objid) END,
               CASE WHEN m.classid = 'pg_proc'::regclass THEN
                   (SELECT pg_get_functiondef(p.oid) || ' acl ' || coalesce(p.proacl::text, 'default')
                    FROM pg_proc p WHERE p.oid = m.objid) END,
               CASE WHEN m.classid = 'pg_event_trigger'::regclass THEN
                   (SELECT e.evtevent || ' ' || e.evtfoid::regproc::text || ' enabled ' || e.evtenabled::text
                           || ' tags ' || coalesce(e.evttags::text, 'all')
                    FROM pg_event_trigger e WHERE e.oid = m.objid) END,
               obj_description(m.objid, m.classid::regclass::name))
    FROM members m, LATERAL pg_identify_object(m.classid, m.objid, 0) i
    UNION ALL
    SELECT 'config dump', string_agg(c.relname || coalesce(' ' || cond, ''), ', ' ORDER BY c.relname)
    FROM pg_extension e, unnest(e.extconfig, e.extcondition) AS x(oid, cond)
    JOIN pg_class c ON c.oid = x.oid WHERE e.extname = 'keel'
    UNION ALL
    SELECT 'schema keel', n.nspacl::text FROM pg_namespace n WHERE n.nspname = 'keel'
$$;

CREATE EXTENSION keel VERSION '0.1.0';
-- 0.1.0's symbols still load from the new keel.so and work on 0.1.0's
-- tables (they name no 0.2.0 column): allocate, consume with a key, replay.
SELECT keel.get_available_credits('00000000-0000-0000-0000-000000000001', 'ai');
SELECT * FROM keel.allocate_plan_credits('00000000-0000-0000-0000-000000000001', 'basic', 1000);
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000001', 'ai', 10, NULL, 'before-update');
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000001', 'ai', 10, NULL, 'before-update');
SELECT keel.consume_specific_credits('00000000-0000-0000-0000-000000000001', 'ai', 5);
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000001', 'ai', 100000);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ALTER EXTENSION keel UPDATE TO '0.2.0';
SELECT extversion FROM pg_extension WHERE extname = 'keel';
-- The data came through: the 0.1.0 allocation is the plan's part, the key
-- replays, and the ledger reconciles.
SELECT credit_type, allocated, plan_allocated, used, held, granted FROM keel.credit_balances ORDER BY credit_type;
SELECT keel.consume_credits('00000000-0000-0000-0000-000000000001', 'ai', 10, NULL, 'before-update');
SELECT keel.grant_credits('00000000-0000-0000-0000-000000000001', 'ai', 50);
SELECT * FROM keel.allocate_plan_credits('00000000-0000-0000-0000-000000000001', 'basic', 2000);
SELECT count(*) AS problems FROM keel.verify_credits();
CREATE TABLE updated_state AS SELECT * FROM public.catalog_state();
BEGIN;
SELECT keel.allow_destructive('regress: compare with a fresh install');
DROP EXTENSION keel;
COMMIT;
CREATE EXTENSION keel;
CREATE TABLE fresh_state AS SELECT * FROM public.catalog_state();
SELECT count(*) AS members FROM fresh_state;
-- Differences either way (none expected).
(SELECT 'only after update' AS side, * FROM updated_state EXCEPT SELECT 'only after update', * FROM fresh_state)
UNION ALL
(SELECT 'only in fresh install', * FROM fresh_state EXCEPT SELECT 'only in fresh install', * FROM updated_state)
ORDER BY 1, 2;

-- The schema squat: a schema named keel created by another role is refused.
BEGIN;
SELECT keel.allow_destructive('regress: schema squat');
DROP EXTENSION keel;
COMMIT;
DROP SCHEMA keel;
CREATE ROLE keel_regress_squatter;
CREATE SCHEMA keel AUTHORIZATION keel_regress_squatter;
CREATE EXTENSION keel;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) AS keel_installed FROM pg_extension WHERE extname = 'keel';
-- Nor is 0.1.0, installed into such a schema before 0.2.0 existed, updated.
CREATE EXTENSION keel VERSION '0.1.0';
ALTER EXTENSION keel UPDATE TO '0.2.0';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT extversion FROM pg_extension WHERE extname = 'keel';
\c contrib_regression
SET keel.guard_rules = 'drop-database=off, drop-role=off';
DROP DATABASE keel_regress_upgrade;
DROP ROLE keel_regress_squatter;
RESET keel.guard_rules;
