// The lint corpus (tests/lint/<rule>/): for every rule a case that should
// flag, one that should not, and one that depends on context (a folder, a
// directive, a transaction). Expectations are comments in the cases: a line
// "-- expect: <rule>" means a finding of that rule on the next line that is
// not itself an expectation. The rules compared in a file are the folder's
// rule and every rule an expectation names; other rules may fire and are
// not this case's business.
#include "lint/lint.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>

namespace fs = std::filesystem;

namespace {

const fs::path kCorpus = fs::path(KEEL_SOURCE_DIR) / "tests" / "lint";

using Key = std::pair<std::string, std::string>; /* "file:line", rule */

/* Expectations of one file (path as linted), and the rules they name. */
void Expect(const fs::path &file, std::set<Key> *expected, std::set<std::string> *rules) {
    std::ifstream in(file);
    std::string line;
    std::vector<std::string> lines;
    while (std::getline(in, line))
        lines.push_back(line);
    const std::string tag = "-- expect: ";
    for (size_t i = 0; i < lines.size(); i++) {
        size_t at = lines[i].find(tag);
        if (at == std::string::npos || lines[i].find_first_not_of(" \t") != at)
            continue;
        std::string rule = lines[i].substr(at + tag.size());
        rule.erase(rule.find_last_not_of(" \r") + 1);
        size_t target = i + 1;
        while (target < lines.size() && lines[target].find(tag) != std::string::npos)
            target++;
        expected->insert({file.string() + ":" + std::to_string(target + 1), rule});
        rules->insert(rule);
    }
}

void CheckCase(const fs::path &target, const std::string &rule) {
    SCOPED_TRACE(target.string());
    std::set<Key> expected;
    std::set<std::string> rules = {rule};
    if (fs::is_directory(target)) {
        for (const auto &e : fs::directory_iterator(target))
            Expect(e.path(), &expected, &rules);
    } else {
        Expect(target, &expected, &rules);
    }
    keel::lint::Report report = keel::lint::LintPaths({target}, {});
    std::set<Key> actual;
    for (const auto &f : report.findings)
        if (rules.count(f.rule))
            actual.insert({f.file + ":" + std::to_string(f.line), f.rule});
    EXPECT_EQ(actual, expected);
    if (rule != "syntax-error") {
        for (const auto &f : report.findings)
            EXPECT_NE(f.rule, "syntax-error") << f.file << ":" << f.line << ": " << f.message;
    }
}

} // namespace

TEST(LintCorpus, EveryRuleHasItsThreeCasesAndTheyHold) {
    size_t rules = 0;
    for (const auto &r : keel::lint::ListRules()) {
        fs::path dir = kCorpus / r.name;
        ASSERT_TRUE(fs::is_directory(dir)) << "no corpus for rule " << r.name;
        bool flag = false, ok = false, context = false;
        for (const auto &e : fs::directory_iterator(dir)) {
            std::string name = e.path().filename().string();
            flag = flag || name == "flag.sql";
            ok = ok || name == "ok.sql";
            context = context || name == "context.sql" || name == "context";
            CheckCase(e.path(), r.name);
        }
        EXPECT_TRUE(flag && ok && context) << r.name << " needs flag.sql, ok.sql and context";
        rules++;
    }
    EXPECT_GE(rules, 30u);
}

TEST(LintCorpus, EveryOkCaseIsCleanForItsRule) {
    for (const auto &r : keel::lint::ListRules()) {
        keel::lint::Report report = keel::lint::LintPaths({kCorpus / r.name / "ok.sql"}, {});
        for (const auto &f : report.findings)
            EXPECT_NE(f.rule, r.name) << f.file << ":" << f.line << ": " << f.message;
    }
}
