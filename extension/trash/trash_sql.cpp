/*
 * extension/trash/trash_sql.cpp
 *   keel.restore_dropped(id bigint, new_name text DEFAULT NULL) -> text
 *   keel.purge_dropped(older_than interval DEFAULT NULL) -> bigint
 */
extern "C" {
#include "postgres.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

#include "guard/guard_internal.hpp"
#include "trash/trash.hpp"
#include "trash/trash_common.hpp"
#include "pg/writable.hpp"

namespace keel {

/* RequireAdmin raises 42501 unless the caller may restore and purge. */
static void RequireAdmin(const char *what) {
    if (!IsKeelAdmin())
        ereport(ERROR,
                (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("permission denied to %s", what),
                 errdetail("Only superusers and members of the role named by "
                           "keel.admin_role may do this."),
                 errhint("Ask an administrator to run it, or to grant you that role.")));
}

/* Field returns column name of the entry row (text), or NULL. */
static char *Field(const char *name) {
    int col = SPI_fnumber(SPI_tuptable->tupdesc, name);
    char *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col);
    return v ? pstrdup(v) : nullptr;
}

/*
 * AsTableOwner runs dml (an INSERT or UPDATE reading keel_trash.trash) as the
 * owner of table, so the table's own triggers never run with the rights of
 * keel's owner: the owner is granted reading the trash table for the length
 * of the statement only (the grant never commits).
 */
static void AsTableOwner(const char *table_literal, const char *trash, const char *dml) {
    char *owner = TrashScalar(psprintf("SELECT relowner FROM pg_catalog.pg_class WHERE oid "
                                       "OPERATOR(pg_catalog.=) %s::pg_catalog.regclass",
                                       table_literal),
                              CurrentMemoryContext);
    Oid role = (Oid)strtoul(owner, nullptr, 10);
    const char *name = quote_identifier(GetUserNameFromId(role, false));
    TrashExec(psprintf("GRANT USAGE ON SCHEMA keel_trash TO %s", name));
    TrashExec(psprintf("GRANT SELECT ON keel_trash.%s TO %s", quote_identifier(trash), name));
    Oid keel_owner;
    int sec;
    GetUserIdAndSecContext(&keel_owner, &sec);
    SetUserIdAndSecContext(role, sec | SECURITY_LOCAL_USERID_CHANGE);
    TrashExec(dml);
    SetUserIdAndSecContext(keel_owner, sec);
    TrashExec(psprintf("REVOKE SELECT ON keel_trash.%s FROM %s", quote_identifier(trash), name));
    TrashExec(psprintf("REVOKE USAGE ON SCHEMA keel_trash FROM %s", name));
}

static bool Exists(const char *sql) {
    char *v = TrashScalar(sql, CurrentMemoryContext);
    return v && strcmp(v, "t") == 0;
}

/* RestoreTable moves keel_trash.t<id> back; returns a description. */
static char *RestoreTable(int64 id, const char *schema, const char *name, const char *target) {
    if (!Exists(
            psprintf("SELECT pg_catalog.to_regnamespace(%s) IS NOT NULL", QuoteLiteral(schema))))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_SCHEMA),
                        errmsg("schema \"%s\" of the dropped table does not exist", schema),
                        errhint("Create the schema, then restore again.")));
    if (Exists(psprintf(
            "SELECT pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %s, %s)) IS NOT NULL",
            QuoteLiteral(schema), QuoteLiteral(target))))
        ereport(ERROR,
                (errcode(ERRCODE_DUPLICATE_TABLE),
                 errmsg("relation \"%s.%s\" already exists", schema, target),
                 errhint("Restore it under another name: SELECT keel.restore_dropped(" INT64_FORMAT
                         ", '%s_restored').",
                         id, target)));
    const char *qschema = quote_identifier(schema);
    TrashExec(psprintf("ALTER TABLE keel_trash.\"t" INT64_FORMAT "\" SET SCHEMA %s", id, qschema));
    TrashExec(psprintf("ALTER TABLE %s.\"t" INT64_FORMAT "\" RENAME TO %s", qschema, id,
                       quote_identifier(target)));
    bool same = strcmp(name, target) == 0;
    TrashExec(psprintf(
        "DO $keel$ DECLARE r record; g text; BEGIN"
        "  FOR r IN SELECT e AS orig, n FROM keel.dropped_objects o,"
        "    pg_catalog.jsonb_array_elements_text(o.details->'indexes') WITH ORDINALITY x(e, n)"
        "    WHERE o.id OPERATOR(pg_catalog.=) " INT64_FORMAT " LOOP"
        "    EXECUTE pg_catalog.format('ALTER INDEX %%I.%%I RENAME TO %%I', %s,"
        "      'i" INT64_FORMAT "_' OPERATOR(pg_catalog.||) r.n, r.orig);"
        "  END LOOP;"
        "  FOR r IN SELECT e AS orig, n FROM keel.dropped_objects o,"
        "    pg_catalog.jsonb_array_elements_text(o.details->'sequences') WITH ORDINALITY x(e, n)"
        "    WHERE o.id OPERATOR(pg_catalog.=) " INT64_FORMAT " LOOP"
        "    EXECUTE pg_catalog.format('ALTER SEQUENCE %%I.%%I RENAME TO %%I', %s,"
        "      's" INT64_FORMAT "_' OPERATOR(pg_catalog.||) r.n, r.orig);"
        "  END LOOP;"
        "  IF %s THEN"
        "    FOR r IN SELECT e->>'name' AS name, e->>'kind' AS kind, e->>'definition' AS def,"
        "      e->>'owner' AS owner, e->'grants' AS grants"
        "      FROM keel.dropped_objects o,"
        "      pg_catalog.jsonb_array_elements(o.details->'views') WITH ORDINALITY x(e, n)"
        "      WHERE o.id OPERATOR(pg_catalog.=) " INT64_FORMAT " ORDER BY n LOOP"
        "      IF r.kind OPERATOR(pg_catalog.=) 'm' THEN"
        "        EXECUTE pg_catalog.format('CREATE MATERIALIZED VIEW %%s AS %%s', r.name, r.def);"
        "        EXECUTE pg_catalog.format('ALTER MATERIALIZED VIEW %%s OWNER TO %%s', r.name, "
        "r.owner);"
        "      ELSE EXECUTE pg_catalog.format('CREATE VIEW %%s AS %%s', r.name, r.def);"
        "        EXECUTE pg_catalog.format('ALTER VIEW %%s OWNER TO %%s', r.name, r.owner); END IF;"
        "      FOR g IN SELECT pg_catalog.jsonb_array_elements_text(coalesce(r.grants, '[]')) LOOP"
        "        EXECUTE g;"
        "      END LOOP;"
        "    END LOOP;"
        "    FOR r IN SELECT e->>'table' AS tab, e->>'name' AS name, e->>'definition' AS def"
        "      FROM keel.dropped_objects o, "
        "pg_catalog.jsonb_array_elements(o.details->'foreign_keys') e"
        "      WHERE o.id OPERATOR(pg_catalog.=) " INT64_FORMAT " LOOP"
        "      EXECUTE pg_catalog.format('ALTER TABLE %%s ADD CONSTRAINT %%I %%s', r.tab, r.name, "
        "r.def);"
        "    END LOOP;"
        "  END IF; END $keel$",
        id, QuoteLiteral(schema), id, id, QuoteLiteral(schema), id, same ? "true" : "false", id,
        id));
    char *counts = TrashScalar(
        psprintf("SELECT pg_catalog.jsonb_array_length(details->'views') || ' view(s) and ' ||"
                 " pg_catalog.jsonb_array_length(details->'foreign_keys') || ' foreign key(s)'"
                 " FROM keel.dropped_objects WHERE id OPERATOR(pg_catalog.=) " INT64_FORMAT,
                 id),
        CurrentMemoryContext);
    return same ? psprintf("table %s.%s restored, with %s re-created", schema, target, counts)
                : psprintf("table %s.%s restored as %s.%s; %s not re-created (they name %s)",
                           schema, name, schema, target, counts, name);
}

