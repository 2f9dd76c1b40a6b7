/*
 * extension/credits/plan_logic.hpp
 *   The arithmetic of plan-based credit allocation, free of PostgreSQL so it is
 *   unit-tested without a server (tests/unit/credits_plan_test.cpp).
 *
 *   Rule (seed 003, step 2.2, allocate_plan_credits): the plans enterprise and
 *   premium get fixed amounts per credit type; any other plan gets
 *       GREATEST(COALESCE(total_credits, 0) * share, floor)::INTEGER
 *   per type (ai 0.4/500, whatsapp 0.3/300, email 0.3/1000, sms 0.1/100).
 *   keel keeps these rules as rows of keel.credit_plans; this file computes one
 *   rule. The numeric -> integer cast of PostgreSQL rounds half away from zero
 *   (numeric.c, numeric_int4 -> numericvar_to_int64 rounds), and so does this.
 *
 *   Errors are thrown as keel::Error: 22023 for invalid input (negative total,
 *   malformed or negative share, negative floor or fixed amount), 22003 when
 *   the result does not fit in bigint. Amounts are credits (whole units).
 */
#pragma once

#include "pg/error.hpp"

#include <cstdint>
#include <string_view>

namespace keel::credits {

/*
 * Share is a non-negative decimal fraction numerator / 10^scale, kept exact
 * (0.4 is {4, 1}); scale is at most kMaxShareScale.
 */
struct Share {
    int64_t numerator = 0;
    int scale = 0;
};

constexpr int kMaxShareScale = 18;

/*
 * ParseShare reads a share written the way PostgreSQL prints a numeric
 * ("0.4", "0.30", "1", ".5"). Throws keel::Error 22023 for anything else:
 * a sign, an exponent, NaN, more than kMaxShareScale decimals, or a value
 * whose digits do not fit in int64.
 */
Share ParseShare(std::string_view text);

/*
 * ShareAmount returns GREATEST(total * share, floor) rounded half away from
 * zero, exactly as the seed's expression evaluates in numeric (total and floor
 * in credits). Throws 22023 if total or floor is negative, 22003 if the
 * result exceeds bigint.
 */
int64_t ShareAmount(int64_t total, Share share, int64_t floor);

/*
 * AllocationFor applies one row of keel.credit_plans: a fixed rule
 * (has_fixed) returns fixed_amount whatever total is; otherwise the share
 * rule with share_text (numeric text) and floor. total is the plan's total
 * credits (NULL already mapped to 0, the seed's COALESCE). Throws 22023 for a
 * negative total (also under a fixed rule, so bad input never passes
 * silently), a negative fixed amount or floor, or a malformed share; 22003 on
 * overflow.
 */
int64_t AllocationFor(bool has_fixed, int64_t fixed_amount, const char *share_text, int64_t floor,
                      int64_t total);

} // namespace keel::credits
