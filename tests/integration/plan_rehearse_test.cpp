/*
 * tests/integration/plan_rehearse_test.cpp
 *   keel plan's per-statement guard verdicts (static check) and keel
 *   rehearse's collected errors, guard verdicts and locks (issue 12, "plan"
 *   and "rehearse"), against the throwaway cluster. Each test makes its own
 *   scratch database keel_it_pr_*; both commands must leave it unchanged.
 */
#include "keel_run.hpp"
#include "test_db.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>

using keel_test::Connect;
using keel_test::Contains;
using keel_test::Exec;
using keel_test::KeelRun;
using keel_test::RunKeel;
using keel_test::ScalarText;
using keel_test::ScratchDatabase;
using keel_test::TempDir;

namespace {

/* Lines returns how many lines of text contain needle. */
size_t Lines(const std::string &text, const std::string &needle) {
    size_t n = 0, at = 0;
    while (at < text.size()) {
        size_t eol = text.find('\n', at);
        std::string line = text.substr(at, eol == std::string::npos ? std::string::npos : eol - at);
        n += line.find(needle) != std::string::npos;
        if (eol == std::string::npos)
            break;
        at = eol + 1;
    }
    return n;
}

} // namespace

/* plan: each statement with the guard's static verdict; read-only (issue 12, "plan"). */
TEST(PlanRehearse, PlanShowsEachStatementsGuardVerdict) {
    std::string db = ScratchDatabase("keel_it_pr_plan", true);
    TempDir dir("pr_plan");
    dir.Write("0001_base.sql", "CREATE TABLE it_pr_old (id int);\nCREATE TABLE it_pr_keep (id "
                               "int);\nCREATE TABLE it_pr_retired (id int);\n");
    ASSERT_EQ(RunKeel(db, "migrate --dir " + dir.Dir()).exit_code, 0);
    dir.Write("0002_drop.sql", "-- drops a table an applied migration made\n"
                               "DROP TABLE it_pr_old;\n"
                               "CREATE INDEX it_pr_keep_id\n    ON it_pr_keep (id);\n"
                               "CREATE TABLE it_pr_new (id int);\n");
    dir.Write("0003_glass.sql", "-- keel:allow-destructive \"retired in ticket 7\"\n"
                                "DROP TABLE it_pr_retired;\n");
    dir.Write("0004_new.sql", "DROP TABLE it_pr_new;\n");

    KeelRun plan = RunKeel(db, "plan --dir " + dir.Dir());
    EXPECT_EQ(plan.exit_code, 3) << plan.out << plan.err;
    EXPECT_TRUE(Contains(plan.out, "1. 0002_drop.sql  (one transaction, 3 statement(s))"))
        << plan.out;
    EXPECT_TRUE(Contains(plan.out,
                         "   line 2: DROP TABLE it_pr_old => refused (drop-table); warning "
                         "(missing-lock-timeout)\n"))
        << plan.out;
    EXPECT_TRUE(Contains(plan.out, "   line 3: CREATE INDEX it_pr_keep_id ON it_pr_keep (id) => "
                                   "warning (create-index-non-concurrently"))
        << plan.out;
    EXPECT_TRUE(Contains(plan.out, "   line 5: CREATE TABLE it_pr_new (id int) => ok\n"))
        << plan.out;
    EXPECT_TRUE(Contains(plan.out, "   line 2: DROP TABLE it_pr_retired => allowed by the "
                                   "break-glass (drop-table): retired in ticket 7; warning "
                                   "(missing-lock-timeout)\n"))
        << plan.out;
    /* created by an earlier pending file: new, so not destructive */
    EXPECT_TRUE(Contains(plan.out, "   line 1: DROP TABLE it_pr_new => ok\n")) << plan.out;
    EXPECT_TRUE(Contains(plan.out, "the guard would refuse 1 statement(s)")) << plan.out;
    EXPECT_TRUE(Contains(plan.err, "keel migrate would refuse")) << plan.err;

    KeelRun json = RunKeel(db, "plan --json --dir " + dir.Dir());
    EXPECT_EQ(json.exit_code, 3) << json.err;
    nlohmann::json j = nlohmann::json::parse(json.out);
    ASSERT_EQ(j["pending"].size(), 3u) << json.out;
    const auto &first = j["pending"][0];
    EXPECT_EQ(first["statement_count"], 3);
    ASSERT_EQ(first["statements"].size(), 3u);
    EXPECT_EQ(first["statements"][0]["line"], 2);
    EXPECT_EQ(first["statements"][0]["text"], "DROP TABLE it_pr_old");
    EXPECT_EQ(first["statements"][0]["verdict"],
              "refused (drop-table); warning (missing-lock-timeout)");
    EXPECT_EQ(first["statements"][0]["rules"],
              nlohmann::json::array({"drop-table", "missing-lock-timeout"}));
    EXPECT_EQ(first["statements"][2]["verdict"], "ok");
    EXPECT_EQ(first["statements"][2]["rules"], nlohmann::json::array());
    ASSERT_EQ(j["refused"].size(), 1u) << json.out;
    EXPECT_EQ(j["refused"][0]["name"], "0002_drop.sql");
    EXPECT_EQ(j["refused"][0]["line"], 2);

    /* the session's keel.guard_rules decide what the guard would do */
    KeelRun warned = RunKeel("dbname=keel_it_pr_plan options='-c keel.guard_rules=drop-table=warn'",
                             "plan --dir " + dir.Dir());
    EXPECT_EQ(warned.exit_code, 0) << warned.out << warned.err;
    EXPECT_TRUE(Contains(warned.out, "DROP TABLE it_pr_old => warned by the guard (drop-table)"))
        << warned.out;

    /* read-only: nothing applied, nothing dropped */
    auto conn = Connect("keel_it_pr_plan");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.migration_history"), "1");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('it_pr_old') IS NOT NULL AND "
                                     "to_regclass('it_pr_retired') IS NOT NULL AND "
                                     "to_regclass('it_pr_new') IS NULL"),
              "t");
}

