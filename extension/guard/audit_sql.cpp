/*
 * extension/guard/audit_sql.cpp
 *   SQL-callable functions of the audit: the append-only trigger of
 *   keel.guard_audit and keel.guard_audit_flush().
 */
extern "C" {
#include "postgres.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "miscadmin.h"
}

#include "guard/guard_internal.hpp"

extern "C" {

/*
 * keel.guard_audit_append_only() -> trigger: BEFORE UPDATE OR DELETE (row)
 * and BEFORE TRUNCATE (statement) on keel.guard_audit, ENABLE ALWAYS.
 * Always raises 42501: an audit trail its subject can edit records nothing.
 * Rule: issue 5 ("guard_audit is append-only like the ledger").
 */
PG_FUNCTION_INFO_V1(keel_guard_audit_append_only);
PGDLLEXPORT Datum keel_guard_audit_append_only(PG_FUNCTION_ARGS);
Datum keel_guard_audit_append_only(PG_FUNCTION_ARGS) {
    if (!CALLED_AS_TRIGGER(fcinfo))
        ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                        errmsg("keel.guard_audit_append_only() must be called as a trigger")));
    TriggerData *trigdata = (TriggerData *)fcinfo->context;
    const char *op = TRIGGER_FIRED_BY_UPDATE(trigdata->tg_event)     ? "UPDATE"
                     : TRIGGER_FIRED_BY_DELETE(trigdata->tg_event)   ? "DELETE"
                     : TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event) ? "TRUNCATE"
                                                                     : "this change";
    ereport(ERROR,
            (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE), errmsg("keel.guard_audit is append-only"),
             errdetail("%s of audit rows is refused for every role.", op),
             errhint("Archive old rows with pg_dump or COPY instead.")));
    PG_RETURN_NULL();
}

/*
 * keel.guard_audit_flush() -> bigint: inserts the audit rows of blocked
 * statements still in the spool of this database into keel.guard_audit (in
 * the caller's transaction; their files go when it commits) and returns how
 * many it inserted. EXECUTE is revoked from PUBLIC. Errors: 25006 in a
 * read-only transaction (from the INSERT).
 * Rule: issue 5 ("A refusal's audit must be durable and must not need a free
 * worker slot").
 */
PG_FUNCTION_INFO_V1(keel_guard_audit_flush);
PGDLLEXPORT Datum keel_guard_audit_flush(PG_FUNCTION_ARGS);
Datum keel_guard_audit_flush(PG_FUNCTION_ARGS) {
    PG_RETURN_INT64(keel::FlushAuditSpool());
}

} // extern "C"
