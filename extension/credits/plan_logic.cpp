/*
 * extension/credits/plan_logic.cpp
 *   Plan-based allocation arithmetic (seed 003, step 2.2); see plan_logic.hpp.
 *   PostgreSQL-free: may throw keel::Error, never sees postgres.h.
 */
#include "credits/plan_logic.hpp"

#include <limits>
#include <string>

#include "pg/cpp_only.hpp"

namespace keel::credits {

namespace {

[[noreturn]] void BadShare(std::string_view text, const std::string &why) {
    throw Error(kInvalidParameterValue, "invalid credit share \"" + std::string(text) + "\"", why,
                "A share is a non-negative decimal such as 0.4.");
}

} // namespace

Share ParseShare(std::string_view text) {
    if (text.empty())
        BadShare(text, "The share is empty.");
    Share share;
    bool seen_point = false;
    bool seen_digit = false;
    for (char c : text) {
        if (c == '.') {
            if (seen_point)
                BadShare(text, "The share has more than one decimal point.");
            seen_point = true;
            continue;
        }
        if (c < '0' || c > '9')
            BadShare(text, "Only digits and one decimal point are allowed.");
        seen_digit = true;
        if (seen_point) {
            if (share.scale == kMaxShareScale)
                BadShare(text, "The share has more than " + std::to_string(kMaxShareScale) +
                                   " decimal places.");
            ++share.scale;
        }
        int digit = c - '0';
        if (share.numerator > (std::numeric_limits<int64_t>::max() - digit) / 10)
            BadShare(text, "The share has too many digits.");
        share.numerator = share.numerator * 10 + digit;
    }
    if (!seen_digit)
        BadShare(text, "The share has no digits.");
    return share;
}

int64_t ShareAmount(int64_t total, Share share, int64_t floor) {
    if (total < 0)
        throw Error(kInvalidParameterValue, "total credits must not be negative",
                    "The total was " + std::to_string(total) + ".",
                    "Pass 0 or a positive number of credits.");
    if (floor < 0)
        throw Error(kInvalidParameterValue, "credit floor must not be negative",
                    "The floor was " + std::to_string(floor) + ".");
    if (share.numerator < 0 || share.scale < 0 || share.scale > kMaxShareScale)
        throw Error(kInvalidParameterValue, "invalid credit share",
                    "The share must be a non-negative decimal with at most " +
                        std::to_string(kMaxShareScale) + " decimal places.");

    __int128 denominator = 1;
    for (int i = 0; i < share.scale; ++i)
        denominator *= 10;
    /* |total| < 2^63 and numerator < 2^63, so the product fits in 127 bits. */
    __int128 product = static_cast<__int128>(total) * share.numerator;
    __int128 quotient = product / denominator;
    __int128 remainder = product % denominator;
    /* Both operands are non-negative: half away from zero is half up. */
    if (remainder * 2 >= denominator)
        ++quotient;
    if (quotient < floor)
        quotient = floor;
    if (quotient > std::numeric_limits<int64_t>::max())
        throw Error(kNumericValueOutOfRange, "credit allocation out of range for type bigint",
                    "The total " + std::to_string(total) +
                        " times the plan's share exceeds 9223372036854775807 credits.");
    return static_cast<int64_t>(quotient);
}

int64_t AllocationFor(bool has_fixed, int64_t fixed_amount, const char *share_text, int64_t floor,
                      int64_t total) {
    if (total < 0)
        throw Error(kInvalidParameterValue, "total credits must not be negative",
                    "The total was " + std::to_string(total) + ".",
                    "Pass 0 or a positive number of credits.");
    if (has_fixed) {
        if (fixed_amount < 0)
            throw Error(kInvalidParameterValue, "fixed credit amount must not be negative",
                        "The amount was " + std::to_string(fixed_amount) + ".");
        return fixed_amount;
    }
    if (share_text == nullptr)
        throw Error(kInvalidParameterValue,
                    "credit plan rule has neither a fixed amount nor a share",
                    "Each row of keel.credit_plans needs fixed_amount or share.");
    return ShareAmount(total, ParseShare(share_text), floor);
}

} // namespace keel::credits
