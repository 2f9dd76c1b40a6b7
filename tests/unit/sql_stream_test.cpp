/*
 * tests/unit/sql_stream_test.cpp
 *   The streamed path for large migration files (issue 12): checksums and
 *   encoding checks over chunks, the statement splitter (sql_stream.hpp), the
 *   fast INSERT check (sql_fast_check.hpp) and the streamed preflight, each
 *   held to the in-memory path's answer on the same input.
 */
#include "lib/checksum.hpp"
#include "lib/migration_file.hpp"
#include "lib/sql_fast_check.hpp"
#include "lib/sql_script.hpp"
#include "lib/sql_stream.hpp"

#include <gtest/gtest.h>
#include <pg_query.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace kc = keel::client;
namespace fs = std::filesystem;

namespace {

/* Split cuts text with SqlStream reading chunk bytes at a time; copy data joined per statement. */
std::vector<std::pair<kc::StreamStatement, std::string>> Split(const std::string &text,
                                                               size_t chunk) {
    kc::SqlStream stream(std::make_unique<std::istringstream>(text), "t.sql", nullptr, chunk);
    std::vector<std::pair<kc::StreamStatement, std::string>> out;
    kc::StreamStatement st;
    while (stream.Next(st)) {
        std::string data;
        if (st.copy_from_stdin)
            while (stream.ReadCopyData(data)) {
            }
        out.emplace_back(st, data);
    }
    return out;
}

/* SplitEverywhere: the same statements whatever the chunk size (tokens cut between chunks). */
std::vector<std::pair<kc::StreamStatement, std::string>> SplitEverywhere(const std::string &text) {
    auto whole = Split(text, 1 << 20);
    for (size_t chunk : {1, 2, 3, 5, 7, 13}) {
        auto cut = Split(text, chunk);
        EXPECT_EQ(cut.size(), whole.size()) << "chunk " << chunk;
        for (size_t i = 0; i < std::min(cut.size(), whole.size()); ++i) {
            EXPECT_EQ(cut[i].first.text, whole[i].first.text) << "chunk " << chunk;
            EXPECT_EQ(cut[i].first.line, whole[i].first.line) << "chunk " << chunk;
            EXPECT_EQ(cut[i].first.start_line, whole[i].first.start_line) << "chunk " << chunk;
            EXPECT_EQ(cut[i].first.offset, whole[i].first.offset) << "chunk " << chunk;
            EXPECT_EQ(cut[i].second, whole[i].second) << "chunk " << chunk;
        }
    }
    return whole;
}

/* TempDir is a scratch folder removed at the end of the test. */
struct TempDir {
    fs::path path;
    explicit TempDir(const std::string &tag)
        : path(fs::temp_directory_path() /
               ("keel_stream_" + tag + "_" + std::to_string(getpid()))) {
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
    void Write(const std::string &name, const std::string &contents) const {
        std::ofstream(path / name, std::ios::binary) << contents;
    }
};

/* Outcome is what keel's preflight says about one file: its error, or statements and wrapper. */
std::string Outcome(const fs::path &dir, bool streamed) {
    if (streamed)
        setenv("KEEL_STREAM_THRESHOLD", "0", 1);
    kc::MigrationSet set = kc::LoadMigrationDir(dir);
    unsetenv("KEEL_STREAM_THRESHOLD");
    std::string out;
    for (const auto &p : set.problems)
        out += "problem: " + p + "\n";
    for (const auto &f : set.files) {
        EXPECT_EQ(f.streamed, streamed) << f.file_name;
        out +=
            f.file_name + " " + f.checksum + (f.directives.no_transaction ? " no-tx" : "") + ": ";
        try {
            kc::Script s = kc::PrepareFile(f);
            out += std::to_string(s.StatementCount()) + " statement(s)" +
                   (s.unwrapped ? ", unwrapped" : "");
        } catch (const kc::FileError &e) {
            out += e.what();
        }
        out += "\n";
    }
    return out;
}

} // namespace

TEST(ChecksumStream, AnyCutGivesTheInMemoryChecksum) {
    std::vector<std::string> texts = {
        "",
        "SELECT 1;\n",
        "\xEF\xBB\xBFSELECT 1;\r\nSELECT 2;\r\n",
        "a\rb\r\r\nc\n\r",
        std::string("x\r") + std::string(5000, 'y') + "\r\n\r",
    };
    std::mt19937 rng(12);
    for (int k = 0; k < 50; ++k) {
        std::string t;
        for (int i = 0; i < 300; ++i)
            t += "ab\r\n \r"[rng() % 6];
        texts.push_back(t);
    }
    for (const auto &text : texts) {
        std::string expected = kc::MigrationChecksum(text);
        EXPECT_EQ(expected, kc::Sha256Hex(kc::NormalizeLineEndings(text)));
        for (size_t piece : {1, 2, 3, 7, 64}) {
            kc::ChecksumStream sum;
            for (size_t i = 0; i < text.size(); i += piece)
                sum.Update(std::string_view(text).substr(i, piece));
            EXPECT_EQ(sum.Final(), expected) << "piece " << piece;
        }
    }
}

TEST(EncodingCheck, AnyCutGivesTheSameSentence) {
    std::vector<std::string> texts = {
        "CREATE TABLE t (a int);\n-- é, ✓, 😀\n",
        std::string("SELECT 1;\nSELECT 2;\0SELECT 3;", 30),
        "SELECT 'caf\xe9';",
        "ok\n\xc0\xaf",
        "\n\n\xed\xa0\x80",
        "😀😀\n\xf0\x9f\x98", /* cut short at the end */
        "\xf4\x90\x80\x80",
    };
    for (const auto &text : texts) {
        std::string expected = kc::EncodingProblem(text);
        for (size_t piece : {1, 2, 3, 5}) {
            kc::EncodingCheck check;
            for (size_t i = 0; i < text.size(); i += piece)
                check.Update(std::string_view(text).substr(i, piece));
            EXPECT_EQ(check.Finish(), expected) << "piece " << piece << " of " << text;
        }
    }
    EXPECT_EQ(kc::EncodingProblem("😀😀\n\xf0\x9f\x98"), "line 2 is not valid UTF-8 (byte 0xf0); "
                                                       "save the file as UTF-8");
}

TEST(SqlStream, QuotesCommentsAndDollarQuotesHideSemicolons) {
    std::string sql = "SELECT 'a;b''c;';\n"                          /* 1 */
                      "SELECT E'x\\';y';\n"                          /* 2: backslash escapes */
                      "SELECT 'x\\';\n"                              /* 3: standard: \ is a char */
                      "SELECT \"we;ird\"\"id;\" FROM t;\n"           /* 4 */
                      "-- a comment; still\n"                        /* 5 */
                      "/* block /* nested; */ still; */ SELECT 5;\n" /* 6 */
                      "CREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $x$; $body$ "
                      "LANGUAGE sql;\n"                     /* 7 */
                      "DO $$ BEGIN PERFORM 1; END $$;\n"    /* 8 */
                      "SELECT a$b$c FROM t WHERE x = $1;\n" /* 9: $ in an identifier */
                      "CREATE RULE r AS ON INSERT TO t DO ALSO (SELECT 1; SELECT 2);\n" /* 10 */
                      "CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;\n"
                      ";;\n"                      /* 12: empty statements */
                      "DO $$ BEGIN NULL; END $$"; /* 13: no final semicolon */
    auto stmts = SplitEverywhere(sql);
    ASSERT_EQ(stmts.size(), 11u);
    std::vector<size_t> lines = {1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 13};
    for (size_t i = 0; i < lines.size(); ++i)
        EXPECT_EQ(stmts[i].first.line, lines[i]) << i;
    EXPECT_EQ(stmts[0].first.text, "SELECT 'a;b''c;'");
    EXPECT_EQ(stmts[1].first.text, "\nSELECT E'x\\';y'");
    EXPECT_EQ(stmts[2].first.text, "\nSELECT 'x\\'");
    EXPECT_EQ(stmts[4].first.start_line, 4u); /* text starts after the previous ';' */
    EXPECT_EQ(stmts[4].first.words[0], "select");
    EXPECT_EQ(stmts[9].first.words[0], "create");
    EXPECT_EQ(stmts[9].first.words[1], "procedure");
    EXPECT_TRUE(stmts[9].first.terminated);
    EXPECT_FALSE(stmts[10].first.terminated);
    EXPECT_EQ(stmts[10].first.text, "\nDO $$ BEGIN NULL; END $$"); /* after the last ';' */

    /* the same cut as PostgreSQL's parser */
    kc::Script script = kc::PrepareScript(sql, "t.sql", false);
    ASSERT_EQ(script.statements.size(), stmts.size());
    for (size_t i = 0; i < stmts.size(); ++i) {
        EXPECT_EQ(script.statements[i].line, stmts[i].first.line) << i;
        EXPECT_EQ(script.statements[i].offset, stmts[i].first.offset) << i;
    }
}

TEST(SqlStream, CopyDataUpToItsEndLine) {
    std::string sql = "CREATE TABLE t (id int, note text);\n"
                      "COPY public.t (id, note) FROM stdin; -- data follows\n"
                      "1\tone; two\n"
                      "2\t\\N\n"
                      "\\.\n"
                      "\n"
                      "CREATE INDEX t_id ON t (id);\n"
                      "copy t FROM STDIN WITH (FORMAT csv);\r\n"
                      "3,\"x;y\"\r\n"
                      "\\.\r\n"
                      "SELECT 'copy t from stdin;';\n"
                      "COPY (SELECT 1) TO STDOUT;\n";
    auto stmts = SplitEverywhere(sql);
    ASSERT_EQ(stmts.size(), 6u);
    EXPECT_TRUE(stmts[1].first.copy_from_stdin);
    EXPECT_EQ(stmts[1].second, "1\tone; two\n2\t\\N\n");
    EXPECT_EQ(stmts[2].first.line, 7u);
    EXPECT_TRUE(stmts[3].first.copy_from_stdin);
    EXPECT_EQ(stmts[3].second, "3,\"x;y\"\r\n");
    EXPECT_FALSE(stmts[4].first.copy_from_stdin);
    EXPECT_EQ(stmts[4].first.line, 11u);
    EXPECT_FALSE(stmts[5].first.copy_from_stdin);

    /* the same as the in-memory path */
    kc::Script script = kc::PrepareScript(sql, "t.sql", true);
    ASSERT_EQ(script.statements.size(), stmts.size());
    for (size_t i = 0; i < stmts.size(); ++i) {
        EXPECT_EQ(script.statements[i].line, stmts[i].first.line) << i;
        EXPECT_EQ(script.statements[i].copy_data, stmts[i].second) << i;
    }

    /* a long data line passes through in pieces */
    std::string big = "COPY t FROM stdin;\n" + std::string(3000, 'z') + "\n\\.\nSELECT 1;\n";
    auto pieces = SplitEverywhere(big);
    ASSERT_EQ(pieces.size(), 2u);
    EXPECT_EQ(pieces[0].second, std::string(3000, 'z') + "\n");
    EXPECT_EQ(pieces[1].first.line, 4u);

    EXPECT_THROW(Split("COPY t FROM stdin;\n1\n2\n", 4), kc::FileError);
    EXPECT_THROW(Split("COPY t FROM stdin; SELECT 1;\n\\.\n", 4), kc::FileError);
}

TEST(SqlStream, LinesCountCrlfAndLoneCrAndSkipTheBom) {
    std::string sql = "\xEF\xBB\xBFSELECT 1;\r\nSELECT\r\n 2;\rSELECT 3;\n";
    auto stmts = SplitEverywhere(sql);
    ASSERT_EQ(stmts.size(), 3u);
    EXPECT_EQ(stmts[0].first.text, "SELECT 1");
    EXPECT_EQ(stmts[0].first.offset, 0u);
    EXPECT_EQ(stmts[1].first.line, 2u);
    EXPECT_EQ(stmts[2].first.line, 4u);
    std::string unbommed = sql.substr(3);
    kc::Script script = kc::PrepareScript(unbommed, "t.sql", true);
    ASSERT_EQ(script.statements.size(), 3u);
    for (size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(script.statements[i].line, stmts[i].first.line);
        EXPECT_EQ(script.statements[i].text, stmts[i].first.text);
        EXPECT_EQ(script.statements[i].offset, stmts[i].first.offset);
    }
}

TEST(SqlStream, UnterminatedTokensRunToTheEnd) {
    auto a = SplitEverywhere("SELECT 1;\nSELECT 'open;\nSELECT 3;\n");
    ASSERT_EQ(a.size(), 2u);
    EXPECT_FALSE(a[1].first.terminated);
    auto b = SplitEverywhere("SELECT 1;\n/* open; comment\n");
    ASSERT_EQ(b.size(), 2u); /* handed to the parser, which rejects it */
    EXPECT_EQ(b[1].first.line, 2u);
    auto c = SplitEverywhere("SELECT 1;\n-- only a comment\n\n");
    EXPECT_EQ(c.size(), 1u);
}

/* The splitter against libpg_query on every example and lint test file: the same statements. */
TEST(SqlStream, AgreesWithThePostgresParserOnTheRepositoryFiles) {
    size_t files = 0;
    for (const char *dir : {"examples", "tests/lint"})
        for (const auto &entry :
             fs::recursive_directory_iterator(fs::path(KEEL_SOURCE_DIR) / dir)) {
            if (!entry.is_regular_file() || entry.path().extension() != ".sql")
                continue;
            std::string text = kc::ReadFile(entry.path());
            kc::Script script;
            try {
                script = kc::PrepareScript(text, "x.sql", false);
            } catch (const kc::FileError &) {
                continue; /* files that do not parse are the preflight's business */
            }
            ++files;
            auto stmts = Split(text, 1 << 20);
            ASSERT_EQ(stmts.size(), script.statements.size()) << entry.path();
            for (size_t i = 0; i < stmts.size(); ++i) {
                EXPECT_EQ(stmts[i].first.line, script.statements[i].line) << entry.path();
                /* after inline COPY data the in-memory path's statement starts right after the
                 * COPY (the data blanked to spaces), the stream's after the \. line: the same
                 * statement, different leading white space */
                if (text.find("FROM stdin") == std::string::npos) {
                    EXPECT_EQ(stmts[i].first.offset, script.statements[i].offset) << entry.path();
                }
            }
        }
    EXPECT_GT(files, 20u);
}

TEST(PlainInsertCheck, AcceptsPgDumpInsertsAndNothingInvalid) {
    kc::PlainInsertCheck check;
    EXPECT_TRUE(check.SurelyValid("\nINSERT INTO public.t VALUES (1, 'a''b', NULL, -2.5e3, true)"));
    EXPECT_TRUE(check.SurelyValid("INSERT INTO t (id, \"Name\", type) VALUES (1, E'x\\n', "
                                  "DEFAULT), (2, 'y', false)"));
    EXPECT_TRUE(check.SurelyValid("insert into t values (.5) -- trailing comment"));
    /* not sure: keywords as names, casts, calls, junk, other clauses */
    EXPECT_FALSE(check.SurelyValid("INSERT INTO user VALUES (1)")); /* reserved */
    EXPECT_FALSE(check.SurelyValid("INSERT INTO t VALUES (1abc)")); /* PG 15: trailing junk */
    EXPECT_FALSE(check.SurelyValid("INSERT INTO t VALUES (0x1F)"));
    EXPECT_FALSE(check.SurelyValid("INSERT INTO t VALUES (1e)"));
    EXPECT_FALSE(check.SurelyValid("INSERT INTO t VALUES ('a' 'b')"));
    EXPECT_FALSE(check.SurelyValid("INSERT INTO t VALUES ('a'::text)"));
    EXPECT_FALSE(check.SurelyValid("INSERT INTO t VALUES (now())"));
    EXPECT_FALSE(check.SurelyValid("INSERT INTO t VALUES ()"));
    EXPECT_FALSE(check.SurelyValid("INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING"));
    EXPECT_FALSE(check.SurelyValid("INSERT INTO t VALUES (E'\\u0041')"));
    EXPECT_FALSE(check.SurelyValid("INSERT INTO t VALUES (1) /* c */"));
    EXPECT_FALSE(check.SurelyValid("INSERT INTO \"\" VALUES (1)"));
    EXPECT_FALSE(check.SurelyValid("INSERT INTO t VALUES (--1\n)"));

    /* differential: random near-INSERTs; whatever the check accepts, the parser accepts */
    const char *parts[] = {"INSERT", " ",     "INTO",   "t",    "public", ".",       "(",
                           ")",      ",",     "VALUES", "1",    "-",      "2.5",     "e",
                           "'x'",    "'",     "E'\\n'", "NULL", "true",   "default", "select",
                           "\"q\"",  "--c\n", "\n",     "1e5",  "''",     "+",       "x1",
                           "$1",     "::int", ";",      "a$b"};
    std::mt19937 rng(7);
    size_t accepted = 0;
    for (int k = 0; k < 30000; ++k) {
        std::string s = "INSERT INTO t VALUES (";
        if (rng() % 3 == 0)
            s = "";
        int n = 1 + int(rng() % 12);
        for (int i = 0; i < n; ++i)
            s += parts[rng() % (sizeof parts / sizeof *parts)];
        if (rng() % 2)
            s += ")";
        if (!check.SurelyValid(s))
            continue;
        ++accepted;
        PgQueryParseResult r = pg_query_parse(s.c_str());
        EXPECT_EQ(r.error, nullptr) << s;
        pg_query_free_parse_result(r);
    }
    EXPECT_GT(accepted, 100u);
}

/* The streamed preflight says what the in-memory one says, file by file. */
TEST(StreamedPreflight, SameVerdictsAsTheInMemoryPath) {
    TempDir dir("verdicts");
    std::string body;
    for (int i = 0; i < 38; ++i)
        body += "INSERT INTO t VALUES (" + std::to_string(i) + ", 'row');\n";
    dir.Write("0001_plain.sql", "CREATE TABLE t (id int, note text);\n" + body);
    dir.Write("0002_syntax_line_40.sql",
              "CREATE TABLE t (id int, note text);\n" + body + "INSERT INTO t VALUES (1, 'x'))\n;");
    dir.Write("0003_wrapped.sql", "BEGIN;\nCREATE TABLE u (a int);\n" + body + "COMMIT;\n");
    dir.Write("0004_commit_then_more.sql", "BEGIN;\nCREATE TABLE u (a int);\nCOMMIT;\n" + body);
    dir.Write("0005_middle_commit.sql", "CREATE TABLE u (a int);\nCOMMIT;\nSELECT 1;\n");
    dir.Write("0006_concurrently.sql",
              "BEGIN;\nSELECT 1;\nCOMMIT;\nCREATE INDEX CONCURRENTLY i ON t (id);\n");
    dir.Write("0007_copy.sql", "COPY t (id, note) FROM stdin;\n1\tone\n2\ttwo\n\\.\n" + body);
    dir.Write("0008_copy_no_end.sql", "SELECT 1 +;\nCOPY t FROM stdin;\n1\tone\n");
    dir.Write("0009_end_dollars.sql",
              "\xEF\xBB\xBF-- keel:supersedes 1\r\nCREATE FUNCTION f() RETURNS int LANGUAGE "
              "plpgsql AS $f$\r\nBEGIN\r\n  RETURN 1;\r\nEND $f$");
    dir.Write("0010_no_tx.sql",
              "-- keel:no-transaction\nCREATE INDEX CONCURRENTLY i ON t (id);\nVACUUM t;\n");
    dir.Write("0011_begin_options.sql",
              "BEGIN ISOLATION LEVEL SERIALIZABLE;\nSELECT 1;\nCOMMIT;\n");
    dir.Write("0012_alone_begin.sql", "BEGIN;\n");
    dir.Write("0013_unterminated.sql", "SELECT 1;\nSELECT 'open\n;\n");
    dir.Write("0014_late_directive.sql", "SELECT 1;\n-- keel:no-transaction\n");
    dir.Write("0015_nul.sql", std::string("SELECT 1;\n\0SELECT 2;\n", 21));
    dir.Write("0016_alter_system.sql", "ALTER SYSTEM SET work_mem = '8MB';\n");
    dir.Write("0017_reindex.sql", "SELECT 1;\nREINDEX (CONCURRENTLY) TABLE t;\n");
    dir.Write("0018_rollback.sql", "SELECT 1;\nSAVEPOINT a;\nROLLBACK TO a;\nROLLBACK;\n");
    dir.Write("0019_metacommand.sql", "SELECT 1;\n\\d t\n");
    std::string in_memory = Outcome(dir.path, false);
    std::string streamed = Outcome(dir.path, true);
    EXPECT_EQ(streamed, in_memory);
    EXPECT_NE(in_memory.find("0002_syntax_line_40.sql:40: syntax error"), std::string::npos)
        << in_memory;
    EXPECT_NE(in_memory.find("39 statement(s), unwrapped"), std::string::npos) << in_memory;
}

/* A streamed file is never held: contents stays empty, the checksum is the in-memory one. */
TEST(StreamedPreflight, LargeFileIsCheckedWithoutItsContents) {
    TempDir dir("large");
    std::string text = "-- keel:allow-destructive \"tidy up\"\r\nCREATE TABLE t (a int);\r\n";
    size_t statements = 1;
    for (; text.size() < (3 << 20); ++statements)
        text += "INSERT INTO t VALUES (1);\r\n";
    dir.Write("0001_big.sql", text);
    setenv("KEEL_STREAM_THRESHOLD", "1048576", 1);
    kc::MigrationSet set = kc::LoadMigrationDir(dir.path);
    unsetenv("KEEL_STREAM_THRESHOLD");
    ASSERT_EQ(set.files.size(), 1u);
    const kc::MigrationFile &f = set.files[0];
    EXPECT_TRUE(f.streamed);
    EXPECT_TRUE(f.contents.empty());
    EXPECT_EQ(f.size, text.size());
    EXPECT_EQ(f.checksum, kc::MigrationChecksum(text));
    ASSERT_TRUE(f.directives.allow_destructive_reason.has_value());
    EXPECT_EQ(*f.directives.allow_destructive_reason, "tidy up");
    kc::Script s = kc::PrepareFile(f);
    EXPECT_TRUE(s.streamed);
    EXPECT_EQ(s.StatementCount(), statements);

    /* the file changed after it was loaded: refused */
    dir.Write("0001_big.sql", text + "DROP TABLE t;\n");
    EXPECT_THROW(kc::PrepareFile(f), kc::FileError);
}

/* pg_dump's "\restrict KEY" / "\unrestrict KEY" lines between statements are left out of the
 * streamed statements too; inside a statement a backslash stays (the server refuses it). */
TEST(SqlStream, PgDumpRestrictLinesAreLeftOut) {
    std::string sql = "\\restrict ABC123\n"
                      "SET x = 1;\n"
                      "\\unrestrict ABC123\n"
                      "SELECT 2;\n"
                      "\\unrestrict ABC123";
    auto stmts = SplitEverywhere(sql);
    ASSERT_EQ(stmts.size(), 2u);
    EXPECT_EQ(stmts[0].first.text, "\nSET x = 1");
    EXPECT_EQ(stmts[0].first.line, 2u);
    EXPECT_EQ(stmts[1].first.text.find("restrict"), std::string::npos) << stmts[1].first.text;
    EXPECT_EQ(stmts[1].first.line, 4u);
}
