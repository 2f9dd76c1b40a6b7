-- bench/guard/plpgsql_guard.sql: the comparison point for bench/guard/run.
-- A guard written in PL/pgSQL with the same policy and event coverage as
-- keel's C guard, in its own schema `plguard`, the way a team without keel
-- would write one. Load it with psql into a database without keel:
--   psql -X -v ON_ERROR_STOP=1 -d DB -f bench/guard/plpgsql_guard.sql
--
-- Policy (refusals raise SQLSTATE KL001, like keel):
--   * sql_drop: a non-temporary table, table column or sequence dropped by a
--     command, directly or through CASCADE, is refused. Derived objects
--     (view, materialized view, function, procedure, index, trigger, table
--     constraint, type, domain, schema) are recorded in a temporary table;
--     a deferred constraint trigger on it refuses the COMMIT when one of them
--     was not re-created under the same name (DROP VIEW v; CREATE VIEW v ...
--     in one transaction goes through).
--   * table_rewrite: a rewrite of a non-temporary table that holds rows is
--     refused.
--   * ddl_command_end: renames (ALTER TABLE / VIEW / MATERIALIZED VIEW ...
--     RENAME [COLUMN] | SET SCHEMA, ALTER TYPE ... RENAME VALUE) are refused.
--   * plguard.allow_destructive('reason') lets everything through until the
--     transaction ends (a transaction-local setting).
--
-- What PL/pgSQL cannot do, and what it costs:
--   * An event-trigger function in PL/pgSQL sees TG_EVENT and TG_TAG, never
--     the parse tree. At ddl_command_start it cannot tell ALTER TABLE ... DROP
--     COLUMN from ADD COLUMN, nor whether an IF EXISTS target exists, so it
--     lets every command through; a destructive one is refused only at
--     sql_drop, after the work was done (and then rolled back).
--   * Renames produce no sql_drop. pg_event_trigger_ddl_commands() at
--     ddl_command_end reports the renamed object but not that it was a rename
--     (the pg_ddl_command value is opaque outside C), so the guard must run at
--     the end of EVERY command and fall back on the statement text
--     (current_query()). That per-command trigger is the price the benchmark
--     measures.
-- No audit table: a refusal aborts the transaction and PL/pgSQL has no
-- autonomous transaction to keep an audit row in (keel uses a background
-- worker for that).

CREATE SCHEMA plguard;

-- Break-glass: a transaction-local custom setting.
CREATE FUNCTION plguard.allow_destructive(reason text) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF reason IS NULL OR btrim(reason) = '' THEN
        RAISE EXCEPTION 'plguard.allow_destructive() needs a reason';
    END IF;
    PERFORM set_config('plguard.break_glass', reason, true);
END $$;

CREATE FUNCTION plguard.break_glass() RETURNS boolean
LANGUAGE sql STABLE AS $$
    SELECT coalesce(current_setting('plguard.break_glass', true), '') <> ''
$$;

CREATE FUNCTION plguard.refuse(what text, objects text[]) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'KL001',
        MESSAGE = format('destructive DDL refused: %s', what),
        DETAIL = 'It would destroy: ' || array_to_string(objects, ', ') || '.',
        HINT = 'Call plguard.allow_destructive(''reason'') in the same transaction to let it through.';
END $$;

-- check_replaced(): constraint trigger on pg_temp.plguard_pending, deferred
-- to COMMIT; refuses the commit when a recorded derived object is gone.
CREATE FUNCTION plguard.check_replaced() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    parts text[];
    present boolean;