/* HasColumns: table has every column listed in the entry's details->key (a JSON array of names). */
static bool HasColumns(const char *table, int64 id, const char *key) {
    return Exists(
        psprintf("SELECT pg_catalog.bool_and(EXISTS (SELECT FROM pg_catalog.pg_attribute a"
                 " WHERE a.attrelid OPERATOR(pg_catalog.=) %s::pg_catalog.regclass AND a.attname"
                 " OPERATOR(pg_catalog.=) c AND NOT a.attisdropped)) FROM keel.dropped_objects o,"
                 " pg_catalog.jsonb_array_elements_text(o.details->%s) c WHERE o.id"
                 " OPERATOR(pg_catalog.=) " INT64_FORMAT,
                 QuoteLiteral(table), QuoteLiteral(key), id));
}

/* RestoreColumn adds the column back and fills it by key. */
static char *RestoreColumn(int64 id, const char *target_column) {
    char *row = TrashScalar(
        psprintf("SELECT pg_catalog.format('%%I.%%I', details->>'schema', details->>'table') FROM"
                 " keel.dropped_objects WHERE id OPERATOR(pg_catalog.=) " INT64_FORMAT,
                 id),
        CurrentMemoryContext);
    if (!Exists(psprintf("SELECT pg_catalog.to_regclass(%s) IS NOT NULL", QuoteLiteral(row))))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                        errmsg("table %s of the dropped column does not exist", row),
                        errhint("Restore the table first, or create it again.")));
    if (Exists(psprintf(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid"
            " OPERATOR(pg_catalog.=) %s::pg_catalog.regclass AND attname OPERATOR(pg_catalog.=) %s"
            " AND NOT attisdropped)",
            QuoteLiteral(row), QuoteLiteral(target_column))))
        ereport(ERROR,
                (errcode(ERRCODE_DUPLICATE_COLUMN),
                 errmsg("column \"%s\" of %s already exists", target_column, row),
                 errhint("Restore it under another name: SELECT keel.restore_dropped(" INT64_FORMAT
                         ", '%s_restored').",
                         id, target_column)));
    if (!HasColumns(row, id, "keys"))
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("table %s has changed shape since the column was dropped", row),
                 errdetail("Its key columns, which match the kept values to their rows, are gone."),
                 errhint("Restore into a table with the same key columns.")));
    TrashExec(psprintf(
        "DO $keel$ DECLARE d jsonb; BEGIN"
        "  SELECT details INTO d FROM keel.dropped_objects WHERE id "
        "OPERATOR(pg_catalog.=) " INT64_FORMAT ";"
        "  EXECUTE pg_catalog.format('ALTER TABLE %%s ADD COLUMN %%I %%s', %s, %s, d->>'type');"
        " END $keel$",
        id, QuoteLiteral(row), QuoteLiteral(target_column)));
    /* the values go back as the table's owner: its triggers never run with keel's owner's rights */
    char *trash = psprintf("c" INT64_FORMAT, id);
    char *update = TrashScalar(
        psprintf(
            "SELECT pg_catalog.format('UPDATE %%s t SET %%I = c.%%I FROM keel_trash.%%I c WHERE "
            "%%s',"
            " %s, %s, o.details->>'column', %s,"
            " (SELECT pg_catalog.string_agg(pg_catalog.format('t.%%1$I = c.%%1$I', k), ' AND ')"
            "  FROM pg_catalog.jsonb_array_elements_text(o.details->'keys') k))"
            " FROM keel.dropped_objects o WHERE o.id OPERATOR(pg_catalog.=) " INT64_FORMAT,
            QuoteLiteral(row), QuoteLiteral(target_column), QuoteLiteral(trash), id),
        CurrentMemoryContext);
    AsTableOwner(QuoteLiteral(row), trash, update);
    TrashExec(psprintf(
        "DO $keel$ DECLARE d jsonb; BEGIN"
        "  SELECT details INTO d FROM keel.dropped_objects WHERE id "
        "OPERATOR(pg_catalog.=) " INT64_FORMAT ";"
        "  IF d->>'default' IS NOT NULL THEN"
        "    EXECUTE pg_catalog.format('ALTER TABLE %%s ALTER COLUMN %%I SET DEFAULT %%s', %s, %s, "
        "d->>'default');"
        "  END IF;"
        "  IF (d->>'not_null')::boolean THEN"
        "    EXECUTE pg_catalog.format('ALTER TABLE %%s ALTER COLUMN %%I SET NOT NULL', %s, %s);"
        "  END IF;"
        "  EXECUTE pg_catalog.format('DROP TABLE keel_trash.%%I', %s);"
        " END $keel$",
        id, QuoteLiteral(row), QuoteLiteral(target_column), QuoteLiteral(row),
        QuoteLiteral(target_column), QuoteLiteral(trash)));
    return psprintf("column %s of %s restored", target_column, row);
}

