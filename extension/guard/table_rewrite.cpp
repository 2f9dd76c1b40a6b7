/*
 * extension/guard/table_rewrite.cpp
 *   keel.guard_table_rewrite(): refuses a rewrite of a table that holds rows
 *   (ALTER COLUMN TYPE that is not binary-coercible, ADD COLUMN with a
 *   volatile default, SET LOGGED / UNLOGGED, SET ACCESS METHOD): the rewrite
 *   holds an ACCESS EXCLUSIVE lock for as long as it takes to copy every row
 *   and rebuild every index. Empty tables, tables created in the same
 *   transaction and temporary tables pass. The reason goes in DETAIL.
 *   (PostgreSQL docs: "Event Trigger Functions", table_rewrite.)
 */
extern "C" {
#include "postgres.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "commands/event_trigger.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/parsenodes.h"
#include "tcop/cmdtag.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
}

#include "guard/guard_internal.hpp"

extern "C" {
PGDLLEXPORT Datum keel_guard_table_rewrite(PG_FUNCTION_ARGS);
}

namespace keel {

/* CallNoArgs calls a zero-argument SQL-callable C function that must not return NULL. */
static Datum CallNoArgs(PGFunction fn) {
    LOCAL_FCINFO(fcinfo, 0);
    InitFunctionCallInfoData(*fcinfo, nullptr, 0, InvalidOid, nullptr, nullptr);
    return fn(fcinfo);
}

/* HoldsRows reports whether relid (a leaf table) has at least one row visible now. */
static bool LeafHoldsRows(Oid relid) {
    Relation rel = table_open(relid, AccessShareLock);
    if (rel->rd_rel->relkind != RELKIND_RELATION && rel->rd_rel->relkind != RELKIND_MATVIEW) {
        table_close(rel, AccessShareLock);
        return false;
    }
    Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
    TableScanDesc scan = table_beginscan(rel, snapshot, 0, nullptr);
    TupleTableSlot *slot = table_slot_create(rel, nullptr);
    bool found = table_scan_getnextslot(scan, ForwardScanDirection, slot);
    ExecDropSingleTupleTableSlot(slot);
    table_endscan(scan);
    UnregisterSnapshot(snapshot);
    table_close(rel, AccessShareLock);
    return found;
}

static bool HoldsRows(Oid relid) {
    List *all = find_all_inheritors(relid, NoLock, nullptr);
    ListCell *lc;
    foreach (lc, all)
        if (LeafHoldsRows(lfirst_oid(lc)))
            return true;
    return false;
}

/* RewriteReasons describes the AT_REWRITE_* bits of pg_event_trigger_table_rewrite_reason(). */
static char *RewriteReasons(int reason) {
    static const struct {
        int bit;
        const char *what;
    } kReasons[] = {
        {AT_REWRITE_ALTER_PERSISTENCE, "SET LOGGED / UNLOGGED"},
        {AT_REWRITE_DEFAULT_VAL, "a column added with a volatile default"},
        {AT_REWRITE_COLUMN_REWRITE, "a column type change that is not binary-coercible"},
        {AT_REWRITE_ACCESS_METHOD, "SET ACCESS METHOD"},
    };
    StringInfoData buf;
    initStringInfo(&buf);
    for (const auto &r : kReasons)
        if (reason & r.bit)
            appendStringInfo(&buf, "%s%s", buf.len ? ", " : "", r.what);
    if (buf.len == 0)
        appendStringInfo(&buf, "reason code %d", reason);
    return buf.data;
}

} // namespace keel

/*
 * keel.guard_table_rewrite() RETURNS event_trigger
 *   Fires at table_rewrite. Raises KL001 (rule table-rewrite; DETAIL: the
 *   table, its row count being non-zero, and the rewrite reason) unless the
 *   table is empty, temporary or created in this transaction, the rule is at
 *   level warn or off, or the break-glass is in force.
 *   Rule: issue 5 ("Rewrites of tables that hold rows"); PostgreSQL docs
 *   "ALTER TABLE" (Notes: which forms rewrite the table).
 */
extern "C" {
PG_FUNCTION_INFO_V1(keel_guard_table_rewrite);
}
Datum keel_guard_table_rewrite(PG_FUNCTION_ARGS) {
    using namespace keel;
    RequireEventTrigger(fcinfo, "keel.guard_table_rewrite()");
    if (RunningKeelScript() || RuleLevelNow(kRuleTableRewrite) == RuleLevel::Off)
        PG_RETURN_VOID();
    EventTriggerData *trigdata = (EventTriggerData *)fcinfo->context;
    Oid relid = DatumGetObjectId(CallNoArgs(pg_event_trigger_table_rewrite_oid));
    int reason = DatumGetInt32(CallNoArgs(pg_event_trigger_table_rewrite_reason));
    ObjectAddress addr;
    ObjectAddressSet(addr, RelationRelationId, relid);
    if (IsTempObject(&addr) || CreatedInThisTransaction(RelationRelationId, relid, 0) ||
        !HoldsRows(relid))
        PG_RETURN_VOID();
    char *what = psprintf("%s, which holds rows, by a rewrite for %s", DescribeObject(&addr),
                          RewriteReasons(reason));
    GuardVerdict(GetCommandTagName(trigdata->tag), AddFinding(NIL, kRuleTableRewrite, what), true);
    PG_RETURN_VOID();
}
