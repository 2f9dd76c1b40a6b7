/*
 * extension/credits/consume_direct.hpp
 *   The fast path of a consumption (consume_direct.cpp). PostgreSQL-facing;
 *   include after postgres.h.
 */
#pragma once

namespace keel {

/* kDone: consumed; kInsufficient: no balance row, or not enough available
 * (nothing written; the caller explains it); kNotHere: the fast path does not
 * apply, run the SQL; kFold: not enough in the balance row, but it has credits
 * lent to escrow slots: fold them (keel.credit_fold_escrow) and call again. */
enum ConsumeOutcome { kDone, kInsufficient, kNotHere, kFold };

/* The balance row after the consumption, in credits, and the ledger row's id.
 * remaining: the credits available after it, as get_available_credits counts
 * them (the balance row and the unused allowance of every escrow slot).
 * from_slot: taken from this backend's escrow slot (remaining as of the
 * call's snapshot); allocated, used, held and granted are then 0 and no
 * grant burns. lend > 0:
 * the balance row was locked by another transaction when this call came, so
 * the caller should lend lend credits to escrow slot slot
 * (keel.credit_lend_escrow) and call EscrowRemember on success. */
struct ConsumeResult {
    int64 ledger_id, allocated, used, held, granted;
    int64 remaining, lend;
    bool from_slot;
    int slot;
};

/* EscrowRemember notes that this backend's slot of (account, credit_type)
 * has an allowance, so that the next consumption of it tries the slot first. */
void EscrowRemember(Datum account, Datum credit_type);

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
    int64 allocated, used, held, granted, lent;
};
DirectWrite *DirectBegin(int max_rows);
bool DirectLock(DirectWrite *w, Datum account, Datum credit_type, DirectBalance *out);
void DirectSetUsed(DirectWrite *w, int handle, int64 used);
int64 DirectLedger(DirectWrite *w, Datum account, Datum credit_type, int64 amount,
                   int64 allocated_after, int64 used_after, int64 held_after, Datum description,
                   Datum key, bool key_null, Datum actor, int escrow_slot = -1);
void DirectEnd(DirectWrite *w);

/*
 * ConsumeDirect consumes amount (> 0) credits of credit_type from account:
 * from this backend's escrow slot when it has enough (its used grows by
 * amount), else the balance row's used grows by amount if allocated - used
 * - held >= amount; one 'consumption' ledger row records it with
 * description (text, not NULL), key (text, or key_null) and actor (name).
 * Errors: those of the rows' constraints (23514) and of the lock wait
 * (deadlock 40P01, lock_timeout 55P03, cancel 57014).
 */
ConsumeOutcome ConsumeDirect(Datum account, Datum credit_type, int64 amount, Datum description,
                             Datum key, bool key_null, Datum actor, ConsumeResult *out);

} // namespace keel
