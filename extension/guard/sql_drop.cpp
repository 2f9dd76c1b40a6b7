/*
 * extension/guard/sql_drop.cpp
 *   keel.guard_sql_drop(): the backstop. After any command drops objects it
 *   reads pg_event_trigger_dropped_objects() and refuses the command when a
 *   non-temporary table, column, materialized view, sequence, schema, type or
 *   domain was dropped by it directly or through CASCADE: DROP OWNED, DROP
 *   EXTENSION ... CASCADE, DROP VIEW ... CASCADE over a materialized view, and
 *   whatever ddl_command_start could not see. Objects dropped as internal
 *   parts of another (an index of a table, a view's rule) are not counted, so
 *   REINDEX CONCURRENTLY and DROP INDEX stay allowed.
 */
extern "C" {
#include "postgres.h"
#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "tcop/cmdtag.h"
}

#include "guard/guard_internal.hpp"
#include "guard/spi_util.hpp"

extern "C" {
PGDLLEXPORT Datum keel_guard_sql_drop(PG_FUNCTION_ARGS);
}

/*
 * keel.guard_sql_drop() RETURNS event_trigger
 *   Fires at sql_drop. Raises KL001 (DETAIL: each object destroyed) when
 *   keel.guard = enforce and no break-glass is in force; with keel.guard =
 *   warn raises a WARNING and audits 'warned'; under the break-glass audits
 *   'overridden' with exactly what was dropped.
 *   Rule: DESIGN.md (sql_drop as backstop); PostgreSQL docs
 *   "Event Trigger Functions" (pg_event_trigger_dropped_objects).
 */
extern "C" {
PG_FUNCTION_INFO_V1(keel_guard_sql_drop);
}
Datum keel_guard_sql_drop(PG_FUNCTION_ARGS) {
    using namespace keel;
    RequireEventTrigger(fcinfo, "keel.guard_sql_drop()");
    if (guard_mode == GUARD_OFF || RunningKeelScript())
        PG_RETURN_VOID();

    EventTriggerData *trigdata = (EventTriggerData *)fcinfo->context;
    MemoryContext outer = CurrentMemoryContext;
    List *objects = NIL;
    int level = PinSearchPath();
    SPI_connect();
    int rc = SPI_execute(
        "SELECT object_type || ' ' || object_identity"
        " FROM pg_event_trigger_dropped_objects()"
        " WHERE NOT is_temporary AND (original OR normal)"
        "   AND object_type IN ('table', 'table column', 'materialized view', 'sequence',"
        "                       'schema', 'type', 'domain', 'composite type',"
        "                       'composite type column')",
        true, 0);
    if (rc != SPI_OK_SELECT)
        elog(ERROR, "keel: reading dropped objects failed: %s", SPI_result_code_string(rc));
    objects = AppendSpiColumn(objects, outer);
    SPI_finish();
    UnpinSearchPath(level);

    GuardVerdict(GetCommandTagName(trigdata->tag), objects, false);
    PG_RETURN_VOID();
}
