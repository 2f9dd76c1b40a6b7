/*
 * extension/credits/credits.cpp
 *   The SQL-callable credit functions of keel (sql/keel--0.1.0.sql, region
 *   "credits"): allocation by plan, available credits, atomic consumption with
 *   an append-only ledger and idempotency keys, and the ledger's append-only
 *   trigger.
 *
 *   Source: seed 003 (Phase 3.5, "Multi-Credit Migration"), step 2.2
 *   allocate_plan_credits / get_available_credits / consume_specific_credits,
 *   whose check-then-update consumption can overdraw under concurrency. keel
 *   consumes with one conditional UPDATE instead (PostgreSQL docs, "Transaction
 *   Isolation", 13.2.1: in READ COMMITTED an UPDATE re-evaluates its WHERE
 *   clause against the newest row version after waiting for a concurrent
 *   writer, so "allocated - used >= amount" holds when the row is written).
 *
 *   This file talks only to PostgreSQL (SPI, fmgr) and is written in plain C
 *   style: no C++ object with a destructor lives in a frame that can ereport.
 *   The C++-only plan arithmetic (credits/plan_logic.hpp) is reached through
 *   keel::InvokeCpp (pg/boundary.hpp).
 *
 *   Errors (SQLSTATE): 22004 a required argument is NULL; 22023 unknown credit
 *   type or plan, non-positive amount, negative total, bad idempotency key;
 *   22003 allocation out of range; 23514 allocation below credits already
 *   used; KL002 not enough credits; KL003 idempotency key reused with other
 *   arguments; 42501 UPDATE/DELETE/TRUNCATE on keel.credit_ledger; 25006 a
 *   mutating function on a standby or in a read-only transaction
 *   (pg/writable.hpp).
 */
#include "credits/credit_types.hpp"
#include "credits/plan_logic.hpp"
#include "credits/consume_direct.hpp"
#include "pg/spi_plan.hpp"

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "catalog/pg_type.h"
#include "common/int.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"
#include "utils/uuid.h"
}

#include "pg/append_only.hpp"
#include "pg/boundary.hpp"
#include "pg/writable.hpp"

/* ---------------------------------------------------------------------------
 * Saved SPI plans (SPI_prepare + SPI_keepplan), prepared on first use and kept
 * for the life of the backend. The plan cache re-plans them after DDL on the
 * tables they read, so they survive DROP/CREATE EXTENSION too.
 * ------------------------------------------------------------------------- */

static SPIPlanPtr plan_consume_update[2];
static SPIPlanPtr plan_consume_ledger[2];
static SPIPlanPtr plan_consume_burn[2];
static SPIPlanPtr plan_fold_escrow, plan_lend_escrow;
static SPIPlanPtr plan_claim_key[2];
static SPIPlanPtr plan_replay_key[2];
static SPIPlanPtr plan_finish_key[2];
static SPIPlanPtr plan_available[2];
static SPIPlanPtr plan_balance[2];
static SPIPlanPtr plan_rules;
static SPIPlanPtr plan_alloc_ensure;
static SPIPlanPtr plan_alloc_lock[2];
static SPIPlanPtr plan_alloc_update[2];
static SPIPlanPtr plan_alloc_ledger[2];

/*
 * The schema the calling SQL function belongs to. keel.so serves both: a
 * database still at 0.1.0 (before ALTER EXTENSION keel UPDATE) calls the
 * 0.1.0 symbols, whose statements name only 0.1.0 columns; 0.2.0's SQL binds
 * the *_v2 symbols. Plans are kept per schema.
 */
#define V1 0
#define V2 1
#define BY_SCHEMA(schema, v1_sql, v2_sql) ((schema) == V2 ? (v2_sql) : (v1_sql))

/* column_int64 returns column col (1-based) of row 0 of SPI_tuptable. */
static int64 column_int64(int col, bool *isnull) {
    Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, isnull);
    return *isnull ? 0 : DatumGetInt64(d);
}

static char *uuid_text(Datum account) {
    return DatumGetCString(DirectFunctionCall1(uuid_out, account));
}

/* outer_role_name is the role that called the SECURITY DEFINER function. */
static Datum outer_role_name(void) {
    return CStringGetTextDatum(GetUserNameFromId(GetOuterUserId(), false));
}

/* require_arg raises 22004 when argument argno (0-based) is NULL. */
static void require_arg(FunctionCallInfo fcinfo, int argno, const char *name) {
    if (PG_ARGISNULL(argno))
        ereport(ERROR,
                (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("%s must not be null", name),
                 errhint("Pass a value for the argument %s.", name)));
}

/*
 * raise_insufficient explains why the conditional UPDATE touched no row:
 * 22023 for an unknown type, else KL002 with what is available. Never returns.
 */
