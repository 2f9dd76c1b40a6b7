/*
 * extension/guard/ddl_command_start.cpp
 *   keel.guard_ddl_command_start(): the event trigger that reads the parse
 *   tree and refuses, before any work is done (no lock taken, nothing
 *   rewritten), what it can already see:
 *     - drops of data-holding objects (tables, columns, sequences) and what a
 *       CASCADE, an extension's membership or a partition tree takes with them;
 *     - DROP INDEX CONCURRENTLY (it runs outside a transaction block, so it
 *       can never be a replacement);
 *     - renames of tables, views and columns, ALTER TABLE ... SET SCHEMA, and
 *       ALTER TYPE ... RENAME VALUE;
 *     - tampering with keel itself (DROP EXTENSION keel, replacing, altering
 *       or moving its functions, its schema or its tables' triggers).
 *   Derived objects (views, functions, indexes, ...) are let through here and
 *   tracked by sql_drop for the pre-commit replacement check. Objects created
 *   in this transaction, temporary ones, missing ones (IF EXISTS), system
 *   ones and ones the role may not alter (PostgreSQL's own check comes first)
 *   are not findings. (PostgreSQL docs: "Event Trigger Firing Matrix".)
 */
extern "C" {
#include "postgres.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_class.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_func.h"
#include "parser/parse_type.h"
#include "tcop/cmdtag.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"
}

#include "guard/guard_internal.hpp"
#include "guard/spi_util.hpp"
#include "trash/trash.hpp"

extern "C" {
PGDLLEXPORT Datum keel_guard_ddl_command_start(PG_FUNCTION_ARGS);
}

