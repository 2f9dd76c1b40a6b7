/*
 * extension/trash/trash_rows.cpp
 *   TRUNCATE into the recycle bin (library preloaded; called by the utility
 *   hook once the guard let it through): the rows are copied into
 *   keel_trash.r<id> before the TRUNCATE runs, so the table itself, and
 *   every view, foreign key and grant on it, stay as they are. The cost is
 *   one full copy of the table (CREATE TABLE AS: a sequential scan and the
 *   write of the copy), paid at TRUNCATE time.
 */
extern "C" {
#include "postgres.h"
#include "catalog/pg_class.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
}

#include "guard/guard_internal.hpp"
#include "trash/trash.hpp"
#include "trash/trash_common.hpp"

namespace keel {

void TrashRows(Oid relid) {
    if (!trash_enabled || !OidIsValid(KeelExtensionOid()) ||
        IsKeelObject(RelationRelationId, relid))
        return; /* keel's own tables protect themselves (append-only triggers) */
    const char *schema = get_namespace_name(get_rel_namespace(relid));
    const char *table = get_rel_name(relid);
    char *qualified = quote_qualified_identifier(schema, table);
    TrashSession s = TrashBegin();
    char *details = psprintf(
        "SELECT pg_catalog.jsonb_build_object('schema', %s, 'table', %s, 'columns',"
        " (SELECT pg_catalog.jsonb_agg(a.attname ORDER BY a.attnum) FROM pg_catalog.pg_attribute a"
        "  WHERE a.attrelid OPERATOR(pg_catalog.=) %u AND a.attnum OPERATOR(pg_catalog.>) 0"
        "  AND NOT a.attisdropped AND a.attgenerated OPERATOR(pg_catalog.=) ''))",
        QuoteLiteral(schema), QuoteLiteral(table), relid);
    int64 id = TrashNewEntry(s, "rows", psprintf("%s.%s", schema, table), details);
    TrashExec(psprintf("CREATE TABLE keel_trash.\"r" INT64_FORMAT "\" AS SELECT * FROM ONLY %s", id,
                       qualified));
    TrashFinishEntry(id, psprintf("r" INT64_FORMAT, id));
    TrashEnd(s);
    ereport(
        NOTICE,
        (errmsg("rows of %s kept in keel's recycle bin (keel.dropped_objects id " INT64_FORMAT ")",
                qualified, id)));
}

} // namespace keel
