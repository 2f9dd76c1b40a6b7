/*
 * tests/unit/migration_file_test.cpp
 *   Migration file names and ordering, directives, folder loading, and the
 *   libpg_query statement handling (transaction wrapper, line mapping).
 */
#include "lib/checksum.hpp"
#include "lib/migration_file.hpp"
#include "lib/sql_script.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>
#include <unistd.h>

namespace kc = keel::client;
namespace fs = std::filesystem;

namespace {

/* TempDir is a scratch folder removed at the end of a test. */
struct TempDir {
    fs::path path;
    TempDir() {
        path = fs::temp_directory_path() /
               ("keel_mf_" + std::to_string(::getpid()) + "_" +
                ::testing::UnitTest::GetInstance()->current_test_info()->name());
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
    void Write(const std::string &name, const std::string &contents) const {
        std::ofstream(path / name, std::ios::binary) << contents;
    }
};

bool HasProblemContaining(const kc::MigrationSet &set, const std::string &needle) {
    for (const auto &p : set.problems)
        if (p.find(needle) != std::string::npos)
            return true;
    return false;
}

} // namespace

/* ---- names and ordering ------------------------------------------------- */

TEST(MigrationName, ParsesVersionAndSlug) {
    auto p = kc::ParseMigrationFileName("0011_safe_billing_models.sql");
    ASSERT_TRUE(p);
    EXPECT_EQ(p->digits, "0011");
    EXPECT_EQ(p->version, "11");
    EXPECT_EQ(p->slug, "safe_billing_models");
    EXPECT_FALSE(p->down);
}

TEST(MigrationName, ParsesDownFiles) {
    auto p = kc::ParseMigrationFileName("0011_safe-billing.down.sql");
    ASSERT_TRUE(p);
    EXPECT_TRUE(p->down);
    EXPECT_EQ(p->version, "11");
    EXPECT_EQ(p->slug, "safe-billing");
}

TEST(MigrationName, RejectsBadNames) {
    for (const char *bad :
         {"abc.sql", "0011.sql", "0011_.sql", "0011-foo.sql", "_foo.sql", "0011_foo bar.sql",
          "0011_foo.SQL", "0011_foo.sql.bak", "v1_foo.sql", "0011_foo.txt", "0011_f.o.sql"})
        EXPECT_FALSE(kc::ParseMigrationFileName(bad)) << bad;
}

TEST(MigrationName, CanonicalVersionStripsLeadingZeros) {
    EXPECT_EQ(kc::CanonicalVersion("0011"), "11");
    EXPECT_EQ(kc::CanonicalVersion("000"), "0");
    EXPECT_EQ(kc::CanonicalVersion("0"), "0");
    EXPECT_EQ(kc::CanonicalVersion("10"), "10");
}

TEST(MigrationName, ComparesNumericallyNotLexically) {
    EXPECT_LT(kc::CompareVersions("9", "10"), 0);
    EXPECT_LT(kc::CompareVersions("10", kc::CanonicalVersion("0011")), 0);
    EXPECT_GT(kc::CompareVersions("100", "99"), 0);
    EXPECT_EQ(kc::CompareVersions("11", kc::CanonicalVersion("0011")), 0);
    /* Longer than any integer type: no overflow. */
    EXPECT_LT(kc::CompareVersions("99999999999999999999999999", "100000000000000000000000000"), 0);
    EXPECT_GT(kc::CompareVersions("20240101120000123456789", "20240101120000123456788"), 0);
}

TEST(MigrationDir, OrdersByNumericVersion) {
    TempDir dir;
    dir.Write("0011_c.sql", "SELECT 11;\n");
    dir.Write("10_b.sql", "SELECT 10;\n");
    dir.Write("9_a.sql", "SELECT 9;\n");
    dir.Write("100000000000000000000001_long.sql", "SELECT 1;\n");
    dir.Write("README.md", "not a migration");
    dir.Write(".hidden.sql", "ignored");
    kc::MigrationSet set = kc::LoadMigrationDir(dir.path);
    EXPECT_TRUE(set.problems.empty());
    ASSERT_EQ(set.files.size(), 4u);
    EXPECT_EQ(set.files[0].file_name, "9_a.sql");
    EXPECT_EQ(set.files[1].file_name, "10_b.sql");
    EXPECT_EQ(set.files[2].file_name, "0011_c.sql");
    EXPECT_EQ(set.files[3].version, "100000000000000000000001");
    EXPECT_EQ(set.files[0].checksum.size(), 64u);
}

/* A folder of 600 files is read on two threads: the files still come in
 * version order with their own checksums, and problems in file-name order. */
TEST(MigrationDir, ManyFilesLoadInOrderWithProblemsInNameOrder) {
    TempDir dir;
    for (int i = 1; i <= 600; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "%04d_f.sql", i);
        std::string body = "SELECT " + std::to_string(i) + ";\n";
        if (i == 101)
            body = std::string("SELECT 1;\n\0SELECT 2;\n", 21); /* a NUL byte */
        if (i == 400)
            body = "SELECT '\xC3\x28';\n"; /* invalid UTF-8 */
        dir.Write(name, body);
    }
    kc::MigrationSet set = kc::LoadMigrationDir(dir.path);
    ASSERT_EQ(set.problems.size(), 2u);
    EXPECT_EQ(set.problems[0].rfind("0101_f.sql", 0), 0u) << set.problems[0];
    EXPECT_EQ(set.problems[1].rfind("0400_f.sql", 0), 0u) << set.problems[1];
    ASSERT_EQ(set.files.size(), 598u);
    for (size_t k = 0; k < set.files.size(); ++k) {
        const auto &f = set.files[k];
        int v = std::stoi(f.version);
        EXPECT_EQ(f.contents, "SELECT " + std::to_string(v) + ";\n");
        EXPECT_EQ(f.checksum, kc::MigrationChecksum(f.contents));
        if (k > 0) {
            EXPECT_LT(std::stoi(set.files[k - 1].version), v);
        }
    }
}

