#!/usr/bin/env bash
# bench/guard/workload.sh: writes a DDL workload for bench/guard/run to stdout,
# plain SQL, one statement per line (no DO blocks), nothing destructive, so
# no guard refuses any of it.
#   workload.sh additive [statements]   (default 2000)
#     ONE transaction of mixed CREATE TABLE, ALTER TABLE ADD COLUMN,
#     ALTER TABLE ADD CONSTRAINT ... NOT VALID, COMMENT ON, CREATE INDEX,
#     CREATE VIEW and CREATE OR REPLACE FUNCTION, in the public schema.
#   workload.sh schema-build [schemas] [tables]   (default 30 schemas x 8 tables)
#     a schema build the size of pg_regress's: per schema one transaction of
#     CREATE SCHEMA/TYPE/DOMAIN/SEQUENCE/TABLE/INDEX/VIEW/MATERIALIZED VIEW/
#     FUNCTION/TRIGGER, ALTER TABLE/SEQUENCE/TYPE, COMMENT ON, and
#     DROP VIEW + CREATE VIEW replacement pairs (same name, same transaction).
# Either prints no BEGIN/COMMIT outside the ones it needs; `grep -vcE
# '^(BEGIN|COMMIT);$'` counts the statements.
set -euo pipefail

additive() {
    local want="$1" n=0 i=0 k
    echo "BEGIN;"
    while (( n < want )); do
        i=$(( i + 1 ))
        for k in 0 1 2 3 4 5 6; do
            (( n < want )) || break
            n=$(( n + 1 ))
            case $k in
            0) echo "CREATE TABLE t_$i (id bigint PRIMARY KEY, a integer NOT NULL DEFAULT 0, b text, created_at timestamptz NOT NULL DEFAULT now());" ;;
            1) echo "ALTER TABLE t_$i ADD COLUMN c_$i integer DEFAULT $i;" ;;
            2) if (( i % 2 == 0 )); then
                   echo "ALTER TABLE t_$i ADD CONSTRAINT t_${i}_id_fk FOREIGN KEY (id) REFERENCES t_$(( i - 1 )) (id) NOT VALID;"
               else
                   echo "ALTER TABLE t_$i ADD CONSTRAINT t_${i}_a_check CHECK (a >= 0) NOT VALID;"
               fi ;;
            3) if (( i % 2 == 0 )); then
                   echo "COMMENT ON TABLE t_$i IS 'benchmark table $i';"
               else
                   echo "COMMENT ON COLUMN t_$i.b IS 'free text of table $i';"
               fi ;;
            4) echo "CREATE INDEX t_${i}_b_idx ON t_$i (b);" ;;
            5) echo "CREATE VIEW v_$i AS SELECT id, a, b FROM t_$i WHERE a > 0;" ;;
            6) if (( i % 4 == 0 )); then   # replaces the previous table's function
                   echo "CREATE OR REPLACE FUNCTION f_$(( i - 1 ))(x integer) RETURNS integer LANGUAGE sql IMMUTABLE AS \$\$ SELECT x * $i \$\$;"
               else
                   echo "CREATE OR REPLACE FUNCTION f_$i(x integer) RETURNS integer LANGUAGE sql IMMUTABLE AS \$\$ SELECT x + $i \$\$;"
               fi ;;
            esac
        done
    done
    echo "COMMIT;"
}

