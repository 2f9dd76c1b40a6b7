/*
 * extension/credits/consume_direct.cpp
 *   The hot path of keel.consume_credits (0.2.0): the guarded update of the
 *   balance row and its ledger row through the table access method and
 *   the executor's single-row helpers (execReplication.c: what logical
 *   replication applies rows with), with no SPI, no plan and no executor
 *   start per call. A consumption through SPI spent a third of its time
 *   planning-cache checks, executor start-up and CHECK expressions built
 *   again for each call (perf, bench/credits; issue 13, "0.8x the floor").
 *
 *   Semantics are those of the SQL it replaces,
 *     UPDATE keel.credit_balances SET used = used + $amount
 *      WHERE account = $a AND credit_type = $t
 *        AND allocated - used - held >= $amount
 *   in READ COMMITTED: the row is found with a dirty snapshot, a
 *   transaction holding it is waited for, and the newest version is locked
 *   (FOR NO KEY UPDATE, what UPDATE takes) before the condition is checked,
 *   so no interleaving can overdraw. The row's CHECK, its indexes and its
 *   triggers run as for any UPDATE (ExecSimpleRelationUpdate); the ledger
 *   row goes in with ExecSimpleRelationInsert, its CHECK, indexes and
 *   identity (nextval of its sequence) included.
 *
 *   ConsumeDirect returns kNotHere whenever the fast path does not apply,
 *   and the caller runs the SQL instead: another isolation level (SSI
 *   needs the executor's predicate locks, REPEATABLE READ its
 *   serialization errors), a BEFORE UPDATE trigger on the balances, or a
 *   table whose shape is not the one this file knows (columns added).
 *   Plain C style: nothing with a destructor lives across ereport().
 */
