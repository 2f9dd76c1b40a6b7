/*
 * tests/integration/migrate_down_test.cpp
 *   keel down against the throwaway cluster (issue 12: "down [--to VERSION]
 *   runs .down.sql files in reverse under the same lock and guard"): the
 *   newest, --to, --steps, a re-migrate as a new revision, the refusals before
 *   anything runs (no down file, baselined, edited applied file, a down file
 *   that breaks the transaction rules), the guard's verdict on a destructive
 *   down file with and without its directive, a failing down file rolled back
 *   whole, keel:no-transaction down files; keel status with reverted versions
 *   and aligned columns; keel new --down; keel down --help.
 */
#include "keel_run.hpp"
#include "test_db.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sstream>
#include <vector>

using namespace keel_test;

namespace {

std::string Statuses(PGconn *conn, const std::string &version) {
    return ScalarText(conn, "SELECT coalesce(string_agg(status || ':' || revision, ',' ORDER BY "
                            "id), '') FROM keel.migration_history WHERE version = " +
                                version);
}

std::string HistoryCount(PGconn *conn) {
    return ScalarText(conn, "SELECT count(*) FROM keel.migration_history");
}

/* LineStarting returns the first line of text that starts with prefix ("" when none). */
std::string LineStarting(const std::string &text, const std::string &prefix) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line))
        if (line.compare(0, prefix.size(), prefix) == 0)
            return line;
    return "";
}

/* ColumnStarts returns the offsets where a column starts: 0 and after every run of 2+ spaces. */
std::vector<size_t> ColumnStarts(const std::string &line) {
    std::vector<size_t> starts{0};
    for (size_t i = 2; i < line.size(); ++i)
        if (line[i] != ' ' && line[i - 1] == ' ' && line[i - 2] == ' ')
            starts.push_back(i);
    return starts;
}

/* A folder of three migrations; 2 and 3 have down files that need no break-glass. */
void WriteRows(const TempDir &dir) {
    dir.Write("1_base.sql", "CREATE TABLE it_down_t (id int PRIMARY KEY);\n");
    dir.Write("2_two.sql", "INSERT INTO it_down_t VALUES (2);\n");
    dir.Write("2_two.down.sql", "DELETE FROM it_down_t WHERE id = 2;\n");
    dir.Write("3_three.sql", "INSERT INTO it_down_t VALUES (3);\n");
    dir.Write(
        "3_three.down.sql",
        "BEGIN;\n-- its own wrapper is dropped\nDELETE FROM it_down_t WHERE id = 3;\nCOMMIT;\n");
}

std::string Ids(PGconn *conn) {
    return ScalarText(conn, "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM "
                            "it_down_t");
}

} // namespace