BEGIN
    IF plguard.break_glass() THEN
        RETURN NULL;
    END IF;
    CASE NEW.object_type
    WHEN 'view', 'materialized view', 'index' THEN
        present := EXISTS (SELECT FROM pg_class
                           WHERE oid = to_regclass(NEW.object_identity)
                             AND relkind = ANY (CASE NEW.object_type
                                                WHEN 'view' THEN '{v}'::"char"[]
                                                WHEN 'materialized view' THEN '{m}'::"char"[]
                                                ELSE '{i,I}'::"char"[] END));
    WHEN 'function', 'procedure' THEN
        present := EXISTS (SELECT FROM pg_proc
                           WHERE oid = to_regprocedure(NEW.object_identity)
                             AND (prokind = 'p') = (NEW.object_type = 'procedure'));
    WHEN 'type', 'domain' THEN
        present := EXISTS (SELECT FROM pg_type
                           WHERE oid = to_regtype(NEW.object_identity)
                             AND (typtype = 'd') = (NEW.object_type = 'domain'));
    WHEN 'schema' THEN
        present := to_regnamespace(NEW.object_identity) IS NOT NULL;
    WHEN 'trigger', 'table constraint' THEN
        -- identity: "<name> on <schema>.<table>"
        parts := regexp_match(NEW.object_identity, '^(.*) on (.*)$');
        IF NEW.object_type = 'trigger' THEN
            present := EXISTS (SELECT FROM pg_trigger
                               WHERE tgrelid = to_regclass(parts[2])
                                 AND quote_ident(tgname) = parts[1]);
        ELSE
            present := EXISTS (SELECT FROM pg_constraint
                               WHERE conrelid = to_regclass(parts[2])
                                 AND quote_ident(conname) = parts[1]);
        END IF;
    ELSE
        present := true;
    END CASE;
    IF NOT present THEN
        PERFORM plguard.refuse(
            format('%s %s was dropped and not re-created before commit', NEW.tag, NEW.object_identity),
            ARRAY[NEW.object_type || ' ' || NEW.object_identity]);
    END IF;
    RETURN NULL;
END $$;

-- pending_table(): creates this session's pg_temp.plguard_pending on first use.
CREATE FUNCTION plguard.pending_table() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    IF to_regclass('pg_temp.plguard_pending') IS NULL THEN
        CREATE TEMPORARY TABLE plguard_pending (
            tag text NOT NULL,
            object_type text NOT NULL,
            object_identity text NOT NULL
        ) ON COMMIT DELETE ROWS;
        CREATE CONSTRAINT TRIGGER plguard_replaced AFTER INSERT ON pg_temp.plguard_pending
            DEFERRABLE INITIALLY DEFERRED
            FOR EACH ROW EXECUTE FUNCTION plguard.check_replaced();
    END IF;
END $$;

-- ddl_command_start: sees the tag only (see above), so it lets the command
-- through. Kept, with keel's tag list, so the comparison has the same triggers.
CREATE FUNCTION plguard.on_ddl_command_start() RETURNS event_trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- TG_TAG is all there is: no parse tree, no target, no IF EXISTS.
    RETURN;
END $$;

CREATE FUNCTION plguard.on_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    destroyed text[];
    derived_types text[];
    derived_ids text[];
BEGIN
    IF plguard.break_glass() THEN
        RETURN;
    END IF;
    FOR r IN
        SELECT object_type, object_identity
        FROM pg_event_trigger_dropped_objects()
        WHERE NOT is_temporary AND (original OR normal)
    LOOP
        IF r.object_type IN ('table', 'table column', 'sequence') THEN
            destroyed := destroyed || (r.object_type || ' ' || r.object_identity);
        ELSIF r.object_type IN ('view', 'materialized view', 'function', 'procedure', 'index',
                                'trigger', 'table constraint', 'type', 'domain', 'schema') THEN
            derived_types := derived_types || r.object_type;
            derived_ids := derived_ids || r.object_identity;
        END IF;
    END LOOP;
    IF destroyed IS NOT NULL THEN
        PERFORM plguard.refuse(TG_TAG, destroyed);
    END IF;
    IF derived_ids IS NOT NULL THEN
        PERFORM plguard.pending_table();
        INSERT INTO pg_temp.plguard_pending (tag, object_type, object_identity)
        SELECT TG_TAG, t, i FROM unnest(derived_types, derived_ids) AS d(t, i);
    END IF;