extern "C" {
#include "postgres.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_relation.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

#include "credits/consume_direct.hpp"

#include <cstring>

namespace {

/* What the fast path knows of keel's tables, looked up once per backend and
 * forgotten on any relcache invalidation of them (ALTER, DROP EXTENSION). */
struct Shape {
    bool valid;
    Oid balances, balances_pkey, ledger, ledger_seq;
    AttrNumber b_account, b_type, b_allocated, b_used, b_held, b_granted;
    int b_natts;
    AttrNumber l_id, l_account, l_type, l_kind, l_amount, l_allocated_after, l_used_after,
        l_held_after, l_description, l_key, l_actor, l_recorded_at;
    int l_natts;
};

Shape shape;
bool callback_registered = false;

void ForgetShape(Datum, Oid relid) {
    if (relid == InvalidOid || relid == shape.balances || relid == shape.ledger ||
        relid == shape.balances_pkey)
        shape.valid = false;
}

AttrNumber Att(Relation rel, const char *name) {
    int n = attnameAttNum(rel, name, false);
    return n > 0 ? (AttrNumber)n : InvalidAttrNumber;
}

/* LoadShape fills shape; false when a table is missing or not as expected. */
bool LoadShape(void) {
    if (shape.valid)
        return true;
    if (!callback_registered) {
        CacheRegisterRelcacheCallback(ForgetShape, (Datum)0);
        callback_registered = true;
    }
    Oid nsp = get_namespace_oid("keel", true);
    if (!OidIsValid(nsp))
        return false;
    Shape s;
    memset(&s, 0, sizeof s);
    s.balances = get_relname_relid("credit_balances", nsp);
    s.balances_pkey = get_relname_relid("credit_balances_pkey", nsp);
    s.ledger = get_relname_relid("credit_ledger", nsp);
    if (!OidIsValid(s.balances) || !OidIsValid(s.balances_pkey) || !OidIsValid(s.ledger))
        return false;
    Relation b = table_open(s.balances, AccessShareLock);
    s.b_account = Att(b, "account");
    s.b_type = Att(b, "credit_type");
    s.b_allocated = Att(b, "allocated");
    s.b_used = Att(b, "used");
    s.b_held = Att(b, "held");
    s.b_granted = Att(b, "granted");
    s.b_natts = RelationGetNumberOfAttributes(b);
    table_close(b, NoLock);
    Relation l = table_open(s.ledger, AccessShareLock);
    s.l_id = Att(l, "id");
    s.l_account = Att(l, "account");
    s.l_type = Att(l, "credit_type");
    s.l_kind = Att(l, "kind");
    s.l_amount = Att(l, "amount");
    s.l_allocated_after = Att(l, "allocated_after");
    s.l_used_after = Att(l, "used_after");
    s.l_held_after = Att(l, "held_after");
    s.l_description = Att(l, "description");
    s.l_key = Att(l, "idempotency_key");
    s.l_actor = Att(l, "actor");
    s.l_recorded_at = Att(l, "recorded_at");
    s.l_natts = RelationGetNumberOfAttributes(l);
    table_close(l, NoLock);
    /* the 0.2.0 shapes this file writes: 7 balance columns, 17 ledger columns; any other
     * column would miss its default here, so anything else goes through SQL */
    if (s.b_natts != 7 || s.l_natts != 17 || !s.b_held || !s.b_granted || !s.l_id ||
        !s.l_held_after || !s.l_recorded_at || !s.l_actor)
        return false;
    s.ledger_seq = getIdentitySequence(s.ledger, s.l_id, true);
    if (!OidIsValid(s.ledger_seq))
        return false;
    s.valid = true;
    shape = s;
    return true;
}

/* FindAndLock finds the balance row (account, type) and locks its newest
 * version FOR NO KEY UPDATE, waiting for a transaction that holds it, as
 * an UPDATE in READ COMMITTED does. false: no such row. */
bool FindAndLock(Relation rel, Relation idx, Datum account, Datum type, TupleTableSlot *slot) {
    ScanKeyData keys[2];
    ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_UUID_EQ, account);
    ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_TEXTEQ, type);
    keys[1].sk_collation = C_COLLATION_OID; /* the column is COLLATE "C" */
    SnapshotData dirty;
    InitDirtySnapshot(dirty);
    IndexScanDesc scan = index_beginscan(rel, idx, &dirty, 2, 0);
    bool found;
    for (;;) {
        CHECK_FOR_INTERRUPTS();
        index_rescan(scan, keys, 2, NULL, 0);
        found = index_getnext_slot(scan, ForwardScanDirection, slot);
        if (!found)
            break;
        TransactionId xwait = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;
        if (TransactionIdIsValid(xwait)) {
            XactLockTableWait(xwait, rel, &slot->tts_tid, XLTW_Update);
            continue;
        }
        TM_FailureData tmfd;
        Snapshot latest = GetLatestSnapshot();
        PushActiveSnapshot(latest);
        TM_Result res =
            table_tuple_lock(rel, &slot->tts_tid, latest, slot, GetCurrentCommandId(false),
                             LockTupleNoKeyExclusive, LockWaitBlock, 0, &tmfd);
        PopActiveSnapshot();
        if (res == TM_Ok)
            break;
        if (res == TM_Updated || res == TM_Deleted)
            continue; /* changed between the scan and the lock: find its newest version */
        elog(ERROR, "keel: unexpected result %d locking a row of keel.credit_balances", (int)res);
    }
    index_endscan(scan);
    return found;
}

} // namespace

