-- trash_hook: with keel.so preloaded, a DROP TABLE the guard lets through
-- moves the table into keel_trash (no data copied) and TRUNCATE keeps the
-- rows; keel.restore_dropped() brings back exactly what was there: the same
-- rows (checksum), indexes, owned sequence, foreign keys in and out, and the
-- dependent views CASCADE took (issue 8).
\set SHOW_CONTEXT never
CREATE EXTENSION IF NOT EXISTS keel;
SELECT coalesce(max(id), 0) AS mark FROM keel.dropped_objects \gset
CREATE TABLE owners (id int PRIMARY KEY, name text);
INSERT INTO owners SELECT g, 'owner ' || g FROM generate_series(1, 20) g;
CREATE TABLE ledger (id serial PRIMARY KEY, owner_id int REFERENCES owners, amount int CHECK (amount > 0), note text);
CREATE INDEX ledger_owner ON ledger (owner_id);
INSERT INTO ledger (owner_id, amount, note) SELECT 1 + g % 20, g, 'n' || g FROM generate_series(1, 1000) g;
CREATE TABLE receipts (id int PRIMARY KEY, ledger_id int REFERENCES ledger);
INSERT INTO receipts SELECT g, g FROM generate_series(1, 10) g;
CREATE VIEW big_entries AS SELECT * FROM ledger WHERE amount > 900;
CREATE VIEW biggest AS SELECT * FROM big_entries WHERE amount > 990;
GRANT SELECT ON ledger TO PUBLIC;
-- a view owned by an ordinary role comes back owned by it, not by keel's owner
-- (a superuser-owned view would read with a superuser's rights), with its grants
CREATE ROLE keel_regress_viewer;
GRANT SELECT ON ledger, big_entries TO keel_regress_viewer;
ALTER VIEW biggest OWNER TO keel_regress_viewer;
GRANT SELECT ON biggest TO PUBLIC;
SELECT md5(string_agg(l::text, ',' ORDER BY id)) AS before FROM ledger l \gset

-- Without CASCADE the dependents still stop it, as PostgreSQL does.
BEGIN;
SELECT keel.allow_destructive('ledger replaced');
DROP TABLE ledger;
ROLLBACK;
-- Refused without the break-glass, as ever.
DROP TABLE ledger CASCADE;
\echo SQLSTATE :LAST_ERROR_SQLSTATE

BEGIN;
SELECT keel.allow_destructive('ledger replaced by ledger_v2 (ticket 30)');
DROP TABLE ledger CASCADE;
COMMIT;
SELECT to_regclass('ledger') AS ledger, to_regclass('big_entries') AS view,
       (SELECT count(*) FROM pg_constraint WHERE conname = 'receipts_ledger_id_fkey') AS fk;
SELECT kind, original_identity, trash_name, size_bytes > 0 AS sized, reason,
       jsonb_array_length(details->'views') AS views, jsonb_array_length(details->'foreign_keys') AS fks,
       details->'indexes' AS indexes, details->'sequences' AS sequences
FROM keel.dropped_objects WHERE id > :mark ORDER BY id;
SELECT max(id) AS table_id FROM keel.dropped_objects \gset
SELECT relname, relkind FROM pg_class WHERE relnamespace = 'keel_trash'::regnamespace
  AND relname LIKE '%' || :table_id || '%' ORDER BY 1;

-- A name collision is refused with a hint; new_name restores beside it.
CREATE TABLE ledger (id int);
SELECT keel.restore_dropped(:table_id);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP TABLE ledger;  -- created in an earlier transaction: an old table, refused
\echo SQLSTATE :LAST_ERROR_SQLSTATE
BEGIN;
SET LOCAL keel.trash = off;
SELECT keel.allow_destructive('clear the way');
DROP TABLE ledger;
COMMIT;
SELECT keel.restore_dropped(:table_id);
SELECT md5(string_agg(l::text, ',' ORDER BY id)) = :'before' AS same_rows FROM ledger l;
SELECT (SELECT count(*) FROM biggest) AS biggest_rows,
       (SELECT count(*) FROM pg_constraint WHERE conname = 'receipts_ledger_id_fkey') AS fk_in,
       (SELECT count(*) FROM pg_constraint WHERE conname = 'ledger_owner_id_fkey') AS fk_out,
       (SELECT count(*) FROM pg_indexes WHERE tablename = 'ledger') AS indexes,
       pg_get_serial_sequence('ledger', 'id') AS sequence,
       has_table_privilege('public', 'ledger', 'SELECT') AS public_select,
       (SELECT relowner::regrole FROM pg_class WHERE oid = 'biggest'::regclass) AS view_owner,
       has_table_privilege('public', 'biggest', 'SELECT') AS view_public_select;
INSERT INTO ledger (owner_id, amount) VALUES (1, 5) RETURNING id;

-- TRUNCATE keeps the rows; they come back.
SELECT md5(string_agg(r::text, ',' ORDER BY id)) AS receipts_before FROM receipts r \gset
BEGIN;
SELECT keel.allow_destructive('reset receipts');
TRUNCATE receipts;
COMMIT;
SELECT count(*) AS receipts_now FROM receipts;
SELECT max(id) AS rows_id FROM keel.dropped_objects \gset
SELECT kind, row_count FROM keel.dropped_objects WHERE id = :rows_id;
SELECT keel.restore_dropped(:rows_id);
SELECT md5(string_agg(r::text, ',' ORDER BY id)) = :'receipts_before' AS same_receipts FROM receipts r;

-- Purge destroys what is kept; a purged entry cannot be restored.
BEGIN;
SELECT keel.allow_destructive('for the purge');
DROP TABLE receipts;
COMMIT;
SELECT max(id) AS purge_id FROM keel.dropped_objects \gset
SELECT keel.purge_dropped() AS purged_expired;
SELECT keel.purge_dropped('0 seconds') AS purged_now;
SELECT keel.restore_dropped(:purge_id);
\echo SQLSTATE :LAST_ERROR_SQLSTATE
SELECT count(*) AS left_in_trash FROM pg_class
WHERE relnamespace = 'keel_trash'::regnamespace AND relname = 't' || :purge_id;

SELECT kind, original_identity, restored_at IS NOT NULL AS restored, purged_at IS NOT NULL AS purged
FROM keel.dropped_objects WHERE id > :mark ORDER BY id;
SELECT action, rule, command_tag FROM keel.guard_audit
WHERE action IN ('overridden', 'restored', 'purged') AND occurred_at > now() - interval '1 hour'
  AND (rule IS NULL OR rule IN ('drop-table', 'truncate'))
ORDER BY id DESC LIMIT 8;
BEGIN;
SET LOCAL keel.trash = off;
SELECT keel.allow_destructive('regress clean-up') IS NULL AS ok;
DROP OWNED BY keel_regress_viewer;
DROP ROLE keel_regress_viewer;
COMMIT;