static void raise_insufficient(int schema, Datum account, Datum credit_type, int64 amount) {
    keel::RequireKnownCreditType(credit_type);

    Oid argtypes[2] = {UUIDOID, TEXTOID};
    Datum values[2] = {account, credit_type};
    SPIPlanPtr plan = saved_plan(&plan_balance[schema],
                                 BY_SCHEMA(schema,
                                           "SELECT allocated, used, 0::bigint "
                                           "FROM keel.credit_balances "
                                           "WHERE account = $1 AND credit_type = $2",
                                           "SELECT allocated, used, held FROM keel.credit_balances "
                                           "WHERE account = $1 AND credit_type = $2"),
                                 2, argtypes);
    run_plan(plan, values, NULL, true);
    char *type = TextDatumGetCString(credit_type);
    if (SPI_processed == 0)
        ereport(ERROR,
                (errcode(keel::kInsufficientCredits), errmsg("insufficient %s credits", type),
                 errdetail("Account %s has no %s credits allocated; the request was for %lld.",
                           uuid_text(account), type, (long long)amount),
                 errhint("Allocate credits with keel.allocate_plan_credits() first.")));
    bool isnull;
    int64 allocated = column_int64(1, &isnull);
    int64 used = column_int64(2, &isnull);
    int64 held = column_int64(3, &isnull);
    ereport(ERROR, (errcode(keel::kInsufficientCredits), errmsg("insufficient %s credits", type),
                    errdetail("Account %s has %lld %s credits available; the request was for %lld.",
                              uuid_text(account), (long long)(allocated - used - held), type,
                              (long long)amount)));
    pg_unreachable();
}

/* keel::FoldEscrow: credit_types.hpp. */
int64 keel::FoldEscrow(Datum account, Datum credit_type) {
    Oid types[2] = {UUIDOID, TEXTOID};
    Datum values[2] = {account, credit_type};
    SPIPlanPtr fold =
        saved_plan(&plan_fold_escrow, "SELECT keel.credit_fold_escrow($1, $2)", 2, types);
    run_plan(fold, values, NULL, false);
    bool isnull;
    return column_int64(1, &isnull);
}

/*
 * lend_escrow lends amount credits of (account, credit_type)'s balance to
 * escrow slot slot (keel.credit_lend_escrow); false when it lent nothing.
 */
static bool lend_escrow(Datum account, Datum credit_type, int slot, int64 amount) {
    Oid types[4] = {UUIDOID, TEXTOID, INT4OID, INT8OID};
    Datum values[4] = {account, credit_type, Int32GetDatum(slot), Int64GetDatum(amount)};
    SPIPlanPtr lend =
        saved_plan(&plan_lend_escrow, "SELECT keel.credit_lend_escrow($1, $2, $3, $4)", 4, types);
    run_plan(lend, values, NULL, false);
    bool isnull;
    Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    return !isnull && DatumGetBool(d);
}

/*
 * consume_common consumes amount credits of credit_type from account and
 * returns what remains available (credits). With an idempotency key, a key
 * already recorded with the same arguments returns the recorded result and
 * consumes nothing; with other arguments it raises KL003. Keys are recorded
 * only by consumptions that commit. Arguments are already checked for NULL
 * (description and key may be NULL) and amount > 0.
 */
