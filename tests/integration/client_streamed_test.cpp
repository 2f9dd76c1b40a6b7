/*
 * tests/integration/client_streamed_test.cpp
 *   Streamed migration files (issue 12) run by the built `keel` client
 *   against the throwaway cluster, with the streaming threshold lowered
 *   (KEEL_STREAM_THRESHOLD) so files of a few MB take the streamed path: its
 *   own BEGIN/COMMIT, inline COPY data, batches of many statements, a late
 *   syntax error (nothing applied), a failing statement named by file:line,
 *   plan, rehearse, a keel:no-transaction file, and lint's refusal.
 */
#include "keel_run.hpp"
#include "test_db.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
using keel_test::Connect;
using keel_test::Contains;
using keel_test::KeelRun;
using keel_test::RunKeel;
using keel_test::ScalarText;
using keel_test::ScratchDatabase;
using keel_test::ShellQuote;
using keel_test::Slurp;
using keel_test::TempDir;

namespace {

/* RunStreamed runs keel, streaming every file above threshold bytes ("" = the default). */
KeelRun RunStreamed(const std::string &db, const std::string &args, const std::string &threshold) {
    return RunKeel(db, args, threshold.empty() ? "" : "KEEL_STREAM_THRESHOLD=" + threshold);
}

/* Rows returns about bytes of INSERT lines into table t, numbered from first; counts lines. */
std::string Rows(size_t bytes, int first, size_t *lines) {
    std::string out;
    for (int i = first; out.size() < bytes; ++i) {
        out += "INSERT INTO t VALUES (" + std::to_string(i) + ", 'row " + std::to_string(i) +
               "; with a semicolon and ''quotes''');\n";
        ++*lines;
    }
    return out;
}

/* LineCount is the number of '\n' in s. */
size_t LineCount(const std::string &s) {
    return size_t(std::count(s.begin(), s.end(), '\n'));
}

} // namespace

/* A 3 MB file in its own BEGIN/COMMIT, with COPY data inline: applied whole in batches, and its
 * checksum is the one the in-memory path computes (status without streaming sees no change). */
TEST(ClientStreamed, LargeWrappedFileWithCopyApplies) {
    std::string db = ScratchDatabase("keel_it_stream_ok", true);
    TempDir dir("ok");
    size_t lines = 3;
    std::string file = "-- a pg_dump-style data file\r\nBEGIN;\r\nCREATE TABLE t (id int "
                       "PRIMARY KEY, note text);\r\n";
    std::string rows = Rows(1500000, 1, &lines);
    file += rows;
    file += "COPY t (id, note) FROM stdin;\n";
    for (int i = 0; i < 1000; ++i)
        file += std::to_string(1000000 + i) + "\tcopied; " + std::to_string(i) + "\n";
    file += "\\.\n";
    file += "DO $$ BEGIN PERFORM 1; END $$;\n";
    file += Rows(1500000, 2000000, &lines);
    file += "COMMIT;\n";
    dir.Write("0001_data.sql", file);
    dir.Write("0002_func.sql", "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $f$\nBEGIN\n"
                               "  RETURN 1;\nEND $f$");

    KeelRun plan = RunStreamed(db, "plan --json --dir " + dir.path.string(), "4096");
    ASSERT_EQ(plan.exit_code, 0) << plan.err << plan.out;
    nlohmann::json p = nlohmann::json::parse(plan.out);
    size_t inserts = 0;
    for (size_t at = 0; (at = file.find("INSERT INTO", at)) != std::string::npos; ++at)
        ++inserts;
    EXPECT_EQ(p["pending"][0]["statement_count"], inserts + 3); /* CREATE, COPY, DO */
    EXPECT_EQ(p["pending"][0]["streamed_bytes"], file.size());

    KeelRun rehearse = RunStreamed(db, "rehearse --dir " + dir.path.string(), "4096");
    ASSERT_EQ(rehearse.exit_code, 0) << rehearse.err;
    auto conn = Connect("keel_it_stream_ok");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('t') IS NULL"), "t");

    KeelRun run = RunStreamed(db, "migrate --dir " + dir.path.string(), "4096");
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM t"), std::to_string(inserts + 1000));
    EXPECT_EQ(ScalarText(conn.get(), "SELECT note FROM t WHERE id = 1000999"), "copied; 999");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT note FROM t WHERE id = 1"),
              "row 1; with a semicolon and 'quotes'");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT f()"), "1");

    /* read whole this time: the same checksums, nothing to apply */
    KeelRun status = RunStreamed(db, "status --json --dir " + dir.path.string(), "");
    ASSERT_EQ(status.exit_code, 0) << status.err << status.out;
    KeelRun again = RunStreamed(db, "migrate --dir " + dir.path.string(), "");
    EXPECT_EQ(again.exit_code, 0) << again.err;
    EXPECT_TRUE(Contains(again.out, "nothing to apply")) << again.out;
}

