/*
 * extension/guard/objects.cpp
 *   What the guard asks about a catalog object: its description, whether the
 *   current role may drop or alter it (PostgreSQL's own permission check comes
 *   first), whether it is temporary or a system object, whether it was created
 *   in the current transaction, and whether it is keel's own.
 */
extern "C" {
#include "postgres.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/objectaddress.h"
#include "catalog/pg_attribute.h"
#include "catalog/pg_class.h"
#include "catalog/pg_constraint.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
}

#include "guard/guard_internal.hpp"

namespace keel {

char *DescribeObject(const ObjectAddress *addr) {
    char *type = getObjectTypeDescription(addr, true);
    char *identity = getObjectIdentity(addr, true);
    return psprintf("%s %s", type ? type : "object", identity ? identity : "?");
}

/* RelationOfObject returns the relation a trigger or constraint belongs to, or InvalidOid. */
static Oid RelationOfObject(const ObjectAddress *addr) {
    if (addr->classId == RelationRelationId)
        return addr->objectId;
    if (addr->classId == TriggerRelationId) {
        Relation rel = table_open(TriggerRelationId, AccessShareLock);
        HeapTuple tup = get_catalog_object_by_oid(rel, Anum_pg_trigger_oid, addr->objectId);
        Oid relid = HeapTupleIsValid(tup) ? ((Form_pg_trigger)GETSTRUCT(tup))->tgrelid : InvalidOid;
        table_close(rel, AccessShareLock);
        return relid;
    }
    if (addr->classId == ConstraintRelationId) {
        HeapTuple tup = SearchSysCache1(CONSTROID, ObjectIdGetDatum(addr->objectId));
        if (!HeapTupleIsValid(tup))
            return InvalidOid;
        Oid relid = ((Form_pg_constraint)GETSTRUCT(tup))->conrelid;
        ReleaseSysCache(tup);
        return relid;
    }
    return InvalidOid;
}

bool MayAlterObject(const ObjectAddress *addr) {
    if (superuser())
        return true;
    Oid user = GetUserId();
    switch (addr->classId) {
    case RelationRelationId:
        return pg_class_ownercheck(addr->objectId, user);
    case ProcedureRelationId:
        return pg_proc_ownercheck(addr->objectId, user);
    case TypeRelationId:
        return pg_type_ownercheck(addr->objectId, user);
    case NamespaceRelationId:
        return pg_namespace_ownercheck(addr->objectId, user);
    case ExtensionRelationId:
        return pg_extension_ownercheck(addr->objectId, user);
    case TriggerRelationId:
    case ConstraintRelationId: {
        Oid relid = RelationOfObject(addr);
        return OidIsValid(relid) ? pg_class_ownercheck(relid, user) : true;
    }
    default:
        return true;
    }
}

bool IsSystemObject(const ObjectAddress *addr) {
    return addr->objectId < FirstNormalObjectId;
}

bool IsTempObject(const ObjectAddress *addr) {
    switch (addr->classId) {
    case RelationRelationId:
        return get_rel_persistence(addr->objectId) == RELPERSISTENCE_TEMP;
    case TypeRelationId: {
        HeapTuple tup = SearchSysCache1(TYPEOID, ObjectIdGetDatum(addr->objectId));
        if (!HeapTupleIsValid(tup))
            return false;
        Oid nsp = ((Form_pg_type)GETSTRUCT(tup))->typnamespace;
        ReleaseSysCache(tup);
        return isAnyTempNamespace(nsp);
    }
    case ProcedureRelationId: {
        Oid nsp = get_func_namespace(addr->objectId);
        return OidIsValid(nsp) && isAnyTempNamespace(nsp);
    }
    case NamespaceRelationId:
        return isAnyTempNamespace(addr->objectId);
    case TriggerRelationId:
    case ConstraintRelationId: {
        Oid relid = RelationOfObject(addr);
        return OidIsValid(relid) && get_rel_persistence(relid) == RELPERSISTENCE_TEMP;
    }
    default:
        return false;
    }
}

/*
 * VersionsAllOurs scans every version of the catalog rows matching key
 * (SnapshotAny: live, updated and deleted ones) and reports whether at least
 * one exists and every one that did not abort was inserted by the current
 * transaction. A row that existed before the transaction keeps a version with
 * an older xmin until the transaction ends (its xmax is ours, so nothing can
 * prune it), so this is exact: an object updated here but created before is
 * not "ours", and an object created and dropped here still is.
 */
static bool VersionsAllOurs(Oid catalog, Oid index, int nkeys, ScanKeyData *keys) {
    Relation rel = table_open(catalog, AccessShareLock);
    SysScanDesc scan = systable_beginscan(rel, index, true, SnapshotAny, nkeys, keys);
    bool ours = false, older = false;
    HeapTuple tup;
    while (!older && HeapTupleIsValid(tup = systable_getnext(scan))) {
        TransactionId xmin = HeapTupleHeaderGetXmin(tup->t_data);
        if (TransactionIdIsCurrentTransactionId(xmin))
            ours = true;
        else if (TransactionIdIsNormal(xmin) && TransactionIdDidAbort(xmin))
            continue;
        else
            older = true;
    }
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return ours && !older;
}

bool CreatedInThisTransaction(Oid classid, Oid objid, int32 subid) {
    if (!TransactionIdIsValid(GetTopTransactionIdIfAny()))
        return false; /* nothing was written yet: nothing was created here */
    ScanKeyData keys[2];
    if (classid == RelationRelationId && subid != 0) {
        ScanKeyInit(&keys[0], Anum_pg_attribute_attrelid, BTEqualStrategyNumber, F_OIDEQ,
                    ObjectIdGetDatum(objid));
        ScanKeyInit(&keys[1], Anum_pg_attribute_attnum, BTEqualStrategyNumber, F_INT2EQ,
                    Int16GetDatum((int16)subid));
        return VersionsAllOurs(AttributeRelationId, AttributeRelidNumIndexId, 2, keys);
    }
    Oid index = get_object_oid_index(classid);
    AttrNumber oidcol = get_object_attnum_oid(classid);
    if (!OidIsValid(index) || oidcol == InvalidAttrNumber)
        return false;
    ScanKeyInit(&keys[0], oidcol, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(objid));
    return VersionsAllOurs(classid, index, 1, keys);
}

Oid KeelExtensionOid() {
    return get_extension_oid("keel", true);
}

Oid KeelNamespace() {
    Oid ext = KeelExtensionOid();
    if (!OidIsValid(ext))
        return InvalidOid;
    ScanKeyData key;
    ScanKeyInit(&key, Anum_pg_extension_oid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(ext));
    Relation rel = table_open(ExtensionRelationId, AccessShareLock);
    SysScanDesc scan = systable_beginscan(rel, ExtensionOidIndexId, true, nullptr, 1, &key);
    HeapTuple tup = systable_getnext(scan);
    Oid nsp =
        HeapTupleIsValid(tup) ? ((Form_pg_extension)GETSTRUCT(tup))->extnamespace : InvalidOid;
    systable_endscan(scan);
    table_close(rel, AccessShareLock);
    return nsp;
}

bool IsKeelObject(Oid classid, Oid objid) {
    Oid ext = KeelExtensionOid();
    if (!OidIsValid(ext))
        return false;
    if (classid == ExtensionRelationId)
        return objid == ext;
    return getExtensionOfObject(classid, objid) == ext;
}

} // namespace keel