TEST(MigrateDown, RevertsTheNewestThenMigrateAppliesItAgainAsANewRevision) {
    std::string db = ScratchDatabase("keel_it_down_newest", true);
    TempDir dir("down_newest");
    WriteRows(dir);
    ASSERT_EQ(RunKeel(db, "migrate --dir " + dir.Dir()).exit_code, 0);
    auto conn = Connect("keel_it_down_newest");
    ASSERT_EQ(Ids(conn.get()), "2,3");

    KeelRun down = RunKeel(db, "down --dir " + dir.Dir());
    ASSERT_EQ(down.exit_code, 0) << down.out << down.err;
    EXPECT_TRUE(
        Contains(down.out, "reverted 3_three.sql with 3_three.down.sql (version 3, 1 of 1)"))
        << down.out;
    EXPECT_TRUE(Contains(down.out, "1 migration(s) reverted; the newest applied version is now 2"))
        << down.out;
    EXPECT_EQ(Ids(conn.get()), "2");
    EXPECT_EQ(Statuses(conn.get(), "3"), "applied:0,reverted:0");
    EXPECT_EQ(Statuses(conn.get(), "2"), "applied:0");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT name || ' ' || tool_version FROM "
                                     "keel.migration_history WHERE status = 'reverted'"),
              "3_three.down.sql keel 0.2.0");

    /* status: pending again, with when and by whom it was reverted */
    KeelRun status = RunKeel(db, "status --dir " + dir.Dir());
    EXPECT_EQ(status.exit_code, 0) << status.out << status.err;
    std::string pending = LineStarting(status.out, "pending     3");
    EXPECT_TRUE(Contains(pending, "3_three.sql")) << status.out;
    EXPECT_TRUE(Contains(pending, "(reverted ")) << status.out;
    EXPECT_TRUE(Contains(status.out, ", 1 reverted")) << status.out;
    KeelRun json = RunKeel(db, "status --json --dir " + dir.Dir());
    ASSERT_EQ(json.exit_code, 0) << json.err;
    nlohmann::json report = nlohmann::json::parse(json.out);
    ASSERT_EQ(report["reverted"].size(), 1u) << json.out;
    EXPECT_EQ(report["reverted"][0]["version"], "3");
    EXPECT_EQ(report["reverted"][0]["name"], "3_three.down.sql");
    EXPECT_EQ(report["pending"][0]["name"], "3_three.sql");
    EXPECT_EQ(report["summary"]["reverted"], 1);

    /* migrate applies it again, as revision 1 */
    KeelRun again = RunKeel(db, "migrate --dir " + dir.Dir());
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_TRUE(Contains(again.out, "applied 3_three.sql")) << again.out;
    EXPECT_EQ(Ids(conn.get()), "2,3");
    EXPECT_EQ(Statuses(conn.get(), "3"), "applied:0,reverted:0,applied:1");
    KeelRun after = RunKeel(db, "status --dir " + dir.Dir());
    EXPECT_TRUE(Contains(LineStarting(after.out, "applied     3"), "(revision 1)")) << after.out;
    EXPECT_FALSE(Contains(after.out, "reverted")) << after.out;

    /* and it can be reverted again: a second revert of the same version */
    ASSERT_EQ(RunKeel(db, "down --dir " + dir.Dir()).exit_code, 0);
    EXPECT_EQ(Statuses(conn.get(), "3"), "applied:0,reverted:0,applied:1,reverted:1");
}

TEST(MigrateDown, ToRevertsEveryNewerVersionNewestFirstAndStepsCounts) {
    std::string db = ScratchDatabase("keel_it_down_to", true);
    TempDir dir("down_to");
    WriteRows(dir);
    ASSERT_EQ(RunKeel(db, "migrate --dir " + dir.Dir()).exit_code, 0);
    auto conn = Connect("keel_it_down_to");

    /* a dry run checks and lists, and changes nothing */
    std::string before = HistoryCount(conn.get());
    KeelRun dry = RunKeel(db, "down --to 1 --dry-run --dir " + dir.Dir());
    ASSERT_EQ(dry.exit_code, 0) << dry.err;
    EXPECT_TRUE(Contains(dry.out, "would revert 3_three.sql with 3_three.down.sql")) << dry.out;
    EXPECT_TRUE(Contains(dry.out, "(its own BEGIN/COMMIT dropped)")) << dry.out;
    EXPECT_TRUE(Contains(dry.out, "2 migration(s) would be reverted")) << dry.out;
    EXPECT_EQ(HistoryCount(conn.get()), before);
    EXPECT_EQ(Ids(conn.get()), "2,3");

    /* --steps beyond what is applied is refused */
    KeelRun too_many = RunKeel(db, "down --steps 4 --dir " + dir.Dir());
    EXPECT_EQ(too_many.exit_code, 1);
    EXPECT_TRUE(Contains(too_many.err, "only 3 migration(s) are applied")) << too_many.err;
    EXPECT_EQ(RunKeel(db, "down --to x --dir " + dir.Dir()).exit_code, 1);

    KeelRun to = RunKeel(db, "down --to 1 --dir " + dir.Dir());
    ASSERT_EQ(to.exit_code, 0) << to.out << to.err;
    size_t three = to.out.find("reverted 3_three.sql");
    size_t two = to.out.find("reverted 2_two.sql");
    ASSERT_NE(three, std::string::npos) << to.out;
    ASSERT_NE(two, std::string::npos) << to.out;
    EXPECT_LT(three, two) << to.out;
    EXPECT_TRUE(Contains(to.out, "2 migration(s) reverted; the newest applied version is now 1"))
        << to.out;
    EXPECT_EQ(Ids(conn.get()), "");
    EXPECT_EQ(Statuses(conn.get(), "1"), "applied:0");
    KeelRun nothing = RunKeel(db, "down --to 1 --dir " + dir.Dir());
    EXPECT_EQ(nothing.exit_code, 0) << nothing.err;
    EXPECT_TRUE(Contains(nothing.out, "nothing to revert: no applied migration is newer than "
                                      "version 1"))
        << nothing.out;

    /* --steps 2 after re-applying both */
    ASSERT_EQ(RunKeel(db, "migrate --dir " + dir.Dir()).exit_code, 0);
    KeelRun steps = RunKeel(db, "down --steps 2 --dir " + dir.Dir());
    ASSERT_EQ(steps.exit_code, 0) << steps.err;
    EXPECT_EQ(Statuses(conn.get(), "2"), "applied:0,reverted:0,applied:1,reverted:1");
    EXPECT_EQ(Statuses(conn.get(), "3"), "applied:0,reverted:0,applied:1,reverted:1");
}

