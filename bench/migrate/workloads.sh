#!/usr/bin/env bash
# bench/migrate/workloads.sh: writes the migration folders bench/migrate/run
# and bench/migrate/status apply, in keel's layout (<digits>_<slug>.sql, keel
# directives as leading comments). Deterministic: the same arguments give the
# same bytes. Every folder applies in order to a fresh database that has
# `CREATE EXTENSION keel` with the guard enforcing: nothing in it is
# destructive (no DROP, no rewrite of a table that holds rows, no RENAME).
#
#   workloads.sh seed OUTDIR       examples/seed-migrations as-is (11 files)
#   workloads.sh real OUTDIR       the seed files, then 250 generated files
#                                  (0100-0349) of a multi-tenant application:
#                                  25 modules of 10 files each (below)
#   workloads.sh tiny OUTDIR [N]   N (1000) files of one small statement each:
#                                  a CREATE TABLE, or an ADD COLUMN to the
#                                  newest table
#   workloads.sh noop OUTDIR [N]   N (10000) files of one `SELECT 1` each (for
#                                  bench/migrate/status: many history rows,
#                                  no schema)
#
# The 10 files of a module M of the real set (M = projects, invoices, ...):
#   0 CREATE TABLE M (identity key, FK to organizations, CHECK, defaults)
#     and an index on its foreign key
#   1 2,000 rows (INSERT ... SELECT generate_series)
#   2 ALTER TABLE ADD COLUMN: nullable, NOT NULL DEFAULT constant; COMMENT ON
#   3 a partial and a two-column index
#   4 a DO $$ block that adds a column if missing, ending `END $$` with no
#     final semicolon (as real files end)
#   5 a PL/pgSQL trigger function and its BEFORE UPDATE trigger
#   6 a backfill UPDATE of all rows; in every other module the file wraps
#     itself in BEGIN; ... COMMIT; (as seed 004's template does)
#   7 a CHECK added NOT VALID, then VALIDATE CONSTRAINT
#   8 a child table M_events with an FK to M, 3,000 rows, an index
#   9 CREATE OR REPLACE VIEW M_summary; in every fifth module instead a
#     `-- keel:no-transaction` file with CREATE INDEX CONCURRENTLY
# The file names say what they hold (0123_invoices_backfill.sql).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
die() { echo "bench/migrate/workloads.sh: $*" >&2; exit 1; }

modules=(projects tasks invoices invoice_lines payments refunds customers contacts
    deals pipelines tickets ticket_replies campaigns campaign_sends segments
    webhooks webhook_deliveries api_keys audit_entries notifications
    feature_flags experiments surveys survey_answers exports)

