/*
 * extension/guard/sql_drop.cpp
 *   keel.guard_sql_drop(): the backstop. After any command drops objects it
 *   reads pg_event_trigger_dropped_objects() and
 *     - refuses the command when a non-temporary data-holding object (table,
 *       column, sequence) that existed before the transaction was dropped:
 *       directly, through CASCADE, DROP OWNED, or as a member of an extension
 *       being dropped;
 *     - remembers each derived object it dropped (view, materialized view,
 *       function, procedure, aggregate, index, trigger, table constraint,
 *       type, domain, schema, extension) for the pre-commit check, which
 *       refuses the transaction unless it was re-created under the same name.
 *   Objects created in the same transaction and temporary ones pass.
 */
extern "C" {
#include "postgres.h"
#include "catalog/pg_class.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "tcop/cmdtag.h"
#include "utils/array.h"
#include "utils/builtins.h"
}

#include "guard/guard_internal.hpp"
#include "guard/spi_util.hpp"
#include "trash/trash.hpp"

extern "C" {
PGDLLEXPORT Datum keel_guard_sql_drop(PG_FUNCTION_ARGS);
}

namespace keel {

/* Kinds of pg_event_trigger_dropped_objects().object_type and their rules. */
struct DroppedKind {
    const char *type;
    int rule;
    bool data; /* data-holding: refused now; otherwise remembered for the replacement check */
};

static const DroppedKind kDroppedKinds[] = {
    {"table", kRuleDropTable, true},
    {"table column", kRuleDropColumn, true},
    {"composite type column", kRuleDropColumn, true},
    {"sequence", kRuleDropSequence, true},
    {"view", kRuleDropView, false},
    {"materialized view", kRuleDropMaterializedView, false},
    {"function", kRuleDropFunction, false},
    {"procedure", kRuleDropFunction, false},
    {"aggregate", kRuleDropFunction, false},
    {"index", kRuleDropIndex, false},
    {"trigger", kRuleDropTrigger, false},
    {"table constraint", kRuleDropConstraint, false},
    {"type", kRuleDropType, false},
    {"domain", kRuleDropType, false},
    {"composite type", kRuleDropType, false},
    {"schema", kRuleDropSchema, false},
    {"extension", kRuleDropExtension, false},
};

static const DroppedKind *FindKind(const char *type) {
    for (const DroppedKind &k : kDroppedKinds)
        if (strcmp(k.type, type) == 0)
            return &k;
    return nullptr;
}

/* TextArrayToList turns a text[] Datum into a List of char * (NIL for NULL). */
static List *TextArrayToList(HeapTuple tup, TupleDesc desc, int col) {
    bool isnull;
    Datum d = SPI_getbinval(tup, desc, col, &isnull);
    if (isnull)
        return NIL;
    Datum *elems;
    bool *nulls;
    int n;
    deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT, &elems, &nulls, &n);
    List *out = NIL;
    for (int i = 0; i < n; i++)
        out = lappend(out, nulls[i] ? pstrdup("") : TextDatumGetCString(elems[i]));
    return out;
}

} // namespace keel

/*
 * keel.guard_sql_drop() RETURNS event_trigger
 *   Fires at sql_drop. Raises KL001 (DETAIL: each data-holding object
 *   destroyed) when such a finding's rule is at level error and no
 *   break-glass is in force; at level warn raises a WARNING and audits
 *   'warned'; under the break-glass audits 'overridden' with exactly what was
 *   dropped. Derived objects are remembered for the pre-commit check.
 *   Rule: DESIGN.md (sql_drop as backstop), issue 5 ("Refuse what destroys,
 *   allow what replaces"); PostgreSQL docs "Event Trigger Functions"
 *   (pg_event_trigger_dropped_objects).
 */
extern "C" {
PG_FUNCTION_INFO_V1(keel_guard_sql_drop);
}
Datum keel_guard_sql_drop(PG_FUNCTION_ARGS) {
    using namespace keel;
    RequireEventTrigger(fcinfo, "keel.guard_sql_drop()");
    if (RunningKeelScript())
        PG_RETURN_VOID();

    EventTriggerData *trigdata = (EventTriggerData *)fcinfo->context;
    const char *tag = GetCommandTagName(trigdata->tag);
    /* Another extension's own script replaces its own derived objects freely. */
    bool track_derived = !creating_extension;
    bool extension_drop = trigdata->tag == CMDTAG_DROP_EXTENSION;
    MemoryContext outer = CurrentMemoryContext;
    List *findings = NIL;
    int level = PinSearchPath();
    SPI_connect();
    int rc = SPI_execute(
        "SELECT classid, objid, objsubid, original OR normal, object_type, object_identity,"
        "       address_names, address_args"
        " FROM pg_event_trigger_dropped_objects()"
        " WHERE NOT is_temporary",
        true, 0);
    if (rc != SPI_OK_SELECT)
        elog(ERROR, "keel: reading dropped objects failed: %s", SPI_result_code_string(rc));
    for (uint64 i = 0; i < SPI_processed; i++) {
        HeapTuple tup = SPI_tuptable->vals[i];
        TupleDesc desc = SPI_tuptable->tupdesc;
        bool isnull;
        const char *type = SPI_getvalue(tup, desc, 5);
        const DroppedKind *kind = type ? FindKind(type) : nullptr;
        if (kind == nullptr)
            continue;
        bool direct = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
        /* Parts dropped with their owner (an index with its table) follow the owner's verdict,
         * except data-holding members of an extension being dropped. */
        if (!direct && !(kind->data && extension_drop))
            continue;
        Oid classid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
        Oid objid = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
        int32 subid = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
        if (objid < FirstNormalObjectId || CreatedInThisTransaction(classid, objid, subid))
            continue;
        char *identity = SPI_getvalue(tup, desc, 6);
        MemoryContext spi = MemoryContextSwitchTo(outer);
        char *what = psprintf("%s %s", type, identity ? identity : "?");
        if (kind->data || BreakGlassActive())
            findings = AddFinding(findings, kind->rule, what);
        else if (track_derived)
            RememberDropped(kind->rule, tag, type, what, TextArrayToList(tup, desc, 7),
                            TextArrayToList(tup, desc, 8));
        MemoryContextSwitchTo(spi);
    }
    SPI_finish();
    UnpinSearchPath(level);

    GuardVerdict(tag, findings, true);
    /* let through: say so when the recycle bin could not keep a table */
    ListCell *lc;
    foreach (lc, findings)
        if (((Finding *)lfirst(lc))->rule == kRuleDropTable && trash_enabled) {
            ereport(
                WARNING,
                (errmsg("dropped table not kept in keel's recycle bin: %s",
                        ((Finding *)lfirst(lc))->object),
                 errdetail("keel keeps a dropped table only when keel.so is preloaded, and only "
                           "a plain table (not partitioned, inherited or temporary)."),
                 errhint("Preload keel (shared_preload_libraries = 'keel') to make DROP TABLE "
                         "undoable.")));
            break;
        }
    PG_RETURN_VOID();
}