TEST(MigrateDown, RefusesBeforeAnythingRunsNamingTheFiles) {
    std::string db = ScratchDatabase("keel_it_down_refuse", true);
    TempDir dir("down_refuse");
    WriteRows(dir);
    ASSERT_EQ(RunKeel(db, "migrate --dir " + dir.Dir()).exit_code, 0);
    auto conn = Connect("keel_it_down_refuse");
    std::string before = HistoryCount(conn.get());

    /* version 1 has no down file: --to 0 reverts nothing, not even 3 and 2 */
    KeelRun missing = RunKeel(db, "down --to 0 --dir " + dir.Dir());
    EXPECT_EQ(missing.exit_code, 1) << missing.out;
    EXPECT_TRUE(Contains(missing.err, "1_base.sql: no down file 1_base.down.sql")) << missing.err;
    EXPECT_TRUE(Contains(missing.err, "nothing reverted")) << missing.err;
    EXPECT_EQ(Ids(conn.get()), "2,3");
    EXPECT_EQ(HistoryCount(conn.get()), before);

    /* an applied file edited for real: its down file may not undo what ran */
    dir.Write("3_three.sql", "INSERT INTO it_down_t VALUES (33);\n");
    KeelRun edited = RunKeel(db, "down --dir " + dir.Dir());
    EXPECT_EQ(edited.exit_code, 1);
    EXPECT_TRUE(Contains(edited.err, "3_three.sql: checksum mismatch")) << edited.err;
    /* a comment-only edit is cosmetic and goes through */
    dir.Write("3_three.sql", "-- three\nINSERT INTO it_down_t VALUES (3);\n");
    dir.Write("3_three.down.sql", "DELETE FROM it_down_t WHERE id = 3;\nCOMMIT;\n");
    KeelRun txn = RunKeel(db, "down --dir " + dir.Dir());
    EXPECT_EQ(txn.exit_code, 1);
    EXPECT_TRUE(Contains(txn.err, "3_three.down.sql:2: transaction control")) << txn.err;
    dir.Write("3_three.down.sql", std::string("DELETE FROM it_down_t WHERE id = 3;\n\0x\n", 39));
    KeelRun nul = RunKeel(db, "down --dir " + dir.Dir());
    EXPECT_EQ(nul.exit_code, 1);
    EXPECT_TRUE(Contains(nul.err, "3_three.down.sql")) << nul.err;
    EXPECT_TRUE(Contains(nul.err, "NUL")) << nul.err;
    dir.Write("3_three.down.sql", "DELETE FROM it_down_t WHERE id = 3\n  AND;\n");
    KeelRun syntax = RunKeel(db, "down --dir " + dir.Dir());
    EXPECT_EQ(syntax.exit_code, 1);
    EXPECT_TRUE(Contains(syntax.err, "3_three.down.sql:2:")) << syntax.err;
    dir.Write("3_three.down.sql", "-- only a comment\n");
    KeelRun empty = RunKeel(db, "down --dir " + dir.Dir());
    EXPECT_EQ(empty.exit_code, 1);
    EXPECT_TRUE(Contains(empty.err, "3_three.down.sql: no statements")) << empty.err;
    EXPECT_EQ(Ids(conn.get()), "2,3");
    EXPECT_EQ(HistoryCount(conn.get()), before);
    dir.Write("3_three.down.sql", "DELETE FROM it_down_t WHERE id = 3;\n");
    KeelRun cosmetic = RunKeel(db, "down --dir " + dir.Dir());
    EXPECT_EQ(cosmetic.exit_code, 0) << cosmetic.err;
    EXPECT_TRUE(Contains(cosmetic.out, "only in comments or whitespace")) << cosmetic.out;
    EXPECT_EQ(Ids(conn.get()), "2");

    /* a baselined version: keel never ran it */
    std::string db2 = ScratchDatabase("keel_it_down_baselined", true);
    TempDir base("down_baselined");
    base.Write("1_a.sql", "CREATE TABLE it_down_b (id int);\n");
    base.Write("1_a.down.sql", "SELECT 1;\n");
    ASSERT_EQ(RunKeel(db2, "baseline 1 --dir " + base.Dir()).exit_code, 0);
    KeelRun baselined = RunKeel(db2, "down --dir " + base.Dir());
    EXPECT_EQ(baselined.exit_code, 1);
    EXPECT_TRUE(Contains(baselined.err, "version 1 (1_a.sql) is baselined")) << baselined.err;
    auto conn2 = Connect("keel_it_down_baselined");
    EXPECT_EQ(Statuses(conn2.get(), "1"), "baselined:0");
    KeelRun none = RunKeel(ScratchDatabase("keel_it_down_none", true), "down --dir " + base.Dir());
    EXPECT_EQ(none.exit_code, 0) << none.err;
    EXPECT_TRUE(Contains(none.out, "nothing to revert: no migration is applied")) << none.out;
}

