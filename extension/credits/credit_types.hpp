/*
 * extension/credits/credit_types.hpp
 *   What every credit function checks and reads the same way: the known
 *   credit types, the size limits of keys and descriptions, and the unused
 *   allowance of an account's escrow slots. PostgreSQL-facing, plain C
 *   style; include after postgres.h.
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"
}

/* Longest idempotency key accepted, in bytes (keeps the btree key small). */
#define KEEL_MAX_IDEMPOTENCY_KEY_BYTES 255
/* Longest ledger description accepted, in bytes: the ledger is append-only, so every byte stays. */
#define KEEL_MAX_DESCRIPTION_BYTES 1024

namespace keel {

/*
 * RequireKnownCreditType returns when credit_type (text) is a row of
 * keel.credit_types, read straight from the table with the active snapshot
 * (no SPI, no table privilege needed); else raises 22023 "unknown credit
 * type", with a HINT listing the known ones in byte order.
 */
void RequireKnownCreditType(Datum credit_type);

/*
 * FoldEscrow gives the unused allowance of every escrow slot of (account,
 * credit_type) back to its balance row (keel.credit_fold_escrow through SPI,
 * which locks the row) and returns how many credits came back. The caller is
 * connected to SPI. 0.2.0 only (credits.cpp).
 */
int64 FoldEscrow(Datum account, Datum credit_type);

/*
 * EscrowUnused returns the unused allowance, in credits, of every escrow
 * slot of (account uuid, credit_type text): the sum of allowance - used
 * over the rows of keel.credit_escrow, read through its primary-key index
 * escrow_pkey with snap. allowance and used are the columns' attribute
 * numbers in escrow. The balance row's used counts these credits as lent,
 * so available credits are the balance's plus these. Raises nothing of its
 * own. The one reading of the slots for get_available_credits, the fast
 * path and the SQL path (balance_read.cpp); docs/credits.md, "One hot
 * account".
 */
int64 EscrowUnused(Relation escrow, Relation escrow_pkey, AttrNumber allowance, AttrNumber used,
                   Datum account, Datum credit_type, Snapshot snap);

/*
 * EscrowUnusedNow is EscrowUnused on keel.credit_escrow with the latest
 * snapshot: called with the balance row locked, it sees every fold and
 * lend committed before the lock, and none can commit until the lock is
 * released. Errors: 42P01 when keel 0.2.0's tables are missing.
 */
int64 EscrowUnusedNow(Datum account, Datum credit_type);

} // namespace keel
