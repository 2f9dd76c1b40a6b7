/*
 * tests/integration/migrate_journal_test.cpp
 *   keel migrate 0.2.0 against the throwaway cluster: cosmetic checksum
 *   changes (token checksums), the journal of keel:no-transaction files
 *   (resume after a failure; the invalid index of an interrupted CREATE INDEX
 *   CONCURRENTLY), and the migration lock that a squatter cannot hold.
 */
#include "keel_run.hpp"
#include "test_db.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

using namespace keel_test;

namespace {

std::string Statuses(PGconn *conn, const std::string &version) {
    return ScalarText(conn, "SELECT coalesce(string_agg(status, ',' ORDER BY id), '') FROM "
                            "keel.migration_history WHERE version = " +
                                version);
}

} // namespace

TEST(MigrateJournal, CommentOrWhitespaceEditIsCosmeticARealEditIsRefused) {
    std::string db = ScratchDatabase("keel_it_cosmetic", true);
    TempDir dir("cosmetic");
    dir.Write("1_t.sql", "CREATE TABLE t (id int, n int DEFAULT 0);\nINSERT INTO t VALUES (1);\n");
    KeelRun first = RunKeel(db, "migrate --dir " + dir.Dir());
    ASSERT_EQ(first.exit_code, 0) << first.err;

    /* comments, blank lines, indentation and keyword case: cosmetic */
    dir.Write("1_t.sql", "-- the table of t\ncreate table t (\n    id int,  /* key */\n    n int "
                         "default 0\n);\n\nINSERT INTO t VALUES (1);  -- one row\n");
    KeelRun status = RunKeel(db, "status --dir " + dir.Dir());
    EXPECT_EQ(status.exit_code, 0) << status.out << status.err;
    EXPECT_TRUE(Contains(status.out, "COSMETIC")) << status.out;
    EXPECT_TRUE(Contains(status.out, "0 checksum mismatches, 1 cosmetic changes")) << status.out;
    dir.Write("2_u.sql", "CREATE TABLE u (id int);\n");
    KeelRun go_on = RunKeel(db, "migrate --dir " + dir.Dir());
    EXPECT_EQ(go_on.exit_code, 0) << go_on.err;
    EXPECT_TRUE(Contains(go_on.out, "only in comments or whitespace")) << go_on.out;
    EXPECT_TRUE(Contains(go_on.out, "applied 2_u.sql")) << go_on.out;

    /* a changed constant is real, though pg_query_fingerprint would call it equal */
    for (const char *edit : {"CREATE TABLE t (id int, n int DEFAULT 100);\nINSERT INTO t VALUES "
                             "(1);\n",
                             "CREATE TABLE t (id int, n int DEFAULT 0);\nINSERT INTO t VALUES "
                             "(2);\n",
                             "-- keel:no-transaction\nCREATE TABLE t (id int, n int DEFAULT "
                             "0);\nINSERT INTO t VALUES (1);\n"}) {
        dir.Write("1_t.sql", edit);
        dir.Write("3_v.sql", "CREATE TABLE v (id int);\n");
        KeelRun refused = RunKeel(db, "migrate --dir " + dir.Dir());
        EXPECT_EQ(refused.exit_code, 1) << edit << refused.out;
        EXPECT_TRUE(Contains(refused.err, "1_t.sql: checksum mismatch")) << refused.err;
        KeelRun st = RunKeel(db, "status --dir " + dir.Dir());
        EXPECT_EQ(st.exit_code, 3) << st.out;
        EXPECT_TRUE(Contains(st.out, "MISMATCH")) << st.out;
    }
    auto conn = Connect("keel_it_cosmetic");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('v') IS NULL"), "t");
    /* a repair records the new token checksum too: the next comment edit is cosmetic again */
    dir.Write("1_t.sql",
              "CREATE TABLE t (id int, n int DEFAULT 100);\nINSERT INTO t VALUES (1);\n");
    KeelRun repair = RunKeel(db, "repair --dir " + dir.Dir() + " --reason 'default was 100'");
    ASSERT_EQ(repair.exit_code, 0) << repair.err;
    dir.Write("1_t.sql", "CREATE TABLE t (id int, n int DEFAULT 100); -- hundred\nINSERT INTO t "
                         "VALUES (1);\n");
    KeelRun after = RunKeel(db, "migrate --dir " + dir.Dir());
    EXPECT_EQ(after.exit_code, 0) << after.err;
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('v') IS NOT NULL"), "t");
}