TEST(MigrationDir, DuplicateVersionsAreProblems) {
    TempDir dir;
    dir.Write("0009_a.sql", "SELECT 1;\n");
    dir.Write("9_b.sql", "SELECT 2;\n");
    kc::MigrationSet set = kc::LoadMigrationDir(dir.path);
    EXPECT_TRUE(HasProblemContaining(set, "duplicate version 9"));
}

TEST(MigrationDir, BadNamesAreReportedNotIgnored) {
    TempDir dir;
    dir.Write("0001_ok.sql", "SELECT 1;\n");
    dir.Write("add_users.sql", "SELECT 2;\n");
    dir.Write("0002-dash.sql", "SELECT 3;\n");
    kc::MigrationSet set = kc::LoadMigrationDir(dir.path);
    EXPECT_EQ(set.files.size(), 1u);
    EXPECT_TRUE(HasProblemContaining(set, "add_users.sql: not a migration file name"));
    EXPECT_TRUE(HasProblemContaining(set, "0002-dash.sql: not a migration file name"));
}

// A migration keel would skip in silence because of its ending is a problem;
// other files (README.md, notes.txt, schema.sql.gz) are not migrations and are ignored.
TEST(MigrationDir, MigrationNamesWithAnotherEndingAreProblems) {
    TempDir dir;
    dir.Write("0001_ok.sql", "SELECT 1;\n");
    dir.Write("0002_b.sql.bak", "SELECT 2;\n");
    dir.Write("0003_c.SQL", "SELECT 3;\n");
    dir.Write("0004_d.sql~", "SELECT 4;\n");
    dir.Write("0005_e.down.sql.orig", "SELECT 5;\n");
    dir.Write("README.md", "# migrations\n");
    dir.Write("notes.txt", "SELECT 6;\n");
    dir.Write("schema.sql.gz", "x");
    kc::MigrationSet set = kc::LoadMigrationDir(dir.path);
    EXPECT_EQ(set.files.size(), 1u);
    EXPECT_EQ(set.problems.size(), 4u);
    for (const char *name : {"0002_b.sql.bak", "0003_c.SQL", "0004_d.sql~", "0005_e.down.sql.orig"})
        EXPECT_TRUE(HasProblemContaining(set, std::string(name) + ": looks like a migration"))
            << name;
}

TEST(MigrationDir, PairsDownFiles) {
    TempDir dir;
    dir.Write("0001_users.sql", "CREATE TABLE users (id int);\n");
    dir.Write("0001_users.down.sql", "-- nothing\n");
    dir.Write("0002_orphan.down.sql", "-- nothing\n");
    kc::MigrationSet set = kc::LoadMigrationDir(dir.path);
    ASSERT_EQ(set.files.size(), 1u);
    ASSERT_TRUE(set.files[0].down_path);
    EXPECT_EQ(set.files[0].down_path->filename(), "0001_users.down.sql");
    EXPECT_TRUE(HasProblemContaining(set, "0002_orphan.down.sql: down migration without"));
}

