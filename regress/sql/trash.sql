-- trash: keel's recycle bin for dropped columns (issue 8), in both
-- deployment modes: ALTER TABLE ... DROP COLUMN let through by the guard
-- keeps the column's values, keyed by the primary key (or replica
-- identity), and keel.restore_dropped() puts them back exactly.
\set SHOW_CONTEXT never
CREATE EXTENSION IF NOT EXISTS keel;
SELECT coalesce(max(id), 0) AS mark FROM keel.dropped_objects \gset
CREATE TABLE profiles (id int PRIMARY KEY, name text, bio text DEFAULT 'none' NOT NULL);
INSERT INTO profiles SELECT g, 'user ' || g, 'bio of ' || g FROM generate_series(1, 500) g;
UPDATE profiles SET bio = 'none' WHERE id % 7 = 0;
SELECT md5(string_agg(p::text, ',' ORDER BY id)) AS before FROM profiles p \gset

-- Dropped under the break-glass: the values go to keel_trash first.
BEGIN;
SELECT keel.allow_destructive('bio moves to profile_texts (ticket 12)');
ALTER TABLE profiles DROP COLUMN bio;
COMMIT;
SELECT kind, original_identity, row_count, dropped_by, reason,
       details->>'type' AS type, details->>'default' AS default_expr, details->'keys' AS keys,
       expires_at - dropped_at AS retention
FROM keel.dropped_objects WHERE id > :mark ORDER BY id;
SELECT id AS col_id FROM keel.dropped_objects WHERE id > :mark AND kind = 'column' \gset

-- Restoring needs superuser or keel.admin_role.
CREATE ROLE keel_regress_nobody;
SET ROLE keel_regress_nobody;
SELECT keel.restore_dropped(:col_id);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;

-- A name collision is refused with a hint; a changed table too.
ALTER TABLE profiles ADD COLUMN bio text;
SELECT keel.restore_dropped(:col_id);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
BEGIN;  -- clear the way: this empty stand-in goes for good
SET LOCAL keel.trash = off;
SELECT keel.allow_destructive('drop the stand-in');
ALTER TABLE profiles DROP COLUMN bio;
COMMIT;
SELECT keel.restore_dropped(:col_id);
SELECT md5(string_agg(p::text, ',' ORDER BY id)) = :'before' AS same_rows FROM profiles p;
SELECT column_default, is_nullable FROM information_schema.columns
WHERE table_name = 'profiles' AND column_name = 'bio';
-- It cannot be restored twice.
SELECT keel.restore_dropped(:col_id);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT keel.restore_dropped(-1);
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- The values go back as the table's owner: its triggers never run with the
-- rights of keel's owner (a table owner could plant one for an admin's restore).
CREATE TABLE trigger_log (who name);
GRANT INSERT ON trigger_log TO keel_regress_nobody;
CREATE TABLE owned (id int PRIMARY KEY, note text);
INSERT INTO owned VALUES (1, 'one'), (2, 'two');
ALTER TABLE owned OWNER TO keel_regress_nobody;
CREATE FUNCTION log_who() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN INSERT INTO public.trigger_log VALUES (current_user); RETURN NEW; END $$;
CREATE TRIGGER owned_log BEFORE UPDATE ON owned FOR EACH ROW EXECUTE FUNCTION log_who();
BEGIN;
SELECT keel.allow_destructive('note column goes');
ALTER TABLE owned DROP COLUMN note;
COMMIT;
SELECT max(id) AS owned_id FROM keel.dropped_objects \gset
SELECT keel.restore_dropped(:owned_id);
SELECT DISTINCT who FROM trigger_log;
SELECT * FROM owned ORDER BY id;

-- Restored under another name.
BEGIN;
SELECT keel.allow_destructive('again');
ALTER TABLE profiles DROP COLUMN name;
COMMIT;
SELECT max(id) AS name_id FROM keel.dropped_objects \gset
SELECT keel.restore_dropped(:name_id, 'display_name');
SELECT count(*) FILTER (WHERE display_name = 'user ' || id) AS matched FROM profiles;

-- A table with neither a primary key nor a replica identity cannot keep a column.
CREATE TABLE loose (a int, b int);
INSERT INTO loose VALUES (1, 2);
BEGIN;
SELECT keel.allow_destructive('no key');
ALTER TABLE loose DROP COLUMN b;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
ROLLBACK;
-- keel.trash = off drops it for good, as before.
BEGIN;
SET LOCAL keel.trash = off;
SELECT keel.allow_destructive('no key, for good');
ALTER TABLE loose DROP COLUMN b;
COMMIT;

-- Purge: nothing is past its retention yet; older_than purges what is older.
SELECT keel.purge_dropped() AS purged_expired;
BEGIN;
SELECT keel.allow_destructive('to purge');
ALTER TABLE profiles DROP COLUMN display_name;
COMMIT;
SET ROLE keel_regress_nobody;
SELECT keel.purge_dropped('0 seconds');
\echo SQLSTATE :LAST_ERROR_SQLSTATE
RESET ROLE;
-- past its retention (moved back in time here instead of waiting): purged by the default call
UPDATE keel.dropped_objects SET expires_at = dropped_at + interval '1 microsecond'
WHERE original_identity = 'public.profiles.display_name';
SELECT keel.purge_dropped() AS purged_after_retention;
SELECT keel.purge_dropped('0 seconds') AS nothing_left;
SELECT kind, original_identity, restored_at IS NOT NULL AS restored, purged_at IS NOT NULL AS purged
FROM keel.dropped_objects WHERE id > :mark ORDER BY id;
SELECT count(*) AS trash_tables_left FROM pg_class
WHERE relnamespace = 'keel_trash'::regnamespace AND relkind = 'r';
SELECT action, objects FROM keel.guard_audit WHERE action IN ('restored', 'purged') ORDER BY id;

-- keel_trash is not a member of the extension; PUBLIC cannot use it.
SELECT count(*) AS trash_schema_members FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass AND classid = 'pg_namespace'::regclass
  AND objid = 'keel_trash'::regnamespace;
SELECT has_schema_privilege('keel_regress_nobody', 'keel_trash', 'USAGE') AS nobody_usage;
BEGIN;
SET LOCAL keel.trash = off;
SELECT keel.allow_destructive('regress clean-up') IS NULL AS ok;
DROP OWNED BY keel_regress_nobody;
DROP ROLE keel_regress_nobody;
COMMIT;
