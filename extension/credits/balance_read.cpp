/*
 * extension/credits/balance_read.cpp
 *   keel.get_available_credits(account uuid, credit_type text) -> bigint,
 *   0.2.0 (symbol keel_get_available_credits_v2): allocated - used - held
 *   of one balance row, plus the unused allowance of its escrow slots when
 *   it lent to them (keel.credit_escrow), read straight from the primary-key index of
 *   keel.credit_balances with the caller's snapshot. No SPI, no executor,
 *   no SECURITY DEFINER: the function reads keel's own tables through the
 *   table and index access methods, which check no table privilege, so
 *   EXECUTE on it (revoked from PUBLIC) is the one gate. 0 for an account
 *   with nothing allocated. Errors: 22004 NULL argument; 22023 unknown credit
 *   type (HINT lists the known ones, read from keel.credit_types the same
 *   way: RequireKnownCreditType, which every credit function uses).
 *
 *   Rule: issue 13 ("get_available_credits >= 1.5x the seed"); the seed's
 *   plpgsql function runs one SELECT through SPI, and so did keel 0.1.0.
 *   Plain C style.
 */
extern "C" {
#include "postgres.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/relation.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "nodes/pg_list.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
}

#include "credits/credit_types.hpp"

namespace {

Oid KeelRelation(const char *name) {
    Oid nsp = get_namespace_oid("keel", false);
    Oid relid = get_relname_relid(name, nsp);
    if (!OidIsValid(relid))
        ereport(ERROR,
                (errcode(ERRCODE_UNDEFINED_TABLE), errmsg("relation keel.%s does not exist", name),
                 errhint("Install keel 0.2.0: ALTER EXTENSION keel UPDATE.")));
    return relid;
}

AttrNumber Column(Relation rel, const char *name) {
    TupleDesc desc = RelationGetDescr(rel);
    for (int i = 0; i < desc->natts; i++) {
        Form_pg_attribute att = TupleDescAttr(desc, i);
        if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
            return att->attnum;
    }
    elog(ERROR, "column %s of keel.%s does not exist", name, RelationGetRelationName(rel));
    return InvalidAttrNumber;
}

/* The balances' relation, index and columns, looked up once per backend and
 * forgotten on a relcache invalidation of either (ALTER, DROP EXTENSION):
 * get_available_credits is called far more often than keel changes. */
struct BalanceRead {
    bool valid;
    Oid rel, pkey, escrow, escrow_pkey;
    AttrNumber allocated, used, held, lent, e_allowance, e_used;
};
BalanceRead cached;
bool read_callback = false;

void ForgetBalanceRead(Datum, Oid relid) {
    if (relid == InvalidOid || relid == cached.rel || relid == cached.pkey ||
        relid == cached.escrow || relid == cached.escrow_pkey)
        cached.valid = false;
}

const BalanceRead &Balances() {
    if (cached.valid)
        return cached;
    if (!read_callback) {
        CacheRegisterRelcacheCallback(ForgetBalanceRead, (Datum)0);
        read_callback = true;
    }
    BalanceRead b;
    b.rel = KeelRelation("credit_balances");
    b.pkey = KeelRelation("credit_balances_pkey");
    Relation rel = table_open(b.rel, AccessShareLock);
    b.allocated = Column(rel, "allocated");
    b.used = Column(rel, "used");
    b.held = Column(rel, "held");
    b.lent = Column(rel, "lent");
    table_close(rel, AccessShareLock);
    b.escrow = KeelRelation("credit_escrow");
    b.escrow_pkey = KeelRelation("credit_escrow_pkey");
    Relation erel = table_open(b.escrow, AccessShareLock);
    b.e_allowance = Column(erel, "allowance");
    b.e_used = Column(erel, "used");
    table_close(erel, AccessShareLock);
    b.valid = true;
    cached = b;
    return cached;
}

} // namespace

/* keel::EscrowUnused: credit_types.hpp. */
int64 keel::EscrowUnused(Relation escrow, Relation escrow_pkey, AttrNumber allowance,
                         AttrNumber used, Datum account, Datum credit_type, Snapshot snap) {
    ScanKeyData keys[2];
    ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_UUID_EQ, account);
    ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_TEXTEQ, credit_type);
    keys[1].sk_collation = C_COLLATION_OID; /* the column is COLLATE "C" */
    IndexScanDesc scan = index_beginscan(escrow, escrow_pkey, snap, 2, 0);
    index_rescan(scan, keys, 2, NULL, 0);
    TupleTableSlot *slot = table_slot_create(escrow, NULL);
    int64 unused = 0;
    while (index_getnext_slot(scan, ForwardScanDirection, slot)) {
        bool n1, n2;
        unused += DatumGetInt64(slot_getattr(slot, allowance, &n1)) -
                  DatumGetInt64(slot_getattr(slot, used, &n2));
    }
    ExecDropSingleTupleTableSlot(slot);
    index_endscan(scan);
    return unused;
}

