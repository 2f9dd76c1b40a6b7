/*
 * extension/guard/ddl_command_start.cpp
 *   keel.guard_ddl_command_start(): the event trigger that reads the parse
 *   tree of DROP TABLE / MATERIALIZED VIEW / SEQUENCE / TYPE / DOMAIN /
 *   SCHEMA and ALTER TABLE / ALTER TYPE ... DROP COLUMN|ATTRIBUTE, and
 *   refuses them before any work is done (no lock taken, nothing rewritten).
 *   Objects that do not exist (IF EXISTS) and temporary objects are allowed.
 *   (PostgreSQL docs: "Event Trigger Firing Matrix", event-trigger.sgml.)
 */
extern "C" {
#include "postgres.h"
#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/parsenodes.h"
#include "parser/parse_type.h"
#include "tcop/cmdtag.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
}

#include "guard/guard_internal.hpp"
#include "guard/spi_util.hpp"

extern "C" {
PGDLLEXPORT Datum keel_guard_ddl_command_start(PG_FUNCTION_ARGS);
}

namespace keel {

/* Describe returns "<object type> <identity>", the form pg_identify_object() uses. */
static char *Describe(const ObjectAddress *addr) {
    char *type = getObjectTypeDescription(addr, true);
    char *identity = getObjectIdentity(addr, true);
    return psprintf("%s %s", type ? type : "object", identity ? identity : "?");
}

/*
 * AppendCascadeDependents appends what DROP ... CASCADE of addr would take
 * with it: objects that depend on it (recursively) through normal
 * dependencies, with a view's rewrite rule shown as the view.
 */
static List *AppendCascadeDependents(List *objects, const ObjectAddress *addr) {
    MemoryContext outer = CurrentMemoryContext;
    int level = PinSearchPath();
    SPI_connect();
    Oid argtypes[3] = {OIDOID, OIDOID, INT4OID};
    Datum values[3] = {ObjectIdGetDatum(addr->classId), ObjectIdGetDatum(addr->objectId),
                       Int32GetDatum(addr->objectSubId)};
    int rc = SPI_execute_with_args(
        "WITH RECURSIVE dep(classid, objid, objsubid) AS ("
        "  SELECT $1, $2, $3"
        "  UNION"
        "  SELECT CASE WHEN r.oid IS NULL THEN d.classid ELSE 'pg_class'::regclass END,"
        "         CASE WHEN r.oid IS NULL THEN d.objid ELSE r.ev_class END,"
        "         CASE WHEN r.oid IS NULL THEN d.objsubid ELSE 0 END"
        "  FROM dep JOIN pg_depend d ON d.refclassid = dep.classid AND d.refobjid = dep.objid"
        "       AND (dep.objsubid = 0 OR d.refobjsubid = dep.objsubid)"
        "  LEFT JOIN pg_rewrite r ON d.classid = 'pg_rewrite'::regclass AND r.oid = d.objid"
        "  WHERE d.deptype = 'n')"
        " SELECT DISTINCT i.type || ' ' || i.identity AS object"
        " FROM dep, LATERAL pg_identify_object(dep.classid, dep.objid, dep.objsubid) i"
        " WHERE (dep.classid, dep.objid, dep.objsubid) <> ($1, $2, $3)"
        /* a column of a relation that goes as a whole is not listed apart */
        "   AND NOT (dep.objsubid <> 0 AND EXISTS (SELECT FROM dep whole"
        "            WHERE whole.classid = dep.classid AND whole.objid = dep.objid"
        "              AND whole.objsubid = 0))"
        " ORDER BY 1",
        3, argtypes, values, nullptr, true, 0);
    if (rc != SPI_OK_SELECT)
        elog(ERROR, "keel: dependency query failed: %s", SPI_result_code_string(rc));
    objects = AppendSpiColumn(objects, outer);
    SPI_finish();
    UnpinSearchPath(level);
    return objects;
}

/* AddTarget appends addr (and, under CASCADE, its dependents) to objects. */
static List *AddTarget(List *objects, const ObjectAddress *addr, DropBehavior behavior) {
    objects = lappend(objects, Describe(addr));
    if (behavior == DROP_CASCADE)
        objects = AppendCascadeDependents(objects, addr);
    return objects;
}

/* RelationTarget resolves a relation name for removeType; InvalidOid when allowed. */
static Oid RelationTarget(List *names, ObjectType removeType) {
    RangeVar *rv = makeRangeVarFromNameList(names);
    Oid relid = RangeVarGetRelid(rv, NoLock, true);
    if (!OidIsValid(relid) || get_rel_persistence(relid) == RELPERSISTENCE_TEMP)
        return InvalidOid;
    char relkind = get_rel_relkind(relid);
    bool matches = (removeType == OBJECT_TABLE &&
                    (relkind == RELKIND_RELATION || relkind == RELKIND_PARTITIONED_TABLE)) ||
                   (removeType == OBJECT_MATVIEW && relkind == RELKIND_MATVIEW) ||
                   (removeType == OBJECT_SEQUENCE && relkind == RELKIND_SEQUENCE);
    /* On a mismatch PostgreSQL raises its own "is not a table" error. */
    return matches ? relid : InvalidOid;
}

/* TypeTarget resolves a type name; InvalidOid when missing or temporary. */
static Oid TypeTarget(TypeName *name) {
    Oid typid = LookupTypeNameOid(nullptr, name, true);
    if (!OidIsValid(typid))
        return InvalidOid;
    HeapTuple tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(typid));
    if (!HeapTupleIsValid(tup))
        return InvalidOid;
    Oid nsp = ((Form_pg_type)GETSTRUCT(tup))->typnamespace;
    ReleaseSysCache(tup);
    return isAnyTempNamespace(nsp) ? InvalidOid : typid;
}