/* A syntax error on a late line: refused before anything runs, with its file:line. */
TEST(ClientStreamed, LateSyntaxErrorAppliesNothing) {
    std::string db = ScratchDatabase("keel_it_stream_syntax", true);
    TempDir dir("syntax");
    dir.Write("0001_small.sql", "CREATE TABLE before_it (a int);\n");
    size_t lines = 1;
    std::string file = "CREATE TABLE t (id int PRIMARY KEY, note text);\n" +
                       Rows(2500000, 1, &lines) + "INSERT INTO t VALUES (0, 'x'));\n" +
                       Rows(10000, 5000000, &lines);
    size_t bad_line = 0;
    {
        size_t n = 1;
        for (size_t at = 0; at < file.size(); ++at)
            if (file.compare(at, 30, "INSERT INTO t VALUES (0, 'x'))") == 0) {
                bad_line = n;
                break;
            } else if (file[at] == '\n')
                ++n;
    }
    dir.Write("0002_data.sql", file);
    KeelRun run = RunStreamed(db, "migrate --dir " + dir.path.string(), "4096");
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_TRUE(Contains(run.err, "0002_data.sql:" + std::to_string(bad_line) +
                                      ": syntax error at or near \")\""))
        << run.err;
    EXPECT_TRUE(Contains(run.err, "nothing applied")) << run.err;
    auto conn = Connect("keel_it_stream_syntax");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('before_it') IS NULL"), "t");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.migration_history"), "0");
}

/* A statement that fails at run time, deep in a batch: named by its line, the file rolled back
 * and recorded failed with that line and statement. */
TEST(ClientStreamed, FailingStatementNamesItsLine) {
    std::string db = ScratchDatabase("keel_it_stream_fail", true);
    TempDir dir("fail");
    size_t lines = 1;
    std::string head =
        "CREATE TABLE t (id int PRIMARY KEY, note text);\n" + Rows(1200000, 1, &lines);
    std::string file =
        head + "INSERT INTO t VALUES\n  (0, nosuch_column);\n" + Rows(20000, 9000000, &lines);
    dir.Write("0001_data.sql", file);
    KeelRun run = RunStreamed(db, "migrate --dir " + dir.path.string(), "4096");
    EXPECT_EQ(run.exit_code, 1);
    std::string where = "0001_data.sql:" + std::to_string(LineCount(head) + 2) + ":";
    EXPECT_TRUE(Contains(run.err, where)) << run.err;
    EXPECT_TRUE(Contains(run.err, "column \"nosuch_column\" does not exist")) << run.err;
    auto conn = Connect("keel_it_stream_fail");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('t') IS NULL"), "t");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT status || ' ' || error_line FROM "
                                     "keel.migration_history WHERE version = 1"),
              "failed " + std::to_string(LineCount(head) + 2));

    /* a duplicate key (no position): the statement's first line */
    std::string dup = head + "INSERT INTO t VALUES (1, 'again');\n" + Rows(20000, 9000000, &lines);
    dir.Write("0001_data.sql", dup);
    KeelRun again = RunStreamed(db, "migrate --dir " + dir.path.string(), "4096");
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_TRUE(Contains(again.err, "0001_data.sql:" + std::to_string(LineCount(head) + 1) +
                                        ": duplicate key value"))
        << again.err;
}

/* keel:no-transaction: statement by statement, what refuses a transaction block included. */
TEST(ClientStreamed, NoTransactionFileRunsStatementByStatement) {
    std::string db = ScratchDatabase("keel_it_stream_notx", true);
    TempDir dir("notx");
    size_t lines = 0;
    std::string file = "-- keel:no-transaction\nCREATE TABLE t (id int, note text);\n" +
                       Rows(200000, 1, &lines) + "CREATE INDEX CONCURRENTLY t_id ON t (id);\n";
    dir.Write("0001_data.sql", file);
    KeelRun run = RunStreamed(db, "migrate --dir " + dir.path.string(), "4096");
    ASSERT_EQ(run.exit_code, 0) << run.err;
    auto conn = Connect("keel_it_stream_notx");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM t"), std::to_string(lines));
    EXPECT_EQ(ScalarText(conn.get(), "SELECT indisvalid FROM pg_index WHERE indexrelid = "
                                     "'t_id'::regclass"),
              "t");
}

/* keel lint reads files whole: one it would have to hold that keel migrate streams is refused,
 * with its size. */
TEST(ClientStreamed, LintRefusesAFileItWouldHoldWhole) {
    TempDir dir("lint");
    size_t lines = 0;
    dir.Write("0001_data.sql", "CREATE TABLE t (id int, note text);\n" + Rows(2 << 20, 1, &lines));
    KeelRun run = RunStreamed("dbname=postgres", "lint " + dir.path.string(), "1048576");
    EXPECT_EQ(run.exit_code, 2);
    EXPECT_TRUE(Contains(run.err, "0001_data.sql: 2.0 MiB is more than keel lint reads (1 MiB"))
        << run.err;
}
