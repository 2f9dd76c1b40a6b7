/*
 * extension/trash/trash_table.cpp
 *   DROP TABLE into the recycle bin (library preloaded): the table is moved
 *   into keel_trash under the name t<id> (its indexes i<id>_<n>, its owned
 *   sequences s<id>_<n>, so names never collide there) by ALTER TABLE ...
 *   SET SCHEMA: O(1), no data copied, rows, indexes, constraints, triggers,
 *   owner and grants kept. Dependent views and foreign keys from other
 *   tables, which DROP ... CASCADE would take, are recorded with their
 *   definitions, then dropped. (pgtrashcan did the move from a utility
 *   hook; Oracle's recycle bin is the model: FLASHBACK TABLE ... TO BEFORE DROP.)
 */
extern "C" {
#include "postgres.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_inherits.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
}

#include "guard/guard_internal.hpp"
#include "trash/trash.hpp"
#include "trash/trash_common.hpp"

namespace keel {

/* Eligible: a plain, permanent, not partitioned, not inherited table the role owns and that existed
 * before. */
static Oid EligibleTable(List *names) {
    RangeVar *rv = makeRangeVarFromNameList(names);
    Oid relid = RangeVarGetRelid(rv, NoLock, true);
    if (!OidIsValid(relid) || get_rel_relkind(relid) != RELKIND_RELATION ||
        get_rel_persistence(relid) != RELPERSISTENCE_PERMANENT || relid < FirstNormalObjectId)
        return InvalidOid;
    if (get_rel_relispartition(relid) || has_subclass(relid) || has_superclass(relid))
        return InvalidOid;
    if (!pg_class_ownercheck(relid, GetUserId()))
        return InvalidOid; /* PostgreSQL refuses it with its own error */
    if (IsKeelObject(RelationRelationId, relid) ||
        CreatedInThisTransaction(RelationRelationId, relid, 0))
        return InvalidOid;
    return relid;
}

/* DependentsSql: the dependent views (deepest last) and foreign keys from other tables of relid. */
static const char *kDetailsSql =
    "WITH RECURSIVE v(oid, depth) AS ("
    "  SELECT DISTINCT r.ev_class, 1 FROM pg_catalog.pg_depend d"
    "    JOIN pg_catalog.pg_rewrite r ON r.oid OPERATOR(pg_catalog.=) d.objid"
    "   WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
    "     AND d.refobjid OPERATOR(pg_catalog.=) %u AND r.ev_class OPERATOR(pg_catalog.<>) %u"
    "  UNION"
    "  SELECT r.ev_class, v.depth OPERATOR(pg_catalog.+) 1 FROM v JOIN pg_catalog.pg_depend d"
    "    ON d.refobjid OPERATOR(pg_catalog.=) v.oid"
    "    AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_rewrite'::pg_catalog.regclass"
    "    JOIN pg_catalog.pg_rewrite r ON r.oid OPERATOR(pg_catalog.=) d.objid"
    "   WHERE r.ev_class OPERATOR(pg_catalog.<>) v.oid AND v.depth OPERATOR(pg_catalog.<) 20)"
    " SELECT pg_catalog.jsonb_build_object("
    "  'schema', n.nspname, 'name', c.relname,"
    "  'indexes', (SELECT coalesce(pg_catalog.jsonb_agg(i.relname ORDER BY i.relname), '[]')"
    "     FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i ON i.oid OPERATOR(pg_catalog.=) "
    "x.indexrelid"
    "    WHERE x.indrelid OPERATOR(pg_catalog.=) c.oid),"
    "  'sequences', (SELECT coalesce(pg_catalog.jsonb_agg(DISTINCT s.relname), '[]')"
    "     FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class s ON s.oid OPERATOR(pg_catalog.=) "
    "d.objid"
    "    WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass"
    "      AND d.refobjid OPERATOR(pg_catalog.=) c.oid AND s.relkind OPERATOR(pg_catalog.=) 'S'"
    "      AND d.deptype OPERATOR(pg_catalog.=) ANY ('{a,i}'::\"char\"[])),"
    "  'views', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
    "       'name', pg_catalog.format('%%I.%%I', vn.nspname, vc.relname),"
    "       'kind', vc.relkind, 'definition', pg_catalog.pg_get_viewdef(vc.oid),"
    "       'owner', vc.relowner::pg_catalog.regrole::pg_catalog.text,"
    "       'grants', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.format('GRANT %%s ON "
    "%%I.%%I TO %%s%%s',"
    "           a.privilege_type, vn.nspname, vc.relname,"
    "           CASE WHEN a.grantee OPERATOR(pg_catalog.=) 0 THEN 'PUBLIC'"
    "                ELSE a.grantee::pg_catalog.regrole::pg_catalog.text END,"
    "           CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)), '[]')"
    "         FROM pg_catalog.aclexplode(vc.relacl) a"
    "        WHERE a.grantee OPERATOR(pg_catalog.<>) vc.relowner))"
    "       ORDER BY w.depth, vc.oid), '[]')"
    "     FROM (SELECT oid, max(depth) AS depth FROM v GROUP BY oid) w"
    "     JOIN pg_catalog.pg_class vc ON vc.oid OPERATOR(pg_catalog.=) w.oid"
    "     JOIN pg_catalog.pg_namespace vn ON vn.oid OPERATOR(pg_catalog.=) vc.relnamespace),"
    "  'foreign_keys', (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.jsonb_build_object("
    "       'table', k.conrelid::pg_catalog.regclass::pg_catalog.text, 'name', k.conname,"
    "       'definition', pg_catalog.pg_get_constraintdef(k.oid)) ORDER BY k.conname), '[]')"
    "     FROM pg_catalog.pg_constraint k WHERE k.confrelid OPERATOR(pg_catalog.=) c.oid"
    "      AND k.conrelid OPERATOR(pg_catalog.<>) c.oid AND k.contype OPERATOR(pg_catalog.=) 'f'))"
    " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) "
    "c.relnamespace"
    " WHERE c.oid OPERATOR(pg_catalog.=) %u";

/* HasDependents: views on relid, or foreign keys into it from other tables. */
static bool HasDependents(Oid relid) {
    char *sql = psprintf(
        "SELECT EXISTS (SELECT FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite r"
        " ON r.oid OPERATOR(pg_catalog.=) d.objid WHERE d.classid OPERATOR(pg_catalog.=)"
        " 'pg_catalog.pg_rewrite'::pg_catalog.regclass AND d.refobjid OPERATOR(pg_catalog.=) %u"
        " AND r.ev_class OPERATOR(pg_catalog.<>) %u)"
        " OR EXISTS (SELECT FROM pg_catalog.pg_constraint k WHERE k.confrelid "
        "OPERATOR(pg_catalog.=) %u"
        " AND k.conrelid OPERATOR(pg_catalog.<>) %u AND k.contype OPERATOR(pg_catalog.=) 'f')",
        relid, relid, relid, relid);
    char *v = TrashScalar(sql, CurrentMemoryContext);
    return v && strcmp(v, "t") == 0;
}

/* TrashOne moves relid into keel_trash and records it; returns the entry id. */
static int64 TrashOne(const TrashSession &s, Oid relid) {
    char *qualified = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
                                                 get_rel_name(relid));
    int64 id = TrashNewEntry(
        s, "table",
        psprintf("%s.%s", get_namespace_name(get_rel_namespace(relid)), get_rel_name(relid)),
        psprintf(kDetailsSql, relid, relid, relid));
    /* sizes before the move (pg_class.reltuples: no scan, so the drop stays O(1)) */
    TrashExec(psprintf(
        "UPDATE keel.dropped_objects SET size_bytes = "
        "pg_catalog.pg_total_relation_size(%u), row_count = ("
        "(SELECT reltuples FROM pg_catalog.pg_class WHERE oid OPERATOR(pg_catalog.=) %u))::bigint, "
        "trash_name = 't" INT64_FORMAT "' WHERE id OPERATOR(pg_catalog.=) " INT64_FORMAT,
        relid, relid, id, id));
    /* what CASCADE takes: dependent views (deepest first) and foreign keys from other tables */
    TrashExec(psprintf(
        "DO $keel$ DECLARE r record; BEGIN"
        "  FOR r IN SELECT e->>'name' AS name, e->>'kind' AS kind FROM keel.dropped_objects o,"
        "    pg_catalog.jsonb_array_elements(o.details->'views') WITH ORDINALITY AS x(e, n)"
        "    WHERE o.id OPERATOR(pg_catalog.=) " INT64_FORMAT " ORDER BY n DESC LOOP"
        "    IF r.kind OPERATOR(pg_catalog.=) 'm' THEN"
        "      EXECUTE pg_catalog.format('DROP MATERIALIZED VIEW IF EXISTS %%s', r.name);"
        "    ELSE EXECUTE pg_catalog.format('DROP VIEW IF EXISTS %%s', r.name); END IF;"
        "  END LOOP;"
        "  FOR r IN SELECT e->>'table' AS tab, e->>'name' AS name FROM keel.dropped_objects o,"
        "    pg_catalog.jsonb_array_elements(o.details->'foreign_keys') e"
        "    WHERE o.id OPERATOR(pg_catalog.=) " INT64_FORMAT " LOOP"
        "    EXECUTE pg_catalog.format('ALTER TABLE %%s DROP CONSTRAINT %%I', r.tab, r.name);"
        "  END LOOP; END $keel$",
        id, id));
    /* rename indexes and owned sequences to names unique in keel_trash, then move */
    TrashExec(psprintf(
        "DO $keel$ DECLARE r record; n int := 0; BEGIN"
        "  FOR r IN SELECT i.relname FROM pg_catalog.pg_index x JOIN pg_catalog.pg_class i"
        "    ON i.oid OPERATOR(pg_catalog.=) x.indexrelid WHERE x.indrelid OPERATOR(pg_catalog.=) "
        "%u"
        "    ORDER BY i.relname LOOP"
        "    n := n OPERATOR(pg_catalog.+) 1;"
        "    EXECUTE pg_catalog.format('ALTER INDEX %%I.%%I RENAME TO %%I', %s, r.relname,"
        "      'i" INT64_FORMAT "_' OPERATOR(pg_catalog.||) n);"
        "  END LOOP;"
        "  n := 0;"
        "  FOR r IN SELECT DISTINCT s.relname FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class "
        "s"
        "    ON s.oid OPERATOR(pg_catalog.=) d.objid WHERE d.classid OPERATOR(pg_catalog.=)"
        "    'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid OPERATOR(pg_catalog.=) %u"
        "    AND s.relkind OPERATOR(pg_catalog.=) 'S' AND d.deptype OPERATOR(pg_catalog.=) ANY "
        "('{a,i}'::\"char\"[])"
        "    ORDER BY s.relname LOOP"
        "    n := n OPERATOR(pg_catalog.+) 1;"
        "    EXECUTE pg_catalog.format('ALTER SEQUENCE %%I.%%I RENAME TO %%I', %s, r.relname,"
        "      's" INT64_FORMAT "_' OPERATOR(pg_catalog.||) n);"
        "  END LOOP; END $keel$",
        relid, QuoteLiteral(get_namespace_name(get_rel_namespace(relid))), id, relid,
        QuoteLiteral(get_namespace_name(get_rel_namespace(relid))), id));
    TrashExec(psprintf("ALTER TABLE %s RENAME TO \"t" INT64_FORMAT "\"", qualified, id));
    TrashExec(psprintf("ALTER TABLE %s.\"t" INT64_FORMAT "\" SET SCHEMA keel_trash",
                       quote_identifier(get_namespace_name(get_rel_namespace(relid))), id));
    TrashExec(psprintf("COMMENT ON TABLE keel_trash.\"t" INT64_FORMAT "\" IS "
                       "'keel recycle bin entry " INT64_FORMAT " (keel.dropped_objects): %s'",
                       id, id, qualified));
    return id;
}