schema_build() {
    local schemas="$1" tables="$2" s j p
    for (( s = 1; s <= schemas; s++ )); do
        p="sb_$s"
        cat <<SQL
BEGIN;
CREATE SCHEMA $p;
CREATE TYPE $p.status AS ENUM ('new', 'active', 'closed');
CREATE TYPE $p.amount AS (value numeric(12,2), currency char(3));
CREATE DOMAIN $p.posint AS integer CHECK (VALUE > 0);
CREATE DOMAIN $p.email AS text CHECK (VALUE LIKE '%_@_%');
CREATE SEQUENCE $p.ticket_seq START 1000;
ALTER SEQUENCE $p.ticket_seq CACHE 10;
CREATE FUNCTION $p.touch() RETURNS trigger LANGUAGE plpgsql AS \$\$ BEGIN NEW.updated_at := now(); RETURN NEW; END \$\$;
CREATE TABLE $p.owners (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, name text NOT NULL, contact $p.email, created_at timestamptz NOT NULL DEFAULT now());
CREATE UNIQUE INDEX owners_name_key ON $p.owners (lower(name));
SQL
        for (( j = 1; j <= tables; j++ )); do
            cat <<SQL
CREATE TABLE $p.item_$j (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, owner_id bigint NOT NULL REFERENCES $p.owners (id), status $p.status NOT NULL DEFAULT 'new', qty $p.posint, price $p.amount, ticket bigint NOT NULL DEFAULT nextval('$p.ticket_seq'), created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz);
CREATE INDEX item_${j}_owner_idx ON $p.item_$j (owner_id);
CREATE INDEX item_${j}_open_idx ON $p.item_$j (created_at DESC) WHERE status <> 'closed';
ALTER TABLE $p.item_$j ADD COLUMN note text;
ALTER TABLE $p.item_$j ALTER COLUMN note SET DEFAULT '';
ALTER TABLE $p.item_$j ADD CONSTRAINT item_${j}_note_len CHECK (length(note) <= 1000);
ALTER TABLE $p.item_$j ADD CONSTRAINT item_${j}_ticket_key UNIQUE (ticket);
CREATE TRIGGER item_${j}_touch BEFORE UPDATE ON $p.item_$j FOR EACH ROW EXECUTE FUNCTION $p.touch();
CREATE VIEW $p.item_${j}_open AS SELECT id, owner_id, status, qty FROM $p.item_$j WHERE status <> 'closed';
CREATE FUNCTION $p.item_${j}_count(s $p.status) RETURNS bigint LANGUAGE sql STABLE AS \$\$ SELECT count(*) FROM $p.item_$j WHERE status = s \$\$;
COMMENT ON TABLE $p.item_$j IS 'items of kind $j';
COMMENT ON COLUMN $p.item_$j.qty IS 'how many';
SQL
            if (( j % 2 == 0 )); then   # replacement pair: keel and plguard both let it through
                cat <<SQL
DROP VIEW $p.item_${j}_open;
CREATE VIEW $p.item_${j}_open AS SELECT id, owner_id, status, qty, note FROM $p.item_$j WHERE status <> 'closed';
SQL
            fi
        done
        cat <<SQL
CREATE VIEW $p.summary AS SELECT o.id, o.name, count(i.id) AS items FROM $p.owners o LEFT JOIN $p.item_1 i ON i.owner_id = o.id GROUP BY o.id, o.name;
CREATE MATERIALIZED VIEW $p.summary_mv AS SELECT * FROM $p.summary WITH NO DATA;
CREATE INDEX summary_mv_id_idx ON $p.summary_mv (id);
CREATE OR REPLACE FUNCTION $p.owner_items(owner bigint) RETURNS SETOF $p.item_1 LANGUAGE sql STABLE AS \$\$ SELECT * FROM $p.item_1 WHERE owner_id = owner \$\$;
CREATE PROCEDURE $p.close_item(item bigint) LANGUAGE sql AS \$\$ UPDATE $p.item_1 SET status = 'closed' WHERE id = item \$\$;
ALTER TYPE $p.status ADD VALUE 'archived';
COMMENT ON SCHEMA $p IS 'schema build $s';
COMMIT;
SQL
    done
}

case "${1:-}" in
additive) additive "${2:-2000}" ;;
schema-build) schema_build "${2:-30}" "${3:-8}" ;;
*) echo "usage: $0 additive [statements] | schema-build [schemas] [tables]" >&2; exit 2 ;;
esac
