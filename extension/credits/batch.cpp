/*
 * extension/credits/batch.cpp
 *   keel.consume_credits_batch(account uuid[], credit_type text[],
 *     amount bigint[], idempotency_key text[] DEFAULT NULL,
 *     description text DEFAULT NULL, atomic boolean DEFAULT false)
 *   RETURNS TABLE (item integer, remaining bigint, error_code text)
 *
 *   Set-based: whatever the number of items, one call runs a fixed number of
 *   statements (claim the keys, read the replays, lock the balance rows,
 *   update them, insert the ledger rows, record the keys, drop the claims
 *   of failed items). Items are decided in memory, in item order, against
 *   the locked balances, so the result is the one a loop of
 *   keel.consume_credits() calls would give:
 *   - an item fails alone with error_code 22004 (NULL account, type or
 *     amount), 22023 (unknown type, amount <= 0, empty or overlong key),
 *     KL002 (not enough credits available when its turn comes) or KL003 (key
 *     used before with other arguments), and changes nothing;
 *   - a key used before with the same arguments replays its first result;
 *     a key repeated inside the batch is decided by its first item;
 *   - with atomic, the first failure raises (its SQLSTATE, naming the item)
 *     and nothing changes.
 *   BatchBalance rows are locked in (account, credit_type) order, so batches
 *   never deadlock with each other. Call-level errors: 22023 arrays of
 *   different lengths or not one-dimensional; 22001 description over 1,024
 *   bytes; 25006 standby or read-only transaction.
 *
 *   Rule: issue 13 ("one call, one result row per item"; >= 100,000
 *   consumed operations per second at 1,000 items per call and 2 clients).
 *   Plain C style: no C++ object with a destructor in any frame here.
 */
extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"
}

#include "credits/consume_direct.hpp"
#include "credits/credit_types.hpp"
#include "pg/spi_plan.hpp"
#include "pg/error.hpp"
#include "pg/writable.hpp"

#include <cstdlib>
#include <cstring>