namespace keel {

/* Exempt: objects that are not the guard's business (see the file comment). */
static bool Exempt(const ObjectAddress *addr) {
    return IsSystemObject(addr) || IsTempObject(addr) || !MayAlterObject(addr) ||
           CreatedInThisTransaction(addr->classId, addr->objectId, addr->objectSubId);
}

/* DataRule is the rule of a data-holding pg_class object (or its column), or -1. */
static int DataRule(Oid classid, Oid objid, int32 subid) {
    if (classid != RelationRelationId)
        return -1;
    char relkind = get_rel_relkind(objid);
    if (relkind == RELKIND_RELATION || relkind == RELKIND_PARTITIONED_TABLE)
        return subid != 0 ? kRuleDropColumn : kRuleDropTable;
    if (relkind == RELKIND_SEQUENCE)
        return kRuleDropSequence;
    if (relkind == RELKIND_COMPOSITE_TYPE && subid != 0)
        return kRuleDropColumn;
    return -1;
}

/*
 * AddDependents adds a finding for each data-holding object that dropping
 * addr takes with it: through normal dependencies under CASCADE, and always
 * through extension membership and partitioning (auto dependencies of
 * tables) and owned sequences.
 */
static List *AddDependents(List *findings, const ObjectAddress *addr, bool cascade) {
    MemoryContext outer = CurrentMemoryContext;
    int level = PinSearchPath();
    SPI_connect();
    Oid argtypes[4] = {OIDOID, OIDOID, INT4OID, BOOLOID};
    Datum values[4] = {ObjectIdGetDatum(addr->classId), ObjectIdGetDatum(addr->objectId),
                       Int32GetDatum(addr->objectSubId), BoolGetDatum(cascade)};
    int rc = SPI_execute_with_args(
        "WITH RECURSIVE dep(classid, objid, objsubid, normal) AS ("
        "  SELECT $1, $2, $3, true"
        "  UNION"
        "  SELECT CASE WHEN r.oid IS NULL THEN d.classid ELSE 'pg_class'::regclass END,"
        "         CASE WHEN r.oid IS NULL THEN d.objid ELSE r.ev_class END,"
        "         CASE WHEN r.oid IS NULL THEN d.objsubid ELSE 0 END,"
        "         dep.normal AND d.deptype OPERATOR(pg_catalog.=) 'n'"
        "  FROM dep JOIN pg_depend d ON d.refclassid OPERATOR(pg_catalog.=) dep.classid"
        "       AND d.refobjid OPERATOR(pg_catalog.=) dep.objid"
        "       AND (dep.objsubid OPERATOR(pg_catalog.=) 0"
        "            OR d.refobjsubid OPERATOR(pg_catalog.=) dep.objsubid)"
        "  LEFT JOIN pg_rewrite r ON d.classid OPERATOR(pg_catalog.=) 'pg_rewrite'::regclass"
        "       AND r.oid OPERATOR(pg_catalog.=) d.objid"
        "  WHERE (d.deptype OPERATOR(pg_catalog.=) 'n' AND $4)"
        "     OR d.deptype OPERATOR(pg_catalog.=) 'e'"
        "     OR (d.deptype OPERATOR(pg_catalog.=) 'a'"
        "         AND d.classid OPERATOR(pg_catalog.=) 'pg_class'::regclass"
        "         AND EXISTS (SELECT FROM pg_class c WHERE c.oid OPERATOR(pg_catalog.=) d.objid"
        "                     AND c.relkind OPERATOR(pg_catalog.=) ANY ('{r,p,S}'::\"char\"[]))))"
        " SELECT DISTINCT dep.classid, dep.objid, dep.objsubid,"
        "        i.type OPERATOR(pg_catalog.||) ' ' OPERATOR(pg_catalog.||) i.identity,"
        "        dep.normal"
        " FROM dep, LATERAL pg_identify_object(dep.classid, dep.objid, dep.objsubid) i"
        " WHERE (dep.classid, dep.objid, dep.objsubid) OPERATOR(pg_catalog.<>) ($1, $2, $3)"
        /* a column of a relation that goes as a whole is not listed apart */
        "   AND NOT (dep.objsubid OPERATOR(pg_catalog.<>) 0 AND EXISTS (SELECT FROM dep whole"
        "            WHERE whole.classid OPERATOR(pg_catalog.=) dep.classid"
        "              AND whole.objid OPERATOR(pg_catalog.=) dep.objid"
        "              AND whole.objsubid OPERATOR(pg_catalog.=) 0))"
        " ORDER BY 4",
        4, argtypes, values, nullptr, true, 0);
    if (rc != SPI_OK_SELECT)
        elog(ERROR, "keel: dependency query failed: %s", SPI_result_code_string(rc));
    for (uint64 i = 0; i < SPI_processed; i++) {
        HeapTuple tup = SPI_tuptable->vals[i];
        TupleDesc desc = SPI_tuptable->tupdesc;
        bool isnull;
        Oid classid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
        Oid objid = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
        int32 subid = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
        bool normal = DatumGetBool(SPI_getbinval(tup, desc, 5, &isnull));
        int rule = DataRule(classid, objid, subid);
        if (rule < 0 && !normal)
            continue; /* an extension's own functions and the like */
        if (rule < 0)
            rule = kCollateral; /* named in DETAIL; the replacement check judges it */
        ObjectAddress dep;
        ObjectAddressSubSet(dep, classid, objid, subid);
        if (IsTempObject(&dep) || CreatedInThisTransaction(classid, objid, subid))
            continue;
        char *what = SPI_getvalue(tup, desc, 4);
        MemoryContext spi = MemoryContextSwitchTo(outer);
        findings = AddFinding(findings, rule, what);
        MemoryContextSwitchTo(spi);
    }
    SPI_finish();
    UnpinSearchPath(level);
    return findings;
}

/* ResolveRelation returns the relation names denotes (no lock), InvalidOid when missing. */
static Oid ResolveRelation(RangeVar *rv) {
    return rv ? RangeVarGetRelid(rv, NoLock, true) : InvalidOid;
}

/* ResolveDropTarget sets addr to what one object of a DropStmt names; false when missing. */
static bool ResolveDropTarget(ObjectType type, Node *object, ObjectAddress *addr) {
    switch (type) {
    case OBJECT_TABLE:
    case OBJECT_SEQUENCE:
    case OBJECT_VIEW:
    case OBJECT_MATVIEW:
    case OBJECT_INDEX:
    case OBJECT_FOREIGN_TABLE: {
        Oid relid = ResolveRelation(makeRangeVarFromNameList((List *)object));
        ObjectAddressSet(*addr, RelationRelationId, relid);
        return OidIsValid(relid);
    }
    case OBJECT_TYPE:
    case OBJECT_DOMAIN: {
        Oid typid = LookupTypeNameOid(nullptr, (TypeName *)object, true);
        ObjectAddressSet(*addr, TypeRelationId, typid);
        return OidIsValid(typid);
    }
    case OBJECT_SCHEMA: {
        Oid nsp = get_namespace_oid(strVal(object), true);
        ObjectAddressSet(*addr, NamespaceRelationId, nsp);
        return OidIsValid(nsp);
    }
    case OBJECT_EXTENSION: {
        Oid ext = get_extension_oid(strVal(object), true);
        ObjectAddressSet(*addr, ExtensionRelationId, ext);
        return OidIsValid(ext);
    }
    case OBJECT_FUNCTION:
    case OBJECT_PROCEDURE:
    case OBJECT_ROUTINE:
    case OBJECT_AGGREGATE: {
        Oid fn = LookupFuncWithArgs(type, (ObjectWithArgs *)object, true);
        ObjectAddressSet(*addr, ProcedureRelationId, fn);
        return OidIsValid(fn);
    }
    default:
        return false;
    }
}

/* CollectDrop lists the findings of a DropStmt. */
static List *CollectDrop(DropStmt *stmt) {
    List *findings = NIL;
    ListCell *lc;
    foreach (lc, stmt->objects) {
        ObjectAddress addr;
        if (!ResolveDropTarget(stmt->removeType, (Node *)lfirst(lc), &addr))
            continue;
        if (IsSystemObject(&addr) || !MayAlterObject(&addr))
            continue; /* PostgreSQL's own permission check comes first */
        if (IsKeelObject(addr.classId, addr.objectId)) {
            findings = AddFinding(findings, kRuleGuardTamper, DescribeObject(&addr));
            continue;
        }
        if (Exempt(&addr))
            continue;
        int rule = DataRule(addr.classId, addr.objectId, 0);
        if (rule < 0 && stmt->removeType == OBJECT_INDEX && stmt->concurrent)
            rule = kRuleDropIndex;
        findings = AddFinding(findings, rule >= 0 ? rule : kCollateral, DescribeObject(&addr));
        /*
         * Without CASCADE only an extension's members and a table's partitions
         * and owned sequences go with it: a view or function alone needs no
         * dependency walk (the replacement check judges it at COMMIT).
         */
        bool cascade = stmt->behavior == DROP_CASCADE;
        if (cascade || addr.classId == ExtensionRelationId ||
            DataRule(addr.classId, addr.objectId, 0) >= 0)
            findings = AddDependents(findings, &addr, cascade);
    }
    return findings;
}

/* IsTriggerTamper: an ALTER TABLE subcommand that changes whether triggers fire. */
static bool IsTriggerTamper(AlterTableType t) {
    switch (t) {
    case AT_EnableTrig:
    case AT_EnableAlwaysTrig:
    case AT_EnableReplicaTrig:
    case AT_EnableTrigAll:
    case AT_EnableTrigUser:
    case AT_DisableTrig:
    case AT_DisableTrigAll:
    case AT_DisableTrigUser:
    case AT_EnableRule:
    case AT_EnableAlwaysRule:
    case AT_EnableReplicaRule:
    case AT_DisableRule:
    case AT_DropConstraint:
    case AT_DropColumn:
    case AT_AlterColumnType:
    case AT_SetRelOptions:
    case AT_ReplicaIdentity:
        return true;
    default:
        return false;
    }
}

/* CollectAlterTable lists the findings of ALTER TABLE / TYPE ... DROP COLUMN and tampering. */
static List *CollectAlterTable(AlterTableStmt *stmt, List **columns) {
    /* Most ALTER TABLEs add things: look no further for them (the benchmark's common case). */
    bool relevant = false;
    ListCell *lc;
    foreach (lc, stmt->cmds) {
        AlterTableType t = ((AlterTableCmd *)lfirst(lc))->subtype;
        relevant = relevant || t == AT_DropColumn || IsTriggerTamper(t);
    }
    if (!relevant)
        return NIL;
    Oid relid = ResolveRelation(stmt->relation);
    if (!OidIsValid(relid))
        return NIL;
    ObjectAddress rel;
    ObjectAddressSet(rel, RelationRelationId, relid);
    if (!MayAlterObject(&rel))
        return NIL; /* PostgreSQL's own permission check comes first */
    bool keel_table = get_rel_namespace(relid) == KeelNamespace() && OidIsValid(KeelNamespace());
    if (!keel_table && Exempt(&rel))
        return NIL;
    List *findings = NIL;
    foreach (lc, stmt->cmds) {
        AlterTableCmd *cmd = (AlterTableCmd *)lfirst(lc);
        if (keel_table && IsTriggerTamper(cmd->subtype)) {
            findings = AddFinding(findings, kRuleGuardTamper, DescribeObject(&rel));
            continue;
        }
        if (cmd->subtype != AT_DropColumn || cmd->name == nullptr)
            continue;
        AttrNumber attnum = get_attnum(relid, cmd->name);
        if (attnum <= 0) /* missing (IF EXISTS) or a system column: PostgreSQL decides */
            continue;
        if (CreatedInThisTransaction(RelationRelationId, relid, attnum))
            continue;
        ObjectAddress col;
        ObjectAddressSubSet(col, RelationRelationId, relid, attnum);
        findings = AddFinding(findings, kRuleDropColumn, DescribeObject(&col));
        *columns = lappend(*columns, list_make2(makeInteger((int)relid), makeString(cmd->name)));
        findings = AddDependents(findings, &col, cmd->behavior == DROP_CASCADE);
    }
    return findings;
}

/* RenameRule is the rule for renaming (or moving) a relation of relkind. */
static int RenameRule(char relkind) {
    switch (relkind) {
    case RELKIND_RELATION:
    case RELKIND_PARTITIONED_TABLE:
    case RELKIND_FOREIGN_TABLE:
        return kRuleRenameTable;
    case RELKIND_VIEW:
    case RELKIND_MATVIEW:
        return kRuleRenameView;
    default:
        return -1; /* indexes, sequences, composite types: clients do not name them */
    }
}

/* KeelNamed resolves what a RenameStmt / AlterOwnerStmt / AlterObjectSchemaStmt names, if keel's.
 */
static bool KeelNamed(ObjectType type, Node *object, RangeVar *relation, ObjectAddress *addr) {
    if (type == OBJECT_SCHEMA) {
        if (object == nullptr)
            return false;
        Oid nsp = get_namespace_oid(strVal(object), true);
        ObjectAddressSet(*addr, NamespaceRelationId, nsp);
        return OidIsValid(nsp) && nsp == KeelNamespace() && MayAlterObject(addr);
    }
    if (type == OBJECT_FUNCTION || type == OBJECT_PROCEDURE || type == OBJECT_ROUTINE) {
        Oid fn = LookupFuncWithArgs(type, (ObjectWithArgs *)object, true);
        ObjectAddressSet(*addr, ProcedureRelationId, fn);
        return OidIsValid(fn) && IsKeelObject(ProcedureRelationId, fn) && MayAlterObject(addr);
    }
    if (relation != nullptr) {
        Oid relid = ResolveRelation(relation);
        ObjectAddressSet(*addr, RelationRelationId, relid);
        return OidIsValid(relid) && IsKeelObject(RelationRelationId, relid) && MayAlterObject(addr);
    }
    return false;
}

/*
 * RelationNameFinding: renaming or moving relid breaks the clients that name
 * it (rename-table, rename-view), unless it is exempt or clients do not name
 * its kind.
 */
static List *RelationNameFinding(Oid relid) {
    ObjectAddress addr;
    ObjectAddressSet(addr, RelationRelationId, relid);
    int rule = RenameRule(get_rel_relkind(relid));
    if (rule < 0 || Exempt(&addr))
        return NIL;
    return AddFinding(NIL, rule, DescribeObject(&addr));
}

/* CollectRename lists the findings of a RenameStmt. */
static List *CollectRename(RenameStmt *stmt) {
    ObjectAddress addr;
    /* ALTER SCHEMA ... RENAME names the schema in subname, not in object */
    Node *object =
        stmt->renameType == OBJECT_SCHEMA ? (Node *)makeString(stmt->subname) : stmt->object;
    if (KeelNamed(stmt->renameType, object, stmt->relation, &addr))
        return AddFinding(NIL, kRuleGuardTamper, DescribeObject(&addr));
    if (stmt->relation == nullptr)
        return NIL;
    Oid relid = ResolveRelation(stmt->relation);
    if (!OidIsValid(relid))
        return NIL;
    if (stmt->renameType == OBJECT_TABLE || stmt->renameType == OBJECT_VIEW ||
        stmt->renameType == OBJECT_MATVIEW || stmt->renameType == OBJECT_FOREIGN_TABLE)
        return RelationNameFinding(relid);
    if (stmt->renameType != OBJECT_COLUMN && stmt->renameType != OBJECT_ATTRIBUTE)
        return NIL;
    char relkind = get_rel_relkind(relid);
    AttrNumber attnum = get_attnum(relid, stmt->subname);
    if (attnum <= 0 || (RenameRule(relkind) < 0 && relkind != RELKIND_COMPOSITE_TYPE))
        return NIL;
    ObjectAddressSubSet(addr, RelationRelationId, relid, attnum);
    if (Exempt(&addr))
        return NIL;
    return AddFinding(NIL, kRuleRenameColumn, DescribeObject(&addr));
}

/* CollectSetSchema: ALTER TABLE / VIEW ... SET SCHEMA moves it away from its clients. */
static List *CollectSetSchema(AlterObjectSchemaStmt *stmt) {
    ObjectAddress addr;
    if (KeelNamed(stmt->objectType, stmt->object, stmt->relation, &addr))
        return AddFinding(NIL, kRuleGuardTamper, DescribeObject(&addr));
    Oid relid = ResolveRelation(stmt->relation);
    return OidIsValid(relid) ? RelationNameFinding(relid) : NIL;
}

/* CollectEnumRename: ALTER TYPE ... RENAME VALUE breaks every client that sends the old label. */
static List *CollectEnumRename(AlterEnumStmt *stmt) {
    if (stmt->oldVal == nullptr)
        return NIL; /* ADD VALUE is additive */
    TypeName *tn = makeTypeNameFromNameList(stmt->typeName);
    Oid typid = LookupTypeNameOid(nullptr, tn, true);
    if (!OidIsValid(typid))
        return NIL;
    ObjectAddress addr;
    ObjectAddressSet(addr, TypeRelationId, typid);
    if (Exempt(&addr))
        return NIL;
    return AddFinding(NIL, kRuleRenameEnumValue,
                      psprintf("%s (value %s)", DescribeObject(&addr), stmt->oldVal));
}

/* CollectKeelFunction: CREATE OR REPLACE / ALTER of one of keel's functions. */
static List *CollectKeelFunction(Node *tree) {
    ObjectAddress addr;
    if (IsA(tree, CreateFunctionStmt)) {
        CreateFunctionStmt *stmt = (CreateFunctionStmt *)tree;
        if (!stmt->replace)
            return NIL;
        char *name;
        Oid nsp = QualifiedNameGetCreationNamespace(stmt->funcname, &name);
        /* keel's schema is always named keel (keel.control: not relocatable); the name
         * test is a syscache lookup, so only a function there pays for the catalog scans */
        const char *nspname = get_namespace_name(nsp);
        if (nspname == nullptr || strcmp(nspname, "keel") != 0 || nsp != KeelNamespace())
            return NIL;
        return AddFinding(NIL, kRuleGuardTamper,
                          psprintf("function %s.%s", get_namespace_name(nsp), name));
    }
    AlterFunctionStmt *stmt = (AlterFunctionStmt *)tree;
    if (KeelNamed(stmt->objtype, (Node *)stmt->func, nullptr, &addr))
        return AddFinding(NIL, kRuleGuardTamper, DescribeObject(&addr));
    return NIL;
}

/* CollectAlterExtension: ALTER EXTENSION keel ADD/DROP takes objects out of keel's protection. */
static List *CollectAlterExtension(AlterExtensionContentsStmt *stmt) {
    Oid ext = get_extension_oid(stmt->extname, true);
    if (!OidIsValid(ext) || ext != KeelExtensionOid())
        return NIL;
    ObjectAddress addr;
    ObjectAddressSet(addr, ExtensionRelationId, ext);
    return AddFinding(NIL, kRuleGuardTamper, DescribeObject(&addr));
}

} // namespace keel

