/*
 * extension/guard/audit.cpp
 *   Writing keel.guard_audit rows in the current transaction (warned,
 *   overridden and unguarded statements, break-glass calls, a lowered
 *   guard), and logging one as a parseable line when it cannot be written.
 *   Blocked statements go through the spool (audit_spool.cpp).
 */
extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/pg_lsn.h"
#include "utils/timestamp.h"
#include "commands/dbcommands.h"
#include "utils/fmgrprotos.h"
#include "utils/inet.h"
}

#include "guard/guard_internal.hpp"
#include "guard/spi_util.hpp"

namespace keel {

/* Longest statement text kept in an audit row, in bytes (issue 5: cap the flood). */
static const int kMaxStatementBytes = 8 * 1024;
/* Most objects kept in an audit row; one more element counts the rest. */
static const int kMaxAuditObjects = 100;

/* ClientAddr returns inet_client_addr() as text, or NULL for a Unix socket or a worker. */
static const char *ClientAddr() {
    LOCAL_FCINFO(fcinfo, 0);
    InitFunctionCallInfoData(*fcinfo, nullptr, 0, InvalidOid, nullptr, nullptr);
    Datum addr = inet_client_addr(fcinfo);
    if (fcinfo->isnull)
        return nullptr;
    return DatumGetCString(DirectFunctionCall1(inet_out, addr));
}

AuditRecord MakeAuditRecord(const char *action, const char *command_tag, const char *rule,
                            List *objects, const char *reason) {
    AuditRecord rec;
    memset(&rec, 0, sizeof rec);
    rec.action = action;
    rec.command_tag = command_tag;
    rec.rule = (rule && *rule) ? rule : nullptr;
    rec.reason = reason;
    if (debug_query_string != nullptr) {
        int len = strlen(debug_query_string);
        if (len > kMaxStatementBytes)
            len = pg_mbcliplen(debug_query_string, len, kMaxStatementBytes);
        rec.statement = pnstrdup(debug_query_string, len);
    }
    rec.role_name = GetUserNameFromId(GetUserId(), false);
    rec.session_role = GetUserNameFromId(GetSessionUserId(), false);
    rec.database_name = get_database_name(MyDatabaseId);
    rec.application_name =
        (application_name && *application_name) ? pstrdup(application_name) : nullptr;
    rec.client_addr = ClientAddr();
    rec.backend_pid = MyProcPid;
    FullTransactionId fxid = GetTopFullTransactionIdIfAny();
    rec.full_xid = FullTransactionIdIsValid(fxid) ? U64FromFullTransactionId(fxid) : 0;
    rec.lsn = BreakGlassLsn();
    rec.occurred_at = GetCurrentTimestamp();
    int n = list_length(objects);
    int kept = n > kMaxAuditObjects ? kMaxAuditObjects : n;
    rec.nobjects = kept + (n > kept ? 1 : 0);
    rec.objects = (const char **)palloc0(sizeof(char *) * (rec.nobjects + 1));
    for (int i = 0; i < kept; i++)
        rec.objects[i] = (const char *)list_nth(objects, i);
    if (n > kept)
        rec.objects[kept] = psprintf("and %d more objects", n - kept);
    return rec;
}

/* TextOrNull makes a text Datum and its SPI null flag. */
static Datum TextOrNull(const char *s, char *null_flag) {
    *null_flag = s ? ' ' : 'n';
    return s ? CStringGetTextDatum(s) : (Datum)0;
}

Oid KeelExtensionOwner() {
    int rc = SPI_execute("SELECT extowner FROM pg_catalog.pg_extension "
                         "WHERE extname OPERATOR(pg_catalog.=) 'keel'",
                         true, 1);
    if (rc != SPI_OK_SELECT || SPI_processed != 1)
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("extension \"keel\" is not installed in this database")));
    bool isnull;
    Datum owner = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    return DatumGetObjectId(owner);
}