/* rehearse: ACCESS EXCLUSIVE on an existing table, with size and rows; nothing changes. */
TEST(PlanRehearse, RehearseReportsAccessExclusiveOnExistingTables) {
    std::string db = ScratchDatabase("keel_it_pr_locks", true);
    TempDir dir("pr_locks");
    dir.Write(
        "0001_base.sql",
        "CREATE TABLE it_pr_big (id int PRIMARY KEY, note text);\n"
        "INSERT INTO it_pr_big SELECT g, repeat('x', 100) FROM generate_series(1, 5000) g;\n");
    ASSERT_EQ(RunKeel(db, "migrate --dir " + dir.Dir()).exit_code, 0);
    auto conn = Connect("keel_it_pr_locks");
    Exec(conn.get(), "ANALYZE it_pr_big");
    std::string bytes = ScalarText(conn.get(), "SELECT pg_total_relation_size('it_pr_big')");
    dir.Write("0002_alter.sql", "ALTER TABLE it_pr_big ADD COLUMN extra int;\n"
                                "CREATE TABLE it_pr_fresh (id int);\n"
                                "LOCK TABLE it_pr_fresh IN ACCESS EXCLUSIVE MODE;\n"
                                "SELECT count(*) FROM it_pr_big;\n");

    KeelRun run = RunKeel(db, "rehearse --dir " + dir.Dir());
    EXPECT_EQ(run.exit_code, 0) << run.out << run.err;
    EXPECT_TRUE(Contains(run.out, "ACCESS EXCLUSIVE on existing table public.it_pr_big ("))
        << run.out;
    EXPECT_TRUE(Contains(run.out, "~5000 rows) by 0002_alter.sql:1: ALTER TABLE it_pr_big ADD "
                                  "COLUMN extra int"))
        << run.out;
    EXPECT_FALSE(Contains(run.out, "existing table public.it_pr_fresh")) << run.out;
    EXPECT_TRUE(Contains(run.out, "locks     0002_alter.sql:1: ")) << run.out;
    EXPECT_EQ(Lines(run.out, "AccessExclusiveLock on it_pr_big"), 1u) << run.out;
    EXPECT_TRUE(Contains(run.out, "locks     0002_alter.sql:4: AccessShareLock on it_pr_big"))
        << run.out;
    EXPECT_TRUE(Contains(run.out, "1 migration(s) rehearsed and rolled back; nothing was changed: "
                                  "0 error(s), 1 ACCESS EXCLUSIVE lock(s) on existing tables"))
        << run.out;

    KeelRun json = RunKeel(db, "rehearse --json --dir " + dir.Dir());
    EXPECT_EQ(json.exit_code, 0) << json.err;
    nlohmann::json j = nlohmann::json::parse(json.out);
    ASSERT_EQ(j["access_exclusive"].size(), 1u) << json.out;
    const auto &x = j["access_exclusive"][0];
    EXPECT_EQ(x["table"], "public.it_pr_big");
    EXPECT_EQ(x["line"], 1);
    EXPECT_EQ(x["row_estimate"], 5000);
    EXPECT_EQ(std::to_string(x["total_bytes"].get<long long>()), bytes);
    const auto &stmts = j["files"][0]["statements"];
    ASSERT_EQ(stmts.size(), 4u);
    bool fresh_exclusive = false;
    EXPECT_EQ(stmts[2]["locks"].size(), 0u) << stmts[2].dump(); /* LOCK TABLE: already held */
    for (const auto &l : stmts[1]["locks"])
        fresh_exclusive = fresh_exclusive ||
                          (l["relation"] == "it_pr_fresh" && l["mode"] == "AccessExclusiveLock");
    EXPECT_TRUE(fresh_exclusive) << stmts[1].dump();
    EXPECT_EQ(j["rolled_back"], true);

    /* nothing changed */
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM pg_attribute WHERE attrelid = "
                                     "'it_pr_big'::regclass AND attname = 'extra'"),
              "0");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('it_pr_fresh') IS NULL"), "t");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.migration_history"), "1");
    /* no lock left behind */
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = "
                                     "l.relation WHERE c.relname = 'it_pr_big'"),
              "0");
}

