/*
 * extension/guard/audit_sql.cpp
 *   SQL-callable functions of the audit: the append-only trigger of
 *   keel.guard_audit and keel.guard_audit_flush().
 */
extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "miscadmin.h"
}

#include "guard/guard_internal.hpp"
#include "pg/append_only.hpp"
#include "pg/writable.hpp"

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
    keel::RefuseAppendOnlyChange(fcinfo, "keel.guard_audit_append_only()", "keel.guard_audit",
                                 "audit", "Archive old rows with pg_dump or COPY instead.");
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
    keel::RequireWritable("keel.guard_audit_flush()");
    PG_RETURN_INT64(keel::FlushAuditSpool());
}

} // extern "C"
