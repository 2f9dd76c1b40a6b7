/*
 * extension/guard/guard.cpp
 *   The guard's GUCs (keel.guard, keel.admin_role) and the state of the
 *   break-glass, which lasts until the end of the (sub)transaction that
 *   started it.
 */
extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "catalog/pg_extension.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/guc.h"
#include "utils/memutils.h"
}

#include "guard/guard.hpp"
#include "guard/guard_internal.hpp"

namespace keel {

int guard_mode = GUARD_ENFORCE;
char *guard_admin_role = nullptr;

static const struct config_enum_entry guard_mode_options[] = {
    {"enforce", GUARD_ENFORCE, false},
    {"warn", GUARD_WARN, false},
    {"off", GUARD_OFF, false},
    {nullptr, 0, false},
};

/* The break-glass: the local transaction and subtransaction that started it. */
static LocalTransactionId break_glass_lxid = InvalidLocalTransactionId;
static SubTransactionId break_glass_subid = InvalidSubTransactionId;
static char *break_glass_reason = nullptr; /* in TopMemoryContext */

bool BreakGlassActive() {
    return break_glass_lxid != InvalidLocalTransactionId && break_glass_lxid == MyProc->lxid;
}

void ActivateBreakGlass(const char *reason) {
    char *copy = MemoryContextStrdup(TopMemoryContext, reason);
    if (break_glass_reason)
        pfree(break_glass_reason);
    break_glass_reason = copy;
    break_glass_lxid = MyProc->lxid;
    break_glass_subid = GetCurrentSubTransactionId();
}

const char *BreakGlassReason() {
    return BreakGlassActive() ? break_glass_reason : nullptr;
}

static void ClearBreakGlass() {
    break_glass_lxid = InvalidLocalTransactionId;
    break_glass_subid = InvalidSubTransactionId;
    if (break_glass_reason)
        pfree(break_glass_reason);
    break_glass_reason = nullptr;
}

/* GuardXactCallback ends the break-glass with its transaction. */
static void GuardXactCallback(XactEvent event, void *arg) {
    switch (event) {
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_PREPARE:
        ClearBreakGlass();
        break;
    default:
        break;
    }
}

/*
 * GuardSubXactCallback ends the break-glass when the savepoint that started it
 * rolls back (its audit row is gone too), and hands it to the parent when the
 * savepoint is released.
 */
static void GuardSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
                                 SubTransactionId parentSubid, void *arg) {
    if (break_glass_subid != mySubid)
        return;
    if (event == SUBXACT_EVENT_ABORT_SUB)
        ClearBreakGlass();
    else if (event == SUBXACT_EVENT_COMMIT_SUB)
        break_glass_subid = parentSubid;
}

void RequireEventTrigger(FunctionCallInfo fcinfo, const char *function_name) {
    if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
        ereport(ERROR,
                (errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
                 errmsg("function %s was not called by the event trigger manager", function_name)));
}

bool RunningKeelScript() {
    if (!creating_extension)
        return false;
    Oid keel_oid = get_extension_oid("keel", true);
    return OidIsValid(keel_oid) && CurrentExtensionObject == keel_oid;
}

/*
 * InitGuard defines the guard's GUCs and registers its transaction callbacks.
 *   keel.guard (enum enforce|warn|off, default enforce, PGC_SUSET): only a
 *     superuser, or a role granted SET on it (GRANT SET ON PARAMETER), may
 *     change it.
 *   keel.admin_role (string, default keel_admin, PGC_SUSET): members of this
 *     role may call keel.allow_destructive().
 */
void InitGuard() {
    DefineCustomEnumVariable(
        "keel.guard", gettext_noop("Whether keel refuses destructive DDL."),
        gettext_noop("enforce refuses it (SQLSTATE KL001) unless keel.allow_destructive() was "
                     "called in the transaction; warn lets it through with a WARNING; off "
                     "disables the guard."),
        &guard_mode, GUARD_ENFORCE, guard_mode_options, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomStringVariable(
        "keel.admin_role", gettext_noop("Role whose members may call keel.allow_destructive()."),
        gettext_noop("Superusers may always call it."), &guard_admin_role, "keel_admin", PGC_SUSET,
        0, nullptr, nullptr, nullptr);
    RegisterXactCallback(GuardXactCallback, nullptr);
    RegisterSubXactCallback(GuardSubXactCallback, nullptr);
}

} // namespace keel