static int64 consume_common(int schema, Datum account, Datum credit_type, int64 amount,
                            Datum description, bool description_null, Datum key, bool key_null) {
    int64 remaining = 0;

    if (!description_null &&
        VARSIZE_ANY_EXHDR(DatumGetTextPP(description)) > KEEL_MAX_DESCRIPTION_BYTES)
        ereport(
            ERROR,
            (errcode(ERRCODE_STRING_DATA_RIGHT_TRUNCATION), errmsg("description is too long"),
             errdetail("The description has %d bytes; at most %d are kept in the append-only "
                       "ledger.",
                       (int)VARSIZE_ANY_EXHDR(DatumGetTextPP(description)),
                       KEEL_MAX_DESCRIPTION_BYTES),
             errhint("Keep the details elsewhere and put their reference in the description.")));

    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");

    if (!key_null) {
        /*
         * Claim the key first: a concurrent caller with the same key waits on
         * the unique index until this transaction ends, then sees the row.
         */
        Oid argtypes[5] = {TEXTOID, UUIDOID, TEXTOID, INT8OID, TEXTOID};
        Datum values[5] = {key, account, credit_type, Int64GetDatum(amount), description};
        char nulls[6] = {' ', ' ', ' ', ' ', description_null ? 'n' : ' ', '\0'};
        SPIPlanPtr claim = saved_plan(
            &plan_claim_key[schema],
            BY_SCHEMA(schema,
                      "INSERT INTO keel.credit_idempotency "
                      "(idempotency_key, account, credit_type, amount, description) "
                      "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (idempotency_key) DO NOTHING",
                      "INSERT INTO keel.credit_idempotency "
                      "(idempotency_key, account, credit_type, amount, description) "
                      "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account, idempotency_key) DO "
                      "NOTHING"),
            5, argtypes);
        run_plan(claim, values, nulls, false);
        if (SPI_processed == 0) {
            SPIPlanPtr replay = saved_plan(
                &plan_replay_key[schema],
                BY_SCHEMA(
                    schema,
                    "SELECT remaining, account = $2 AND credit_type = $3 AND amount = $4 "
                    "AND description IS NOT DISTINCT FROM $5, account::text, credit_type, "
                    "amount, 'consume'::text "
                    "FROM keel.credit_idempotency WHERE idempotency_key = $1",
                    "SELECT remaining, operation = 'consume' AND credit_type = $3 "
                    "AND amount = $4 AND description IS NOT DISTINCT FROM $5, "
                    "account::text, credit_type, amount, operation "
                    "FROM keel.credit_idempotency WHERE account = $2 AND idempotency_key = $1"),
                5, argtypes);
            run_plan(replay, values, nulls, false);
            if (SPI_processed != 1)
                elog(ERROR, "idempotency key \"%s\" vanished", TextDatumGetCString(key));
            bool isnull;
            Datum same = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
            if (!DatumGetBool(same))
                ereport(ERROR,
                        (errcode(keel::kIdempotencyConflict),
                         errmsg("idempotency key \"%s\" was already used with other arguments",
                                TextDatumGetCString(key)),
                         errdetail("This account first used the key to %s %s %s credits.",
                                   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 6),
                                   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 5),
                                   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4)),
                         errhint("Use a new idempotency key for a different call; keys are "
                                 "scoped to their account and cover every credit function.")));
            remaining = column_int64(1, &isnull);
            if (isnull)
                elog(ERROR, "idempotency key \"%s\" has no recorded result",
                     TextDatumGetCString(key));
            SPI_finish();
            return remaining;
        }
    }

    /*
     * The one atomic step: never overdraws, whatever the concurrency. In
     * 0.2.0 the guarded UPDATE and the ledger INSERT are one statement (a
     * data-modifying CTE), so a consumption costs one executor run.
     */
    bool isnull;
    int64 allocated = 0, used = 0, held = 0, granted = 0, ledger_id = 0;
    bool from_slot = false;
    keel::ConsumeOutcome direct = keel::kNotHere;
    if (schema == V2) {
        /* the fast path (consume_direct.cpp); the SQL below when it does not apply */
        Datum text_description =
            description_null
                ? CStringGetTextDatum(psprintf("Consumed " INT64_FORMAT " %s credits", amount,
                                               TextDatumGetCString(credit_type)))
                : description;
        keel::ConsumeResult r;
        Datum actor = DirectFunctionCall1(
            namein, CStringGetDatum(GetUserNameFromId(GetOuterUserId(), false)));
        direct = keel::ConsumeDirect(account, credit_type, amount, text_description, key, key_null,
                                     actor, &r);
        if (direct == keel::kFold) {
            /* too few in the balance row, some lent to escrow slots: take them back
             * (the balance row stays locked), then decide on every credit */
            keel::FoldEscrow(account, credit_type);
            direct = keel::ConsumeDirect(account, credit_type, amount, text_description, key,
                                         key_null, actor, &r);
            if (direct == keel::kFold)
                elog(ERROR, "keel: escrow slots of a locked balance lent again");
        }
        if (direct == keel::kInsufficient)
            raise_insufficient(schema, account, credit_type, amount);
        if (direct == keel::kDone) {
            ledger_id = r.ledger_id;
            allocated = r.allocated;
            used = r.used;
            held = r.held;
            granted = r.granted;
            from_slot = r.from_slot;
            remaining = r.remaining;
            if (r.lend > 0 && lend_escrow(account, credit_type, r.slot, r.lend))
                keel::EscrowRemember(account, credit_type);
        }
    }
    if (schema == V2 && direct == keel::kNotHere) {
        Oid types[6] = {UUIDOID, TEXTOID, INT8OID, TEXTOID, TEXTOID, TEXTOID};
        Datum values[6] = {account,     credit_type, Int64GetDatum(amount),
                           description, key,         outer_role_name()};
        char nulls[7] = {' ', ' ', ' ', description_null ? 'n' : ' ', key_null ? 'n' : ' ',
                         ' ', '\0'};
        SPIPlanPtr step = saved_plan(
            &plan_consume_update[schema],
            "WITH u AS (UPDATE keel.credit_balances SET used = used + $3 "
            "WHERE account = $1 AND credit_type = $2 AND allocated - used - held >= $3 "
            "RETURNING allocated, used, held, granted, lent) "
            "INSERT INTO keel.credit_ledger (account, credit_type, kind, amount, allocated_after, "
            "used_after, held_after, description, idempotency_key, actor) "
            "SELECT $1, $2, 'consumption', $3, u.allocated, u.used, u.held, "
            "COALESCE($4, 'Consumed ' || $3 || ' ' || $2 || ' credits'), $5, $6 FROM u "
            "RETURNING id, allocated_after, used_after, held_after, (SELECT u.granted FROM u), "
            "(SELECT u.lent FROM u)",
            6, types);
        run_plan(step, values, nulls, false);
        if (SPI_processed == 0 && keel::FoldEscrow(account, credit_type) > 0)
            run_plan(step, values, nulls, false);
        if (SPI_processed == 0)
            raise_insufficient(schema, account, credit_type, amount);
        ledger_id = column_int64(1, &isnull);
        allocated = column_int64(2, &isnull);
        used = column_int64(3, &isnull);
        held = column_int64(4, &isnull);
        granted = column_int64(5, &isnull);
        remaining = allocated - used - held;
        if (column_int64(6, &isnull) > 0)
            remaining += keel::EscrowUnusedNow(account, credit_type);
    }
    if (schema == V2) {

        /* Grants burn before the plan allocation, in burn order (the balance
         * row lock taken above serializes every change of this account's
         * grants). A slot holds plan credits only: nothing to burn. */
        if (!from_slot && granted > 0) {
            Oid burn_types[3] = {UUIDOID, TEXTOID, INT8OID};
            Datum burn_values[3] = {account, credit_type, Int64GetDatum(Min(granted, amount))};
            SPIPlanPtr burn =
                saved_plan(&plan_consume_burn[schema],
                           "WITH n AS (SELECT keel.credit_burn_grants($1, $2, $3) AS n) "
                           "UPDATE keel.credit_balances SET granted = granted - n.n "
                           "FROM n WHERE account = $1 AND credit_type = $2",
                           3, burn_types);
            run_plan(burn, burn_values, NULL, false);
        }
    } else {
        /* 0.1.0's tables: the guarded UPDATE, then the ledger row. */
        Oid update_types[3] = {UUIDOID, TEXTOID, INT8OID};
        Datum update_values[3] = {account, credit_type, Int64GetDatum(amount)};
        SPIPlanPtr update = saved_plan(&plan_consume_update[schema],
                                       "UPDATE keel.credit_balances SET used = used + $3 "
                                       "WHERE account = $1 AND credit_type = $2 "
                                       "AND allocated - used >= $3 RETURNING allocated, used",
                                       3, update_types);
        run_plan(update, update_values, NULL, false);
        if (SPI_processed == 0)
            raise_insufficient(schema, account, credit_type, amount);
        allocated = column_int64(1, &isnull);
        used = column_int64(2, &isnull);
        remaining = allocated - used;
        Oid ledger_types[8] = {UUIDOID, TEXTOID, INT8OID, INT8OID,
                               INT8OID, TEXTOID, TEXTOID, TEXTOID};
        Datum ledger_values[8] = {account,
                                  credit_type,
                                  Int64GetDatum(amount),
                                  Int64GetDatum(allocated),
                                  Int64GetDatum(used),
                                  description,
                                  key,
                                  outer_role_name()};
        char ledger_nulls[9] = {
            ' ', ' ', ' ', ' ', ' ', description_null ? 'n' : ' ', key_null ? 'n' : ' ', ' ', '\0'};
        SPIPlanPtr ledger =
            saved_plan(&plan_consume_ledger[schema],
                       "INSERT INTO keel.credit_ledger (account, credit_type, kind, amount, "
                       "allocated_after, used_after, description, idempotency_key, actor) "
                       "VALUES ($1, $2, 'consumption', $3, $4, $5, "
                       "COALESCE($6, 'Consumed ' || $3 || ' ' || $2 || ' credits'), $7, $8) "
                       "RETURNING id",
                       8, ledger_types);
        run_plan(ledger, ledger_values, ledger_nulls, false);
        ledger_id = column_int64(1, &isnull);
    }

    if (!key_null) {
        Oid finish_types[4] = {TEXTOID, INT8OID, INT8OID, UUIDOID};
        Datum finish_values[4] = {key, Int64GetDatum(remaining), Int64GetDatum(ledger_id), account};
        SPIPlanPtr finish = saved_plan(&plan_finish_key[schema],
                                       BY_SCHEMA(schema,
                                                 "UPDATE keel.credit_idempotency "
                                                 "SET remaining = $2, ledger_id = $3 "
                                                 "WHERE idempotency_key = $1",
                                                 "UPDATE keel.credit_idempotency "
                                                 "SET remaining = $2, ledger_id = $3 "
                                                 "WHERE account = $4 AND idempotency_key = $1"),
                                       4, finish_types);
        run_plan(finish, finish_values, NULL, false);
    }

    SPI_finish();
    return remaining;
}

