// Unit tests of the guard's rule list, the keel.guard_rules parser and the
// blank-reason check (extension/guard/rules_logic.cpp).
#include "guard/rules.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <string>

using keel::RuleLevel;

TEST(GuardRules, NamesAreUniqueKebabCaseAndFound) {
    std::set<std::string> seen;
    for (int i = 0; i < keel::kRuleCount; i++) {
        std::string name = keel::RuleName(i);
        EXPECT_TRUE(seen.insert(name).second) << name;
        for (char c : name)
            EXPECT_TRUE((c >= 'a' && c <= 'z') || c == '-') << name;
        EXPECT_EQ(keel::RuleByName(name.data(), name.size()), i);
        EXPECT_EQ(keel::RuleDefaultLevel(i), RuleLevel::Error) << name;
    }
    EXPECT_EQ(keel::RuleByName("drop-tabl", 9), -1);
    EXPECT_STREQ(keel::RuleName(keel::kRuleDropTable), "drop-table");
    EXPECT_STREQ(keel::RuleName(keel::kRuleTruncate), "truncate");
}

TEST(GuardRules, ParseSetsLevelsAndKeepsDefaults) {
    RuleLevel levels[keel::kRuleCount];
    char error[200] = "";
    ASSERT_TRUE(keel::ParseRuleLevels(" rename-column = warn,table-rewrite=off ", levels, error,
                                      sizeof error))
        << error;
    EXPECT_EQ(levels[keel::kRuleRenameColumn], RuleLevel::Warn);
    EXPECT_EQ(levels[keel::kRuleTableRewrite], RuleLevel::Off);
    EXPECT_EQ(levels[keel::kRuleDropTable], RuleLevel::Error);
    ASSERT_TRUE(keel::ParseRuleLevels("", levels, error, sizeof error));
    EXPECT_EQ(levels[keel::kRuleTableRewrite], RuleLevel::Error);
}

TEST(GuardRules, ParseRejectsBadItemsWithOneMessage) {
    RuleLevel levels[keel::kRuleCount];
    char error[200];
    EXPECT_FALSE(keel::ParseRuleLevels("drop-tabel=warn", levels, error, sizeof error));
    EXPECT_STREQ(error, "unknown rule \"drop-tabel\"");
    EXPECT_FALSE(keel::ParseRuleLevels("drop-table=maybe", levels, error, sizeof error));
    EXPECT_STREQ(error, "unknown level \"maybe\" for rule \"drop-table\"");
    EXPECT_FALSE(keel::ParseRuleLevels("drop-table", levels, error, sizeof error));
    EXPECT_STREQ(error, "item \"drop-table\" is not rule=level");
    EXPECT_FALSE(
        keel::ParseRuleLevels("drop-table=warn,,truncate=off", levels, error, sizeof error));
    EXPECT_STREQ(error, "empty item in the list");
}

TEST(GuardRules, BlankReasons) {
    EXPECT_TRUE(keel::IsBlankReason(""));
    EXPECT_TRUE(keel::IsBlankReason("  \t\n"));
    EXPECT_TRUE(keel::IsBlankReason("\xC2\xA0"));                 // U+00A0
    EXPECT_TRUE(keel::IsBlankReason("\xE2\x80\x8B \xC2\xA0"));    // U+200B, U+00A0
    EXPECT_TRUE(keel::IsBlankReason("\xE3\x80\x80\xEF\xBB\xBF")); // U+3000, U+FEFF
    EXPECT_FALSE(keel::IsBlankReason("ticket 42"));
    EXPECT_FALSE(keel::IsBlankReason("\xC2\xA0x"));
    EXPECT_FALSE(keel::IsBlankReason("\xF0\x9F\x94\xA5")); // an emoji says something
}
