/*
 * tests/unit/credits_plan_test.cpp
 *   extension/credits/plan_logic: the plan arithmetic of seed 003 step 2.2,
 *   GREATEST(COALESCE(total, 0) * share, floor)::INTEGER, which PostgreSQL
 *   rounds half away from zero; fixed amounts for enterprise and premium.
 */
#include "credits/plan_logic.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>

namespace {

using keel::Error;
using keel::credits::AllocationFor;
using keel::credits::ParseShare;
using keel::credits::Share;
using keel::credits::ShareAmount;

constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

/* SqlStateOf runs f and returns the SQLSTATE of the keel::Error it throws. */
template <typename F>
int SqlStateOf(F f) {
    try {
        f();
    } catch (const Error &e) {
        return e.sqlstate();
    }
    return 0;
}

/* The seed's four share rules (plan '*' in keel.credit_plans). */
int64_t Ai(int64_t total) {
    return AllocationFor(false, 0, "0.4", 500, total);
}
int64_t Whatsapp(int64_t total) {
    return AllocationFor(false, 0, "0.3", 300, total);
}
int64_t Email(int64_t total) {
    return AllocationFor(false, 0, "0.3", 1000, total);
}
int64_t Sms(int64_t total) {
    return AllocationFor(false, 0, "0.1", 100, total);
}

TEST(CreditsPlan, FixedPlansIgnoreTheTotal) {
    /* enterprise and premium: ai 1500, whatsapp 1200, email 20000, sms 500 */
    for (int64_t total : {int64_t{0}, int64_t{1}, int64_t{999999}, kMax}) {
        EXPECT_EQ(AllocationFor(true, 1500, nullptr, 0, total), 1500);
        EXPECT_EQ(AllocationFor(true, 1200, nullptr, 0, total), 1200);
        EXPECT_EQ(AllocationFor(true, 20000, nullptr, 0, total), 20000);
        EXPECT_EQ(AllocationFor(true, 500, nullptr, 0, total), 500);
    }
    EXPECT_EQ(AllocationFor(true, 0, nullptr, 0, 10), 0);
}

TEST(CreditsPlan, ZeroTotalGivesTheFloors) {
    EXPECT_EQ(Ai(0), 500);
    EXPECT_EQ(Whatsapp(0), 300);
    EXPECT_EQ(Email(0), 1000);
    EXPECT_EQ(Sms(0), 100);
}

TEST(CreditsPlan, SharesAboveTheFloors) {
    EXPECT_EQ(Ai(10000), 4000);
    EXPECT_EQ(Whatsapp(10000), 3000);
    EXPECT_EQ(Email(10000), 3000);
    EXPECT_EQ(Sms(10000), 1000);
}

TEST(CreditsPlan, FloorsWinUntilTheShareExceedsThem) {
    EXPECT_EQ(Ai(1250), 500);     /* 1250 * 0.4 = 500, equal to the floor */
    EXPECT_EQ(Ai(1251), 500);     /* 500.4 rounds to 500 */
    EXPECT_EQ(Ai(1252), 501);     /* 500.8 rounds to 501 */
    EXPECT_EQ(Email(3333), 1000); /* 999.9 < 1000 */
    EXPECT_EQ(Email(3334), 1000); /* 1000.2 -> 1000 */
    EXPECT_EQ(Email(3335), 1001); /* 1000.5 -> 1001 */
    EXPECT_EQ(Sms(999), 100);
    EXPECT_EQ(Sms(1005), 101); /* 100.5 -> 101 */
}

TEST(CreditsPlan, RoundsHalfAwayFromZeroLikeNumericToInteger) {
    /* SELECT (12345 * 0.3)::integer = 3704; (12345 * 0.1)::integer = 1235 */
    EXPECT_EQ(Whatsapp(12345), 3704);
    EXPECT_EQ(Email(12345), 3704);
    EXPECT_EQ(Sms(12345), 1235);
    EXPECT_EQ(Ai(12345), 4938);
    /* Not banker's rounding: 2.5 -> 3 and 3.5 -> 4 alike. */
    EXPECT_EQ(ShareAmount(5, ParseShare("0.5"), 0), 3);
    EXPECT_EQ(ShareAmount(7, ParseShare("0.5"), 0), 4);
    EXPECT_EQ(ShareAmount(1, ParseShare("0.49"), 0), 0);
    EXPECT_EQ(ShareAmount(1, ParseShare("0.5"), 0), 1);
}

TEST(CreditsPlan, LargeTotals) {
    /* Beyond the seed's integer column; exact, no floating point. */
    EXPECT_EQ(Ai(5000000000), 2000000000);
    EXPECT_EQ(Sms(kMax), 922337203685477581); /* 922337203685477580.7 rounds up */
    EXPECT_EQ(ShareAmount(kMax, ParseShare("1"), 0), kMax);
    EXPECT_EQ(ShareAmount(kMax, ParseShare("0.999999999999999999"), 0), kMax - 9);
}

TEST(CreditsPlan, OverflowIs22003) {
    EXPECT_EQ(SqlStateOf([] { ShareAmount(kMax, ParseShare("1.5"), 0); }),
              keel::kNumericValueOutOfRange);
    EXPECT_EQ(SqlStateOf([] { AllocationFor(false, 0, "1000", 0, kMax / 2); }),
              keel::kNumericValueOutOfRange);
}

TEST(CreditsPlan, NegativeTotalIs22023) {
    EXPECT_EQ(SqlStateOf([] { Ai(-1); }), keel::kInvalidParameterValue);
    EXPECT_EQ(SqlStateOf([] { AllocationFor(true, 1500, nullptr, 0, -1); }),
              keel::kInvalidParameterValue);
    EXPECT_EQ(SqlStateOf([] {
                  ShareAmount(std::numeric_limits<int64_t>::min(), Share{4, 1}, 0);
              }),
              keel::kInvalidParameterValue);
}

TEST(CreditsPlan, InvalidRulesAre22023) {
    EXPECT_EQ(SqlStateOf([] { AllocationFor(true, -1, nullptr, 0, 10); }),
              keel::kInvalidParameterValue);
    EXPECT_EQ(SqlStateOf([] { AllocationFor(false, 0, "0.4", -1, 10); }),
              keel::kInvalidParameterValue);
    EXPECT_EQ(SqlStateOf([] { AllocationFor(false, 0, nullptr, 0, 10); }),
              keel::kInvalidParameterValue);
}

TEST(CreditsPlan, ParseShare) {
    Share s = ParseShare("0.4");
    EXPECT_EQ(s.numerator, 4);
    EXPECT_EQ(s.scale, 1);
    s = ParseShare("0.30");
    EXPECT_EQ(s.numerator, 30);
    EXPECT_EQ(s.scale, 2);
    s = ParseShare("12");
    EXPECT_EQ(s.numerator, 12);
    EXPECT_EQ(s.scale, 0);
    s = ParseShare(".5");
    EXPECT_EQ(s.numerator, 5);
    EXPECT_EQ(s.scale, 1);
    EXPECT_EQ(ParseShare("0.000000000000000001").scale, 18);

    for (const char *bad : {"", ".", "-0.4", "+0.4", "0.4.1", "4e-1", "NaN", " 0.4",
                            "0.0000000000000000001", "99999999999999999999"}) {
        EXPECT_EQ(SqlStateOf([bad] { ParseShare(bad); }), keel::kInvalidParameterValue) << bad;
    }
}

TEST(CreditsPlan, ErrorsCarryDetail) {
    try {
        Ai(-5);
        FAIL() << "no error";
    } catch (const Error &e) {
        EXPECT_STREQ(e.what(), "total credits must not be negative");
        EXPECT_EQ(e.detail(), "The total was -5.");
        EXPECT_FALSE(e.hint().empty());
    }
}

} // namespace