/* check_amount raises 22023 unless amount is positive. */
static void check_amount(int64 amount) {
    if (amount <= 0)
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("credit amount must be positive"),
                 errdetail("The amount was %lld.", (long long)amount),
                 errhint("Consume at least 1 credit.")));
}

/* check_key raises 22023 for an empty or overlong idempotency key. */
static void check_key(Datum key) {
    text *t = DatumGetTextPP(key);
    int len = VARSIZE_ANY_EXHDR(t);
    if (len == 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("idempotency key must not be empty"),
                        errhint("Pass NULL for no key, or a unique string such as a request id.")));
    if (len > KEEL_MAX_IDEMPOTENCY_KEY_BYTES)
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("idempotency key is too long"),
                 errdetail("The key has %d bytes; at most %d are allowed.", len,
                           KEEL_MAX_IDEMPOTENCY_KEY_BYTES)));
}

/* SQL-callable functions: C linkage, exported (PGDLLEXPORT). */
extern "C" {

/*
 * keel.consume_credits(account uuid, credit_type text, amount bigint,
 *                      description text DEFAULT NULL,
 *                      idempotency_key text DEFAULT NULL) -> bigint
 * Consumes amount credits (> 0) of credit_type from account in one atomic
 * conditional UPDATE, writes one ledger row, and returns the credits that
 * remain available. Errors: 22004 NULL account/type/amount; 22023 unknown
 * type (HINT lists the known ones), amount <= 0, empty or overlong key (255
 * bytes); 22001 description over 1,024 bytes; KL002
 * not enough credits or none allocated (nothing changes); KL003 key reused by
 * the same account with other arguments (keys are scoped to their account;
 * a caller holding a transaction open on a key makes that account's other
 * callers with the same key wait until it ends). EXECUTE is not granted to
 * PUBLIC. Rule: seed 003 step 2.2 consume_specific_credits, made
 * atomic.
 */
static Datum consume_credits_body(FunctionCallInfo fcinfo, int schema) {
    keel::RequireWritable("keel.consume_credits()");
    require_arg(fcinfo, 0, "account");
    require_arg(fcinfo, 1, "credit_type");
    require_arg(fcinfo, 2, "amount");
    int64 amount = PG_GETARG_INT64(2);
    check_amount(amount);
    bool key_null = PG_ARGISNULL(4);
    if (!key_null)
        check_key(PG_GETARG_DATUM(4));
    int64 remaining =
        consume_common(schema, PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), amount,
                       PG_ARGISNULL(3) ? (Datum)0 : PG_GETARG_DATUM(3), PG_ARGISNULL(3),
                       key_null ? (Datum)0 : PG_GETARG_DATUM(4), key_null);
    PG_RETURN_INT64(remaining);
}