/* InsertOne inserts rec; SPI connected, running as the extension owner, search_path pinned. */
static void InsertOne(const AuditRecord *rec) {
    const int n = 16;
    Oid argtypes[n] = {TEXTOID, TEXTOID, TEXTARRAYOID, TEXTOID,       TEXTOID, NAMEOID,
                       NAMEOID, INT4OID, XID8OID,      TEXTOID,       NAMEOID, TEXTOID,
                       TEXTOID, TEXTOID, TEXTOID,      TIMESTAMPTZOID};
    Datum values[n];
    char nulls[n + 1];
    memset(nulls, ' ', n);
    nulls[n] = '\0';

    Datum *elems = (Datum *)palloc(sizeof(Datum) * (rec->nobjects + 1));
    for (int i = 0; i < rec->nobjects; i++)
        elems[i] = CStringGetTextDatum(rec->objects[i]);
    values[0] = TextOrNull(rec->action, &nulls[0]);
    values[1] = TextOrNull(rec->command_tag, &nulls[1]);
    values[2] =
        PointerGetDatum(construct_array(elems, rec->nobjects, TEXTOID, -1, false, TYPALIGN_INT));
    values[3] = TextOrNull(rec->reason, &nulls[3]);
    values[4] = TextOrNull(rec->statement, &nulls[4]);
    values[5] = DirectFunctionCall1(namein, CStringGetDatum(rec->role_name));
    values[6] = DirectFunctionCall1(namein, CStringGetDatum(rec->session_role));
    values[7] = Int32GetDatum(rec->backend_pid);
    values[8] = Int64GetDatum((int64)rec->full_xid);
    if (rec->full_xid == 0)
        nulls[8] = 'n';
    values[9] = TextOrNull(rec->rule, &nulls[9]);
    values[10] = rec->database_name
                     ? DirectFunctionCall1(namein, CStringGetDatum(rec->database_name))
                     : (Datum)0;
    nulls[10] = rec->database_name ? ' ' : 'n';
    values[11] = TextOrNull(rec->application_name, &nulls[11]);
    values[12] = TextOrNull(rec->client_addr, &nulls[12]);
    char lsn[32];
    snprintf(lsn, sizeof lsn, "%X/%X", (uint32)(rec->lsn >> 32), (uint32)rec->lsn);
    values[13] = TextOrNull(XLogRecPtrIsInvalid(rec->lsn) ? nullptr : lsn, &nulls[13]);
    values[14] = TextOrNull(rec->spool_id, &nulls[14]);
    values[15] = TimestampTzGetDatum((TimestampTz)rec->occurred_at);
    if (rec->occurred_at == 0)
        nulls[15] = 'n';

    /* keel's own table, reached through the extension's schema, whatever carries the name keel */
    Oid nsp = KeelNamespace();
    if (!OidIsValid(nsp))
        ereport(ERROR, (errcode(ERRCODE_UNDEFINED_OBJECT),
                        errmsg("extension \"keel\" is not installed in this database")));
    const char *table = quote_qualified_identifier(get_namespace_name(nsp), "guard_audit");
    char *sql =
        psprintf("INSERT INTO %s (action, command_tag, objects, reason, statement, "
                 "role_name, session_role, backend_pid, transaction_id, rule, database_name, "
                 "application_name, client_addr, wal_lsn, spool_id, occurred_at) "
                 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::pg_catalog.inet, "
                 "$14::pg_catalog.pg_lsn, $15, "
                 "COALESCE($16, pg_catalog.clock_timestamp())) "
                 "ON CONFLICT (spool_id) DO NOTHING",
                 table);
    int rc = SPI_execute_with_args(sql, n, argtypes, values, nulls, false, 0);
    if (rc != SPI_OK_INSERT)
        elog(ERROR, "keel: insert into keel.guard_audit failed: %s", SPI_result_code_string(rc));
}

/*
 * InsertAuditRows inserts nrecs records as the extension's owner, with
 * search_path pinned; returns how many were new (spooled ones may be in
 * already). SPI must not be connected.
 */
int64 InsertAuditRows(const AuditRecord *recs, int nrecs) {
    int level = PinSearchPath();
    SPI_connect();
    Oid owner = KeelExtensionOwner();
    Oid save_userid;
    int save_sec_context;
    GetUserIdAndSecContext(&save_userid, &save_sec_context);
    /* An ERROR below restores the user id through transaction abort. */
    SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
    int64 inserted = 0;
    for (int i = 0; i < nrecs; i++) {
        InsertOne(&recs[i]);
        inserted += SPI_processed;
    }
    SetUserIdAndSecContext(save_userid, save_sec_context);
    SPI_finish();
    UnpinSearchPath(level);
    return inserted;
}

void InsertAuditRow(const AuditRecord *rec) {
    if (AuditSpoolPending())
        (void)FlushAuditSpool();
    (void)InsertAuditRows(rec, 1);
}

void LogAuditRecord(const AuditRecord *rec, const char *why) {
    StringInfoData buf;
    initStringInfo(&buf);
    const struct {
        const char *key;
        const char *value;
    } fields[] = {{"action", rec->action},
                  {"rule", rec->rule},
                  {"command_tag", rec->command_tag},
                  {"reason", rec->reason},
                  {"role_name", rec->role_name},
                  {"session_role", rec->session_role},
                  {"database_name", rec->database_name},
                  {"application_name", rec->application_name},
                  {"client_addr", rec->client_addr},
                  {"spool_id", rec->spool_id},
                  {"statement", rec->statement}};
    appendStringInfoChar(&buf, '{');
    for (const auto &f : fields) {
        appendStringInfo(&buf, "%s\"%s\":", buf.len > 1 ? "," : "", f.key);
        if (f.value)
            escape_json(&buf, f.value);
        else
            appendStringInfoString(&buf, "null");
    }
    appendStringInfo(&buf, ",\"backend_pid\":%d,\"objects\":[", rec->backend_pid);
    for (int i = 0; i < rec->nobjects; i++) {
        if (i)
            appendStringInfoChar(&buf, ',');
        escape_json(&buf, rec->objects[i]);
    }
    appendStringInfoString(&buf, "]}");
    ereport(LOG, (errmsg("keel.guard_audit: %s", buf.data),
                  errdetail("The audit row was not written to keel.guard_audit: %s.", why)));
}

} // namespace keel