TEST(MigrateDown, DestructiveDownFileNeedsItsDirective) {
    std::string db = ScratchDatabase("keel_it_down_guard", true);
    TempDir dir("down_guard");
    dir.Write("1_t.sql", "CREATE TABLE it_down_g (id int);\nINSERT INTO it_down_g VALUES (1);\n");
    dir.Write("1_t.down.sql", "DROP TABLE it_down_g;\n");
    ASSERT_EQ(RunKeel(db, "migrate --dir " + dir.Dir()).exit_code, 0);
    auto conn = Connect("keel_it_down_guard");

    KeelRun refused = RunKeel(db, "down --dir " + dir.Dir());
    EXPECT_EQ(refused.exit_code, 1) << refused.out;
    EXPECT_TRUE(Contains(refused.err, "1_t.down.sql:1: ")) << refused.err;
    EXPECT_TRUE(Contains(refused.err, "KL001")) << refused.err;
    EXPECT_TRUE(Contains(refused.err, "rolled back; version 1 stays applied")) << refused.err;
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('it_down_g') IS NOT NULL"), "t");
    EXPECT_EQ(Statuses(conn.get(), "1"), "applied:0");

    dir.Write("1_t.down.sql",
              "-- keel:allow-destructive \"it_down_g is undone (test)\"\nDROP TABLE it_down_g;\n");
    KeelRun allowed = RunKeel(db, "down --dir " + dir.Dir());
    ASSERT_EQ(allowed.exit_code, 0) << allowed.err;
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('it_down_g') IS NULL"), "t");
    EXPECT_EQ(Statuses(conn.get(), "1"), "applied:0,reverted:0");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) > 0 FROM keel.guard_audit WHERE reason = "
                                     "'it_down_g is undone (test)'"),
              "t");
    ASSERT_EQ(RunKeel(db, "migrate --dir " + dir.Dir()).exit_code, 0);
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM it_down_g"), "1");
}

TEST(MigrateDown, FailingDownFileRollsBackWholeAndRecordsNothing) {
    std::string db = ScratchDatabase("keel_it_down_fail", true);
    TempDir dir("down_fail");
    WriteRows(dir);
    dir.Write("3_three.down.sql",
              "DELETE FROM it_down_t WHERE id = 3;\nDELETE FROM it_down_t WHERE "
              "id = 2;\nSELECT 1 / 0;\n");
    ASSERT_EQ(RunKeel(db, "migrate --dir " + dir.Dir()).exit_code, 0);
    auto conn = Connect("keel_it_down_fail");
    std::string before = HistoryCount(conn.get());
    KeelRun failed = RunKeel(db, "down --to 1 --dir " + dir.Dir());
    EXPECT_EQ(failed.exit_code, 1) << failed.out;
    EXPECT_TRUE(Contains(failed.err, "3_three.down.sql:3: division by zero (SQLSTATE 22012)"))
        << failed.err;
    EXPECT_TRUE(Contains(failed.err, "rolled back; version 3 stays applied")) << failed.err;
    EXPECT_FALSE(Contains(failed.out, "reverted 2_two.sql")) << failed.out;
    EXPECT_EQ(Ids(conn.get()), "2,3");
    EXPECT_EQ(HistoryCount(conn.get()), before);
    EXPECT_EQ(Statuses(conn.get(), "3"), "applied:0");
    KeelRun status = RunKeel(db, "status --dir " + dir.Dir());
    EXPECT_EQ(status.exit_code, 0) << status.out;
    EXPECT_FALSE(Contains(status.out, "failed      ")) << status.out;
}