seed() {
    local out="$1"
    cp "$repo"/examples/seed-migrations/*.sql "$out"/
}

# real_file OUT VERSION MODULE INDEX POS: writes file number POS (0-9) of module INDEX.
real_file() {
    local out="$1" v="$2" m="$3" i="$4" pos="$5" f
    case "$pos" in
    0)
        f="$out/${v}_${m}_create.sql"
        cat >"$f" <<SQL
-- $m: the table, keyed by organization.
CREATE TABLE $m (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id      UUID NOT NULL REFERENCES organizations (id) ON DELETE CASCADE,
    name        VARCHAR(200) NOT NULL,
    status      VARCHAR(20) NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'paused', 'archived')),
    amount      NUMERIC(12, 2) NOT NULL DEFAULT 0,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX ix_${m}_org_id ON $m (org_id);
SQL
        ;;
    1)
        f="$out/${v}_${m}_rows.sql"
        cat >"$f" <<SQL
-- $m: starting rows for both sample organizations.
INSERT INTO $m (org_id, name, status, amount, created_at)
SELECT o.id,
       '$m ' || g,
       (ARRAY['active', 'paused', 'archived'])[1 + g % 3],
       (g * $((i + 7)) % 10000) / 100.0,
       timestamptz '2025-01-01' + g * interval '17 minutes'
FROM (SELECT id FROM organizations ORDER BY name LIMIT 2) o,
     generate_series(1, 1000) g;
SQL
        ;;
    2)
        f="$out/${v}_${m}_columns.sql"
        cat >"$f" <<SQL
ALTER TABLE $m ADD COLUMN description TEXT;
ALTER TABLE $m ADD COLUMN priority INTEGER NOT NULL DEFAULT 0;
ALTER TABLE $m ADD COLUMN archived_at TIMESTAMPTZ;
COMMENT ON COLUMN $m.priority IS 'higher first; 0 is normal';
SQL
        ;;
    3)
        f="$out/${v}_${m}_indexes.sql"
        cat >"$f" <<SQL
CREATE INDEX ix_${m}_live_status ON $m (status) WHERE archived_at IS NULL;
CREATE INDEX ix_${m}_org_created ON $m (org_id, created_at DESC);
SQL
        ;;
    4)
        f="$out/${v}_${m}_external_ref.sql"
        # no final semicolon and no final newline, as real files often end
        printf '%s' "-- $m: external_ref, added only where it is missing.
DO \$\$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name = '$m' AND column_name = 'external_ref'
    ) THEN
        ALTER TABLE $m ADD COLUMN external_ref VARCHAR(64);
        RAISE NOTICE 'added $m.external_ref';
    END IF;
END \$\$" >"$f"
        ;;
    5)
        f="$out/${v}_${m}_touch_trigger.sql"
        cat >"$f" <<SQL
CREATE OR REPLACE FUNCTION ${m}_touch() RETURNS trigger
LANGUAGE plpgsql AS \$\$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
\$\$;

CREATE TRIGGER trg_${m}_touch
    BEFORE UPDATE ON $m
    FOR EACH ROW EXECUTE FUNCTION ${m}_touch();
SQL
        ;;
    6)
        f="$out/${v}_${m}_backfill.sql"
        if ((i % 2 == 0)); then
            cat >"$f" <<SQL
-- Migration: backfill $m.description
-- The file carries its own transaction, as seed 004's template does.
BEGIN;

UPDATE $m SET description = name || ' (' || status || ')' WHERE description IS NULL;
UPDATE $m SET priority = 1 WHERE status = 'active' AND amount > 50;

COMMIT;
SQL
        else
            cat >"$f" <<SQL
UPDATE $m SET description = name || ' (' || status || ')' WHERE description IS NULL;
UPDATE $m SET priority = 1 WHERE status = 'active' AND amount > 50;
SQL
        fi
        ;;
    7)
        f="$out/${v}_${m}_amount_check.sql"
        cat >"$f" <<SQL
ALTER TABLE $m ADD CONSTRAINT ${m}_amount_nonnegative CHECK (amount >= 0) NOT VALID;
ALTER TABLE $m VALIDATE CONSTRAINT ${m}_amount_nonnegative;
SQL
        ;;
    8)
        f="$out/${v}_${m}_events.sql"
        cat >"$f" <<SQL
CREATE TABLE ${m}_events (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ${m}_id     BIGINT NOT NULL REFERENCES $m (id) ON DELETE CASCADE,
    kind        VARCHAR(32) NOT NULL,
    payload     JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
INSERT INTO ${m}_events (${m}_id, kind, payload)
SELECT id, (ARRAY['created', 'updated', 'viewed'])[1 + id % 3],
       jsonb_build_object('n', id, 'source', 'import')
FROM $m
CROSS JOIN generate_series(1, 3) k
WHERE id % 2 = 0;
CREATE INDEX ix_${m}_events_parent ON ${m}_events (${m}_id, created_at);
SQL
        ;;
    9)
        if ((i % 5 == 4)); then
            f="$out/${v}_${m}_name_index_concurrently.sql"
            cat >"$f" <<SQL
-- keel:no-transaction
-- CREATE INDEX CONCURRENTLY cannot run in a transaction block.
CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_${m}_name ON $m (name);
SQL
        else
            f="$out/${v}_${m}_summary_view.sql"
            cat >"$f" <<SQL
CREATE OR REPLACE VIEW ${m}_summary AS
SELECT org_id, status, count(*) AS n, sum(amount) AS total, max(updated_at) AS last_change
FROM $m
WHERE archived_at IS NULL
GROUP BY org_id, status;
SQL
        fi
        ;;
    esac
}

real() {
    local out="$1" i pos v
    seed "$out"
    for i in "${!modules[@]}"; do
        for pos in 0 1 2 3 4 5 6 7 8 9; do
            v=$(printf '%04d' $((100 + i * 10 + pos)))
            real_file "$out" "$v" "${modules[$i]}" "$i" "$pos"
        done
    done
}

tiny() {
    local out="$1" n="${2:-1000}" k table=0 col=0 v
    for ((k = 1; k <= n; k++)); do
        v=$(printf '%05d' "$k")
        if ((k % 3 == 1)); then
            table=$k col=0
            printf 'CREATE TABLE tiny_%05d (id BIGINT PRIMARY KEY, name TEXT NOT NULL);\n' "$table" \
                >"$out/${v}_create_tiny_$(printf '%05d' "$table").sql"
        else
            col=$((col + 1))
            # every other one without a final semicolon
            if ((k % 2 == 0)); then
                printf 'ALTER TABLE tiny_%05d ADD COLUMN c%d INTEGER\n' "$table" "$col"
            else
                printf 'ALTER TABLE tiny_%05d ADD COLUMN c%d TEXT DEFAULT %s;\n' "$table" "$col" "'x'"
            fi >"$out/${v}_tiny_$(printf '%05d' "$table")_add_c${col}.sql"
        fi
    done
}

noop() {
    local out="$1" n="${2:-10000}" k
    for ((k = 1; k <= n; k++)); do
        printf 'SELECT %d;\n' "$k" >"$out/$(printf '%05d' "$k")_noop.sql"
    done
}

[[ $# -ge 2 ]] || die "usage: workloads.sh seed|real|tiny|noop OUTDIR [N]"
kind="$1" out="$2"
shift 2
mkdir -p "$out"
[[ -z "$(ls -A "$out")" ]] || die "$out is not empty"
case "$kind" in
seed | real) "$kind" "$out" ;;
tiny | noop) "$kind" "$out" "$@" ;;
*) die "unknown workload $kind (seed, real, tiny, noop)" ;;
esac
