/*
 * tests/unit/progress_test.cpp
 *   The status line of keel migrate (client/lib/progress.*): what it says,
 *   how it fits the terminal's width, and that it stays off unless asked.
 */
#include "lib/commands.hpp"
#include "lib/progress.hpp"

#include <gtest/gtest.h>

#include <sstream>
#include <thread>

using keel::client::Progress;
using keel::client::ProgressMode;

namespace {

size_t Chars(const std::string &s) {
    size_t n = 0;
    for (unsigned char c : s)
        n += (c & 0xC0) != 0x80;
    return n;
}

} // namespace

TEST(Progress, LineNamesFileStatementLineAndElapsedTime) {
    std::string line = Progress::Line(3, 261, "0003_add_index.sql", 2, 2, 5, 14,
                                      "CREATE INDEX  orders_x\n  ON orders (x)", 12.44, 14.0, 200);
    EXPECT_EQ(line, "[3/261] 0003_add_index.sql  statement 2 of 5, line 14: CREATE INDEX "
                    "orders_x ON orders (x)  12.4 s (file 14.0 s)");
}

TEST(Progress, PipelinedChunkIsARangeAndLongTimesAreMinutes) {
    std::string line =
        Progress::Line(1, 2, "0001_a.sql", 1, 200, 450, 1, "SELECT 1", 125, 125, 200);
    EXPECT_EQ(line, "[1/2] 0001_a.sql  statements 1-200 of 450, line 1: SELECT 1  2m05s");
    EXPECT_EQ(Progress::Line(1, 1, "0001_a.sql", 0, 0, 0, 0, "", 0.04, 0.04, 80),
              "[1/1] 0001_a.sql  0.0 s");
    /* a streamed file: its count unknown */
    EXPECT_EQ(Progress::Line(1, 1, "0001_big.sql", 7, 9, 0, 70, "INSERT", 4000, 4000, 80),
              "[1/1] 0001_big.sql  statements 7-9, line 70: INSERT  1h06m");
}

TEST(Progress, LineNeverExceedsTheWidthAndCutsTextAtACharacter) {
    std::string sql = "INSERT INTO t VALUES ('" + std::string(300, 'x') + "é')";
    for (size_t width : {20u, 40u, 79u, 120u}) {
        std::string line = Progress::Line(12, 1000, "0012_a_long_file_name_for_the_test.sql", 1, 1,
                                          1, 1, sql, 1.5, 1.5, width);
        EXPECT_LE(Chars(line), width) << line;
        EXPECT_FALSE(line.empty());
    }
    std::string utf8 = "SELECT 'ééééééééééééééééééééééééééééééééééééééééé'";
    std::string line = Progress::Line(1, 1, "0001_a.sql", 1, 1, 1, 1, utf8, 0, 0, 60);
    EXPECT_LE(Chars(line), 60u);
    /* no lead byte without its continuation: the cut is at a character boundary */
    size_t pos = line.find("...");
    ASSERT_NE(pos, std::string::npos) << line;
    EXPECT_NE(static_cast<unsigned char>(line[pos - 1]), 0xC3) << line;
}

TEST(Progress, OffWhenNotATerminalOrQuietAndPrintStillWrites) {
    std::ostringstream term, out;
    {
        Progress auto_mode(ProgressMode::Auto, false, term, -1); /* -1: not a terminal */
        EXPECT_FALSE(auto_mode.enabled());
        auto_mode.File(1, 1, "0001_a.sql");
        auto_mode.Print(out, "applied 0001_a.sql\n");
        Progress quiet(ProgressMode::Always, true, term, -1);
        EXPECT_FALSE(quiet.enabled());
        Progress never(ProgressMode::Never, false, term, -1);
        EXPECT_FALSE(never.enabled());
    }
    EXPECT_EQ(term.str(), "");
    EXPECT_EQ(out.str(), "applied 0001_a.sql\n");
}

TEST(Progress, AlwaysDrawsClearsBeforeLinesAndClearsAtTheEnd) {
    std::ostringstream term, out;
    {
        Progress bar(ProgressMode::Always, false, term, -1);
        ASSERT_TRUE(bar.enabled());
        bar.File(1, 2, "0001_a.sql");
        bar.Statement(1, 1, 3, 2, "SELECT pg_sleep(1)");
        std::this_thread::sleep_for(std::chrono::milliseconds(450)); /* ticks every 200 ms */
        bar.Print(out, "applied 0001_a.sql\n");
    }
    std::string t = term.str();
    EXPECT_NE(t.find("\r[1/2] 0001_a.sql  0.0 s\033[K"), std::string::npos) << t;
    /* Statement does not draw: the ticker thread did, with the time moving */
    EXPECT_NE(t.find("statement 1 of 3, line 2: SELECT pg_sleep(1)  0."), std::string::npos) << t;
    /* the last thing on the terminal is the cleared line */
    ASSERT_GE(t.size(), 4u);
    EXPECT_EQ(t.substr(t.size() - 4), "\r\033[K");
    EXPECT_EQ(out.str(), "applied 0001_a.sql\n");
}

TEST(Progress, ModesParseAndAnythingElseIsAUsageError) {
    EXPECT_EQ(keel::client::ParseProgressMode("auto"), ProgressMode::Auto);
    EXPECT_EQ(keel::client::ParseProgressMode("always"), ProgressMode::Always);
    EXPECT_EQ(keel::client::ParseProgressMode("never"), ProgressMode::Never);
    EXPECT_THROW(keel::client::ParseProgressMode("yes"), keel::client::CommandError);
}

/* A statement's text starts with the comments before it: the status line shows its SQL. */
TEST(Progress, LineLeavesOutTheCommentsBeforeTheStatement) {
    EXPECT_EQ(Progress::Line(2, 2, "0002_b.sql", 1, 1, 1, 2,
                             "-- keel:no-transaction\n  -- why\nDISCARD ALL", 0.0, 0.0, 200),
              "[2/2] 0002_b.sql  statement 1 of 1, line 2: DISCARD ALL  0.0 s");
}