TEST(MigrateDown, NoTransactionDownFileRunsStatementByStatement) {
    std::string db = ScratchDatabase("keel_it_down_notx", true);
    TempDir dir("down_notx");
    dir.Write("1_t.sql", "CREATE TABLE it_down_n (id int);\n");
    dir.Write("2_rows.sql", "-- keel:no-transaction\nCREATE INDEX CONCURRENTLY it_down_n_id ON "
                            "it_down_n (id);\nINSERT INTO it_down_n VALUES (1), (2);\n");
    /* VACUUM cannot run in a transaction: the transactional form is refused before it runs */
    dir.Write("2_rows.down.sql", "DELETE FROM it_down_n;\nVACUUM it_down_n;\n");
    ASSERT_EQ(RunKeel(db, "migrate --dir " + dir.Dir()).exit_code, 0);
    auto conn = Connect("keel_it_down_notx");
    KeelRun refused = RunKeel(db, "down --dir " + dir.Dir());
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_TRUE(Contains(refused.err, "2_rows.down.sql:2")) << refused.err;
    EXPECT_TRUE(Contains(refused.err, "keel:no-transaction")) << refused.err;
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM it_down_n"), "2");

    /* a failure midway: what ran stays committed, the version stays applied */
    dir.Write("2_rows.down.sql",
              "-- keel:no-transaction\nDELETE FROM it_down_n WHERE id = 1;\nSELECT 1 / 0;\n");
    KeelRun midway = RunKeel(db, "down --dir " + dir.Dir());
    EXPECT_EQ(midway.exit_code, 1);
    EXPECT_TRUE(Contains(midway.err, "2_rows.down.sql:3: division by zero")) << midway.err;
    EXPECT_TRUE(Contains(midway.err, "stay committed (keel:no-transaction)")) << midway.err;
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM it_down_n"), "1");
    EXPECT_EQ(Statuses(conn.get(), "2"), "applied:0");

    dir.Write("2_rows.down.sql", "-- keel:no-transaction\nDELETE FROM it_down_n;\nVACUUM "
                                 "it_down_n;\n");
    KeelRun down = RunKeel(db, "down --dir " + dir.Dir());
    ASSERT_EQ(down.exit_code, 0) << down.err;
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM it_down_n"), "0");
    EXPECT_EQ(Statuses(conn.get(), "2"), "applied:0,reverted:0");
    /* the journal of the first apply is not taken for the new revision's */
    dir.Write("2_rows.sql", "-- keel:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS "
                            "it_down_n_id ON it_down_n (id);\nINSERT INTO it_down_n VALUES (1), "
                            "(2);\n");
    ASSERT_EQ(RunKeel(db, "repair --dir " + dir.Dir() + " --reason x").exit_code, 0);
    KeelRun again = RunKeel(db, "migrate --dir " + dir.Dir());
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_FALSE(Contains(again.out, "resuming")) << again.out;
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM it_down_n"), "2");
}