namespace keel {

ConsumeOutcome ConsumeDirect(Datum account, Datum credit_type, int64 amount, Datum description,
                             Datum key, bool key_null, Datum actor, ConsumeResult *out) {
    if (XactIsoLevel != XACT_READ_COMMITTED || !LoadShape())
        return kNotHere;

    Relation brel = table_open(shape.balances, RowExclusiveLock);
    if (brel->trigdesc && brel->trigdesc->trig_update_before_row) {
        table_close(brel, NoLock);
        return kNotHere;
    }
    Relation lrel = table_open(shape.ledger, RowExclusiveLock);
    Relation bidx = index_open(shape.balances_pkey, RowExclusiveLock);

    EState *estate = CreateExecutorState();
    RangeTblEntry *rtes[2];
    Relation rels[2] = {brel, lrel};
    for (int i = 0; i < 2; i++) {
        rtes[i] = makeNode(RangeTblEntry);
        rtes[i]->rtekind = RTE_RELATION;
        rtes[i]->relid = RelationGetRelid(rels[i]);
        rtes[i]->relkind = rels[i]->rd_rel->relkind;
        rtes[i]->rellockmode = RowExclusiveLock;
    }
    ExecInitRangeTable(estate, list_make2(rtes[0], rtes[1]));
    estate->es_output_cid = GetCurrentCommandId(true);
    estate->es_snapshot = GetActiveSnapshot();
    ResultRelInfo *binfo = makeNode(ResultRelInfo);
    ResultRelInfo *linfo = makeNode(ResultRelInfo);
    InitResultRelInfo(binfo, brel, 1, NULL, 0);
    InitResultRelInfo(linfo, lrel, 2, NULL, 0);
    ExecOpenIndices(binfo, false);
    ExecOpenIndices(linfo, false);

    TupleTableSlot *old_slot = table_slot_create(brel, &estate->es_tupleTable);
    TupleTableSlot *new_slot = table_slot_create(brel, &estate->es_tupleTable);
    ConsumeOutcome outcome = kInsufficient;
    if (FindAndLock(brel, bidx, account, credit_type, old_slot)) {
        slot_getallattrs(old_slot);
        int64 allocated = DatumGetInt64(old_slot->tts_values[shape.b_allocated - 1]);
        int64 used = DatumGetInt64(old_slot->tts_values[shape.b_used - 1]);
        int64 held = DatumGetInt64(old_slot->tts_values[shape.b_held - 1]);
        int64 granted = DatumGetInt64(old_slot->tts_values[shape.b_granted - 1]);
        /* allocated - used - held >= amount, without overflow: used + held <= allocated */
        if (allocated - used - held >= amount) {
            ExecClearTuple(new_slot);
            memcpy(new_slot->tts_values, old_slot->tts_values, sizeof(Datum) * shape.b_natts);
            memcpy(new_slot->tts_isnull, old_slot->tts_isnull, sizeof(bool) * shape.b_natts);
            new_slot->tts_values[shape.b_used - 1] = Int64GetDatum(used + amount);
            ExecStoreVirtualTuple(new_slot);

            AfterTriggerBeginQuery();
            ExecSimpleRelationUpdate(binfo, estate, NULL, old_slot, new_slot);

            TupleTableSlot *lslot = table_slot_create(lrel, &estate->es_tupleTable);
            ExecClearTuple(lslot);
            for (int i = 0; i < shape.l_natts; i++)
                lslot->tts_isnull[i] = true;
            int64 id = nextval_internal(shape.ledger_seq, false);
#define SET(att, value)                                                                            \
    do {                                                                                           \
        lslot->tts_values[(att)-1] = (value);                                                      \
        lslot->tts_isnull[(att)-1] = false;                                                        \
    } while (0)
            SET(shape.l_id, Int64GetDatum(id));
            SET(shape.l_account, account);
            SET(shape.l_type, credit_type);
            SET(shape.l_kind, CStringGetTextDatum("consumption"));
            SET(shape.l_amount, Int64GetDatum(amount));
            SET(shape.l_allocated_after, Int64GetDatum(allocated));
            SET(shape.l_used_after, Int64GetDatum(used + amount));
            SET(shape.l_held_after, Int64GetDatum(held));
            SET(shape.l_description, description);
            if (!key_null)
                SET(shape.l_key, key);
            SET(shape.l_actor, actor);
            SET(shape.l_recorded_at, TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()));
#undef SET
            ExecStoreVirtualTuple(lslot);
            ExecSimpleRelationInsert(linfo, estate, lslot);
            AfterTriggerEndQuery(estate);
            /* later commands of this transaction (the grant burn, a second call) see it */
            CommandCounterIncrement();

            out->ledger_id = id;
            out->allocated = allocated;
            out->used = used + amount;
            out->held = held;
            out->granted = granted;
            outcome = kDone;
        }
    }
    ExecCloseIndices(binfo);
    ExecCloseIndices(linfo);
    ExecResetTupleTable(estate->es_tupleTable, false);
    FreeExecutorState(estate);
    index_close(bidx, NoLock);
    table_close(lrel, NoLock);
    table_close(brel, NoLock);
    return outcome;
}

} // namespace keel