/* keel down reads a down file as a migration of the same version (issue 12). */
TEST(MigrationDir, ReadDownFileKeepsItsNameChecksumAndDirectives) {
    TempDir dir;
    dir.Write("0001_users.sql", "CREATE TABLE users (id int);\n");
    dir.Write("0001_users.down.sql",
              "\xEF\xBB\xBF-- keel:allow-destructive \"undo users\"\r\nDROP TABLE users;\r\n");
    kc::MigrationSet set = kc::LoadMigrationDir(dir.path);
    ASSERT_EQ(set.files.size(), 1u);
    kc::MigrationFile down = kc::ReadDownFile(set.files[0]);
    EXPECT_EQ(down.version, "1");
    EXPECT_EQ(down.file_name, "0001_users.down.sql");
    EXPECT_EQ(down.contents.compare(0, 3, "-- "), 0) << "byte-order mark dropped";
    EXPECT_EQ(down.checksum.size(), 64u);
    EXPECT_NE(down.checksum, set.files[0].checksum);
    ASSERT_TRUE(down.directives.allow_destructive_reason);
    EXPECT_EQ(*down.directives.allow_destructive_reason, "undo users");
    EXPECT_THROW(kc::ReadDownFile(kc::MigrationFile{}), std::logic_error);
}

TEST(MigrationDir, ReadDownFileRefusesBadBytesAndSupersedes) {
    TempDir dir;
    dir.Write("0001_users.sql", "CREATE TABLE users (id int);\n");
    kc::MigrationSet set = kc::LoadMigrationDir(dir.path);
    ASSERT_EQ(set.files.size(), 1u);
    kc::MigrationFile up = set.files[0];
    up.down_path = dir.path / "0001_users.down.sql";
    for (const std::string &bad :
         {std::string("DROP TABLE users;\n\0rest\n", 24), std::string("SELECT '\xC3\x28';\n"),
          std::string("-- keel:supersedes 2\nSELECT 1;\n"), std::string("-- keel:nope\n")}) {
        dir.Write("0001_users.down.sql", bad);
        try {
            kc::ReadDownFile(up);
            ADD_FAILURE() << "accepted: " << bad;
        } catch (const kc::FileError &e) {
            EXPECT_EQ(e.file(), "0001_users.down.sql") << e.what();
        }
    }
}

TEST(MigrationDir, MissingFolderThrows) {
    EXPECT_THROW(kc::LoadMigrationDir("/nonexistent/keel/migrations"), std::runtime_error);
}

/* ---- directives --------------------------------------------------------- */

TEST(Directives, NoneByDefault) {
    kc::Directives d = kc::ParseDirectives("-- just a comment\nSELECT 1;\n", "1_a.sql", "1");
    EXPECT_FALSE(d.no_transaction);
    EXPECT_TRUE(d.supersedes.empty());
    EXPECT_FALSE(d.allow_destructive_reason);
}

TEST(Directives, NoTransaction) {
    kc::Directives d = kc::ParseDirectives("-- keel:no-transaction\nSELECT 1;\n", "1_a.sql", "1");
    EXPECT_TRUE(d.no_transaction);
    EXPECT_THROW(kc::ParseDirectives("-- keel:no-transaction please\n", "1_a.sql", "1"),
                 kc::FileError);
    EXPECT_THROW(
        kc::ParseDirectives("-- keel:no-transaction\n-- keel:no-transaction\n", "1_a.sql", "1"),
        kc::FileError);
}

TEST(Directives, Supersedes) {
    kc::Directives d = kc::ParseDirectives(
        "-- keel:supersedes 0004, 0010\n--keel:supersedes 9\n\nSELECT 1;\n", "11_a.sql", "11");
    EXPECT_EQ(d.supersedes, (std::vector<std::string>{"4", "10", "9"}));
    EXPECT_THROW(kc::ParseDirectives("-- keel:supersedes\n", "11_a.sql", "11"), kc::FileError);
    EXPECT_THROW(kc::ParseDirectives("-- keel:supersedes v4\n", "11_a.sql", "11"), kc::FileError);
    EXPECT_THROW(kc::ParseDirectives("-- keel:supersedes 0011\n", "11_a.sql", "11"), kc::FileError);
}