TEST(MigrateDown, StatusShowsRevertedAsPendingWithAlignedColumns) {
    std::string db = ScratchDatabase("keel_it_down_status", true);
    TempDir dir("down_status");
    dir.Write("1_a.sql", "CREATE TABLE it_down_s (id int);\n");
    dir.Write("2_a_longer_name.sql", "INSERT INTO it_down_s VALUES (2);\n");
    dir.Write("2_a_longer_name.down.sql", "DELETE FROM it_down_s;\n");
    dir.Write("100_later.sql", "INSERT INTO it_down_s VALUES (100);\n");
    ASSERT_EQ(RunKeel(db, "migrate --target 2 --dir " + dir.Dir()).exit_code, 0);
    ASSERT_EQ(RunKeel(db, "down --dir " + dir.Dir()).exit_code, 0);
    KeelRun status = RunKeel(db, "status --dir " + dir.Dir());
    ASSERT_EQ(status.exit_code, 0) << status.err;
    std::string applied = LineStarting(status.out, "applied");
    std::string reverted = LineStarting(status.out, "pending     2");
    std::string later = LineStarting(status.out, "pending     100");
    ASSERT_FALSE(applied.empty()) << status.out;
    ASSERT_FALSE(reverted.empty()) << status.out;
    ASSERT_FALSE(later.empty()) << status.out;
    EXPECT_TRUE(Contains(reverted, "(reverted ")) << status.out;
    auto a = ColumnStarts(applied), r = ColumnStarts(reverted), l = ColumnStarts(later);
    ASSERT_GE(a.size(), 4u) << applied;
    ASSERT_GE(r.size(), 4u) << reverted;
    ASSERT_EQ(l.size(), 3u) << later;
    /* kind, version, name, and what follows the name: the same offsets on every line */
    for (size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(a[i], r[i]) << status.out;
        EXPECT_EQ(a[i], l[i]) << status.out;
    }
    EXPECT_EQ(a[3], r[3]) << status.out;
    EXPECT_EQ(applied.substr(a[2], 7), "1_a.sql") << status.out;
    EXPECT_EQ(later.substr(l[1], 3), "100") << status.out;
    EXPECT_EQ(later.back(), 'l') << "no trailing spaces: " << status.out;
    /* history only (no folder): the revert still shows */
    KeelRun history = RunKeel(db, "status");
    EXPECT_TRUE(Contains(LineStarting(history.out, "reverted    2"), "2_a_longer_name.down.sql"))
        << history.out;
}

TEST(MigrateDown, NewWithDownCreatesBothFilesAndTheyRoundTrip) {
    TempDir dir("down_new");
    dir.Write("0004_first.sql", "CREATE TABLE it_down_new (id int);\n");
    KeelRun made = RunKeel("dbname=postgres", "new add_row --down --dir " + dir.Dir());
    ASSERT_EQ(made.exit_code, 0) << made.err;
    EXPECT_TRUE(std::filesystem::exists(dir.path / "0005_add_row.sql")) << made.out;
    EXPECT_TRUE(std::filesystem::exists(dir.path / "0005_add_row.down.sql")) << made.out;
    EXPECT_TRUE(Contains(made.out, "created")) << made.out;
    EXPECT_TRUE(Contains(Slurp(dir.path / "0005_add_row.down.sql"), "keel down runs it"));
    KeelRun plain = RunKeel("dbname=postgres", "new other --dir " + dir.Dir());
    ASSERT_EQ(plain.exit_code, 0) << plain.err;
    EXPECT_FALSE(std::filesystem::exists(dir.path / "0006_other.down.sql"));

    /* filled in, the pair migrates and reverts */
    std::filesystem::remove(dir.path / "0006_other.sql");
    dir.Write("0005_add_row.sql", "INSERT INTO it_down_new VALUES (5);\n");
    dir.Write("0005_add_row.down.sql", "DELETE FROM it_down_new WHERE id = 5;\n");
    std::string db = ScratchDatabase("keel_it_down_new", true);
    ASSERT_EQ(RunKeel(db, "migrate --dir " + dir.Dir()).exit_code, 0);
    KeelRun down = RunKeel(db, "down --dir " + dir.Dir());
    ASSERT_EQ(down.exit_code, 0) << down.err;
    auto conn = Connect("keel_it_down_new");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM it_down_new"), "0");
}