/*
 * keel.consume_specific_credits(uuid, text, integer, text DEFAULT NULL)
 * -> boolean: the seed's own signature (seed 003 step 2.2), drop-in. Returns
 * true after consuming; raises instead of overdrawing, with the errors of
 * keel.consume_credits (KL002 where the seed raised 'Insufficient ...', 22023
 * where it raised 'Invalid credit type', and also for amount <= 0, which the
 * seed let through).
 */
static Datum consume_specific_body(FunctionCallInfo fcinfo, int schema) {
    keel::RequireWritable("keel.consume_specific_credits()");
    require_arg(fcinfo, 0, "account");
    require_arg(fcinfo, 1, "credit_type");
    require_arg(fcinfo, 2, "amount");
    int64 amount = PG_GETARG_INT32(2);
    check_amount(amount);
    (void)consume_common(schema, PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), amount,
                         PG_ARGISNULL(3) ? (Datum)0 : PG_GETARG_DATUM(3), PG_ARGISNULL(3), (Datum)0,
                         true);
    PG_RETURN_BOOL(true);
}

/*
 * keel.get_available_credits(account uuid, credit_type text) -> bigint
 * Credits of credit_type that account may still consume (allocated - used);
 * 0 for an account with nothing allocated (as the seed's COALESCE). Errors:
 * 22004 NULL argument; 22023 unknown credit type (the seed returned 0).
 */
static Datum get_available_body(FunctionCallInfo fcinfo, int schema) {
    require_arg(fcinfo, 0, "account");
    require_arg(fcinfo, 1, "credit_type");
    Datum account = PG_GETARG_DATUM(0);
    Datum credit_type = PG_GETARG_DATUM(1);

    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");
    Oid argtypes[2] = {UUIDOID, TEXTOID};
    Datum values[2] = {account, credit_type};
    SPIPlanPtr plan =
        saved_plan(&plan_available[schema],
                   BY_SCHEMA(schema,
                             "SELECT allocated - used FROM keel.credit_balances "
                             "WHERE account = $1 AND credit_type = $2",
                             "SELECT allocated - used - held FROM keel.credit_balances "
                             "WHERE account = $1 AND credit_type = $2"),
                   2, argtypes);
    run_plan(plan, values, NULL, true);
    int64 available = 0;
    if (SPI_processed == 0)
        keel::RequireKnownCreditType(credit_type);
    else {
        bool isnull;
        available = column_int64(1, &isnull);
    }
    SPI_finish();
    PG_RETURN_INT64(available);
}

/* One rule of keel.credit_plans, copied out of SPI's tuple table. */
typedef struct PlanRuleRow {
    Datum credit_type; /* text, palloc'd copy */
    bool has_fixed;
    int64 fixed_amount;
    char *share; /* numeric as text, NULL under a fixed rule */
    int64 floor_amount;
    int64 amount; /* computed */
} PlanRuleRow;

/*
 * keel.allocate_plan_credits(account uuid, plan text,
 *                            total_credits bigint DEFAULT 0)
 * -> TABLE(credit_type text, allocated bigint, used bigint, available bigint)
 * Sets account's allocation of each credit type to what plan gives (the rows
 * of keel.credit_plans for plan, or those of plan '*' when plan has none),
 * keeps what was used, writes one ledger row per type (amount = change of the
 * allocation) and returns the resulting balances. NULL total_credits counts as
 * 0 (seed 003 step 2.2, COALESCE). Errors: 22004 NULL account or plan; 22023
 * empty plan, negative total, no rules for the plan; 22003 allocation beyond
 * bigint; 23514 new allocation below credits already used (the seed's CHECK
 * used <= allocated refused this too).
 */