TEST(Directives, AllowDestructive) {
    kc::Directives d = kc::ParseDirectives(
        "-- m\n-- keel:allow-destructive \"legacy table, exported\"\nDROP TABLE t;\n", "5_a.sql",
        "5");
    ASSERT_TRUE(d.allow_destructive_reason);
    EXPECT_EQ(*d.allow_destructive_reason, "legacy table, exported");
    EXPECT_EQ(d.allow_destructive_line, 2u);
}

TEST(Directives, MalformedReasons) {
    for (const char *bad :
         {"-- keel:allow-destructive\n", "-- keel:allow-destructive reason\n",
          "-- keel:allow-destructive \"\"\n", "-- keel:allow-destructive \"   \"\n",
          "-- keel:allow-destructive \"unterminated\n",
          "-- keel:allow-destructive \"a\" \"b\"\n"}) {
        EXPECT_THROW(kc::ParseDirectives(bad, "5_a.sql", "5"), kc::FileError) << bad;
    }
}

TEST(Directives, AllowDestructiveNeedsATransaction) {
    EXPECT_THROW(kc::ParseDirectives("-- keel:no-transaction\n-- keel:allow-destructive \"x\"\n",
                                     "5_a.sql", "5"),
                 kc::FileError);
}

TEST(Directives, UnknownDirectiveIsAnErrorWithItsLine) {
    try {
        kc::ParseDirectives("-- header\n\n-- keel:transactional\nSELECT 1;\n", "7_x.sql", "7");
        FAIL() << "expected FileError";
    } catch (const kc::FileError &e) {
        EXPECT_EQ(e.line(), 3u);
        EXPECT_NE(std::string(e.what()).find("7_x.sql:3: unknown keel directive"),
                  std::string::npos)
            << e.what();
    }
}

TEST(Directives, DirectiveAfterSqlIsAnError) {
    EXPECT_THROW(kc::ParseDirectives("SELECT 1;\n-- keel:no-transaction\n", "7_x.sql", "7"),
                 kc::FileError);
    /* Ordinary comments after SQL are fine. */
    EXPECT_NO_THROW(kc::ParseDirectives("SELECT 1;\n-- keel is great\n", "7_x.sql", "7"));
}

TEST(Directives, DirectiveErrorsBecomeFolderProblems) {
    TempDir dir;
    dir.Write("0001_bad.sql", "-- keel:frobnicate\nSELECT 1;\n");
    kc::MigrationSet set = kc::LoadMigrationDir(dir.path);
    EXPECT_TRUE(set.files.empty());
    EXPECT_TRUE(HasProblemContaining(set, "0001_bad.sql:1: unknown keel directive"));
}

/* ---- statements, transaction wrapper, line mapping ----------------------- */

TEST(Script, SplitsStatementsWithLines) {
    kc::Script s = kc::PrepareScript(
        "-- header\nCREATE TABLE a (id int);\n\n/* c */ CREATE TABLE b (id int);\nSELECT 1",
        "1_a.sql", true);
    ASSERT_EQ(s.statements.size(), 3u);
    EXPECT_FALSE(s.unwrapped);
    EXPECT_EQ(s.statements[0].line, 2u);
    EXPECT_EQ(s.statements[0].node, "CreateStmt");
    EXPECT_EQ(s.statements[1].line, 4u);
    EXPECT_EQ(s.statements[2].line, 5u);
    EXPECT_EQ(s.statements[2].node, "SelectStmt");
}

TEST(Script, NeutralisesTheFilesOwnWrapper) {
    std::string sql = "-- Migration: x\nBEGIN;\n\nALTER TABLE users ADD COLUMN bio TEXT;\n\n"
                      "-- ALTER TABLE users DROP COLUMN bio;\n\nCOMMIT;\n";
    kc::Script s = kc::PrepareScript(sql, "2_bio.sql", true);
    EXPECT_TRUE(s.unwrapped);
    ASSERT_EQ(s.statements.size(), 1u);
    EXPECT_EQ(s.statements[0].node, "AlterTableStmt");
    EXPECT_EQ(s.statements[0].line, 4u);
    /* START TRANSACTION ... END is a wrapper too. */
    kc::Script t = kc::PrepareScript("START TRANSACTION; SELECT 1; END;", "2_x.sql", true);
    EXPECT_TRUE(t.unwrapped);
    EXPECT_EQ(t.statements.size(), 1u);
}

TEST(Script, WrapperIsKeptWithoutTransaction) {
    kc::Script s = kc::PrepareScript("BEGIN;\nSELECT 1;\nCOMMIT;\n", "2_x.sql", false);
    EXPECT_FALSE(s.unwrapped);
    EXPECT_EQ(s.statements.size(), 3u);
}

