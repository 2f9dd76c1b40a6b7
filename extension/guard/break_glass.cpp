/*
 * extension/guard/break_glass.cpp
 *   keel.allow_destructive(reason text): the audited break-glass.
 */
extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
}

#include "guard/guard_internal.hpp"
#include "pg/writable.hpp"

extern "C" {
PGDLLEXPORT Datum keel_allow_destructive(PG_FUNCTION_ARGS);
}

namespace keel {

bool IsKeelAdmin() {
    if (superuser())
        return true;
    const char *role = guard_admin_role ? guard_admin_role : "";
    Oid admin = get_role_oid(role, true);
    return OidIsValid(admin) && is_member_of_role(GetUserId(), admin);
}

} // namespace keel

/*
 * keel.allow_destructive(reason text) RETURNS void
 *   Lets destructive DDL through until the current transaction ends (or the
 *   savepoint it was called in rolls back), and writes a 'break_glass' row
 *   with the reason to keel.guard_audit in the same transaction; every
 *   statement it lets through is audited as 'overridden'.
 *   The break-glass is bound to the role and security context that called
 *   it: a SECURITY DEFINER function calling it does not lend it to its
 *   caller. The audit row carries the WAL insert position before any change
 *   it lets through (wal_lsn), a ready recovery_target_lsn.
 *   Errors: 22023 when reason is NULL or blank (Unicode white space and
 *   zero-width characters count as blank); 42501 unless the caller is a
 *   superuser or a member of the role named by keel.admin_role.
 *   WARNING outside a transaction block, where it ends with the statement.
 *   Rule: DESIGN.md (explicit, audited break-glass that names a reason and
 *   lasts one transaction); seed 000 ("Emergency Procedures").
 */
extern "C" {
PG_FUNCTION_INFO_V1(keel_allow_destructive);
}
Datum keel_allow_destructive(PG_FUNCTION_ARGS) {
    keel::RequireWritable("keel.allow_destructive()");
    using namespace keel;
    const char *reason = PG_ARGISNULL(0) ? nullptr : text_to_cstring(PG_GETARG_TEXT_PP(0));
    if (reason == nullptr || IsBlankReason(reason))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("keel.allow_destructive() needs a reason"),
                        errhint("Say why the destructive change is needed, for example "
                                "SELECT keel.allow_destructive('drop table replaced by v2').")));

    if (!IsKeelAdmin()) {
        const char *role = guard_admin_role ? guard_admin_role : "";
        Oid admin = get_role_oid(role, true);
        ereport(ERROR,
                (errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
                 errmsg("permission denied to allow destructive DDL"),
                 OidIsValid(admin)
                     ? errdetail("Only superusers and members of role \"%s\" may call "
                                 "keel.allow_destructive().",
                                 role)
                     : errdetail("Only superusers may call keel.allow_destructive(), because "
                                 "role \"%s\" named by keel.admin_role does not exist.",
                                 role),
                 errhint("Ask an administrator to run GRANT %s TO %s.", role,
                         GetUserNameFromId(GetUserId(), false))));
    }

    if (!IsTransactionBlock())
        ereport(WARNING, (errcode(ERRCODE_WARNING),
                          errmsg("keel.allow_destructive() outside a transaction block ends with "
                                 "this statement"),
                          errhint("Call it after BEGIN, in the transaction that runs the "
                                  "destructive command.")));

    ActivateBreakGlass(reason); /* ends with the transaction if the insert fails */
    AuditRecord rec = MakeAuditRecord("break_glass", nullptr, nullptr, NIL, reason);
    InsertAuditRow(&rec);
    PG_RETURN_VOID();
}
