/*
 * extension/guard/audit.cpp
 *   Writing keel.guard_audit rows: in the current transaction (warned and
 *   overridden statements, break-glass calls), or from a background worker in
 *   a transaction of its own (blocked statements, whose transaction aborts).
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
#include "utils/lsyscache.h"
}

#include "guard/guard_internal.hpp"

namespace keel {

/* Longest statement text kept in an audit row, in bytes. */
static const int kMaxStatementBytes = 64 * 1024;

AuditRecord MakeAuditRecord(const char *action, const char *command_tag, List *objects,
                            const char *reason) {
    AuditRecord rec;
    rec.action = action;
    rec.command_tag = command_tag;
    rec.reason = reason;
    rec.statement = nullptr;
    if (debug_query_string != nullptr) {
        int len = strlen(debug_query_string);
        if (len > kMaxStatementBytes)
            len = pg_mbcliplen(debug_query_string, len, kMaxStatementBytes);
        rec.statement = pnstrdup(debug_query_string, len);
    }
    rec.role_name = GetUserNameFromId(GetUserId(), false);
    rec.session_role = GetUserNameFromId(GetSessionUserId(), false);
    rec.backend_pid = MyProcPid;
    FullTransactionId fxid = GetTopFullTransactionIdIfAny();
    rec.full_xid = FullTransactionIdIsValid(fxid) ? U64FromFullTransactionId(fxid) : 0;
    rec.nobjects = list_length(objects);
    rec.objects = (const char **)palloc0(sizeof(char *) * (rec.nobjects + 1));
    int i = 0;
    ListCell *lc;
    foreach (lc, objects)
        rec.objects[i++] = (const char *)lfirst(lc);
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

void InsertAuditRow(const AuditRecord *rec) {
    Oid argtypes[9] = {TEXTOID, TEXTOID, TEXTARRAYOID, TEXTOID, TEXTOID,
                       NAMEOID, NAMEOID, INT4OID,      XID8OID};
    Datum values[9];
    char nulls[10] = "         ";

    Datum *elems = (Datum *)palloc(sizeof(Datum) * (rec->nobjects + 1));
    for (int i = 0; i < rec->nobjects; i++)
        elems[i] = CStringGetTextDatum(rec->objects[i]);
    ArrayType *objects = construct_array(elems, rec->nobjects, TEXTOID, -1, false, TYPALIGN_INT);

    values[0] = TextOrNull(rec->action, &nulls[0]);
    values[1] = TextOrNull(rec->command_tag, &nulls[1]);
    values[2] = PointerGetDatum(objects);
    values[3] = TextOrNull(rec->reason, &nulls[3]);
    values[4] = TextOrNull(rec->statement, &nulls[4]);
    values[5] = DirectFunctionCall1(namein, CStringGetDatum(rec->role_name));
    values[6] = DirectFunctionCall1(namein, CStringGetDatum(rec->session_role));
    values[7] = Int32GetDatum(rec->backend_pid);
    values[8] = Int64GetDatum((int64)rec->full_xid);
    if (rec->full_xid == 0)
        nulls[8] = 'n';

    SPI_connect();
    Oid owner = KeelExtensionOwner();
    Oid save_userid;
    int save_sec_context;
    GetUserIdAndSecContext(&save_userid, &save_sec_context);
    /* An ERROR below restores the user id through transaction abort. */
    SetUserIdAndSecContext(owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE);
    int rc = SPI_execute_with_args(
        "INSERT INTO keel.guard_audit (action, command_tag, objects, reason, statement, "
        "role_name, session_role, backend_pid, transaction_id) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        9, argtypes, values, nulls, false, 0);
    SetUserIdAndSecContext(save_userid, save_sec_context);
    if (rc != SPI_OK_INSERT)
        elog(ERROR, "keel: insert into keel.guard_audit failed: %s", SPI_result_code_string(rc));
    SPI_finish();
}

} // namespace keel