TEST(Script, OtherTransactionControlIsAnErrorNamingTheLine) {
    struct Case {
        const char *sql;
        size_t line;
    } cases[] = {
        {"CREATE TABLE a (id int);\nCOMMIT;\nCREATE TABLE b (id int);\n", 2},
        {"BEGIN;\nSELECT 1;\n", 1},                                      /* no COMMIT at the end */
        {"SELECT 1;\nROLLBACK;\n", 2},                                   /* rollback */
        {"BEGIN;\nSELECT 1;\nCOMMIT;\nBEGIN;\nSELECT 2;\nCOMMIT;\n", 3}, /* two blocks */
        {"BEGIN ISOLATION LEVEL SERIALIZABLE;\nSELECT 1;\nCOMMIT;\n", 1},
        {"SELECT 1;\n\nPREPARE TRANSACTION 'x';\n", 3},
    };
    for (const auto &c : cases) {
        try {
            kc::PrepareScript(c.sql, "3_t.sql", true);
            ADD_FAILURE() << "expected FileError for: " << c.sql;
        } catch (const kc::FileError &e) {
            EXPECT_EQ(e.line(), c.line) << c.sql << " -> " << e.what();
            EXPECT_NE(std::string(e.what()).find("transaction control"), std::string::npos);
        }
    }
}

TEST(Script, SavepointsStayInsideKeelsTransaction) {
    kc::Script s = kc::PrepareScript(
        "SAVEPOINT a;\nSELECT 1;\nROLLBACK TO SAVEPOINT a;\nRELEASE a;\n", "4_s.sql", true);
    EXPECT_EQ(s.statements.size(), 4u);
}

TEST(Script, NonTransactionalStatementsNeedTheDirective) {
    EXPECT_THROW(kc::PrepareScript("CREATE INDEX CONCURRENTLY i ON t (a);", "5_i.sql", true),
                 kc::FileError);
    EXPECT_THROW(kc::PrepareScript("VACUUM t;", "5_v.sql", true), kc::FileError);
    EXPECT_NO_THROW(kc::PrepareScript("CREATE INDEX CONCURRENTLY i ON t (a);", "5_i.sql", false));
    EXPECT_NO_THROW(kc::PrepareScript("CREATE INDEX i ON t (a);", "5_i.sql", true));
}

TEST(Script, SyntaxErrorsNameTheLine) {
    try {
        kc::PrepareScript("SELECT 1;\n\\d organizations;\n", "6_psql.sql", true);
        FAIL() << "expected FileError";
    } catch (const kc::FileError &e) {
        EXPECT_EQ(e.line(), 2u) << e.what();
    }
    try {
        kc::PrepareScript("SELECT 'é';\nSELECT é FROM FROM;\n", "6_utf8.sql", true);
        FAIL() << "expected FileError";
    } catch (const kc::FileError &e) {
        EXPECT_EQ(e.line(), 2u) << e.what();
    }
}

TEST(Script, EmptyFileHasNoStatements) {
    EXPECT_TRUE(kc::PrepareScript("-- nothing yet\n", "7_e.sql", true).statements.empty());
}

TEST(LineMapping, LineAtCountsAllLineEndings) {
    std::string text = "a\nb\r\nc\rd";
    EXPECT_EQ(kc::LineAt(text, 0), 1u);
    EXPECT_EQ(kc::LineAt(text, 2), 2u);
    EXPECT_EQ(kc::LineAt(text, 5), 3u);
    EXPECT_EQ(kc::LineAt(text, 7), 4u);
    EXPECT_EQ(kc::LineAt(text, 100), 4u);
}

TEST(LineMapping, CharacterPositionsCountUtf8Characters) {
    std::string text = "SELECT 'é€😀', x";
    /* Position 1 is the first byte. */
    EXPECT_EQ(kc::CharPositionToOffset(text, 1), 0u);
    /* 'x' is character 15: S,E,L,E,C,T,space,',é,€,😀,',comma,space,x. */
    size_t x = kc::CharPositionToOffset(text, 15);
    ASSERT_LT(x, text.size());
    EXPECT_EQ(text[x], 'x');
    EXPECT_EQ(kc::CharPositionToOffset(text, 1000), text.size());
}

