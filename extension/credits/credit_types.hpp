/*
 * extension/credits/credit_types.hpp
 *   What every credit function checks the same way: the known credit types
 *   and the size limits of keys and descriptions. PostgreSQL-facing, plain C
 *   style; include after postgres.h.
 */
#pragma once

extern "C" {
#include "postgres.h"
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

} // namespace keel
