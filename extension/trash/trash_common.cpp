/*
 * extension/trash/trash_common.cpp
 *   See trash_common.hpp.
 */
extern "C" {
#include "postgres.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
}

#include "guard/guard_internal.hpp"
#include "guard/spi_util.hpp"
#include "trash/trash.hpp"
#include "trash/trash_common.hpp"

namespace keel {

TrashSession TrashBegin() {
    TrashSession s;
    const char *reason = BreakGlassReason();
    s.reason = reason ? pstrdup(reason) : nullptr;
    s.guc_level = PinSearchPath();
    SPI_connect();
    Oid owner = KeelExtensionOwner();
    GetUserIdAndSecContext(&s.save_user, &s.save_sec);
    SetUserIdAndSecContext(owner, s.save_sec | SECURITY_LOCAL_USERID_CHANGE);
    internal_ddl_depth++;
    return s;
}

void TrashEnd(const TrashSession &s) {
    internal_ddl_depth--;
    SetUserIdAndSecContext(s.save_user, s.save_sec);
    SPI_finish();
    UnpinSearchPath(s.guc_level);
}

void TrashExec(const char *sql) {
    int rc = SPI_execute(sql, false, 0);
    if (rc < 0)
        elog(ERROR, "keel: recycle bin statement failed (%s): %s", SPI_result_code_string(rc), sql);
}

char *TrashScalar(const char *sql, MemoryContext outer) {
    int rc = SPI_execute(sql, false, 0);
    if (rc < 0 || SPI_processed < 1)
        return nullptr;
    char *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
    return v ? MemoryContextStrdup(outer, v) : nullptr;
}

void TrashFinishEntry(int64 id, const char *trash) {
    char *qualified = psprintf("keel_trash.%s", quote_identifier(trash));
    TrashExec(psprintf(
        "UPDATE keel.dropped_objects SET trash_name = %s, row_count ="
        " (SELECT pg_catalog.count(*) FROM %s), size_bytes ="
        " pg_catalog.pg_total_relation_size(%s) WHERE id OPERATOR(pg_catalog.=) " INT64_FORMAT,
        QuoteLiteral(trash), qualified, QuoteLiteral(qualified), id));
}

char *QuoteLiteral(const char *s) {
    return quote_literal_cstr(s ? s : "");
}

int64 TrashNewEntry(const TrashSession &s, const char *kind, const char *identity,
                    const char *details_sql) {
    const char *reason = s.reason;
    char *sql = psprintf(
        "WITH now AS (SELECT pg_catalog.clock_timestamp() AS at) "
        "INSERT INTO keel.dropped_objects (kind, original_identity, trash_name, size_bytes, "
        "row_count, dropped_by, reason, statement, dropped_at, expires_at, details) "
        "SELECT %s, %s, '', 0, 0, %s, %s, %s, now.at, now.at OPERATOR(pg_catalog.+) "
        "pg_catalog.make_interval(secs => %d), (%s) FROM now RETURNING id",
        QuoteLiteral(kind), QuoteLiteral(identity),
        QuoteLiteral(GetUserNameFromId(s.save_user, false)), reason ? QuoteLiteral(reason) : "NULL",
        debug_query_string ? QuoteLiteral(pnstrdup(debug_query_string, 8192)) : "NULL",
        trash_retention_s, details_sql);
    int rc = SPI_execute(sql, false, 0);
    if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
        elog(ERROR, "keel: could not record the recycle bin entry");
    bool isnull;
    return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

} // namespace keel