static Datum allocate_plan_body(FunctionCallInfo fcinfo, int schema) {
    keel::RequireWritable("keel.allocate_plan_credits()");
    require_arg(fcinfo, 0, "account");
    require_arg(fcinfo, 1, "plan");
    Datum account = PG_GETARG_DATUM(0);
    Datum plan_name = PG_GETARG_DATUM(1);
    int64 total = PG_ARGISNULL(2) ? 0 : PG_GETARG_INT64(2);
    char *plan_cstr = TextDatumGetCString(plan_name);
    if (plan_cstr[0] == '\0')
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("plan must not be empty"),
                        errhint("Pass a plan name such as enterprise, premium or basic.")));
    if (total < 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("total credits must not be negative"),
                        errdetail("The total was %lld.", (long long)total),
                        errhint("Pass 0 or a positive number of credits.")));

    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo *rsinfo = (ReturnSetInfo *)fcinfo->resultinfo;

    if (SPI_connect() != SPI_OK_CONNECT)
        elog(ERROR, "SPI_connect failed");

    /* The plan's own rules, else those of '*' (the seed's ELSE branch). */
    Oid rule_types[1] = {TEXTOID};
    Datum rule_values[1] = {plan_name};
    SPIPlanPtr rules = saved_plan(
        &plan_rules,
        "SELECT credit_type, fixed_amount, share::text, floor_amount FROM keel.credit_plans "
        "WHERE plan = CASE WHEN EXISTS (SELECT FROM keel.credit_plans WHERE plan = $1) "
        "THEN $1 ELSE '*' END ORDER BY credit_type",
        1, rule_types);
    run_plan(rules, rule_values, NULL, true);
    uint64 nrules = SPI_processed;
    if (nrules == 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("no credit rules for plan \"%s\"", plan_cstr),
                        errdetail("keel.credit_plans has no rows for plan \"%s\" and none for the "
                                  "fallback plan '*'.",
                                  plan_cstr),
                        errhint("Add the plan's rules to keel.credit_plans.")));

    PlanRuleRow *rows = (PlanRuleRow *)palloc0(sizeof(PlanRuleRow) * nrules);
    SPITupleTable *tuptable = SPI_tuptable;
    for (uint64 i = 0; i < nrules; i++) {
        HeapTuple tuple = tuptable->vals[i];
        TupleDesc desc = tuptable->tupdesc;
        bool isnull;
        rows[i].credit_type = CStringGetTextDatum(SPI_getvalue(tuple, desc, 1));
        Datum fixed = SPI_getbinval(tuple, desc, 2, &isnull);
        rows[i].has_fixed = !isnull;
        rows[i].fixed_amount = isnull ? 0 : DatumGetInt64(fixed);
        rows[i].share = SPI_getvalue(tuple, desc, 3);
        Datum floor_amount = SPI_getbinval(tuple, desc, 4, &isnull);
        rows[i].floor_amount = isnull ? 0 : DatumGetInt64(floor_amount);
    }
    /* All arithmetic first, so a bad rule changes nothing. */
    for (uint64 i = 0; i < nrules; i++) {
        PlanRuleRow *row = &rows[i];
        row->amount = keel::InvokeCpp([row, total]() {
            return keel::credits::AllocationFor(row->has_fixed, row->fixed_amount, row->share,
                                                row->floor_amount, total);
        });
    }

    Datum actor = outer_role_name();
    for (uint64 i = 0; i < nrules; i++) {
        PlanRuleRow *row = &rows[i];
        bool isnull;

        /* Make sure the balance row exists, then lock it (types in order). */
        Oid key_types[2] = {UUIDOID, TEXTOID};
        Datum key_values[2] = {account, row->credit_type};
        SPIPlanPtr ensure = saved_plan(&plan_alloc_ensure,
                                       "INSERT INTO keel.credit_balances (account, credit_type) "
                                       "VALUES ($1, $2) ON CONFLICT (account, credit_type) "
                                       "DO NOTHING",
                                       2, key_types);
        run_plan(ensure, key_values, NULL, false);
        /* 0.2.0: what escrow slots did not use goes back to the balance first, so
         * that used below counts only consumed credits */
        if (schema == V2)
            keel::FoldEscrow(account, row->credit_type);
        SPIPlanPtr lock =
            saved_plan(&plan_alloc_lock[schema],
                       BY_SCHEMA(schema,
                                 "SELECT allocated, used, 0::bigint, 0::bigint, "
                                 "allocated FROM keel.credit_balances "
                                 "WHERE account = $1 AND credit_type = $2 FOR UPDATE",
                                 "SELECT allocated, used, held, granted, plan_allocated "
                                 "FROM keel.credit_balances "
                                 "WHERE account = $1 AND credit_type = $2 FOR UPDATE"),
                       2, key_types);
        run_plan(lock, key_values, NULL, false);
        if (SPI_processed != 1)
            elog(ERROR, "credit balance row vanished");
        int64 old_allocated = column_int64(1, &isnull);
        int64 used = column_int64(2, &isnull);
        int64 held = column_int64(3, &isnull);
        int64 granted = column_int64(4, &isnull);
        int64 old_plan = column_int64(5, &isnull);
        /* The plan sets its own part; grants stay (allocated = plan + grants). */
        int64 grants_part = old_allocated - old_plan;
        int64 new_allocated;
        if (pg_add_s64_overflow(grants_part, row->amount, &new_allocated))
            ereport(ERROR, (errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
                            errmsg("allocation of %s credits is beyond bigint",
                                   TextDatumGetCString(row->credit_type))));
        int64 needed = used + Max(held, granted);
        if (new_allocated < needed)
            ereport(ERROR,
                    (errcode(ERRCODE_CHECK_VIOLATION),
                     errmsg("plan \"%s\" allocates fewer %s credits than account %s already used",
                            plan_cstr, TextDatumGetCString(row->credit_type), uuid_text(account)),
                     grants_part == 0 && held == 0 && granted == 0
                         ? errdetail("The plan allocates %lld credits; %lld were already used.",
                                     (long long)row->amount, (long long)used)
                         : errdetail("The plan allocates %lld credits and grants add %lld; %lld "
                                     "were already used, %lld are held and %lld granted credits "
                                     "are unburned.",
                                     (long long)row->amount, (long long)grants_part,
                                     (long long)used, (long long)held, (long long)granted),
                     errhint("Allocate a plan or total that covers the credits already used.")));

        Oid update_types[4] = {UUIDOID, TEXTOID, INT8OID, INT8OID};
        Datum update_values[4] = {account, row->credit_type, Int64GetDatum(new_allocated),
                                  Int64GetDatum(row->amount)};
        SPIPlanPtr update = saved_plan(
            &plan_alloc_update[schema],
            BY_SCHEMA(schema,
                      "UPDATE keel.credit_balances SET allocated = $3 "
                      "WHERE account = $1 AND credit_type = $2",
                      "UPDATE keel.credit_balances SET allocated = $3, plan_allocated = $4 "
                      "WHERE account = $1 AND credit_type = $2"),
            4, update_types);
        run_plan(update, update_values, NULL, false);

        Oid ledger_types[9] = {UUIDOID, TEXTOID, INT8OID, INT8OID, INT8OID,
                               TEXTOID, INT8OID, TEXTOID, INT8OID};
        Datum ledger_values[9] = {account,
                                  row->credit_type,
                                  Int64GetDatum(new_allocated - old_allocated),
                                  Int64GetDatum(new_allocated),
                                  Int64GetDatum(used),
                                  plan_name,
                                  Int64GetDatum(total),
                                  actor,
                                  Int64GetDatum(held)};
        SPIPlanPtr ledger = saved_plan(
            &plan_alloc_ledger[schema],
            BY_SCHEMA(schema,
                      "INSERT INTO keel.credit_ledger (account, credit_type, kind, amount, "
                      "allocated_after, used_after, plan, total_credits, description, actor) "
                      "VALUES ($1, $2, 'allocation', $3, $4, $5, $6, $7, "
                      "'Multi-credit allocation for plan: ' || $6, $8)",
                      "INSERT INTO keel.credit_ledger (account, credit_type, kind, amount, "
                      "allocated_after, used_after, plan, total_credits, description, actor, "
                      "held_after) VALUES ($1, $2, 'allocation', $3, $4, $5, $6, $7, "
                      "'Multi-credit allocation for plan: ' || $6, $8, $9)"),
            9, ledger_types);
        run_plan(ledger, ledger_values, NULL, false);

        Datum out[4] = {row->credit_type, Int64GetDatum(new_allocated), Int64GetDatum(used),
                        Int64GetDatum(new_allocated - used - held)};
        bool out_nulls[4] = {false, false, false, false};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, out, out_nulls);
    }

    SPI_finish();
    return (Datum)0;
}

