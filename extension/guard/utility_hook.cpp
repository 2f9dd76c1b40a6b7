/*
 * extension/guard/utility_hook.cpp
 *   The guard's ProcessUtility_hook, installed when keel.so is preloaded
 *   (shared_preload_libraries or session_preload_libraries). It covers what
 *   event triggers never see (PostgreSQL docs, "Event Trigger Firing
 *   Matrix": no event fires for TRUNCATE, DROP DATABASE, DROP ROLE or
 *   commands on event triggers):
 *     - truncate:      TRUNCATE, with or without CASCADE, from any context
 *                      (DO blocks and functions included);
 *     - drop-database: DROP DATABASE;
 *     - drop-role:     DROP ROLE / USER / GROUP;
 *     - guard-tamper:  ALTER / DROP / rename / re-own of keel's own event
 *                      triggers;
 *   and audits 'guard_lowered' when SET, ALTER SYSTEM, ALTER DATABASE ...
 *   SET or ALTER ROLE ... SET lowers keel.guard or a rule of
 *   keel.guard_rules. It chains to the previous hook (or
 *   standard_ProcessUtility) for everything, at once for what is not its
 *   business.
 */
extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_database.h"
#include "catalog/pg_event_trigger.h"
#include "catalog/pg_inherits.h"
#include "catalog/namespace.h"
#include "commands/dbcommands.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "commands/user.h"
#include "catalog/heap.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
}

#include "guard/guard_internal.hpp"
#include "guard/utility_hook.hpp"
#include "trash/trash.hpp"

