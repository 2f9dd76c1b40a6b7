/*
 * extension/credits/consume_direct.hpp
 *   The fast path of a consumption (consume_direct.cpp). PostgreSQL-facing;
 *   include after postgres.h.
 */
#pragma once

namespace keel {

/* kDone: consumed; kInsufficient: no balance row, or not enough available
 * (nothing written; the caller explains it); kNotHere: the fast path does not
 * apply, run the SQL. */
enum ConsumeOutcome { kDone, kInsufficient, kNotHere };

/* The balance row after the consumption, in credits, and the ledger row's id. */
struct ConsumeResult {
    int64 ledger_id, allocated, used, held, granted;
};

/*
 * ConsumeDirect consumes amount (> 0) credits of credit_type from account:
 * the balance row's used grows by amount if allocated - used - held >=
 * amount, and one 'consumption' ledger row records it with description
 * (text, not NULL), key (text, or key_null) and actor (name). Errors: those
 * of the row's constraints (23514) and of the lock wait (deadlock 40P01,
 * lock_timeout 55P03, cancel 57014).
 */
ConsumeOutcome ConsumeDirect(Datum account, Datum credit_type, int64 amount, Datum description,
                             Datum key, bool key_null, Datum actor, ConsumeResult *out);

} // namespace keel