TEST(LineMapping, ServerPositionInsideAStatementMapsToFileLine) {
    std::string sql = "CREATE TABLE a (id int);\n\nINSERT INTO a\n  SELECT nope\n  FROM a;\n";
    kc::Script s = kc::PrepareScript(sql, "8_l.sql", true);
    ASSERT_EQ(s.statements.size(), 2u);
    const kc::Statement &insert = s.statements[1];
    /* What the server would report for "nope": its character position in the statement text. */
    size_t nope = insert.text.find("nope");
    size_t offset = insert.offset + kc::CharPositionToOffset(insert.text, long(nope) + 1);
    EXPECT_EQ(kc::LineAt(sql, offset), 4u);
}

// Files keel would half-run or misread are problems before anything runs
// (issue 12): a NUL byte (PostgreSQL would stop there while the history says
// the whole file ran), bytes that are not UTF-8; a byte-order mark is dropped.
TEST(MigrationEncoding, NulBytesAndBadUtf8AreProblemsTheBomIsDropped) {
    using keel::client::EncodingProblem;
    EXPECT_EQ(EncodingProblem("CREATE TABLE t (a int);\n-- é, ✓, 😀\n"), "");
    EXPECT_NE(EncodingProblem(std::string("SELECT 1;\nSELECT 2;\0SELECT 3;", 30))
                  .find("line 2 holds a NUL byte"),
              std::string::npos);
    EXPECT_NE(EncodingProblem("SELECT 'caf\xe9';").find("line 1 is not valid UTF-8 (byte 0xe9)"),
              std::string::npos);
    EXPECT_NE(EncodingProblem("\xc0\xaf").find("not valid UTF-8"), std::string::npos); // overlong
    EXPECT_NE(EncodingProblem("\xed\xa0\x80").find("not valid UTF-8"),
              std::string::npos); // surrogate

    std::filesystem::path dir =
        std::filesystem::temp_directory_path() / ("keel_enc_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "0001_nul.sql", std::ios::binary)
        << std::string("SELECT 1;\0DROP TABLE x;\n", 24);
    std::ofstream(dir / "0002_latin1.sql", std::ios::binary) << "SELECT 'caf\xe9';\n";
    std::ofstream(dir / "0003_bom.sql", std::ios::binary) << "\xEF\xBB\xBF"
                                                             "CREATE TABLE t (a int);\n";
    keel::client::MigrationSet set = keel::client::LoadMigrationDir(dir);
    ASSERT_EQ(set.problems.size(), 2u);
    EXPECT_NE(set.problems[0].find("0001_nul.sql: line 1 holds a NUL byte"), std::string::npos)
        << set.problems[0];
    EXPECT_NE(set.problems[1].find("0002_latin1.sql: line 1 is not valid UTF-8"), std::string::npos)
        << set.problems[1];
    ASSERT_EQ(set.files.size(), 1u);
    EXPECT_EQ(set.files[0].contents, "CREATE TABLE t (a int);\n");
    /* the mark is dropped before the checksum too (issue 12) */
    EXPECT_EQ(set.files[0].checksum, keel::client::MigrationChecksum("CREATE TABLE t (a int);\n"));
    std::filesystem::remove_all(dir);
}

/*
 * A migration's name on something keel cannot read (a broken symbolic link,
 * a folder, a FIFO) is a problem naming it, never skipped in silence; a
 * symbolic link to a file is read through, and other folders are ignored.
 */
TEST(MigrationDir, MigrationNamesOnWhatIsNotAFileAreProblems) {
    TempDir dir;
    dir.Write("target.txt", "SELECT 1;\n");
    fs::create_symlink(dir.path / "target.txt", dir.path / "0001_link.sql");
    fs::create_symlink(dir.path / "nowhere.sql", dir.path / "0002_dangling.sql");
    fs::create_directory(dir.path / "0003_folder.sql");
    fs::create_directory(dir.path / "archive");
    ASSERT_EQ(::mkfifo((dir.path / "0004_fifo.sql").c_str(), 0600), 0);
    kc::MigrationSet set = kc::LoadMigrationDir(dir.path);
    ASSERT_EQ(set.files.size(), 1u);
    EXPECT_EQ(set.files[0].file_name, "0001_link.sql");
    ASSERT_EQ(set.problems.size(), 3u);
    EXPECT_EQ(set.problems[0].rfind("0002_dangling.sql: is a broken symbolic link", 0), 0u)
        << set.problems[0];
    EXPECT_EQ(set.problems[1].rfind("0003_folder.sql: is a folder", 0), 0u) << set.problems[1];
    EXPECT_EQ(set.problems[2].rfind("0004_fifo.sql: is not a regular file", 0), 0u)
        << set.problems[2];
}
