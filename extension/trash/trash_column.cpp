/*
 * extension/trash/trash_column.cpp
 *   ALTER TABLE ... DROP COLUMN into the recycle bin (both deployment
 *   modes; called at ddl_command_start once the guard let it through): the
 *   column's values are copied into keel_trash.c<id> with the table's key
 *   (primary key, else replica identity index), so a restore can put every
 *   value back on its row. A table without such a key is refused (55000).
 */
extern "C" {
#include "postgres.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
}

#include "guard/guard_internal.hpp"
#include "trash/trash.hpp"
#include "trash/trash_common.hpp"

namespace keel {

void TrashColumn(Oid relid, const char *column) {
    if (!trash_enabled || !OidIsValid(KeelExtensionOid()))
        return;
    const char *schema = get_namespace_name(get_rel_namespace(relid));
    const char *table = get_rel_name(relid);
    char *qualified = quote_qualified_identifier(schema, table);
    TrashSession s = TrashBegin();
    char *keys = TrashScalar(
        psprintf(
            "SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY k.n)"
            " FROM (SELECT x.indkey FROM pg_catalog.pg_index x WHERE x.indrelid "
            "OPERATOR(pg_catalog.=) %u"
            "   AND (x.indisprimary OR x.indisreplident) ORDER BY x.indisprimary DESC LIMIT 1) i,"
            " unnest(i.indkey) WITH ORDINALITY k(attnum, n)"
            " JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) %u"
            "  AND a.attnum OPERATOR(pg_catalog.=) k.attnum",
            relid, relid),
        CurrentMemoryContext);
    if (keys == nullptr || *keys == '\0')
        ereport(ERROR,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("cannot keep column \"%s\" of %s in keel's recycle bin", column, qualified),
                 errdetail("The table has neither a primary key nor a replica identity index to "
                           "match the values to their rows on restore."),
                 errhint("Add a primary key first, or SET LOCAL keel.trash = off to drop the "
                         "column for good.")));
    char *details = psprintf(
        "SELECT pg_catalog.jsonb_build_object('schema', %s, 'table', %s, 'column', %s,"
        " 'keys', (SELECT pg_catalog.jsonb_agg(a.attname ORDER BY k.n) FROM (SELECT x.indkey FROM"
        "   pg_catalog.pg_index x WHERE x.indrelid OPERATOR(pg_catalog.=) %u AND (x.indisprimary OR"
        "   x.indisreplident) ORDER BY x.indisprimary DESC LIMIT 1) i, unnest(i.indkey) WITH"
        "   ORDINALITY k(attnum, n) JOIN pg_catalog.pg_attribute a ON a.attrelid "
        "OPERATOR(pg_catalog.=) %u"
        "   AND a.attnum OPERATOR(pg_catalog.=) k.attnum),"
        " 'type', pg_catalog.format_type(c.atttypid, c.atttypmod), 'not_null', c.attnotnull,"
        " 'default', pg_catalog.pg_get_expr(d.adbin, d.adrelid))"
        " FROM pg_catalog.pg_attribute c LEFT JOIN pg_catalog.pg_attrdef d"
        "  ON d.adrelid OPERATOR(pg_catalog.=) c.attrelid AND d.adnum OPERATOR(pg_catalog.=) "
        "c.attnum"
        " WHERE c.attrelid OPERATOR(pg_catalog.=) %u AND c.attname OPERATOR(pg_catalog.=) %s",
        QuoteLiteral(schema), QuoteLiteral(table), QuoteLiteral(column), relid, relid, relid,
        QuoteLiteral(column));
    int64 id = TrashNewEntry(s, "column", psprintf("%s.%s.%s", schema, table, column), details);
    TrashExec(psprintf("CREATE TABLE keel_trash.\"c" INT64_FORMAT "\" AS SELECT %s, %s FROM %s", id,
                       keys, quote_identifier(column), qualified));
    TrashFinishEntry(id, psprintf("c" INT64_FORMAT, id));
    TrashEnd(s);
    ereport(
        NOTICE,
        (errmsg("column %s kept in keel's recycle bin (keel.dropped_objects id " INT64_FORMAT ")",
                column, id)));
}

} // namespace keel