/*
 * keel.guard_ddl_command_start() RETURNS event_trigger
 *   Fires at ddl_command_start for the tags listed in CREATE EVENT TRIGGER
 *   keel_guard_ddl_command_start (keel--0.2.0.sql). Raises KL001 (message:
 *   the command and its rules; DETAIL: each object it would destroy or
 *   break, including what CASCADE takes with it) unless every finding's rule
 *   is at level warn or off or the break-glass is in force; returns
 *   otherwise. Rule: seed 000 (no DROP TABLE / DROP TYPE ... CASCADE / DROP
 *   COLUMN in production migrations), issue 5, DESIGN.md (guard).
 */
extern "C" {
PG_FUNCTION_INFO_V1(keel_guard_ddl_command_start);
}
Datum keel_guard_ddl_command_start(PG_FUNCTION_ARGS) {
    using namespace keel;
    RequireEventTrigger(fcinfo, "keel.guard_ddl_command_start()");
    if (RunningKeelScript())
        PG_RETURN_VOID();

    EventTriggerData *trigdata = (EventTriggerData *)fcinfo->context;
    Node *tree = trigdata->parsetree;
    List *findings = NIL;
    List *dropped_columns = NIL; /* (relid, name) pairs of DROP COLUMN, for the recycle bin */
    switch (nodeTag(tree)) {
    case T_DropStmt: {
        DropStmt *stmt = (DropStmt *)tree;
        findings = CollectDrop(stmt);
        if (stmt->removeType == OBJECT_EXTENSION && findings != NIL && BreakGlassActive()) {
            /* DROP EXTENSION keel takes keel.guard_audit with it: the log keeps the trace. */
            AuditRecord rec = MakeAuditRecord("overridden", GetCommandTagName(trigdata->tag),
                                              RuleName(kRuleGuardTamper), NIL, BreakGlassReason());
            LogAuditRecord(&rec, "extension keel and its audit table are being dropped");
        }
        break;
    }
    case T_AlterTableStmt:
        findings = CollectAlterTable((AlterTableStmt *)tree, &dropped_columns);
        break;
    case T_RenameStmt:
        findings = CollectRename((RenameStmt *)tree);
        break;
    case T_AlterObjectSchemaStmt:
        findings = CollectSetSchema((AlterObjectSchemaStmt *)tree);
        break;
    case T_AlterEnumStmt:
        findings = CollectEnumRename((AlterEnumStmt *)tree);
        break;
    case T_CreateFunctionStmt:
    case T_AlterFunctionStmt:
        findings = CollectKeelFunction(tree);
        break;
    case T_AlterExtensionContentsStmt:
        findings = CollectAlterExtension((AlterExtensionContentsStmt *)tree);
        break;
    case T_AlterOwnerStmt: {
        AlterOwnerStmt *stmt = (AlterOwnerStmt *)tree;
        ObjectAddress addr;
        if (KeelNamed(stmt->objectType, stmt->object, stmt->relation, &addr))
            findings = AddFinding(NIL, kRuleGuardTamper, DescribeObject(&addr));
        break;
    }
    default:
        break;
    }
    /*
     * Drops of data-holding objects are audited at sql_drop, with exactly what
     * was dropped; what sql_drop never sees (renames, tampering, DROP INDEX
     * CONCURRENTLY) is audited here.
     */
    bool audit = false;
    ListCell *lc;
    foreach (lc, findings) {
        int rule = ((Finding *)lfirst(lc))->rule;
        if (rule != kCollateral && rule != kRuleDropTable && rule != kRuleDropColumn &&
            rule != kRuleDropSequence)
            audit = true;
    }
    GuardVerdict(GetCommandTagName(trigdata->tag), findings, audit);
    /* The guard let it through: keep each dropped column's values first (issue 8). */
    foreach (lc, dropped_columns) {
        List *pair = (List *)lfirst(lc);
        TrashColumn((Oid)intVal(linitial(pair)), strVal(lsecond(pair)));
    }
    PG_RETURN_VOID();
}