bool TrashDropTable(DropStmt *stmt, QueryCompletion *qc) {
    if (!trash_enabled || stmt->removeType != OBJECT_TABLE || !OidIsValid(KeelExtensionOid()))
        return false;
    List *relids = NIL, *findings = NIL;
    ListCell *lc;
    foreach (lc, stmt->objects) {
        Oid relid = EligibleTable((List *)lfirst(lc));
        if (!OidIsValid(relid))
            return false;
        relids = lappend_oid(relids, relid);
        ObjectAddress addr;
        ObjectAddressSet(addr, RelationRelationId, relid);
        findings = AddFinding(findings, kRuleDropTable, DescribeObject(&addr));
    }
    /* the guard decides first: refused (KL001), or audited as let through */
    GuardVerdict("DROP TABLE", findings, true);
    foreach (lc, relids)
        LockRelationOid(lfirst_oid(lc), AccessExclusiveLock);
    TrashSession s = TrashBegin();
    bool dependents = false;
    foreach (lc, relids)
        dependents = dependents || HasDependents(lfirst_oid(lc));
    if (dependents && stmt->behavior != DROP_CASCADE) {
        TrashEnd(s);
        return false; /* PostgreSQL's own "other objects depend on it" error */
    }
    StringInfoData ids;
    initStringInfo(&ids);
    foreach (lc, relids)
        appendStringInfo(&ids, "%s" INT64_FORMAT, ids.len ? ", " : "", TrashOne(s, lfirst_oid(lc)));
    TrashEnd(s);
    ereport(NOTICE,
            (errmsg("table kept in keel's recycle bin (keel.dropped_objects id %s)", ids.data),
             errhint("SELECT keel.restore_dropped(<id>) puts it back until it expires "
                     "(keel.trash_retention).")));
    if (qc)
        SetQueryCompletion(qc, CMDTAG_DROP_TABLE, 0);
    return true;
}

} // namespace keel
