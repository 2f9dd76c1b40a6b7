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
 * The pieces, for keel.consume_credits_batch: DirectBegin (NULL when the
 * fast path does not apply; max_rows: how many balance rows will be
 * locked), DirectLock (finds and locks one balance row, false when there
 * is none; rows must be locked in one global order, as the batch sorts
 * them, so that writers never wait on each other in a cycle), DirectSetUsed
 * (writes the locked row's new used), DirectLedger (one 'consumption' row;
 * returns its id), DirectEnd (ends the write; later commands of the
 * transaction see it).
 */
struct DirectWrite;
struct DirectBalance {
    int handle;
    int64 allocated, used, held, granted;
};
DirectWrite *DirectBegin(int max_rows);
bool DirectLock(DirectWrite *w, Datum account, Datum credit_type, DirectBalance *out);
void DirectSetUsed(DirectWrite *w, int handle, int64 used);
int64 DirectLedger(DirectWrite *w, Datum account, Datum credit_type, int64 amount,
                   int64 allocated_after, int64 used_after, int64 held_after, Datum description,
                   Datum key, bool key_null, Datum actor);
void DirectEnd(DirectWrite *w);

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
