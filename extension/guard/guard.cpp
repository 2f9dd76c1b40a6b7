/*
 * extension/guard/guard.cpp
 *   The guard's GUCs (keel.guard, keel.guard_rules, keel.admin_role), the
 *   state of the break-glass, which lasts until the end of the
 *   (sub)transaction that started it, and the transaction callbacks that run
 *   the pre-commit replacement check.
 */
extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "access/xlog.h"
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
static char *guard_rules_text = nullptr;        /* keel.guard_rules */
static RuleLevel guard_rule_levels[kRuleCount]; /* parsed by its assign hook */

RuleLevel RuleLevelNow(int rule) {
    RuleLevel level = guard_rule_levels[rule];
    if (guard_mode == GUARD_OFF)
        return RuleLevel::Off;
    if (guard_mode == GUARD_WARN && level == RuleLevel::Error)
        return RuleLevel::Warn;
    return level;
}

/* CheckGuardRules is keel.guard_rules' check hook: it refuses a bad list with one message. */
static bool CheckGuardRules(char **newval, void **extra, GucSource source) {
    RuleLevel levels[kRuleCount];
    char error[256];
    if (!ParseRuleLevels(*newval, levels, error, sizeof error)) {
        GUC_check_errmsg("invalid value for keel.guard_rules: %s", error);
        GUC_check_errdetail("The value is a comma-separated list of rule=level items, with level "
                            "error, warn or off.");
        GUC_check_errhint("Rule names are listed in docs/rules/README.md, e.g. "
                          "'rename-column=warn, table-rewrite=off'.");
        return false;
    }
    return true;
}

/* AssignGuardRules stores the levels; the value was checked, so parsing cannot fail. */
static void AssignGuardRules(const char *newval, void *extra) {
    char error[256];
    (void)ParseRuleLevels(newval, guard_rule_levels, error, sizeof error);
}

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
static Oid break_glass_user = InvalidOid;  /* the role and security context that activated it */
static int break_glass_sec_context = 0;
static XLogRecPtr break_glass_lsn = InvalidXLogRecPtr;

bool BreakGlassActive() {
    if (break_glass_lxid == InvalidLocalTransactionId || break_glass_lxid != MyProc->lxid)
        return false;
    Oid user;
    int sec_context;
    GetUserIdAndSecContext(&user, &sec_context);
    return user == break_glass_user && sec_context == break_glass_sec_context;
}

XLogRecPtr BreakGlassLsn() {
    return BreakGlassActive() ? break_glass_lsn : InvalidXLogRecPtr;
}

void ActivateBreakGlass(const char *reason) {
    char *copy = MemoryContextStrdup(TopMemoryContext, reason);
    if (break_glass_reason)
        pfree(break_glass_reason);
    break_glass_reason = copy;
    break_glass_lxid = MyProc->lxid;
    break_glass_subid = GetCurrentSubTransactionId();
    GetUserIdAndSecContext(&break_glass_user, &break_glass_sec_context);
    break_glass_lsn = RecoveryInProgress() ? InvalidXLogRecPtr : GetXLogInsertRecPtr();
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
    break_glass_user = InvalidOid;
    break_glass_sec_context = 0;
    break_glass_lsn = InvalidXLogRecPtr;
}

/*
 * GuardXactCallback runs the replacement check before commit (its ERROR
 * aborts the transaction) and ends the break-glass and the remembered drops
 * with the transaction.
 */
static void GuardXactCallback(XactEvent event, void *arg) {
    switch (event) {
    case XACT_EVENT_PRE_COMMIT:
    case XACT_EVENT_PRE_PREPARE:
        CheckReplacements();
        break;
    case XACT_EVENT_COMMIT:
    case XACT_EVENT_PARALLEL_COMMIT:
    case XACT_EVENT_ABORT:
    case XACT_EVENT_PARALLEL_ABORT:
    case XACT_EVENT_PREPARE:
        ClearBreakGlass();
        ForgetReplacements();
        internal_ddl_depth = 0;
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
    if (event == SUBXACT_EVENT_ABORT_SUB || event == SUBXACT_EVENT_COMMIT_SUB)
        ForgetSubxactReplacements(mySubid, parentSubid, event == SUBXACT_EVENT_COMMIT_SUB);
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

int internal_ddl_depth = 0;

bool RunningKeelScript() {
    if (internal_ddl_depth > 0)
        return true;
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
 *   keel.guard_rules (string, default '', PGC_SUSET): per-rule levels,
 *     'rule=level, ...' with level error | warn | off (rule_list.def); a
 *     bad list is refused with 22023. keel.guard caps every level.
 *   keel.admin_role (string, default keel_admin, PGC_SUSET): members of this
 *     role may call keel.allow_destructive().
 * Both guard GUCs may be set per database and per role (ALTER DATABASE/ROLE
 * ... SET) by a superuser. Rule: issue 5, "Policy and the way out".
 */
void InitGuard() {
    DefineCustomEnumVariable(
        "keel.guard", gettext_noop("Whether keel refuses destructive DDL."),
        gettext_noop("enforce refuses it (SQLSTATE KL001) unless keel.allow_destructive() was "
                     "called in the transaction; warn lets it through with a WARNING; off "
                     "disables the guard."),
        &guard_mode, GUARD_ENFORCE, guard_mode_options, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    char error[256];
    (void)ParseRuleLevels("", guard_rule_levels, error, sizeof error);
    DefineCustomStringVariable(
        "keel.guard_rules", gettext_noop("Per-rule levels of keel's guard."),
        gettext_noop("A comma-separated list of rule=level, level error, warn or off, e.g. "
                     "'rename-column=warn, table-rewrite=off'. Rules not named keep their "
                     "default (error); keel.guard caps every level."),
        &guard_rules_text, "", PGC_SUSET, 0, CheckGuardRules, AssignGuardRules, nullptr);
    DefineCustomStringVariable(
        "keel.admin_role", gettext_noop("Role whose members may call keel.allow_destructive()."),
        gettext_noop("Superusers may always call it."), &guard_admin_role, "keel_admin", PGC_SUSET,
        0, nullptr, nullptr, nullptr);
    RegisterXactCallback(GuardXactCallback, nullptr);
    RegisterSubXactCallback(GuardSubXactCallback, nullptr);
}

} // namespace keel