/* rehearse: every error, not only the first; no-transaction files not rehearsable; exit 1. */
TEST(PlanRehearse, RehearseReportsEveryErrorAndChangesNothing) {
    std::string db = ScratchDatabase("keel_it_pr_errors", true);
    TempDir dir("pr_errors");
    dir.Write("0001_base.sql",
              "CREATE TABLE it_pr_t (id int);\n"
              "CREATE TABLE it_pr_vt (id int);\n"
              "CREATE VIEW it_pr_v AS SELECT id FROM it_pr_vt;\n"
              "CREATE TABLE it_pr_g1 (id int);\nCREATE TABLE it_pr_g2 (id int);\n");
    ASSERT_EQ(RunKeel(db, "migrate --dir " + dir.Dir()).exit_code, 0);
    dir.Write("0002_two_errors.sql", "ALTER TABLE it_pr_missing ADD COLUMN x int;\n"
                                     "CREATE TABLE it_pr_made (id int);\n"
                                     "INSERT INTO it_pr_t VALUES ('not a number');\n");
    dir.Write("0003_cic.sql",
              "-- keel:no-transaction\nCREATE INDEX CONCURRENTLY it_pr_t_id ON it_pr_t (id);\n");
    dir.Write("0004_guard.sql", "DROP TABLE it_pr_t;\nINSERT INTO it_pr_made VALUES (1);\n");
    dir.Write("0005_view.sql", "DROP VIEW it_pr_v;\n");
    dir.Write("0006_glass.sql",
              "-- keel:allow-destructive \"g1 is retired\"\nDROP TABLE it_pr_g1;\n");
    dir.Write("0007_after.sql", "DROP TABLE it_pr_g2;\n");

    KeelRun run = RunKeel(db, "rehearse --dir " + dir.Dir());
    EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
    EXPECT_TRUE(Contains(run.out, "error     0002_two_errors.sql:1: relation \"it_pr_missing\" "
                                  "does not exist (SQLSTATE 42P01)"))
        << run.out;
    EXPECT_TRUE(Contains(run.out, "error     0002_two_errors.sql:3: invalid input syntax for type "
                                  "integer"))
        << run.out;
    EXPECT_TRUE(Contains(run.out, "not rehearsable 0003_cic.sql")) << run.out;
    EXPECT_TRUE(Contains(run.out, "error     0004_guard.sql:1: destructive DDL refused: DROP "
                                  "TABLE (rule drop-table)"))
        << run.out;
    /* the table 0002 created after its first error is there for 0004 */
    EXPECT_FALSE(Contains(run.out, "error     0004_guard.sql:2")) << run.out;
    EXPECT_TRUE(Contains(run.out, "locks     0004_guard.sql:2: RowExclusiveLock on it_pr_made"))
        << run.out;
    EXPECT_TRUE(Contains(run.out, "error     0005_view.sql:1: the guard would refuse it at COMMIT "
                                  "(rule drop-view"))
        << run.out;
    EXPECT_FALSE(Contains(run.out, "error     0006_glass.sql:2")) << run.out;
    /* a dropped relation keeps the name it had */
    EXPECT_TRUE(Contains(run.out, "locks     0006_glass.sql:2: AccessExclusiveLock on it_pr_g1"))
        << run.out;
    EXPECT_TRUE(Contains(run.out, "error     0007_after.sql:1: the guard would refuse it in keel "
                                  "migrate (rule drop-table"))
        << run.out;
    EXPECT_EQ(Lines(run.out, "error     "), 5u) << run.out;
    EXPECT_TRUE(Contains(run.out,
                         "5 migration(s) rehearsed and rolled back; nothing was changed: 5 "
                         "error(s), 2 ACCESS EXCLUSIVE lock(s) on existing tables, 1 "
                         "file(s) not rehearsable"))
        << run.out;
    EXPECT_TRUE(Contains(run.out, "ACCESS EXCLUSIVE on existing table public.it_pr_g2 (dropped in "
                                  "the rehearsal"))
        << run.out;
    EXPECT_TRUE(Contains(run.err, "rehearsal: 0002_two_errors.sql:1: relation")) << run.err;
    EXPECT_TRUE(Contains(run.err, "and 4 more error(s)")) << run.err;
    EXPECT_TRUE(Contains(run.err, "nothing was changed")) << run.err;

    KeelRun json = RunKeel(db, "rehearse --json --dir " + dir.Dir());
    EXPECT_EQ(json.exit_code, 1);
    nlohmann::json j = nlohmann::json::parse(json.out);
    ASSERT_EQ(j["errors"].size(), 5u) << json.out;
    EXPECT_EQ(j["errors"][0]["sqlstate"], "42P01");
    EXPECT_EQ(j["errors"][2]["sqlstate"], "KL001");
    EXPECT_EQ(j["errors"][2]["rules"], nlohmann::json::array({"drop-table"}));
    EXPECT_EQ(j["errors"][2]["kind"], "run");
    EXPECT_EQ(j["errors"][3]["kind"], "static");
    EXPECT_EQ(j["files"][1]["status"], "not_rehearsable");
    EXPECT_EQ(j["not_rehearsable"], 1);

    /* migrate --dry-run is the same rehearsal */
    KeelRun dry = RunKeel(db, "migrate --dry-run --dir " + dir.Dir());
    EXPECT_EQ(dry.exit_code, 1);
    EXPECT_EQ(Lines(dry.out, "error     "), 5u) << dry.out;

    /* nothing changed */
    auto conn = Connect("keel_it_pr_errors");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('it_pr_made') IS NULL AND "
                                     "to_regclass('it_pr_t') IS NOT NULL AND "
                                     "to_regclass('it_pr_v') IS NOT NULL AND "
                                     "to_regclass('it_pr_g1') IS NOT NULL AND "
                                     "to_regclass('it_pr_g2') IS NOT NULL"),
              "t");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM pg_index WHERE indrelid = "
                                     "'it_pr_t'::regclass"),
              "0");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.migration_history"), "1");
}