/* RestoreRows inserts the kept rows back into the table (or target in its schema). */
static char *RestoreRows(int64 id, const char *schema, const char *table, const char *target) {
    char *row = quote_qualified_identifier(schema, target);
    if (!Exists(psprintf("SELECT pg_catalog.to_regclass(%s) IS NOT NULL", QuoteLiteral(row))))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                        errmsg("table %s to put the rows back into does not exist", row)));
    if (!HasColumns(row, id, "columns"))
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("table %s has changed shape since it was truncated", row),
                        errdetail("Some of the kept rows' columns are gone.")));
    char *cols = TrashScalar(
        psprintf("SELECT pg_catalog.string_agg(pg_catalog.quote_ident(c), ', ') FROM "
                 "keel.dropped_objects o,"
                 " pg_catalog.jsonb_array_elements_text(o.details->'columns') c WHERE o.id"
                 " OPERATOR(pg_catalog.=) " INT64_FORMAT,
                 id),
        CurrentMemoryContext);
    char *trash = psprintf("r" INT64_FORMAT, id);
    AsTableOwner(
        QuoteLiteral(row), trash,
        psprintf("INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM keel_trash.%s", row,
                 cols, cols, quote_identifier(trash)));
    TrashExec(psprintf("DROP TABLE keel_trash.%s", quote_identifier(trash)));
    return psprintf("rows of %s.%s restored into %s", schema, table, row);
}

} // namespace keel