/* CollectDrop lists what a DropStmt of a guarded kind would destroy. */
static List *CollectDrop(DropStmt *stmt) {
    List *objects = NIL;
    ListCell *lc;
    foreach (lc, stmt->objects) {
        ObjectAddress addr;
        switch (stmt->removeType) {
        case OBJECT_TABLE:
        case OBJECT_MATVIEW:
        case OBJECT_SEQUENCE: {
            Oid relid = RelationTarget((List *)lfirst(lc), stmt->removeType);
            if (!OidIsValid(relid))
                continue;
            ObjectAddressSet(addr, RelationRelationId, relid);
            break;
        }
        case OBJECT_TYPE:
        case OBJECT_DOMAIN: {
            Oid typid = TypeTarget((TypeName *)lfirst(lc));
            if (!OidIsValid(typid))
                continue;
            ObjectAddressSet(addr, TypeRelationId, typid);
            break;
        }
        case OBJECT_SCHEMA: {
            Oid nsp = get_namespace_oid(strVal(lfirst(lc)), true);
            if (!OidIsValid(nsp) || isAnyTempNamespace(nsp))
                continue;
            ObjectAddressSet(addr, NamespaceRelationId, nsp);
            break;
        }
        default:
            return NIL;
        }
        objects = AddTarget(objects, &addr, stmt->behavior);
    }
    return objects;
}

/* CollectAlterTable lists the columns (attributes) an ALTER TABLE/TYPE would drop. */
static List *CollectAlterTable(AlterTableStmt *stmt) {
    if (stmt->objtype != OBJECT_TABLE && stmt->objtype != OBJECT_TYPE)
        return NIL;
    Oid relid = RangeVarGetRelid(stmt->relation, NoLock, true);
    if (!OidIsValid(relid) || get_rel_persistence(relid) == RELPERSISTENCE_TEMP)
        return NIL;
    List *objects = NIL;
    ListCell *lc;
    foreach (lc, stmt->cmds) {
        AlterTableCmd *cmd = (AlterTableCmd *)lfirst(lc);
        if (cmd->subtype != AT_DropColumn || cmd->name == nullptr)
            continue;
        AttrNumber attnum = get_attnum(relid, cmd->name);
        if (attnum <= 0) /* missing (IF EXISTS) or a system column: PostgreSQL decides */
            continue;
        ObjectAddress addr;
        ObjectAddressSubSet(addr, RelationRelationId, relid, attnum);
        objects = AddTarget(objects, &addr, cmd->behavior);
    }
    return objects;
}

} // namespace keel

/*
 * keel.guard_ddl_command_start() RETURNS event_trigger
 *   Fires at ddl_command_start for the tags listed in CREATE EVENT TRIGGER
 *   keel_guard_ddl_command_start. Raises KL001 (DETAIL: each object the
 *   command would destroy, including what CASCADE takes with it) when
 *   keel.guard = enforce and no break-glass is in force; otherwise returns.
 *   Rule: seed 000 (no DROP TABLE / DROP TYPE ... CASCADE / DROP COLUMN in
 *   production migrations), DESIGN.md (guard).
 */
extern "C" {
PG_FUNCTION_INFO_V1(keel_guard_ddl_command_start);
}
Datum keel_guard_ddl_command_start(PG_FUNCTION_ARGS) {
    using namespace keel;
    RequireEventTrigger(fcinfo, "keel.guard_ddl_command_start()");
    if (guard_mode != GUARD_ENFORCE || BreakGlassActive() || RunningKeelScript())
        PG_RETURN_VOID();

    EventTriggerData *trigdata = (EventTriggerData *)fcinfo->context;
    Node *tree = trigdata->parsetree;
    List *objects = NIL;
    if (IsA(tree, DropStmt))
        objects = CollectDrop((DropStmt *)tree);
    else if (IsA(tree, AlterTableStmt))
        objects = CollectAlterTable((AlterTableStmt *)tree);
    GuardVerdict(GetCommandTagName(trigdata->tag), objects, true);
    PG_RETURN_VOID();
}