namespace keel {

static ProcessUtility_hook_type prev_process_utility = nullptr;

/* KeelEventTrigger: name is one of keel's own event triggers. */
static bool KeelEventTrigger(const char *name) {
    Oid oid = get_event_trigger_oid(name, true);
    return OidIsValid(oid) && IsKeelObject(EventTriggerRelationId, oid);
}

static List *TamperFinding(const char *name) {
    return AddFinding(NIL, kRuleGuardTamper, psprintf("event trigger %s", quote_identifier(name)));
}

/* CollectTruncate lists the tables TRUNCATE would empty (children, and CASCADE's referencing
 * tables). */
static List *CollectTruncate(TruncateStmt *stmt, List **kept) {
    List *relids = NIL;
    ListCell *lc;
    foreach (lc, stmt->relations) {
        RangeVar *rv = (RangeVar *)lfirst(lc);
        Oid relid = RangeVarGetRelid(rv, NoLock, true);
        if (!OidIsValid(relid))
            continue; /* PostgreSQL raises its own error */
        relids = list_concat_unique_oid(
            relids, rv->inh ? find_all_inheritors(relid, NoLock, nullptr) : list_make1_oid(relid));
    }
    if (stmt->behavior == DROP_CASCADE) {
        /* as ExecuteTruncateGuts: repeat until no new referencing table appears */
        while (true) {
            List *more = list_difference_oid(heap_truncate_find_FKs(relids), relids);
            if (more == NIL)
                break;
            relids = list_concat(relids, more);
        }
    }
    List *findings = NIL;
    foreach (lc, relids) {
        Oid relid = lfirst_oid(lc);
        char relkind = get_rel_relkind(relid);
        if (relkind != RELKIND_RELATION)
            continue; /* partitioned parents hold no rows; their partitions are listed */
        if (pg_class_aclcheck(relid, GetUserId(), ACL_TRUNCATE) != ACLCHECK_OK)
            return NIL; /* PostgreSQL's own permission check comes first */
        ObjectAddress addr;
        ObjectAddressSet(addr, RelationRelationId, relid);
        if (IsSystemObject(&addr) || IsTempObject(&addr) ||
            CreatedInThisTransaction(RelationRelationId, relid, 0))
            continue;
        findings = AddFinding(findings, kRuleTruncate, DescribeObject(&addr));
        if (kept)
            *kept = lappend_oid(*kept, relid);
    }
    return findings;
}

static List *CollectDropDatabase(DropdbStmt *stmt) {
    Oid db = get_database_oid(stmt->dbname, true);
    if (!OidIsValid(db) || !pg_database_ownercheck(db, GetUserId()))
        return NIL;
    return AddFinding(NIL, kRuleDropDatabase,
                      psprintf("database %s", quote_identifier(stmt->dbname)));
}

static List *CollectDropRole(DropRoleStmt *stmt) {
    List *findings = NIL;
    ListCell *lc;
    foreach (lc, stmt->roles) {
        RoleSpec *spec = (RoleSpec *)lfirst(lc);
        if (spec->roletype != ROLESPEC_CSTRING)
            continue; /* CURRENT_USER and friends: PostgreSQL refuses them */
        Oid role = get_role_oid(spec->rolename, true);
        if (!OidIsValid(role))
            continue;
        if (!superuser() && (!has_createrole_privilege(GetUserId()) || superuser_arg(role)))
            return NIL; /* PostgreSQL's own permission check comes first */
        if (CreatedInThisTransaction(AuthIdRelationId, role, 0))
            continue;
        findings = AddFinding(findings, kRuleDropRole,
                              psprintf("role %s", quote_identifier(spec->rolename)));
    }
    return findings;
}

/* Lowers reports whether setting name to value lowers the guard (keel.guard, keel.guard_rules). */
static bool Lowers(const char *name, const char *value) {
    if (value == nullptr)
        return false;
    if (pg_strcasecmp(name, "keel.guard") == 0)
        return pg_strcasecmp(value, "warn") == 0 || pg_strcasecmp(value, "off") == 0;
    if (pg_strcasecmp(name, "keel.guard_rules") == 0) {
        RuleLevel levels[kRuleCount];
        char error[256];
        if (!ParseRuleLevels(value, levels, error, sizeof error))
            return false; /* refused by the check hook */
        for (int i = 0; i < kRuleCount; i++)
            if (levels[i] < RuleDefaultLevel(i))
                return true;
    }
    return false;
}

/* LoweringOf returns "keel.guard = off" when stmt lowers the guard, else NULL. */
static char *LoweringOf(VariableSetStmt *stmt) {
    if (stmt == nullptr || stmt->kind != VAR_SET_VALUE || stmt->name == nullptr ||
        pg_strncasecmp(stmt->name, "keel.", 5) != 0)
        return nullptr;
    char *value = ExtractSetVariableArgs(stmt);
    if (!Lowers(stmt->name, value))
        return nullptr;
    return psprintf("%s = '%s'%s", stmt->name, value, stmt->is_local ? " (SET LOCAL)" : "");
}

static char *LoweringIn(Node *tree) {
    switch (nodeTag(tree)) {
    case T_VariableSetStmt:
        return LoweringOf((VariableSetStmt *)tree);
    case T_AlterSystemStmt:
        return LoweringOf(((AlterSystemStmt *)tree)->setstmt);
    case T_AlterRoleSetStmt:
        return LoweringOf(((AlterRoleSetStmt *)tree)->setstmt);
    case T_AlterDatabaseSetStmt:
        return LoweringOf(((AlterDatabaseSetStmt *)tree)->setstmt);
    default:
        return nullptr;
    }
}

/* Collect returns the findings of a statement the hook guards (NIL for all others). */
static List *Collect(Node *tree, List **truncated) {
    switch (nodeTag(tree)) {
    case T_TruncateStmt:
        return OidIsValid(KeelExtensionOid()) ? CollectTruncate((TruncateStmt *)tree, truncated)
                                              : NIL;
    case T_DropdbStmt:
        return CollectDropDatabase((DropdbStmt *)tree);
    case T_DropRoleStmt:
        return CollectDropRole((DropRoleStmt *)tree);
    case T_AlterEventTrigStmt: {
        AlterEventTrigStmt *stmt = (AlterEventTrigStmt *)tree;
        return KeelEventTrigger(stmt->trigname) ? TamperFinding(stmt->trigname) : NIL;
    }
    case T_DropStmt: {
        DropStmt *stmt = (DropStmt *)tree;
        if (stmt->removeType != OBJECT_EVENT_TRIGGER)
            return NIL;
        List *findings = NIL;
        ListCell *lc;
        foreach (lc, stmt->objects)
            if (KeelEventTrigger(strVal(lfirst(lc))))
                findings = list_concat(findings, TamperFinding(strVal(lfirst(lc))));
        return findings;
    }
    case T_RenameStmt: {
        RenameStmt *stmt = (RenameStmt *)tree;
        if (stmt->renameType != OBJECT_EVENT_TRIGGER || !KeelEventTrigger(strVal(stmt->object)))
            return NIL;
        return TamperFinding(strVal(stmt->object));
    }
    case T_AlterOwnerStmt: {
        AlterOwnerStmt *stmt = (AlterOwnerStmt *)tree;
        if (stmt->objectType != OBJECT_EVENT_TRIGGER || !KeelEventTrigger(strVal(stmt->object)))
            return NIL;
        return TamperFinding(strVal(stmt->object));
    }
    default:
        return NIL;
    }
}

/*
 * KeelProcessUtility: refuses (KL001 through GuardVerdict) the statements
 * listed in the file comment, then runs the statement through the previous
 * hook, then audits a lowered guard in the statement's transaction.
 */
static void KeelProcessUtility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
                               ProcessUtilityContext context, ParamListInfo params,
                               QueryEnvironment *queryEnv, DestReceiver *dest,
                               QueryCompletion *qc) {
    Node *tree = pstmt->utilityStmt;
    char *lowering = nullptr;
    if (!RunningKeelScript()) {
        /* A DROP TABLE the guard lets through goes to the recycle bin instead (issue 8). */
        if (IsA(tree, DropStmt) && TrashDropTable((DropStmt *)tree, qc))
            return;
        List *truncated = NIL;
        List *findings = Collect(tree, &truncated);
        if (findings != NIL)
            GuardVerdict(GetCommandTagName(CreateCommandTag(tree)), findings, true);
        ListCell *lc;
        foreach (lc, truncated)
            TrashRows(lfirst_oid(lc)); /* the guard let it through: keep the rows first */
        lowering = LoweringIn(tree);
    }
    prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
    if (lowering != nullptr && IsTransactionState() && !RecoveryInProgress() &&
        OidIsValid(KeelExtensionOid())) {
        AuditRecord rec =
            MakeAuditRecord("guard_lowered", GetCommandTagName(CreateCommandTag(tree)), nullptr,
                            list_make1(lowering), nullptr);
        InsertAuditRow(&rec);
    }
}

void InitGuardUtilityHook() {
    prev_process_utility = ProcessUtility_hook ? ProcessUtility_hook : standard_ProcessUtility;
    ProcessUtility_hook = KeelProcessUtility;
}

} // namespace keel