/* The same lock as migrate (KL004 names the holder), --lock-timeout, and the grants it needs. */
TEST(MigrateDown, TakesTheMigrationLockHonoursLockTimeoutAndNeedsItsGrant) {
    {
        auto admin = Connect("postgres");
        Exec(admin.get(), "DROP DATABASE IF EXISTS keel_it_down_lock WITH (FORCE)");
        Exec(admin.get(), "DROP ROLE IF EXISTS keel_it_down_role");
        Exec(admin.get(), "CREATE ROLE keel_it_down_role LOGIN PASSWORD 'it-down-pw'");
    }
    std::string db = ScratchDatabase("keel_it_down_lock", true);
    TempDir dir("down_lock");
    WriteRows(dir);
    ASSERT_EQ(RunKeel(db, "migrate --dir " + dir.Dir()).exit_code, 0);
    auto holder = Connect("keel_it_down_lock");
    Exec(holder.get(), "SELECT keel.migration_lock()");
    KeelRun locked = RunKeel(db, "down --lock-wait 1 --dir " + dir.Dir());
    EXPECT_EQ(locked.exit_code, 1);
    EXPECT_TRUE(Contains(locked.err, "KL004")) << locked.err;
    EXPECT_TRUE(Contains(locked.err, "process " + std::to_string(PQbackendPID(holder.get()))))
        << locked.err;
    Exec(holder.get(), "SELECT keel.migration_unlock()");

    /* a table lock held elsewhere: SET LOCAL lock_timeout, retried, then the 55P03 error */
    Exec(holder.get(), "BEGIN; LOCK TABLE it_down_t IN ACCESS EXCLUSIVE MODE");
    KeelRun timed = RunKeel(db, "down --lock-timeout 50 --lock-retries 1 --dir " + dir.Dir());
    Exec(holder.get(), "ROLLBACK");
    EXPECT_EQ(timed.exit_code, 1) << timed.out;
    EXPECT_TRUE(Contains(timed.out, "lock not granted within 50 ms (--lock-timeout), attempt 1 "
                                    "of 2"))
        << timed.out;
    EXPECT_TRUE(Contains(timed.err, "3_three.down.sql:")) << timed.err;
    EXPECT_TRUE(Contains(timed.err, "55P03")) << timed.err;
    EXPECT_EQ(Ids(holder.get()), "2,3");
    EXPECT_EQ(Statuses(holder.get(), "3"), "applied:0");

    /* an ordinary role: refused until keel install --grant-migrations */
    Exec(holder.get(), "GRANT ALL ON it_down_t TO keel_it_down_role");
    std::string as_role = db + " user=keel_it_down_role password=it-down-pw";
    KeelRun refused = RunKeel(as_role, "down --dir " + dir.Dir());
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_TRUE(Contains(refused.err, "may not take the migration lock or record reverts"))
        << refused.err;
    EXPECT_TRUE(Contains(refused.err, "keel install --grant-migrations keel_it_down_role"))
        << refused.err;
    ASSERT_EQ(RunKeel(db, "install --grant-migrations keel_it_down_role").exit_code, 0);
    KeelRun granted = RunKeel(as_role, "down --dir " + dir.Dir());
    EXPECT_EQ(granted.exit_code, 0) << granted.err;
    EXPECT_EQ(ScalarText(holder.get(), "SELECT applied_by FROM keel.migration_history WHERE "
                                       "status = 'reverted'"),
              "keel_it_down_role");
    for (const KeelRun *r : {&refused, &granted})
        EXPECT_FALSE(Contains(r->out + r->err, "it-down-pw"));
    holder.reset();
    auto admin = Connect("postgres");
    Exec(admin.get(), "DROP DATABASE keel_it_down_lock WITH (FORCE)");
    Exec(admin.get(), "DROP ROLE keel_it_down_role");
}

TEST(MigrateDown, HelpListsItsOptionsAndBadOptionsAreUsageErrors) {
    KeelRun help = RunKeel("dbname=postgres", "down --help");
    EXPECT_EQ(help.exit_code, 0);
    for (const char *opt : {"--dir", "--to", "--steps", "--lock-wait", "--lock-timeout",
                            "--lock-retries", "--quiet", "--dry-run"})
        EXPECT_TRUE(Contains(help.out, opt)) << opt << "\n" << help.out;
    EXPECT_FALSE(Contains(help.out, "--allow-out-of-order")) << help.out;
    KeelRun new_help = RunKeel("dbname=postgres", "new --help");
    EXPECT_TRUE(Contains(new_help.out, "--down")) << new_help.out;
    EXPECT_EQ(RunKeel("dbname=postgres", "down --bogus --dir /tmp").exit_code, 2);
    EXPECT_EQ(RunKeel("dbname=postgres", "down").exit_code, 2);
    EXPECT_EQ(RunKeel("dbname=postgres", "down --to 1 --steps 1 --dir /tmp").exit_code, 2);
    EXPECT_EQ(RunKeel("dbname=postgres", "down --steps 0 --dir /tmp").exit_code, 2);
}
