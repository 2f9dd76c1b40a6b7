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
 *   in READ COMMITTED: the row is found with a fresh snapshot and its
 *   newest version is locked (FOR NO KEY UPDATE, what UPDATE takes,
 *   following the update chain and waiting for a holder) before the
 *   condition is checked, so no interleaving can overdraw. The row's CHECK, its indexes and its
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
#include "storage/backendid.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
}

#include "credits/consume_direct.hpp"
#include "credits/credit_types.hpp"

#include <cstring>

namespace {

/* What the fast path knows of keel's tables, looked up once per backend and
 * forgotten on any relcache invalidation of them (ALTER, DROP EXTENSION). */
struct Shape {
    bool valid;
    Oid balances, balances_pkey, ledger, ledger_seq, escrow, escrow_pkey;
    AttrNumber b_account, b_type, b_allocated, b_used, b_held, b_granted, b_lent;
    int b_natts;
    AttrNumber l_id, l_account, l_type, l_kind, l_amount, l_allocated_after, l_used_after,
        l_held_after, l_description, l_key, l_actor, l_recorded_at, l_escrow_slot;
    int l_natts;
    AttrNumber e_allowance, e_used;
    int e_natts;
    /* the CHECK constraints of each table as node trees, in the relcache's order:
     * ExecRelCheck would read them back from text (stringToNode) for every call */
    Node **b_checks, **l_checks, **e_checks;
    int b_nchecks, l_nchecks, e_nchecks;
};

Shape shape;
bool callback_registered = false;
MemoryContext shape_cxt = NULL; /* the check trees; reset when the shape is loaded again */

void ForgetShape(Datum, Oid relid) {
    if (relid == InvalidOid || relid == shape.balances || relid == shape.ledger ||
        relid == shape.balances_pkey || relid == shape.escrow || relid == shape.escrow_pkey)
        shape.valid = false;
}

AttrNumber Att(Relation rel, const char *name) {
    int n = attnameAttNum(rel, name, false);
    return n > 0 ? (AttrNumber)n : InvalidAttrNumber;
}

/* ReadChecks reads rel's CHECK constraints into shape_cxt (n: how many). */
Node **ReadChecks(Relation rel, int *n) {
    TupleConstr *constr = RelationGetDescr(rel)->constr;
    *n = constr != NULL ? constr->num_check : 0;
    if (*n == 0)
        return NULL;
    MemoryContext old = MemoryContextSwitchTo(shape_cxt);
    Node **trees = (Node **)palloc(sizeof(Node *) * *n);
    for (int i = 0; i < *n; i++)
        trees[i] = (Node *)stringToNode(constr->check[i].ccbin);
    MemoryContextSwitchTo(old);
    return trees;
}

/*
 * PrepareChecks gives ri its CHECK expressions from trees, as ExecRelCheck
 * would build them (ExecPrepareExpr, in the query context), so that it does
 * not parse them again; left to ExecRelCheck when the relcache entry holds a
 * different number of them.
 */
void PrepareChecks(ResultRelInfo *ri, EState *estate, Node **trees, int n) {
    TupleConstr *constr = RelationGetDescr(ri->ri_RelationDesc)->constr;
    if (n == 0 || constr == NULL || constr->num_check != n)
        return;
    MemoryContext old = MemoryContextSwitchTo(estate->es_query_cxt);
    ExprState **exprs = (ExprState **)palloc(sizeof(ExprState *) * n);
    for (int i = 0; i < n; i++)
        exprs[i] = ExecPrepareExpr((Expr *)trees[i], estate);
    ri->ri_ConstraintExprs = exprs;
    MemoryContextSwitchTo(old);
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
    if (shape_cxt == NULL)
        shape_cxt =
            AllocSetContextCreate(CacheMemoryContext, "keel credits shape", ALLOCSET_SMALL_SIZES);
    MemoryContextReset(shape_cxt);
    Shape s;
    memset(&s, 0, sizeof s);
    s.balances = get_relname_relid("credit_balances", nsp);
    s.balances_pkey = get_relname_relid("credit_balances_pkey", nsp);
    s.ledger = get_relname_relid("credit_ledger", nsp);
    s.escrow = get_relname_relid("credit_escrow", nsp);
    s.escrow_pkey = get_relname_relid("credit_escrow_pkey", nsp);
    if (!OidIsValid(s.balances) || !OidIsValid(s.balances_pkey) || !OidIsValid(s.ledger) ||
        !OidIsValid(s.escrow) || !OidIsValid(s.escrow_pkey))
        return false;
    Relation b = table_open(s.balances, AccessShareLock);
    s.b_account = Att(b, "account");
    s.b_type = Att(b, "credit_type");
    s.b_allocated = Att(b, "allocated");
    s.b_used = Att(b, "used");
    s.b_held = Att(b, "held");
    s.b_granted = Att(b, "granted");
    s.b_lent = Att(b, "lent");
    s.b_natts = RelationGetNumberOfAttributes(b);
    s.b_checks = ReadChecks(b, &s.b_nchecks);
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
    s.l_escrow_slot = Att(l, "escrow_slot");
    s.l_natts = RelationGetNumberOfAttributes(l);
    s.l_checks = ReadChecks(l, &s.l_nchecks);
    table_close(l, NoLock);
    Relation e = table_open(s.escrow, AccessShareLock);
    s.e_allowance = Att(e, "allowance");
    s.e_used = Att(e, "used");
    s.e_natts = RelationGetNumberOfAttributes(e);
    s.e_checks = ReadChecks(e, &s.e_nchecks);
    bool e_triggers = e->trigdesc != NULL;
    table_close(e, NoLock);
    /* the 0.2.0 shapes this file writes: 8 balance columns, 18 ledger columns, 5
     * escrow columns (account, credit_type, slot first, its key); any other column
     * would miss its default here, so anything else goes through SQL. The escrow
     * rows are updated without triggers, so a trigger on them does too. */
    if (s.b_natts != 8 || s.l_natts != 18 || s.e_natts != 5 || !s.b_held || !s.b_granted ||
        !s.b_lent || !s.l_id || !s.l_held_after || !s.l_recorded_at || !s.l_actor ||
        !s.l_escrow_slot || s.e_allowance != 4 || s.e_used != 5 || e_triggers)
        return false;
    s.ledger_seq = getIdentitySequence(s.ledger, s.l_id, true);
    if (!OidIsValid(s.ledger_seq))
        return false;
    s.valid = true;
    shape = s;
    return true;
}

/* AccountTypeKeys sets keys[0] and keys[1] to account = account AND
 * credit_type = type: the leading columns of the primary keys of both
 * keel.credit_balances and keel.credit_escrow (credit_type is COLLATE "C"). */
void AccountTypeKeys(ScanKeyData *keys, Datum account, Datum type) {
    ScanKeyInit(&keys[0], 1, BTEqualStrategyNumber, F_UUID_EQ, account);
    ScanKeyInit(&keys[1], 2, BTEqualStrategyNumber, F_TEXTEQ, type);
    keys[1].sk_collation = C_COLLATION_OID;
}

/* FindAndLock finds the balance row (account, type) and locks its newest
 * version FOR NO KEY UPDATE, as an UPDATE in READ COMMITTED does: the row
 * is found with a fresh MVCC snapshot, then locked following its update
 * chain to the newest version (TUPLE_LOCK_FLAG_FIND_LAST_VERSION, what
 * EvalPlanQual relies on), waiting for a transaction that holds it. A
 * dirty-snapshot index scan (RelationFindReplTupleByIndex) is not enough
 * under concurrent updates: it can miss the new index entry of a non-HOT
 * update and see no row at all. false: no such row (or it was deleted).
 * contended (may be NULL): set when another transaction held the row, and
 * this call then waited for it. */
bool FindAndLock(Relation rel, Relation idx, Datum account, Datum type, TupleTableSlot *slot,
                 bool *contended) {
    LockWaitPolicy policy = contended != NULL ? LockWaitSkip : LockWaitBlock;
    ScanKeyData keys[2];
    AccountTypeKeys(keys, account, type);
    for (;;) {
        CHECK_FOR_INTERRUPTS();
        Snapshot snap = RegisterSnapshot(GetLatestSnapshot());
        IndexScanDesc scan = index_beginscan(rel, idx, snap, 2, 0);
        index_rescan(scan, keys, 2, NULL, 0);
        bool found = index_getnext_slot(scan, ForwardScanDirection, slot);
        index_endscan(scan);
        if (!found) {
            UnregisterSnapshot(snap);
            return false;
        }
        TM_FailureData tmfd;
        TM_Result res = table_tuple_lock(rel, &slot->tts_tid, snap, slot,
                                         GetCurrentCommandId(false), LockTupleNoKeyExclusive,
                                         policy, TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
        UnregisterSnapshot(snap);
        switch (res) {
        case TM_Ok:
            return true;
        case TM_WouldBlock:
            /* another transaction holds the row: say so, then wait for it */
            *contended = true;
            policy = LockWaitBlock;
            continue;
        case TM_Deleted:
            return false; /* deleted since: an UPDATE would touch no row either */
        case TM_Updated:
            continue; /* moved on in a way the chain does not follow: look again */
        default:
            elog(ERROR, "keel: unexpected result %d locking a row of keel.credit_balances",
                 (int)res);
        }
    }
}

} // namespace

namespace keel {

struct DirectWrite {
    Relation brel, lrel, bidx;
    Relation erel, eidx; /* keel.credit_escrow, opened when a slot is used */
    EState *estate;
    ResultRelInfo *binfo, *linfo, *einfo;
    TupleTableSlot *new_slot, *ledger_slot;
    Datum consumption;       /* the kind, as text */
    TupleTableSlot **locked; /* the locked balance rows, by handle */
    int nlocked, maxlocked;
    /* for a write that locks more than one row (a batch): a copy of the
     * balances' descriptor that is not reference-counted, so that its
     * slots do not each pin the relcache's descriptor in the resource owner
     * (which remembers equal pointers in one probe chain: quadratic in the
     * rows locked) */
    TupleDesc locked_desc;
};

DirectWrite *DirectBegin(int max_rows) {
    if (XactIsoLevel != XACT_READ_COMMITTED || !LoadShape())
        return NULL;
    Relation brel = table_open(shape.balances, RowExclusiveLock);
    if (brel->trigdesc && brel->trigdesc->trig_update_before_row) {
        table_close(brel, NoLock);
        return NULL;
    }
    DirectWrite *w = (DirectWrite *)palloc0(sizeof(DirectWrite));
    w->brel = brel;
    w->lrel = table_open(shape.ledger, RowExclusiveLock);
    w->bidx = index_open(shape.balances_pkey, RowExclusiveLock);
    w->estate = CreateExecutorState();
    RangeTblEntry *rtes[3];
    Oid relids[3] = {shape.balances, shape.ledger, shape.escrow};
    for (int i = 0; i < 3; i++) {
        rtes[i] = makeNode(RangeTblEntry);
        rtes[i]->rtekind = RTE_RELATION;
        rtes[i]->relid = relids[i];
        rtes[i]->relkind = RELKIND_RELATION;
        rtes[i]->rellockmode = RowExclusiveLock;
    }
    ExecInitRangeTable(w->estate, list_make3(rtes[0], rtes[1], rtes[2]));
    w->estate->es_output_cid = GetCurrentCommandId(true);
    w->estate->es_snapshot = GetActiveSnapshot();
    w->binfo = makeNode(ResultRelInfo);
    w->linfo = makeNode(ResultRelInfo);
    InitResultRelInfo(w->binfo, w->brel, 1, NULL, 0);
    InitResultRelInfo(w->linfo, w->lrel, 2, NULL, 0);
    PrepareChecks(w->binfo, w->estate, shape.b_checks, shape.b_nchecks);
    PrepareChecks(w->linfo, w->estate, shape.l_checks, shape.l_nchecks);
    ExecOpenIndices(w->binfo, false);
    ExecOpenIndices(w->linfo, false);
    w->new_slot = table_slot_create(w->brel, &w->estate->es_tupleTable);
    w->ledger_slot = table_slot_create(w->lrel, &w->estate->es_tupleTable);
    w->consumption = CStringGetTextDatum("consumption");
    w->maxlocked = max_rows > 0 ? max_rows : 1;
    w->locked = (TupleTableSlot **)palloc0(sizeof(TupleTableSlot *) * w->maxlocked);
    if (w->maxlocked > 1)
        w->locked_desc = CreateTupleDescCopy(RelationGetDescr(w->brel));
    AfterTriggerBeginQuery();
    return w;
}

/* OpenEscrow opens keel.credit_escrow for w (once). */
static void OpenEscrow(DirectWrite *w) {
    if (w->erel != NULL)
        return;
    w->erel = table_open(shape.escrow, RowExclusiveLock);
    w->eidx = index_open(shape.escrow_pkey, RowExclusiveLock);
    w->einfo = makeNode(ResultRelInfo);
    InitResultRelInfo(w->einfo, w->erel, 3, NULL, 0);
    PrepareChecks(w->einfo, w->estate, shape.e_checks, shape.e_nchecks);
    ExecOpenIndices(w->einfo, false);
}

static bool LockBalance(DirectWrite *w, Datum account, Datum credit_type, DirectBalance *out,
                        bool *contended) {
    if (w->nlocked >= w->maxlocked)
        elog(ERROR, "keel: more balance rows locked than announced (%d)", w->maxlocked);
    TupleTableSlot *slot = w->locked_desc != NULL
                               ? ExecAllocTableSlot(&w->estate->es_tupleTable, w->locked_desc,
                                                    table_slot_callbacks(w->brel))
                               : table_slot_create(w->brel, &w->estate->es_tupleTable);
    if (!FindAndLock(w->brel, w->bidx, account, credit_type, slot, contended))
        return false;
    /* a batch keeps its locked rows to the end: copy each out of its buffer,
     * so that it does not keep a pin on the page (the update needs the
     * row's TID only, which the copy keeps) */
    if (w->locked_desc != NULL)
        ExecMaterializeSlot(slot);
    slot_getallattrs(slot);
    out->handle = w->nlocked;
    out->allocated = DatumGetInt64(slot->tts_values[shape.b_allocated - 1]);
    out->used = DatumGetInt64(slot->tts_values[shape.b_used - 1]);
    out->held = DatumGetInt64(slot->tts_values[shape.b_held - 1]);
    out->granted = DatumGetInt64(slot->tts_values[shape.b_granted - 1]);
    out->lent = DatumGetInt64(slot->tts_values[shape.b_lent - 1]);
    w->locked[w->nlocked++] = slot;
    return true;
}

bool DirectLock(DirectWrite *w, Datum account, Datum credit_type, DirectBalance *out) {
    return LockBalance(w, account, credit_type, out, NULL);
}

void DirectSetUsed(DirectWrite *w, int handle, int64 used) {
    TupleTableSlot *old_slot = w->locked[handle];
    TupleTableSlot *new_slot = w->new_slot;
    ExecClearTuple(new_slot);
    memcpy(new_slot->tts_values, old_slot->tts_values, sizeof(Datum) * shape.b_natts);
    memcpy(new_slot->tts_isnull, old_slot->tts_isnull, sizeof(bool) * shape.b_natts);
    new_slot->tts_values[shape.b_used - 1] = Int64GetDatum(used);
    ExecStoreVirtualTuple(new_slot);
    ExecSimpleRelationUpdate(w->binfo, w->estate, NULL, old_slot, new_slot);
    ResetPerTupleExprContext(w->estate);
}

int64 DirectLedger(DirectWrite *w, Datum account, Datum credit_type, int64 amount,
                   int64 allocated_after, int64 used_after, int64 held_after, Datum description,
                   Datum key, bool key_null, Datum actor, int escrow_slot) {
    TupleTableSlot *lslot = w->ledger_slot;
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
    SET(shape.l_kind, w->consumption);
    SET(shape.l_amount, Int64GetDatum(amount));
    SET(shape.l_allocated_after, Int64GetDatum(allocated_after));
    SET(shape.l_used_after, Int64GetDatum(used_after));
    SET(shape.l_held_after, Int64GetDatum(held_after));
    SET(shape.l_description, description);
    if (!key_null)
        SET(shape.l_key, key);
    SET(shape.l_actor, actor);
    SET(shape.l_recorded_at, TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()));
    if (escrow_slot >= 0)
        SET(shape.l_escrow_slot, Int32GetDatum(escrow_slot));
#undef SET
    ExecStoreVirtualTuple(lslot);
    ExecSimpleRelationInsert(w->linfo, w->estate, lslot);
    ResetPerTupleExprContext(w->estate);
    return id;
}

void DirectEnd(DirectWrite *w) {
    AfterTriggerEndQuery(w->estate);
    /* the relations the AFTER triggers opened (ExecGetTriggerResultRel): the foreign
     * key check of a balance row this transaction wrote before, for one */
    ExecCloseResultRelations(w->estate);
    /* later commands of this transaction (the grant burns, the next call) see the rows */
    CommandCounterIncrement();
    ExecCloseIndices(w->binfo);
    ExecCloseIndices(w->linfo);
    if (w->erel != NULL) {
        ExecCloseIndices(w->einfo);
        index_close(w->eidx, NoLock);
        table_close(w->erel, NoLock);
    }
    ExecResetTupleTable(w->estate->es_tupleTable, false);
    FreeExecutorState(w->estate);
    index_close(w->bidx, NoLock);
    table_close(w->lrel, NoLock);
    table_close(w->brel, NoLock);
}

/*
 * Escrow (keel.credit_escrow; the design is in sql/keel--0.2.0.sql at the
 * table). Each backend has one slot per account and type, slot
 * MyBackendId % kEscrowSlots, so backends rarely share one.
 *
 * The lock order is the balance row, then slots in slot order (folds and
 * lends take them so). A consumption from a slot never waits while it holds
 * a lock of this call: it reads its slot without a lock, and updates that
 * very version only if it still holds enough (an optimistic update: when a
 * fold or a lend changed the slot meanwhile, the update fails and leaves no
 * lock, and the slot is read again). So no wait of escrow closes a cycle
 * within one call. A transaction that consumes twice from the same hot
 * account while a fold of it runs can deadlock (40P01, found by
 * PostgreSQL's deadlock detector): the first call holds the slot, the
 * second waits for the balance row that the fold holds.
 */
/* keel.credit_escrow_slot_check allows slots 0 .. kEscrowSlots - 1: change both together */
const int kEscrowSlots = 32;
/* a lend lasts this many consumptions of the same amount, and takes at most
 * 1 / (2 * kEscrowSlots) of what the balance has free */
const int64 kLendCalls = 128;

int MySlot(void) {
    return (int)(MyBackendId % kEscrowSlots);
}

/* The (account, credit_type) pairs this backend lent its slot to, newest
 * first; a hint only (a fold elsewhere may have emptied the slot). */
struct EscrowHint {
    pg_uuid_t account;
    char type[64];
    bool valid;
};
EscrowHint hints[8];
int next_hint = 0;

static int FindHint(Datum account, Datum credit_type) {
    text *t = DatumGetTextPP(credit_type);
    int len = VARSIZE_ANY_EXHDR(t);
    if (len >= (int)sizeof(hints[0].type))
        return -1;
    for (int i = 0; i < (int)lengthof(hints); i++)
        if (hints[i].valid && memcmp(&hints[i].account, DatumGetUUIDP(account), UUID_LEN) == 0 &&
            (int)strlen(hints[i].type) == len && memcmp(hints[i].type, VARDATA_ANY(t), len) == 0)
            return i;
    return -1;
}

void EscrowRemember(Datum account, Datum credit_type) {
    if (FindHint(account, credit_type) >= 0)
        return;
    text *t = DatumGetTextPP(credit_type);
    int len = VARSIZE_ANY_EXHDR(t);
    if (len >= (int)sizeof(hints[0].type))
        return;
    EscrowHint *h = &hints[next_hint];
    next_hint = (next_hint + 1) % (int)lengthof(hints);
    memcpy(&h->account, DatumGetUUIDP(account), UUID_LEN);
    memcpy(h->type, VARDATA_ANY(t), len);
    h->type[len] = '\0';
    h->valid = true;
}

/* SumUnused: keel::EscrowUnused on the write's open escrow relation. */
static int64 SumUnused(DirectWrite *w, Datum account, Datum credit_type, Snapshot snap) {
    return EscrowUnused(w->erel, w->eidx, shape.e_allowance, shape.e_used, account, credit_type,
                        snap);
}

/* BalanceFree: allocated - used - held of the balance row as of snap (0 when
 * there is none). */
static int64 BalanceFree(DirectWrite *w, Datum account, Datum credit_type, Snapshot snap) {
    ScanKeyData keys[2];
    AccountTypeKeys(keys, account, credit_type);
    TupleTableSlot *slot = table_slot_create(w->brel, &w->estate->es_tupleTable);
    IndexScanDesc scan = index_beginscan(w->brel, w->bidx, snap, 2, 0);
    index_rescan(scan, keys, 2, NULL, 0);
    int64 free_credits = 0;
    if (index_getnext_slot(scan, ForwardScanDirection, slot)) {
        slot_getallattrs(slot);
        free_credits = DatumGetInt64(slot->tts_values[shape.b_allocated - 1]) -
                       DatumGetInt64(slot->tts_values[shape.b_used - 1]) -
                       DatumGetInt64(slot->tts_values[shape.b_held - 1]);
    }
    index_endscan(scan);
    return free_credits;
}

/*
 * SlotConsume takes amount credits from this backend's slot of (account,
 * type): kDone with the ledger row written, or kNotHere (no slot, or too
 * little in it) having changed and locked nothing.
 */
static ConsumeOutcome SlotConsume(DirectWrite *w, Datum account, Datum credit_type, int64 amount,
                                  Datum description, Datum key, bool key_null, Datum actor,
                                  ConsumeResult *out) {
    OpenEscrow(w);
    int slot_no = MySlot();
    ScanKeyData keys[3];
    AccountTypeKeys(keys, account, credit_type);
    ScanKeyInit(&keys[2], 3, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(slot_no));
    TupleTableSlot *old_slot = table_slot_create(w->erel, &w->estate->es_tupleTable);
    TupleTableSlot *new_slot = table_slot_create(w->erel, &w->estate->es_tupleTable);
    int natts = shape.e_natts;
    for (;;) {
        CHECK_FOR_INTERRUPTS();
        Snapshot snap = RegisterSnapshot(GetLatestSnapshot());
        IndexScanDesc scan = index_beginscan(w->erel, w->eidx, snap, 3, 0);
        index_rescan(scan, keys, 3, NULL, 0);
        bool found = index_getnext_slot(scan, ForwardScanDirection, old_slot);
        index_endscan(scan);
        if (!found) {
            UnregisterSnapshot(snap);
            return kNotHere;
        }
        slot_getallattrs(old_slot);
        int64 allowance = DatumGetInt64(old_slot->tts_values[shape.e_allowance - 1]);
        int64 used = DatumGetInt64(old_slot->tts_values[shape.e_used - 1]);
        if (allowance - used < amount) {
            UnregisterSnapshot(snap);
            return kNotHere;
        }
        ExecClearTuple(new_slot);
        memcpy(new_slot->tts_values, old_slot->tts_values, sizeof(Datum) * natts);
        memcpy(new_slot->tts_isnull, old_slot->tts_isnull, sizeof(bool) * natts);
        new_slot->tts_values[shape.e_used - 1] = Int64GetDatum(used + amount);
        ExecStoreVirtualTuple(new_slot);
        ExecConstraints(w->einfo, new_slot, w->estate);
        TM_FailureData tmfd;
        LockTupleMode lockmode;
        bool update_indexes;
        /* updates exactly the version read above, or fails without a lock */
        TM_Result res =
            table_tuple_update(w->erel, &old_slot->tts_tid, new_slot, w->estate->es_output_cid,
                               snap, InvalidSnapshot, true, &tmfd, &lockmode, &update_indexes);
        if (res == TM_Updated || res == TM_Deleted) {
            UnregisterSnapshot(snap);
            ResetPerTupleExprContext(w->estate);
            continue; /* a fold or a lend got there first: read the slot again */
        }
        if (res != TM_Ok)
            elog(ERROR, "keel: unexpected result %d updating a row of keel.credit_escrow",
                 (int)res);
        if (update_indexes)
            ExecInsertIndexTuples(w->einfo, new_slot, w->estate, true, false, NULL, NIL);
        ResetPerTupleExprContext(w->estate);
        /* what remains: the balance and every slot as of snap, less this call */
        out->remaining = BalanceFree(w, account, credit_type, snap) +
                         SumUnused(w, account, credit_type, snap) - amount;
        UnregisterSnapshot(snap);
        out->ledger_id = DirectLedger(w, account, credit_type, amount, allowance, used + amount, 0,
                                      description, key, key_null, actor, slot_no);
        out->from_slot = true;
        out->slot = slot_no;
        return kDone;
    }
}

ConsumeOutcome ConsumeDirect(Datum account, Datum credit_type, int64 amount, Datum description,
                             Datum key, bool key_null, Datum actor, ConsumeResult *out) {
    DirectWrite *w = DirectBegin(1);
    if (w == NULL)
        return kNotHere;
    memset(out, 0, sizeof *out);
    /* this backend lent its slot for this account: try it first */
    int hint = FindHint(account, credit_type);
    bool hot = hint >= 0; /* this backend lent its slot before, and the slot ran out */
    if (hint >= 0) {
        if (SlotConsume(w, account, credit_type, amount, description, key, key_null, actor, out) ==
            kDone) {
            DirectEnd(w);
            return kDone;
        }
        hints[hint].valid = false;
    }
    DirectBalance b;
    bool contended = false;
    ConsumeOutcome outcome = kInsufficient;
    /* allocated - used - held >= amount, without overflow: used + held <= allocated */
    if (LockBalance(w, account, credit_type, &b, &contended)) {
        if (b.allocated - b.used - b.held >= amount) {
            DirectSetUsed(w, b.handle, b.used + amount);
            out->ledger_id =
                DirectLedger(w, account, credit_type, amount, b.allocated, b.used + amount, b.held,
                             description, key, key_null, actor);
            out->allocated = b.allocated;
            out->used = b.used + amount;
            out->held = b.held;
            out->granted = b.granted;
            int64 row_free = b.allocated - b.used - amount - b.held;
            out->remaining = row_free;
            if (b.lent > 0) {
                /* used counts what the slots were lent: add what they have not used,
                 * as of now (the row is locked, so no fold or lend runs meanwhile) */
                OpenEscrow(w);
                Snapshot snap = RegisterSnapshot(GetLatestSnapshot());
                out->remaining += SumUnused(w, account, credit_type, snap);
                UnregisterSnapshot(snap);
            }
            outcome = kDone;
            /* the row was busy, or this backend's slot ran out: lend the slot enough for
             * its next calls (only plan credits: never while a grant is unburned, grants
             * burn first) */
            if ((contended || hot) && b.granted == 0) {
                int64 lend = Min(amount <= PG_INT64_MAX / kLendCalls ? amount * kLendCalls : amount,
                                 row_free / (2 * kEscrowSlots));
                if (lend >= amount) {
                    out->lend = lend;
                    out->slot = MySlot();
                }
            }
        } else if (b.lent > 0)
            outcome = kFold;
    }
    DirectEnd(w);
    return outcome;
}

} // namespace keel