END $$;

CREATE FUNCTION plguard.on_table_rewrite() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
    rel regclass := pg_event_trigger_table_rewrite_oid();
    has_rows boolean;
BEGIN
    IF plguard.break_glass()
       OR (SELECT relpersistence FROM pg_class WHERE oid = rel) = 't' THEN
        RETURN;
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT FROM %s)', rel) INTO has_rows;
    IF has_rows THEN
        PERFORM plguard.refuse(format('%s rewrites table %s, which holds rows', TG_TAG, rel),
                               ARRAY['rows of table ' || rel::text]);
    END IF;
END $$;

-- ddl_command_end: runs after every DDL command; the only place PL/pgSQL can
-- see a rename, and only through the statement text.
CREATE FUNCTION plguard.on_ddl_command_end() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE
    r record;
    renamed text[];
BEGIN
    FOR r IN
        SELECT command_tag, object_type, schema_name, object_identity, in_extension
        FROM pg_event_trigger_ddl_commands()
    LOOP
        CONTINUE WHEN r.schema_name LIKE 'pg\_temp%' OR r.in_extension;
        IF (r.command_tag IN ('ALTER TABLE', 'ALTER VIEW', 'ALTER MATERIALIZED VIEW')
            AND r.object_type IN ('table', 'view', 'materialized view', 'table column',
                                  'view column', 'materialized view column')
            AND current_query() ~* '\mrename\M|\mset\s+schema\M')
           OR (r.command_tag = 'ALTER TYPE' AND current_query() ~* '\mrename\s+value\M') THEN
            renamed := renamed || (r.object_type || ' ' || r.object_identity);
        END IF;
    END LOOP;
    IF renamed IS NOT NULL AND NOT plguard.break_glass() THEN
        PERFORM plguard.refuse('rename (' || TG_TAG || ')', renamed);
    END IF;
END $$;

CREATE EVENT TRIGGER plguard_ddl_command_start ON ddl_command_start
    WHEN TAG IN ('DROP TABLE', 'ALTER TABLE', 'DROP TYPE', 'DROP DOMAIN', 'DROP SCHEMA',
                 'DROP MATERIALIZED VIEW', 'DROP SEQUENCE', 'ALTER TYPE', 'DROP VIEW',
                 'DROP FUNCTION', 'DROP PROCEDURE', 'DROP ROUTINE', 'DROP AGGREGATE',
                 'DROP INDEX', 'DROP TRIGGER', 'DROP EXTENSION', 'ALTER EXTENSION',
                 'ALTER VIEW', 'ALTER MATERIALIZED VIEW', 'ALTER SEQUENCE', 'ALTER INDEX',
                 'ALTER FUNCTION', 'ALTER PROCEDURE', 'ALTER ROUTINE', 'ALTER SCHEMA',
                 'CREATE FUNCTION', 'CREATE PROCEDURE', 'DROP OWNED')
    EXECUTE FUNCTION plguard.on_ddl_command_start();
CREATE EVENT TRIGGER plguard_sql_drop ON sql_drop
    EXECUTE FUNCTION plguard.on_sql_drop();
CREATE EVENT TRIGGER plguard_table_rewrite ON table_rewrite
    EXECUTE FUNCTION plguard.on_table_rewrite();
CREATE EVENT TRIGGER plguard_ddl_command_end ON ddl_command_end
    EXECUTE FUNCTION plguard.on_ddl_command_end();

ALTER EVENT TRIGGER plguard_ddl_command_start ENABLE ALWAYS;
ALTER EVENT TRIGGER plguard_sql_drop ENABLE ALWAYS;
ALTER EVENT TRIGGER plguard_table_rewrite ENABLE ALWAYS;
ALTER EVENT TRIGGER plguard_ddl_command_end ENABLE ALWAYS;