/* keel::EscrowUnusedNow: credit_types.hpp. */
int64 keel::EscrowUnusedNow(Datum account, Datum credit_type) {
    const BalanceRead &b = Balances();
    Relation rel = table_open(b.escrow, AccessShareLock);
    Relation idx = index_open(b.escrow_pkey, AccessShareLock);
    Snapshot snap = RegisterSnapshot(GetLatestSnapshot());
    int64 unused = EscrowUnused(rel, idx, b.e_allowance, b.e_used, account, credit_type, snap);
    UnregisterSnapshot(snap);
    index_close(idx, NoLock);
    table_close(rel, NoLock);
    return unused;
}

void keel::RequireKnownCreditType(Datum credit_type) {
    Relation rel = table_open(KeelRelation("credit_types"), AccessShareLock);
    AttrNumber col = Column(rel, "credit_type");
    TableScanDesc scan = table_beginscan(rel, GetActiveSnapshot(), 0, NULL);
    TupleTableSlot *slot = table_slot_create(rel, NULL);
    char *wanted = TextDatumGetCString(credit_type);
    List *names = NIL;
    bool found = false;
    while (table_scan_getnextslot(scan, ForwardScanDirection, slot)) {
        bool isnull;
        Datum d = slot_getattr(slot, col, &isnull);
        if (isnull)
            continue;
        char *name = TextDatumGetCString(d);
        found |= strcmp(name, wanted) == 0;
        names = lappend(names, name);
    }
    ExecDropSingleTupleTableSlot(slot);
    table_endscan(scan);
    table_close(rel, NoLock);
    if (found)
        return;
    list_sort(names, [](const ListCell *a, const ListCell *b) {
        return strcmp((const char *)lfirst(a), (const char *)lfirst(b));
    });
    StringInfoData list;
    initStringInfo(&list);
    ListCell *cell;
    foreach (cell, names)
        appendStringInfo(&list, "%s%s", list.len ? ", " : "", (const char *)lfirst(cell));
    ereport(ERROR,
            (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("unknown credit type \"%s\"", wanted),
             names ? errhint("Known credit types are: %s.", list.data)
                   : errhint("keel.credit_types is empty; add the credit types first.")));
}

extern "C" {

PG_FUNCTION_INFO_V1(keel_get_available_credits_v2);
PGDLLEXPORT Datum keel_get_available_credits_v2(PG_FUNCTION_ARGS);
Datum keel_get_available_credits_v2(PG_FUNCTION_ARGS) {
    for (int arg = 0; arg < 2; arg++)
        if (PG_ARGISNULL(arg)) {
            const char *name = arg == 0 ? "account" : "credit_type";
            ereport(ERROR,
                    (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not be null", name),
                     errhint("Pass a value for the argument %s.", name)));
        }
    Datum account = PG_GETARG_DATUM(0);
    Datum credit_type = PG_GETARG_DATUM(1);

    const BalanceRead &b = Balances();
    Relation rel = table_open(b.rel, AccessShareLock);
    Relation idx = index_open(b.pkey, AccessShareLock);
    ScanKeyData keys[2];
    ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_UUID_EQ, account);
    ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_TEXTEQ, credit_type);
    keys[1].sk_collation = C_COLLATION_OID; /* the column is COLLATE "C" */
    IndexScanDesc scan = index_beginscan(rel, idx, GetActiveSnapshot(), 2, 0);
    index_rescan(scan, keys, 2, NULL, 0);
    TupleTableSlot *slot = table_slot_create(rel, NULL);
    bool found = index_getnext_slot(scan, ForwardScanDirection, slot);
    int64 available = 0;
    if (found) {
        bool n1, n2, n3;
        int64 allocated = DatumGetInt64(slot_getattr(slot, b.allocated, &n1));
        int64 used = DatumGetInt64(slot_getattr(slot, b.used, &n2));
        int64 held = DatumGetInt64(slot_getattr(slot, b.held, &n3));
        available = allocated - used - held;
        /* used counts what the balance lent to escrow slots: add what they did not use,
         * read with the same snapshot */
        if (DatumGetInt64(slot_getattr(slot, b.lent, &n3)) > 0) {
            Relation erel = table_open(b.escrow, AccessShareLock);
            Relation eidx = index_open(b.escrow_pkey, AccessShareLock);
            available += keel::EscrowUnused(erel, eidx, b.e_allowance, b.e_used, account,
                                            credit_type, GetActiveSnapshot());
            index_close(eidx, NoLock);
            table_close(erel, NoLock);
        }
    }
    ExecDropSingleTupleTableSlot(slot);
    index_endscan(scan);
    index_close(idx, NoLock);
    table_close(rel, NoLock);
    if (!found)
        keel::RequireKnownCreditType(credit_type);
    PG_RETURN_INT64(available);
}

} // extern "C"