extern "C" {

/*
 * keel.restore_dropped(id bigint, new_name text DEFAULT NULL) RETURNS text
 *   Puts recycle-bin entry id back: a table (moved back from keel_trash,
 *   with its indexes and sequences renamed back and, under its own name, its
 *   dependent views and foreign keys re-created), a column (added back and
 *   filled by key, with its default and NOT NULL), or truncated rows
 *   (inserted back). new_name restores a table or column under another name
 *   (for rows: into another table of the same schema). Returns what it did.
 *   Audited as 'restored'. Errors: 42501 unless superuser or member of
 *   keel.admin_role; 22023 unknown, restored or purged entry; 42P07 / 42701
 *   when the name is taken (HINT: new_name); 55000 when a column's table or
 *   a truncated table has changed shape; 3F000 / 42P01 when the schema or
 *   table is gone. Rule: issue 8 (recycle bin).
 */
PG_FUNCTION_INFO_V1(keel_restore_dropped);
PGDLLEXPORT Datum keel_restore_dropped(PG_FUNCTION_ARGS);
Datum keel_restore_dropped(PG_FUNCTION_ARGS) {
    keel::RequireWritable("keel.restore_dropped()");
    using namespace keel;
    RequireAdmin("restore from keel's recycle bin");
    if (PG_ARGISNULL(0))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("the entry id is NULL")));
    int64 id = PG_GETARG_INT64(0);
    char *new_name = PG_ARGISNULL(1) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(1));
    if (new_name && *new_name == '\0')
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("new_name is empty")));
    AuditRecord rec =
        MakeAuditRecord("restored", "SELECT keel.restore_dropped", nullptr, NIL, nullptr);
    MemoryContext outer = CurrentMemoryContext;
    TrashSession s = TrashBegin();
    int rc = SPI_execute(
        psprintf("SELECT kind, original_identity, details->>'schema' AS schema,"
                 " coalesce(details->>'name', details->>'table') AS name,"
                 " details->>'column' AS column_name,"
                 " restored_at IS NOT NULL AS restored, purged_at IS NOT NULL AS purged"
                 " FROM keel.dropped_objects WHERE id OPERATOR(pg_catalog.=) " INT64_FORMAT
                 " FOR UPDATE",
                 id),
        false, 0);
    if (rc != SPI_OK_SELECT || SPI_processed != 1)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("keel's recycle bin has no entry " INT64_FORMAT, id),
                        errhint("SELECT * FROM keel.dropped_objects lists the entries.")));
    char *kind = Field("kind"), *identity = Field("original_identity"), *schema = Field("schema"),
         *name = Field("name"), *column = Field("column_name");
    if (strcmp(Field("restored"), "t") == 0 || strcmp(Field("purged"), "t") == 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("entry " INT64_FORMAT " of keel's recycle bin was already %s", id,
                               strcmp(Field("restored"), "t") == 0 ? "restored" : "purged")));
    char *done;
    if (strcmp(kind, "table") == 0)
        done = RestoreTable(id, schema, name, new_name ? new_name : name);
    else if (strcmp(kind, "column") == 0)
        done = RestoreColumn(id, new_name ? new_name : column);
    else
        done = RestoreRows(id, schema, name, new_name ? new_name : name);
    TrashExec(psprintf("UPDATE keel.dropped_objects SET restored_at = pg_catalog.clock_timestamp(),"
                       " restored_by = %s WHERE id OPERATOR(pg_catalog.=) " INT64_FORMAT,
                       QuoteLiteral(rec.role_name), id));
    /* what outlives SPI_finish is copied out of SPI's memory first */
    char *result = MemoryContextStrdup(outer, done);
    char *object =
        MemoryContextStrdup(outer, psprintf("%s %s (entry " INT64_FORMAT ")", kind, identity, id));
    TrashEnd(s);
    rec.objects = (const char **)palloc(sizeof(char *));
    rec.objects[0] = object;
    rec.nobjects = 1;
    InsertAuditRow(&rec);
    PG_RETURN_TEXT_P(cstring_to_text(result));
}