/*
 * The exported entry points: the 0.1.0 symbols serve a database whose keel
 * is still at 0.1.0; sql/keel--0.2.0.sql binds the _v2 symbols.
 */
#define KEEL_CREDIT_ENTRY(symbol, body, schema)                                                    \
    PG_FUNCTION_INFO_V1(symbol);                                                                   \
    PGDLLEXPORT Datum symbol(PG_FUNCTION_ARGS);                                                    \
    Datum symbol(PG_FUNCTION_ARGS) {                                                               \
        return body(fcinfo, schema);                                                               \
    }

KEEL_CREDIT_ENTRY(keel_consume_credits, consume_credits_body, V1)
KEEL_CREDIT_ENTRY(keel_consume_credits_v2, consume_credits_body, V2)
KEEL_CREDIT_ENTRY(keel_consume_specific_credits, consume_specific_body, V1)
KEEL_CREDIT_ENTRY(keel_consume_specific_credits_v2, consume_specific_body, V2)
KEEL_CREDIT_ENTRY(keel_get_available_credits, get_available_body, V1)
/* keel_get_available_credits_v2 reads the index directly: balance_read.cpp */
KEEL_CREDIT_ENTRY(keel_allocate_plan_credits, allocate_plan_body, V1)
KEEL_CREDIT_ENTRY(keel_allocate_plan_credits_v2, allocate_plan_body, V2)

/*
 * keel.credit_ledger_row_ok(kind text, amount bigint, refund_of bigint) ->
 * boolean, IMMUTABLE: the one CHECK of keel.credit_ledger (0.2.0). kind is
 * one of allocation, grant, expiry, consumption, refund, hold, release,
 * escrow; amount is > 0 except for allocation (any), expiry (< 0) and
 * escrow (not 0: lent to a slot, or given back); refund_of is
 * set exactly for refunds. A C function keeps the per-statement cost of the
 * constraint to one call: PostgreSQL re-reads a CHECK expression from its
 * stored node string on every INSERT statement, and an ARRAY[...] of kinds
 * is hundreds of tokens (measured: the four SQL CHECKs cost a quarter of a
 * consumption). NULL kind or amount: false (the columns are NOT NULL).
 */
