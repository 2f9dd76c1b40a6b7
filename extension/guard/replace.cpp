/*
 * extension/guard/replace.cpp
 *   "Refuse what destroys, allow what replaces" (issue 5): derived objects
 *   (views, materialized views, functions, procedures, aggregates, triggers,
 *   indexes, constraints, types and domains, schemas, extensions) that a
 *   command dropped are remembered here, and just before the transaction
 *   commits each must exist again under the same name and kind. One that
 *   does not is refused with KL001, which aborts the transaction.
 *   Entries belong to the subtransaction that made them: a rolled-back
 *   savepoint takes its drops with it.
 */
extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_proc.h"
#include "commands/extension.h"
#include "commands/trigger.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "parser/parse_type.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
}

#include "guard/guard_internal.hpp"

namespace keel {

/* A derived object dropped in this transaction that must be back by commit. */
struct Dropped {
    int rule;
    SubTransactionId subid;
    char *tag;      /* the command that dropped it */
    char *type;     /* pg_event_trigger_dropped_objects().object_type */
    char *identity; /* "<type> <identity>" */
    List *names;    /* address_names */
    List *args;     /* address_args */
};

static List *dropped = NIL; /* of Dropped *, in TopTransactionContext */

static List *CopyStrings(List *in) {
    List *out = NIL;
    ListCell *lc;
    foreach (lc, in)
        out = lappend(out, pstrdup((const char *)lfirst(lc)));
    return out;
}

void RememberDropped(int rule, const char *tag, const char *type, const char *identity, List *names,
                     List *args) {
    MemoryContext old = MemoryContextSwitchTo(TopTransactionContext);
    Dropped *d = (Dropped *)palloc(sizeof(Dropped));
    d->rule = rule;
    d->subid = GetCurrentSubTransactionId();
    d->tag = pstrdup(tag);
    d->type = pstrdup(type);
    d->identity = pstrdup(identity);
    d->names = CopyStrings(names);
    d->args = CopyStrings(args);
    dropped = lappend(dropped, d);
    MemoryContextSwitchTo(old);
}

void ForgetReplacements() {
    dropped = NIL; /* its memory goes with TopTransactionContext */
}

void ForgetSubxactReplacements(SubTransactionId subid, SubTransactionId parent, bool commit) {
    ListCell *lc;
    foreach (lc, dropped) {
        Dropped *d = (Dropped *)lfirst(lc);
        if (d->subid != subid)
            continue;
        if (commit)
            d->subid = parent;
        else
            dropped = foreach_delete_current(dropped, lc);
    }
}

static const char *Name(List *names, int i) {
    return i < list_length(names) ? (const char *)list_nth(names, i) : "";
}

/* RelationBack: names[0].names[1] is a relation again, of one of relkinds. */
static Oid RelationBack(List *names, const char *relkinds) {
    Oid nsp = get_namespace_oid(Name(names, 0), true);
    if (!OidIsValid(nsp))
        return InvalidOid;
    Oid relid = get_relname_relid(Name(names, 1), nsp);
    if (!OidIsValid(relid) || strchr(relkinds, get_rel_relkind(relid)) == nullptr)
        return InvalidOid;
    return relid;
}

/* FunctionBack: a routine of the same name and argument types, and the same prokind, exists. */
static bool FunctionBack(const Dropped *d) {
    ObjectWithArgs *owa = makeNode(ObjectWithArgs);
    owa->objname =
        list_make2(makeString(pstrdup(Name(d->names, 0))), makeString(pstrdup(Name(d->names, 1))));
    ListCell *lc;
    foreach (lc, d->args)
        owa->objargs = lappend(owa->objargs, typeStringToTypeName((const char *)lfirst(lc)));
    owa->args_unspecified = false;
    Oid fn = LookupFuncWithArgs(OBJECT_ROUTINE, owa, true);
    if (!OidIsValid(fn))
        return false;
    char kind = get_func_prokind(fn);
    if (strcmp(d->type, "procedure") == 0)
        return kind == PROKIND_PROCEDURE;
    if (strcmp(d->type, "aggregate") == 0)
        return kind == PROKIND_AGGREGATE;
    return kind == PROKIND_FUNCTION || kind == PROKIND_WINDOW;
}

/* IsBack reports whether the dropped object exists again under its name and kind. */
static bool IsBack(const Dropped *d) {
    const char *t = d->type;
    if (strcmp(t, "view") == 0)
        return OidIsValid(RelationBack(d->names, "v"));
    if (strcmp(t, "materialized view") == 0)
        return OidIsValid(RelationBack(d->names, "m"));
    if (strcmp(t, "index") == 0)
        return OidIsValid(RelationBack(d->names, "iI"));
    if (strcmp(t, "function") == 0 || strcmp(t, "procedure") == 0 || strcmp(t, "aggregate") == 0)
        return FunctionBack(d);
    if (strcmp(t, "trigger") == 0 || strcmp(t, "table constraint") == 0) {
        Oid relid = RelationBack(d->names, "rpfvm");
        if (!OidIsValid(relid))
            return false;
        const char *name = Name(d->names, 2);
        return strcmp(t, "trigger") == 0
                   ? OidIsValid(get_trigger_oid(relid, name, true))
                   : OidIsValid(get_relation_constraint_oid(relid, name, true));
    }
    if (strcmp(t, "type") == 0 || strcmp(t, "domain") == 0 || strcmp(t, "composite type") == 0) {
        TypeName *tn = typeStringToTypeName(Name(d->names, 0));
        return OidIsValid(LookupTypeNameOid(nullptr, tn, true));
    }
    if (strcmp(t, "schema") == 0)
        return OidIsValid(get_namespace_oid(Name(d->names, 0), true));
    if (strcmp(t, "extension") == 0)
        return OidIsValid(get_extension_oid(Name(d->names, 0), true));
    return true;
}

/*
 * CheckReplacements runs before commit (and PREPARE TRANSACTION). Rule:
 * issue 5: a derived object dropped and re-created under the same name and
 * kind before commit is a replacement; one that is not is refused (KL001,
 * through GuardVerdict: rule levels and the break-glass apply).
 */
void CheckReplacements() {
    if (dropped == NIL)
        return;
    List *pending = dropped;
    dropped = NIL; /* an ERROR below must not re-run the check */
    List *findings = NIL;
    const char *tag = nullptr;
    ListCell *lc;
    foreach (lc, pending) {
        Dropped *d = (Dropped *)lfirst(lc);
        if (IsBack(d))
            continue;
        findings = AddFinding(findings, d->rule, d->identity);
        if (tag == nullptr)
            tag = d->tag;
    }
    if (findings == NIL)
        return;
    /* An implicit transaction commits with no active snapshot; the audit needs one. */
    bool pushed = !ActiveSnapshotSet();
    if (pushed)
        PushActiveSnapshot(GetTransactionSnapshot());
    GuardVerdict(psprintf("%s not re-created before COMMIT", tag), findings, true);
    if (pushed)
        PopActiveSnapshot();
}

} // namespace keel