/*
 * keel.purge_dropped(older_than interval DEFAULT NULL) RETURNS bigint
 *   Really destroys recycle-bin entries that are neither restored nor
 *   purged: those past expires_at when older_than is NULL, else those
 *   dropped more than older_than ago. Returns how many it purged; audited as
 *   'purged'. Errors: 42501 unless superuser or member of keel.admin_role.
 *   Daily with pg_cron: SELECT cron.schedule('keel-purge', '17 3 * * *',
 *   'SELECT keel.purge_dropped()'). Rule: issue 8 ("Retention and purge").
 */
PG_FUNCTION_INFO_V1(keel_purge_dropped);
PGDLLEXPORT Datum keel_purge_dropped(PG_FUNCTION_ARGS);
Datum keel_purge_dropped(PG_FUNCTION_ARGS) {
    keel::RequireWritable("keel.purge_dropped()");
    using namespace keel;
    RequireAdmin("purge keel's recycle bin");
    char *cond = PG_ARGISNULL(0)
                     ? pstrdup("expires_at OPERATOR(pg_catalog.<=) pg_catalog.clock_timestamp()")
                     : psprintf("dropped_at OPERATOR(pg_catalog.<=) (pg_catalog.clock_timestamp()"
                                " OPERATOR(pg_catalog.-) %s::pg_catalog.interval)",
                                QuoteLiteral(DatumGetCString(
                                    DirectFunctionCall1(interval_out, PG_GETARG_DATUM(0)))));
    AuditRecord rec = MakeAuditRecord("purged", "SELECT keel.purge_dropped", nullptr, NIL, nullptr);
    TrashSession s = TrashBegin();
    MemoryContext outer = CurrentMemoryContext;
    char *list = TrashScalar(
        psprintf(
            "WITH p AS (UPDATE keel.dropped_objects SET purged_at = pg_catalog.clock_timestamp()"
            "  WHERE restored_at IS NULL AND purged_at IS NULL AND %s RETURNING id, kind, "
            "original_identity, trash_name)"
            " SELECT pg_catalog.count(*) OPERATOR(pg_catalog.||) '|' OPERATOR(pg_catalog.||)"
            "  coalesce(pg_catalog.string_agg(pg_catalog.format('%%s %%s (entry %%s)', kind, "
            "original_identity, id), ', '), '')"
            "  OPERATOR(pg_catalog.||) '|' OPERATOR(pg_catalog.||)"
            "  coalesce(pg_catalog.string_agg(pg_catalog.quote_ident(trash_name::text), ','), '') "
            "FROM p",
            cond),
        outer);
    int64 n = 0;
    char *described = nullptr, *tables = nullptr;
    if (list) {
        n = strtoll(list, nullptr, 10);
        described = strchr(list, '|');
        if (described) {
            *described++ = '\0';
            tables = strchr(described, '|');
            if (tables)
                *tables++ = '\0';
        }
    }
    if (tables && *tables) {
        char *save = nullptr;
        for (char *t = strtok_r(tables, ",", &save); t; t = strtok_r(nullptr, ",", &save))
            TrashExec(psprintf("DROP TABLE IF EXISTS keel_trash.%s CASCADE", t));
    }
    TrashEnd(s);
    if (n > 0) {
        rec.objects = (const char **)palloc(sizeof(char *));
        rec.objects[0] = described;
        rec.nobjects = 1;
        InsertAuditRow(&rec);
    }
    PG_RETURN_INT64(n);
}

} // extern "C"