PG_FUNCTION_INFO_V1(keel_credit_ledger_row_ok);
PGDLLEXPORT Datum keel_credit_ledger_row_ok(PG_FUNCTION_ARGS);
Datum keel_credit_ledger_row_ok(PG_FUNCTION_ARGS) {
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
        PG_RETURN_BOOL(false);
    text *kind_text = PG_GETARG_TEXT_PP(0);
    const char *kind = VARDATA_ANY(kind_text);
    int len = VARSIZE_ANY_EXHDR(kind_text);
    int64 amount = PG_GETARG_INT64(1);
    bool refund_of = !PG_ARGISNULL(2);
#define KIND_IS(k) (len == (int)sizeof(k) - 1 && memcmp(kind, k, sizeof(k) - 1) == 0)
    bool ok;
    if (KIND_IS("allocation"))
        ok = true;
    else if (KIND_IS("expiry"))
        ok = amount < 0;
    else if (KIND_IS("escrow"))
        ok = amount != 0; /* lent to a slot (> 0) or given back (< 0) */
    else if (KIND_IS("consumption") || KIND_IS("grant") || KIND_IS("refund") || KIND_IS("hold") ||
             KIND_IS("release"))
        ok = amount > 0;
    else
        ok = false;
#undef KIND_IS
    PG_RETURN_BOOL(ok && refund_of == (len == 6 && memcmp(kind, "refund", 6) == 0));
}

/*
 * keel.credit_balance_row_ok(allocated, used, held, granted, plan_allocated)
 *   -> boolean: the CHECK of keel.credit_balances (0.2.0), all in credits:
 *   every part >= 0, used <= allocated, used + held <= allocated (compared
 *   without overflow). One C call in place of two SQL CHECKs, for the
 *   reason given at keel_credit_ledger_row_ok. NULL anywhere: false.
 */
PG_FUNCTION_INFO_V1(keel_credit_balance_row_ok);
PGDLLEXPORT Datum keel_credit_balance_row_ok(PG_FUNCTION_ARGS);
Datum keel_credit_balance_row_ok(PG_FUNCTION_ARGS) {
    for (int arg = 0; arg < 5; arg++)
        if (PG_ARGISNULL(arg))
            PG_RETURN_BOOL(false);
    int64 allocated = PG_GETARG_INT64(0);
    int64 used = PG_GETARG_INT64(1);
    int64 held = PG_GETARG_INT64(2);
    int64 granted = PG_GETARG_INT64(3);
    int64 plan_allocated = PG_GETARG_INT64(4);
    /* with 0 <= used <= allocated, allocated - used cannot overflow */
    PG_RETURN_BOOL(used >= 0 && held >= 0 && granted >= 0 && plan_allocated >= 0 &&
                   used <= allocated && held <= allocated - used);
}

/*
 * keel.require_writable(function text) -> void: 25006 on a standby or in a
 * read-only transaction, naming function (pg/writable.hpp); the first step
 * of keel's mutating PL/pgSQL functions. NULL function: "keel".
 */
PG_FUNCTION_INFO_V1(keel_require_writable);
PGDLLEXPORT Datum keel_require_writable(PG_FUNCTION_ARGS);
Datum keel_require_writable(PG_FUNCTION_ARGS) {
    keel::RequireWritable(PG_ARGISNULL(0) ? "keel" : TextDatumGetCString(PG_GETARG_DATUM(0)));
    PG_RETURN_VOID();
}

/*
 * keel.credit_actor() -> name: the role that called keel's SECURITY DEFINER
 * credit function (GetOuterUserId(): SET ROLE counts, the definer does not),
 * recorded as the ledger's actor.
 */
PG_FUNCTION_INFO_V1(keel_credit_actor);
PGDLLEXPORT Datum keel_credit_actor(PG_FUNCTION_ARGS);
Datum keel_credit_actor(PG_FUNCTION_ARGS) {
    Name result = (Name)palloc0(NAMEDATALEN);
    namestrcpy(result, GetUserNameFromId(GetOuterUserId(), false));
    PG_RETURN_NAME(result);
}

/*
 * keel.credit_ledger_append_only() -> trigger: BEFORE UPDATE OR DELETE (row)
 * and BEFORE TRUNCATE (statement) on keel.credit_ledger. Always raises 42501:
 * the ledger is append-only whoever asks, so balances always reconcile with it.
 */
PG_FUNCTION_INFO_V1(keel_credit_ledger_append_only);
PGDLLEXPORT Datum keel_credit_ledger_append_only(PG_FUNCTION_ARGS);
Datum keel_credit_ledger_append_only(PG_FUNCTION_ARGS) {
    keel::RefuseAppendOnlyChange(fcinfo, "keel.credit_ledger_append_only()", "keel.credit_ledger",
                                 "ledger",
                                 "Record a correction as a new entry, for example with "
                                 "keel.allocate_plan_credits().");
}

} // extern "C"