TEST(MigrateJournal, NoTransactionFileResumesAtTheFailedStatement) {
    std::string db = ScratchDatabase("keel_it_resume", true);
    TempDir dir("resume");
    dir.Write("1_base.sql", "CREATE TABLE items (id int PRIMARY KEY, sku text);\n"
                            "INSERT INTO items VALUES (1, 'a'), (2, 'a');\n");
    /* statement 3 fails (duplicate sku) and leaves an invalid index */
    dir.Write("2_idx.sql", "-- keel:no-transaction\n"
                           "CREATE TABLE audit_a (id int);\n"
                           "INSERT INTO items VALUES (3, 'c');\n"
                           "CREATE UNIQUE INDEX CONCURRENTLY items_sku ON items (sku);\n"
                           "CREATE TABLE audit_b (id int);\n");
    KeelRun failed = RunKeel(db, "migrate --dir " + dir.Dir());
    ASSERT_EQ(failed.exit_code, 1) << failed.out;
    EXPECT_TRUE(Contains(failed.err, "2_idx.sql:4")) << failed.err;
    EXPECT_TRUE(Contains(failed.err, "resumes at this statement")) << failed.err;
    auto conn = Connect("keel_it_resume");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.migration_steps WHERE version = 2"),
              "2");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT NOT indisvalid FROM pg_index WHERE indexrelid = "
                                     "'items_sku'::regclass"),
              "t");
    KeelRun status = RunKeel(db, "status --dir " + dir.Dir());
    EXPECT_TRUE(Contains(status.out, "interrupted 2")) << status.out;
    EXPECT_TRUE(Contains(status.out, "completed 2 statement(s), the last at line 3")) << status.out;

    /* fix the data (not the file): the rerun skips statements 1-2 and rebuilds the index */
    Exec(conn.get(), "UPDATE items SET sku = 'b' WHERE id = 2");
    KeelRun resumed = RunKeel(db, "migrate --dir " + dir.Dir());
    ASSERT_EQ(resumed.exit_code, 0) << resumed.out << resumed.err;
    EXPECT_TRUE(Contains(resumed.out, "resuming at statement 3 of 4")) << resumed.out;
    EXPECT_TRUE(Contains(resumed.out, "REINDEX INDEX CONCURRENTLY")) << resumed.out;
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM items WHERE id = 3"), "1");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT indisvalid FROM pg_index WHERE indexrelid = "
                                     "'items_sku'::regclass"),
              "t");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('audit_b') IS NOT NULL"), "t");
    EXPECT_EQ(Statuses(conn.get(), "2"), "failed,applied");
    KeelRun clean = RunKeel(db, "status --dir " + dir.Dir());
    EXPECT_EQ(clean.exit_code, 0) << clean.out;
    EXPECT_FALSE(Contains(clean.out, "interrupted")) << clean.out;
}

TEST(MigrateJournal, ChangedIndexStatementAfterAFailedBuildIsNamedNotGuessed) {
    std::string db = ScratchDatabase("keel_it_heal", true);
    TempDir dir("heal");
    dir.Write("1_base.sql", "CREATE TABLE items (id int PRIMARY KEY, sku text);\n"
                            "INSERT INTO items VALUES (1, 'a'), (2, 'a');\n");
    dir.Write("2_idx.sql", "-- keel:no-transaction\n"
                           "CREATE UNIQUE INDEX CONCURRENTLY items_sku ON items (sku);\n");
    ASSERT_EQ(RunKeel(db, "migrate --dir " + dir.Dir()).exit_code, 1);
    /* the file changes the index: the invalid leftover has another definition */
    dir.Write("2_idx.sql", "-- keel:no-transaction\n"
                           "CREATE UNIQUE INDEX CONCURRENTLY items_sku ON items (sku, id);\n");
    KeelRun refused = RunKeel(db, "migrate --dir " + dir.Dir());
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_TRUE(Contains(refused.err, "index items_sku exists and is invalid")) << refused.err;
    EXPECT_TRUE(Contains(refused.err, "DROP INDEX items_sku")) << refused.err;
}

TEST(MigrateJournal, ASquatterOnTheLockKeyBlocksNoRunner) {
    std::string db = ScratchDatabase("keel_it_squat", true);
    auto admin = Connect("keel_it_squat");
    Exec(admin.get(), "DROP ROLE IF EXISTS keel_it_squatter");
    Exec(admin.get(), "CREATE ROLE keel_it_squatter");
    std::string key = ScalarText(admin.get(), "SELECT lock_key FROM keel.migration_lock_state");
    /* an ordinary role takes the current key by hand (it saw it in pg_locks) */
    auto squatter = Connect("keel_it_squat");
    Exec(squatter.get(), "SET ROLE keel_it_squatter");
    Exec(squatter.get(), "SELECT pg_advisory_lock(1801807212, " + key + ")");
    TempDir dir("squat");
    dir.Write("1_a.sql", "CREATE TABLE a (id int);\n");
    KeelRun run = RunKeel(db, "migrate --lock-wait 2 --dir " + dir.Dir());
    EXPECT_EQ(run.exit_code, 0) << run.err;
    EXPECT_TRUE(Contains(run.err, "which is not a keel runner")) << run.err;
    EXPECT_NE(ScalarText(admin.get(), "SELECT lock_key FROM keel.migration_lock_state"), key);
    /* and it may not call keel's own lock function */
    Result res(PQexec(squatter.get(), "SELECT keel.migration_lock()"), &PQclear);
    EXPECT_STREQ(PQresultErrorField(res.get(), PG_DIAG_SQLSTATE), "42501");
    squatter.reset();
    Exec(admin.get(), "DROP ROLE keel_it_squatter");
}