namespace {

/* What happens to one item. */
enum ItemState { kPending, kFailed, kReplayed, kDone };

struct BatchItem {
    int index; /* 0-based position in the arrays */
    Datum account;
    const char *type; /* NULL when NULL */
    Datum type_datum;
    int64 amount;
    const char *key; /* NULL: no key */
    Datum key_datum;
    ItemState state;
    const char *error_code; /* when kFailed */
    int64 remaining;        /* when kDone or kReplayed */
    int balance;            /* index into the balances, -1 none */
    int first_with_key;     /* index of the first item with the same account and key, or -1 */
    bool claimed;           /* this item inserted its key */
    int64 allocated_after, used_after, held_after;
    int64 ledger_id; /* when kDone */
};

struct BatchBalance {
    Datum account;
    const char *type;
    Datum type_datum;
    int64 allocated, used, held, granted;
    int64 consumed; /* by this batch */
    int handle;     /* its locked row, on the fast path */
};

SPIPlanPtr plan_types, plan_claim, plan_replay, plan_lock, plan_update, plan_burn, plan_ledger,
    plan_finish, plan_unclaim;

int CompareUuid(Datum a, Datum b) {
    return memcmp(DatumGetUUIDP(a)->data, DatumGetUUIDP(b)->data, UUID_LEN);
}

/* Items sorted by (account, key), keyed ones only: finds the first of each key. */
BatchItem *g_items;
int CompareItemKeys(const void *pa, const void *pb) {
    const BatchItem *a = &g_items[*(const int *)pa];
    const BatchItem *b = &g_items[*(const int *)pb];
    int c = CompareUuid(a->account, b->account);
    if (c != 0)
        return c;
    c = strcmp(a->key, b->key);
    return c != 0 ? c : a->index - b->index;
}

/* Items sorted by (account, credit_type): the balance rows to lock. */
int CompareItemBalances(const void *pa, const void *pb) {
    const BatchItem *a = &g_items[*(const int *)pa];
    const BatchItem *b = &g_items[*(const int *)pb];
    int c = CompareUuid(a->account, b->account);
    return c != 0 ? c : strcmp(a->type, b->type);
}

BatchBalance *g_balances;
int g_nbalances;

int FindBalance(Datum account, const char *type) {
    int lo = 0, hi = g_nbalances - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        int c = CompareUuid(g_balances[mid].account, account);
        if (c == 0)
            c = strcmp(g_balances[mid].type, type);
        if (c == 0)
            return mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* FindKeyed returns the item index whose (account, key) match, among sorted keyed items. */
int FindKeyed(const int *sorted, int nsorted, Datum account, const char *key) {
    int lo = 0, hi = nsorted - 1, found = -1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const BatchItem *it = &g_items[sorted[mid]];
        int c = CompareUuid(it->account, account);
        if (c == 0)
            c = strcmp(it->key, key);
        if (c == 0) {
            found = sorted[mid];
            hi = mid - 1; /* the first with this key */
        } else if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return found;
}

void Fail(BatchItem *it, const char *code) {
    it->state = kFailed;
    it->error_code = code;
}

ArrayType *UuidArray(Datum *values, int n) {
    return construct_array(values, n, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR);
}
ArrayType *TextArray(Datum *values, int n) {
    return construct_array(values, n, TEXTOID, -1, false, TYPALIGN_INT);
}
ArrayType *Int8Array(Datum *values, int n) {
    return construct_array(values, n, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

/* BurnGrants burns, for every balance this batch consumed from, its grants
 * (burn order) up to what it consumed; after the balance rows are written. */
void BurnGrants(void) {
    for (int b = 0; b < g_nbalances; b++) {
        BatchBalance *bal = &g_balances[b];
        if (bal->consumed == 0 || bal->granted == 0)
            continue;
        Oid bt[3] = {UUIDOID, TEXTOID, INT8OID};
        Datum bv[3] = {bal->account, bal->type_datum,
                       Int64GetDatum(Min(bal->granted, bal->consumed))};
        SPIPlanPtr burn = saved_plan(&plan_burn,
                                     "WITH n AS (SELECT keel.credit_burn_grants($1, $2, $3) AS n) "
                                     "UPDATE keel.credit_balances SET granted = granted - n.n "
                                     "FROM n WHERE account = $1 AND credit_type = $2",
                                     3, bt);
        run_plan(burn, bv, NULL, false);
    }
}

/* FoldLent gives back to each balance k with lent[k] what its escrow slots
 * did not use (keel::FoldEscrow), in the order of the arrays. */
void FoldLent(const Datum *acc, const Datum *type, const bool *lent, int n) {
    for (int k = 0; k < n; k++)
        if (lent[k])
            keel::FoldEscrow(acc[k], type[k]);
}

/* FinishKeys records, for each consumed item whose key this batch claimed,
 * its result and ledger id (ledger_id set by the caller). */
void FinishKeys(const BatchItem *items, int n, int ndone) {
    Datum *f_acc = (Datum *)palloc(sizeof(Datum) * (ndone + 1));
    Datum *f_key = (Datum *)palloc(sizeof(Datum) * (ndone + 1));
    Datum *f_rem = (Datum *)palloc(sizeof(Datum) * (ndone + 1));
    Datum *f_id = (Datum *)palloc(sizeof(Datum) * (ndone + 1));
    int nf = 0;
    for (int i = 0; i < n; i++) {
        const BatchItem *it = &items[i];
        if (it->state != kDone || it->key == NULL || !it->claimed)
            continue;
        f_acc[nf] = it->account;
        f_key[nf] = it->key_datum;
        f_rem[nf] = Int64GetDatum(it->remaining);
        f_id[nf] = Int64GetDatum(it->ledger_id);
        nf++;
    }
    if (nf == 0)
        return;
    Oid ft[4] = {UUIDARRAYOID, TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID};
    Datum fv[4] = {PointerGetDatum(UuidArray(f_acc, nf)), PointerGetDatum(TextArray(f_key, nf)),
                   PointerGetDatum(Int8Array(f_rem, nf)), PointerGetDatum(Int8Array(f_id, nf))};
    SPIPlanPtr finish = saved_plan(&plan_finish,
                                   "UPDATE keel.credit_idempotency i SET remaining = u.r, "
                                   "ledger_id = u.l FROM unnest($1, $2, $3, $4) AS u(a, k, r, l) "
                                   "WHERE i.account = u.a AND i.idempotency_key = u.k",
                                   4, ft);
    run_plan(finish, fv, NULL, false);
}

/* Deconstructs a 1-D array argument (NULL array: 0 items). */
void Elements(FunctionCallInfo fcinfo, int argno, Oid type, int16 len, bool byval, char align,
              Datum **values, bool **nulls, int *n, const char *name) {
    if (PG_ARGISNULL(argno)) {
        *values = NULL;
        *nulls = NULL;
        *n = 0;
        return;
    }
    ArrayType *a = PG_GETARG_ARRAYTYPE_P(argno);
    if (ARR_NDIM(a) > 1)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("%s must be a one-dimensional array", name)));
    deconstruct_array(a, type, len, byval, align, values, nulls, n);
}

} // namespace

extern "C" {

PG_FUNCTION_INFO_V1(keel_consume_credits_batch);
PGDLLEXPORT Datum keel_consume_credits_batch(PG_FUNCTION_ARGS);
Datum keel_consume_credits_batch(PG_FUNCTION_ARGS) {
    keel::RequireWritable("keel.consume_credits_batch()");
    Datum *acc, *typ, *amt, *key = NULL;
    bool *acc_n, *typ_n, *amt_n, *key_n = NULL;
    int n, ntyp, namt, nkey = -1;
    Elements(fcinfo, 0, UUIDOID, UUID_LEN, false, TYPALIGN_CHAR, &acc, &acc_n, &n, "account");
    Elements(fcinfo, 1, TEXTOID, -1, false, TYPALIGN_INT, &typ, &typ_n, &ntyp, "credit_type");
    Elements(fcinfo, 2, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &amt, &amt_n, &namt,
             "amount");
    if (!PG_ARGISNULL(3))
        Elements(fcinfo, 3, TEXTOID, -1, false, TYPALIGN_INT, &key, &key_n, &nkey,
                 "idempotency_key");
    if (ntyp != n || namt != n || (nkey >= 0 && nkey != n))
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                 errmsg("keel.consume_credits_batch() needs arrays of the same length"),
                 errdetail("account has %d items, credit_type %d, amount %d, idempotency_key %s.",
                           n, ntyp, namt, nkey >= 0 ? psprintf("%d", nkey) : "none")));
    bool desc_null = PG_ARGISNULL(4);
    Datum description = desc_null ? (Datum)0 : PG_GETARG_DATUM(4);
    if (!desc_null && VARSIZE_ANY_EXHDR(DatumGetTextPP(description)) > KEEL_MAX_DESCRIPTION_BYTES)
        ereport(ERROR,
                (errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION), errmsg("description is too long"),
                 errdetail("The description has %d bytes; at most %d are kept in the append-only "
                           "ledger.",
                           (int)VARSIZE_ANY_EXHDR(DatumGetTextPP(description)),
                           KEEL_MAX_DESCRIPTION_BYTES)));
    bool atomic = !PG_ARGISNULL(5) && PG_GETARG_BOOL(5);

    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;
    if (n == 0)
        return (Datum)0;

    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");

    /* 1. Argument checks per item, against the known credit types. */
    SPIPlanPtr types =
        saved_plan(&plan_types, "SELECT credit_type FROM keel.credit_types", 0, NULL);
    run_plan(types, NULL, NULL, true);
    int ntypes = (int)SPI_processed;
    char **known = (char **)palloc(sizeof(char *) * (ntypes + 1));
    for (int t = 0; t < ntypes; t++)
        known[t] = SPI_getvalue(SPI_tuptable->vals[t], SPI_tuptable->tupdesc, 1);

    BatchItem *items = (BatchItem *)palloc0(sizeof(BatchItem) * n);
    g_items = items;
    int nkeyed = 0;
    for (int i = 0; i < n; i++) {
        BatchItem *it = &items[i];
        it->index = i;
        it->balance = -1;
        it->first_with_key = -1;
        it->state = kPending;
        if (acc_n[i] || typ_n[i] || amt_n[i]) {
            Fail(it, "22004");
            continue;
        }
        it->account = acc[i];
        it->type_datum = typ[i];
        it->type = TextDatumGetCString(typ[i]);
        it->amount = DatumGetInt64(amt[i]);
        bool type_known = false;
        for (int t = 0; t < ntypes && !type_known; t++)
            type_known = strcmp(known[t], it->type) == 0;
        if (!type_known || it->amount <= 0) {
            Fail(it, "22023");
            continue;
        }
        if (key != NULL && !key_n[i]) {
            int len = VARSIZE_ANY_EXHDR(DatumGetTextPP(key[i]));
            if (len == 0 || len > KEEL_MAX_IDEMPOTENCY_KEY_BYTES) {
                Fail(it, "22023");
                continue;
            }
            it->key_datum = key[i];
            it->key = TextDatumGetCString(key[i]);
            nkeyed++;
        }
    }

    /* 2. Keys: the first item of each (account, key) decides for the rest. */
    int *sorted = (int *)palloc(sizeof(int) * (nkeyed + 1));
    int nsorted = 0;
    for (int i = 0; i < n; i++)
        if (items[i].state == kPending && items[i].key != NULL)
            sorted[nsorted++] = i;
    qsort(sorted, nsorted, sizeof(int), CompareItemKeys);
    int nclaim = 0;
    Datum *c_key = (Datum *)palloc(sizeof(Datum) * (nsorted + 1));
    Datum *c_acc = (Datum *)palloc(sizeof(Datum) * (nsorted + 1));
    Datum *c_type = (Datum *)palloc(sizeof(Datum) * (nsorted + 1));
    Datum *c_amt = (Datum *)palloc(sizeof(Datum) * (nsorted + 1));
    for (int s = 0; s < nsorted; s++) {
        BatchItem *it = &items[sorted[s]];
        if (s > 0) {
            BatchItem *prev = &items[sorted[s - 1]];
            int first = prev->first_with_key >= 0 ? prev->first_with_key : prev->index;
            if (CompareUuid(prev->account, it->account) == 0 && strcmp(prev->key, it->key) == 0) {
                it->first_with_key = first;
                continue;
            }
        }
        c_key[nclaim] = it->key_datum;
        c_acc[nclaim] = it->account;
        c_type[nclaim] = it->type_datum;
        c_amt[nclaim] = Int64GetDatum(it->amount);
        nclaim++;
    }
    if (nclaim > 0) {
        Oid ct[5] = {TEXTARRAYOID, UUIDARRAYOID, TEXTARRAYOID, INT8ARRAYOID, TEXTOID};
        Datum cv[5] = {PointerGetDatum(TextArray(c_key, nclaim)),
                       PointerGetDatum(UuidArray(c_acc, nclaim)),
                       PointerGetDatum(TextArray(c_type, nclaim)),
                       PointerGetDatum(Int8Array(c_amt, nclaim)), description};
        char cn[6] = {' ', ' ', ' ', ' ', desc_null ? 'n' : ' ', '\0'};
        SPIPlanPtr claim = saved_plan(
            &plan_claim,
            "INSERT INTO keel.credit_idempotency "
            "(idempotency_key, account, credit_type, amount, description, operation) "
            "SELECT u.k, u.a, u.t, u.m, $5, 'consume' FROM unnest($1, $2, $3, $4) AS u(k, a, t, m) "
            "ON CONFLICT (account, idempotency_key) DO NOTHING RETURNING account, idempotency_key",
            5, ct);
        run_plan(claim, cv, cn, false);
        for (uint64 r = 0; r < SPI_processed; r++) {
            bool isnull;
            Datum a = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull);
            char *k = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2);
            int i = FindKeyed(sorted, nsorted, a, k);
            if (i >= 0)
                items[i].claimed = true;
        }
        if ((int)SPI_processed < nclaim) {
            /* Keys recorded before: replay or KL003. */
            SPIPlanPtr replay = saved_plan(
                &plan_replay,
                "SELECT i.account, i.idempotency_key, i.remaining, "
                "i.operation = 'consume' AND i.credit_type = u.t AND i.amount = u.m "
                "AND i.description IS NOT DISTINCT FROM $5 "
                "FROM keel.credit_idempotency i JOIN unnest($1, $2, $3, $4) AS u(k, a, t, m) "
                "ON i.account = u.a AND i.idempotency_key = u.k",
                5, ct);
            run_plan(replay, cv, cn, false);
            for (uint64 r = 0; r < SPI_processed; r++) {
                HeapTuple tup = SPI_tuptable->vals[r];
                TupleDesc desc = SPI_tuptable->tupdesc;
                bool isnull;
                Datum a = SPI_getbinval(tup, desc, 1, &isnull);
                char *k = SPI_getvalue(tup, desc, 2);
                int i = FindKeyed(sorted, nsorted, a, k);
                if (i < 0 || items[i].claimed)
                    continue;
                Datum rem = SPI_getbinval(tup, desc, 3, &isnull);
                bool rem_null = isnull;
                Datum same = SPI_getbinval(tup, desc, 4, &isnull);
                if (!isnull && DatumGetBool(same) && !rem_null) {
                    items[i].state = kReplayed;
                    items[i].remaining = DatumGetInt64(rem);
                } else
                    Fail(&items[i], "KL003");
            }
        }
    }

    /* 3. Lock the balance rows the pending items touch, in key order. */
    Datum *l_acc = (Datum *)palloc(sizeof(Datum) * n);
    Datum *l_type = (Datum *)palloc(sizeof(Datum) * n);
    int nl = 0;
    /* distinct (account, type) pairs in key order: the rows are locked in
     * this order, so two batches never wait on each other in a cycle */
    int *order = (int *)palloc(sizeof(int) * (n + 1));
    int norder = 0;
    for (int i = 0; i < n; i++)
        if (items[i].state == kPending && items[i].first_with_key < 0)
            order[norder++] = i;
    qsort(order, norder, sizeof(int), CompareItemBalances);
    for (int k = 0; k < norder; k++) {
        BatchItem *it = &items[order[k]];
        if (k > 0) {
            BatchItem *prev = &items[order[k - 1]];
            if (CompareUuid(prev->account, it->account) == 0 && strcmp(prev->type, it->type) == 0)
                continue;
        }
        l_acc[nl] = it->account;
        l_type[nl] = it->type_datum;
        nl++;
    }
    g_nbalances = 0;
    g_balances = NULL;
    /* the fast path (consume_direct.cpp): the rows locked one by one in this order */
    keel::DirectWrite *direct = nl > 0 ? keel::DirectBegin(nl) : NULL;
    /* a balance that lent credits to escrow slots gets them back first (the rows
     * stay locked, in the same order), so that every item sees all its credits */
    bool *lent = (bool *)palloc0(sizeof(bool) * (nl + 1));
    if (direct != NULL) {
        g_balances = (BatchBalance *)palloc0(sizeof(BatchBalance) * (nl + 1));
        for (int pass = 0; pass < 2; pass++) {
            bool any_lent = false;
            for (int k = 0; k < nl; k++) {
                keel::DirectBalance got;
                if (!keel::DirectLock(direct, l_acc[k], l_type[k], &got))
                    continue;
                if (got.lent > 0)
                    any_lent = lent[k] = true;
                BatchBalance *bal = &g_balances[g_nbalances++];
                bal->account = l_acc[k];
                bal->type_datum = l_type[k];
                bal->type = TextDatumGetCString(l_type[k]);
                bal->allocated = got.allocated;
                bal->used = got.used;
                bal->held = got.held;
                bal->granted = got.granted;
                bal->handle = got.handle;
            }
            if (!any_lent)
                break;
            if (pass == 1)
                elog(ERROR, "keel: escrow slots of a locked balance lent again");
            /* nothing written yet: end, fold (the rows stay locked), lock them again */
            keel::DirectEnd(direct);
            FoldLent(l_acc, l_type, lent, nl);
            direct = keel::DirectBegin(nl);
            if (direct == NULL)
                elog(ERROR, "keel: the credit tables changed during keel.consume_credits_batch()");
            g_nbalances = 0;
        }
    } else if (nl > 0) {
        Oid lt[2] = {UUIDARRAYOID, TEXTARRAYOID};
        Datum lv[2] = {PointerGetDatum(UuidArray(l_acc, nl)),
                       PointerGetDatum(TextArray(l_type, nl))};
        SPIPlanPtr lock =
            saved_plan(&plan_lock,
                       /* one primary-key probe per pair, locked in the (sorted) input order,
                        * whatever the size of keel.credit_balances */
                       "SELECT b.account, b.credit_type, b.allocated, b.used, b.held, b.granted, "
                       "b.lent > 0 FROM unnest($1, $2) WITH ORDINALITY AS u(a, t, o) CROSS JOIN "
                       "LATERAL (SELECT x.* FROM keel.credit_balances x WHERE x.account = u.a "
                       "AND x.credit_type = u.t FOR UPDATE) b ORDER BY u.o",
                       2, lt);
        run_plan(lock, lv, NULL, false);
        bool any_lent = false;
        for (uint64 b = 0; b < SPI_processed; b++) {
            bool isnull;
            if (DatumGetBool(
                    SPI_getbinval(SPI_tuptable->vals[b], SPI_tuptable->tupdesc, 7, &isnull))) {
                Datum acc = SPI_getbinval(SPI_tuptable->vals[b], SPI_tuptable->tupdesc, 1, &isnull);
                for (int k = 0; k < nl; k++)
                    if (CompareUuid(l_acc[k], acc) == 0 &&
                        strcmp(TextDatumGetCString(l_type[k]),
                               SPI_getvalue(SPI_tuptable->vals[b], SPI_tuptable->tupdesc, 2)) == 0)
                        any_lent = lent[k] = true;
            }
        }
        if (any_lent) {
            FoldLent(l_acc, l_type, lent, nl);
            run_plan(lock, lv, NULL, false);
        }
        g_nbalances = (int)SPI_processed;
        g_balances = (BatchBalance *)palloc0(sizeof(BatchBalance) * (g_nbalances + 1));
        for (int b = 0; b < g_nbalances; b++) {
            HeapTuple tup = SPI_tuptable->vals[b];
            TupleDesc desc = SPI_tuptable->tupdesc;
            bool isnull;
            BatchBalance *bal = &g_balances[b];
            bal->account = datumCopy(SPI_getbinval(tup, desc, 1, &isnull), false, UUID_LEN);
            bal->type = SPI_getvalue(tup, desc, 2);
            bal->type_datum = CStringGetTextDatum(bal->type);
            bal->allocated = DatumGetInt64(SPI_getbinval(tup, desc, 3, &isnull));
            bal->used = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
            bal->held = DatumGetInt64(SPI_getbinval(tup, desc, 5, &isnull));
            bal->granted = DatumGetInt64(SPI_getbinval(tup, desc, 6, &isnull));
        }
    }

    /* 4. Decide, in item order. */
    int first_failure = -1, ndone = 0;
    for (int i = 0; i < n; i++) {
        BatchItem *it = &items[i];
        if (it->state == kPending && it->first_with_key >= 0) {
            BatchItem *first = &items[it->first_with_key];
            bool same = strcmp(first->type, it->type) == 0 && first->amount == it->amount;
            if (!same)
                Fail(it, "KL003");
            else if (first->state == kFailed)
                Fail(it, first->error_code);
            else {
                it->state = kReplayed;
                it->remaining = first->remaining;
            }
        } else if (it->state == kPending) {
            int b = FindBalance(it->account, it->type);
            BatchBalance *bal = b >= 0 ? &g_balances[b] : NULL;
            if (bal == NULL || bal->allocated - bal->used - bal->held < it->amount) {
                Fail(it, "KL002");
                it->remaining = bal ? bal->allocated - bal->used - bal->held : 0;
            } else {
                bal->used += it->amount;
                bal->consumed += it->amount;
                it->balance = b;
                it->state = kDone;
                it->allocated_after = bal->allocated;
                it->used_after = bal->used;
                it->held_after = bal->held;
                it->remaining = bal->allocated - bal->used - bal->held;
                ndone++;
            }
        }
        if (it->state == kFailed && first_failure < 0)
            first_failure = i;
    }
    if (atomic && first_failure >= 0) {
        BatchItem *it = &items[first_failure];
        const char *c = it->error_code;
        ereport(ERROR,
                (errcode(MAKE_SQLSTATE(c[0], c[1], c[2], c[3], c[4])),
                 errmsg("item %d of keel.consume_credits_batch() failed with %s; nothing changed",
                        first_failure + 1, c),
                 strcmp(c, "KL002") == 0
                     ? errdetail("Item %d asked for %lld %s credits of account %s; %lld were "
                                 "available at its turn.",
                                 first_failure + 1, (long long)it->amount, it->type,
                                 DatumGetCString(DirectFunctionCall1(uuid_out, it->account)),
                                 (long long)it->remaining)
                     : errdetail("Items are checked as keel.consume_credits() checks them."),
                 errhint("Call without atomic to get one error_code per item.")));
    }

    /* 5. Write: balances, grant burns, ledger rows, keys. */
    Datum actor = CStringGetTextDatum(GetUserNameFromId(GetOuterUserId(), false));
    if (direct != NULL) {
        /* the fast path: each changed balance row, then each ledger row in item order,
         * then the grant burns and the keys through SQL (they see these rows) */
        for (int b = 0; b < g_nbalances; b++)
            if (g_balances[b].consumed > 0)
                keel::DirectSetUsed(direct, g_balances[b].handle, g_balances[b].used);
        Datum actor_name = DirectFunctionCall1(
            namein, CStringGetDatum(GetUserNameFromId(GetOuterUserId(), false)));
        for (int i = 0; i < n; i++) {
            BatchItem *it = &items[i];
            if (it->state != kDone)
                continue;
            Datum text = desc_null
                             ? CStringGetTextDatum(psprintf("Consumed " INT64_FORMAT " %s credits",
                                                            it->amount, it->type))
                             : description;
            it->ledger_id = keel::DirectLedger(direct, it->account, it->type_datum, it->amount,
                                               it->allocated_after, it->used_after, it->held_after,
                                               text, it->key_datum, it->key == NULL, actor_name);
        }
        keel::DirectEnd(direct);
        BurnGrants();
        FinishKeys(items, n, ndone);
    } else if (ndone > 0) {
        Datum *u_acc = (Datum *)palloc(sizeof(Datum) * g_nbalances);
        Datum *u_type = (Datum *)palloc(sizeof(Datum) * g_nbalances);
        Datum *u_used = (Datum *)palloc(sizeof(Datum) * g_nbalances);
        int nu = 0;
        for (int b = 0; b < g_nbalances; b++)
            if (g_balances[b].consumed > 0) {
                u_acc[nu] = g_balances[b].account;
                u_type[nu] = g_balances[b].type_datum;
                u_used[nu] = Int64GetDatum(g_balances[b].used);
                nu++;
            }
        Oid ut[3] = {UUIDARRAYOID, TEXTARRAYOID, INT8ARRAYOID};
        Datum uv[3] = {PointerGetDatum(UuidArray(u_acc, nu)),
                       PointerGetDatum(TextArray(u_type, nu)),
                       PointerGetDatum(Int8Array(u_used, nu))};
        SPIPlanPtr update = saved_plan(&plan_update,
                                       "UPDATE keel.credit_balances b SET used = u.used "
                                       "FROM unnest($1, $2, $3) AS u(a, t, used) WHERE b.account = "
                                       "u.a AND b.credit_type = u.t",
                                       3, ut);
        /* index probes, not a hash join over the whole table: planned (and
         * run) with hash and merge joins off, as a function's SET would */
        int nest = NewGUCNestLevel();
        (void)set_config_option("enable_hashjoin", "off", PGC_USERSET, PGC_S_SESSION,
                                GUC_ACTION_SAVE, true, 0, false);
        (void)set_config_option("enable_mergejoin", "off", PGC_USERSET, PGC_S_SESSION,
                                GUC_ACTION_SAVE, true, 0, false);
        run_plan(update, uv, NULL, false);
        AtEOXact_GUC(true, nest);

        BurnGrants();

        Datum *g_acc = (Datum *)palloc(sizeof(Datum) * ndone);
        Datum *g_type = (Datum *)palloc(sizeof(Datum) * ndone);
        Datum *g_amt = (Datum *)palloc(sizeof(Datum) * ndone);
        Datum *g_al = (Datum *)palloc(sizeof(Datum) * ndone);
        Datum *g_us = (Datum *)palloc(sizeof(Datum) * ndone);
        Datum *g_he = (Datum *)palloc(sizeof(Datum) * ndone);
        Datum *g_key = (Datum *)palloc(sizeof(Datum) * ndone);
        bool *g_key_null = (bool *)palloc(sizeof(bool) * ndone);
        int ng = 0;
        for (int i = 0; i < n; i++) {
            BatchItem *it = &items[i];
            if (it->state != kDone)
                continue;
            g_acc[ng] = it->account;
            g_type[ng] = it->type_datum;
            g_amt[ng] = Int64GetDatum(it->amount);
            g_al[ng] = Int64GetDatum(it->allocated_after);
            g_us[ng] = Int64GetDatum(it->used_after);
            g_he[ng] = Int64GetDatum(it->held_after);
            g_key[ng] = it->key ? it->key_datum : (Datum)0;
            g_key_null[ng] = it->key == NULL;
            ng++;
        }
        int dims[1] = {ng};
        int lbs[1] = {1};
        ArrayType *keys =
            construct_md_array(g_key, g_key_null, 1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT);
        Oid gt[9] = {UUIDARRAYOID, TEXTARRAYOID, INT8ARRAYOID, INT8ARRAYOID, INT8ARRAYOID,
                     INT8ARRAYOID, TEXTARRAYOID, TEXTOID,      TEXTOID};
        Datum gv[9] = {PointerGetDatum(UuidArray(g_acc, ng)),
                       PointerGetDatum(TextArray(g_type, ng)),
                       PointerGetDatum(Int8Array(g_amt, ng)),
                       PointerGetDatum(Int8Array(g_al, ng)),
                       PointerGetDatum(Int8Array(g_us, ng)),
                       PointerGetDatum(Int8Array(g_he, ng)),
                       PointerGetDatum(keys),
                       description,
                       actor};
        char gn[10] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', desc_null ? 'n' : ' ', ' ', '\0'};
        SPIPlanPtr ledger = saved_plan(
            &plan_ledger,
            "INSERT INTO keel.credit_ledger (account, credit_type, kind, amount, allocated_after, "
            "used_after, held_after, description, idempotency_key, actor) "
            "SELECT u.a, u.t, 'consumption', u.m, u.al, u.us, u.he, "
            "COALESCE($8, 'Consumed ' || u.m || ' ' || u.t || ' credits'), u.k, $9 "
            "FROM unnest($1, $2, $3, $4, $5, $6, $7) WITH ORDINALITY AS u(a, t, m, al, us, he, k, "
            "o) "
            "ORDER BY u.o RETURNING id, account, idempotency_key",
            9, gt);
        run_plan(ledger, gv, gn, false);

        /* Record the results of the keys this batch claimed. */
        uint64 nrows = SPI_processed;
        SPITupleTable *rows = SPI_tuptable;
        for (uint64 r = 0; r < nrows; r++) {
            bool isnull;
            Datum k = SPI_getbinval(rows->vals[r], rows->tupdesc, 3, &isnull);
            if (isnull)
                continue;
            Datum a = SPI_getbinval(rows->vals[r], rows->tupdesc, 2, &isnull);
            int i = FindKeyed(sorted, nsorted, a, TextDatumGetCString(k));
            if (i >= 0)
                items[i].ledger_id =
                    DatumGetInt64(SPI_getbinval(rows->vals[r], rows->tupdesc, 1, &isnull));
        }
        FinishKeys(items, n, ndone);
    }

    /* 6. A failed item's claimed key is not kept: only consumptions record keys. */
    Datum *x_acc = (Datum *)palloc(sizeof(Datum) * n);
    Datum *x_key = (Datum *)palloc(sizeof(Datum) * n);
    int nx = 0;
    for (int i = 0; i < n; i++)
        if (items[i].claimed && items[i].state == kFailed) {
            x_acc[nx] = items[i].account;
            x_key[nx] = items[i].key_datum;
            nx++;
        }
    if (nx > 0) {
        Oid xt[2] = {UUIDARRAYOID, TEXTARRAYOID};
        Datum xv[2] = {PointerGetDatum(UuidArray(x_acc, nx)),
                       PointerGetDatum(TextArray(x_key, nx))};
        SPIPlanPtr unclaim =
            saved_plan(&plan_unclaim,
                       "DELETE FROM keel.credit_idempotency i USING unnest($1, $2) AS u(a, k) "
                       "WHERE i.account = u.a AND i.idempotency_key = u.k",
                       2, xt);
        run_plan(unclaim, xv, NULL, false);
    }

    /* The result rows, while items (allocated in SPI's memory) still exist:
     * the tuplestore copies each row into its own memory. */
    for (int i = 0; i < n; i++) {
        BatchItem *it = &items[i];
        Datum out[3] = {Int32GetDatum(i + 1), Int64GetDatum(it->remaining),
                        it->state == kFailed ? CStringGetTextDatum(it->error_code) : (Datum)0};
        bool out_nulls[3] = {false, it->state == kFailed, it->state != kFailed};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, out_nulls);
    }
    SPI_finish();
    return (Datum)0;
}

} // extern "C"
