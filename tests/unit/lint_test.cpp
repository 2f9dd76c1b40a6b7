// keel lint beyond the corpus: output formats, keel.toml and --rule levels,
// waivers, PL/pgSQL bodies, bad input that must give findings (never a
// crash), and the command's exit codes.
#include "lint/lint.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;
using keel::lint::Format;
using keel::lint::Level;
using keel::lint::LintText;
using keel::lint::Options;
using keel::lint::Report;

namespace {

std::string Render(const Report &r, Format f) {
    std::ostringstream out;
    keel::lint::WriteReport(r, f, false, out);
    return out.str();
}

size_t Count(const Report &r, const std::string &rule) {
    size_t n = 0;
    for (const auto &f : r.findings)
        n += f.rule == rule;
    return n;
}

struct TempDir {
    fs::path path;
    TempDir() {
        path = fs::temp_directory_path() / ("keel_lint_" + std::to_string(::getpid()));
        fs::remove_all(path);
        fs::create_directories(path);
    }
    ~TempDir() { fs::remove_all(path); }
    void Write(const std::string &name, const std::string &text) const {
        std::ofstream(path / name) << text;
    }
};

int RunKeel(const std::string &args, std::string *out) {
    std::string file =
        (fs::temp_directory_path() / ("keel_lint_out_" + std::to_string(::getpid()))).string();
    int status =
        std::system((std::string(KEEL_BINARY) + " " + args + " >" + file + " 2>&1").c_str());
    std::ifstream in(file);
    std::stringstream ss;
    ss << in.rdbuf();
    *out = ss.str();
    fs::remove(file);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

/* Quiet turns off missing-lock-timeout, which fires on most of these samples. */
Options Quiet() {
    Options o;
    o.levels["missing-lock-timeout"] = Level::Off;
    return o;
}

const char *kDrop = "-- a comment\nDROP TABLE accounts;\nALTER TABLE users DROP COLUMN \"bio\";\n";

} // namespace

TEST(Lint, TextNamesFileLineColumnLevelRuleAndHelp) {
    Report r = LintText(kDrop, "0007_drop.sql", Quiet());
    std::string text = Render(r, Format::Text);
    EXPECT_NE(text.find("0007_drop.sql:2:1: error drop-table: DROP TABLE accounts destroys"),
              std::string::npos)
        << text;
    EXPECT_NE(text.find("0007_drop.sql:3:1: error drop-column:"), std::string::npos) << text;
    EXPECT_NE(text.find("  help: "), std::string::npos);
    EXPECT_NE(text.find("1 file(s), 2 statement(s): 2 error(s)"), std::string::npos) << text;
}

TEST(Lint, JsonIsStableAndComplete) {
    Report r = LintText(kDrop, "0007_drop.sql", Quiet());
    nlohmann::json j = nlohmann::json::parse(Render(r, Format::Json));
    EXPECT_EQ(j["version"], 1);
    EXPECT_EQ(j["files"], 1);
    EXPECT_EQ(j["statements"], 2);
    EXPECT_EQ(j["errors"], 2);
    ASSERT_EQ(j["findings"].size(), 2u);
    const auto &f = j["findings"][0];
    for (const char *key : {"file", "line", "column", "level", "rule", "message", "help"})
        EXPECT_TRUE(f.contains(key)) << key;
    EXPECT_EQ(f["rule"], "drop-table");
    EXPECT_EQ(f["line"], 2);
    EXPECT_EQ(f["level"], "error");
}

TEST(Lint, GithubGccAndSarif) {
    Report r = LintText(kDrop, "dir,with:odd/0007_drop.sql", Quiet());
    std::string gh = Render(r, Format::Github);
    EXPECT_EQ(
        gh.rfind("::error file=dir%2Cwith%3Aodd/0007_drop.sql,line=2,col=1,title=drop-table::", 0),
        0u)
        << gh;
    std::string gcc = Render(r, Format::Gcc);
    EXPECT_NE(gcc.find("dir,with:odd/0007_drop.sql:2:1: error: DROP TABLE accounts destroys the "
                       "table and its rows [drop-table]"),
              std::string::npos)
        << gcc;
    nlohmann::json sarif = nlohmann::json::parse(Render(r, Format::Sarif));
    EXPECT_EQ(sarif["version"], "2.1.0");
    const auto &run = sarif["runs"][0];
    EXPECT_EQ(run["results"].size(), 2u);
    EXPECT_EQ(run["results"][0]["ruleId"], "drop-table");
    EXPECT_EQ(run["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"], 2);
    EXPECT_GE(run["tool"]["driver"]["rules"].size(), 30u);
}

TEST(Lint, LevelsFromKeelTomlAndRuleOptionWhichWins) {
    TempDir dir;
    dir.Write("keel.toml", "[rules]\ndrop-table = \"warning\"\ndrop-column = "
                           "\"off\"\nmissing-lock-timeout = \"off\"\n");
    dir.Write("0001_drop.sql", kDrop);
    Report r = keel::lint::LintPaths({dir.path}, {});
    ASSERT_EQ(r.findings.size(), 1u);
    EXPECT_EQ(r.findings[0].level, Level::Warning);
    EXPECT_EQ(r.errors(), 0u);
    Options o;
    o.levels["drop-table"] = Level::Error;
    Report r2 = keel::lint::LintPaths({dir.path}, o);
    EXPECT_EQ(r2.errors(), 1u);
}

TEST(Lint, BadConfigIsAUsageError) {
    TempDir dir;
    dir.Write("0001_a.sql", "SELECT 1;\n");
    dir.Write("keel.toml", "[rules]\ndrop-tabel = \"warning\"\n");
    EXPECT_THROW(keel::lint::LintPaths({dir.path}, {}), keel::lint::UsageError);
    dir.Write("keel.toml", "[rules]\ndrop-table = \"sometimes\"\n");
    EXPECT_THROW(keel::lint::LintPaths({dir.path}, {}), keel::lint::UsageError);
    dir.Write("keel.toml", "[rules\n");
    EXPECT_THROW(keel::lint::LintPaths({dir.path}, {}), keel::lint::UsageError);
    EXPECT_THROW(keel::lint::LintPaths({dir.path / "missing"}, {}), keel::lint::UsageError);
}

TEST(Lint, WaiverWithReasonSilencesOneStatementWithoutReasonIsAFinding) {
    Report ok = LintText("-- keel:allow drop-table \"ticket 81\"\nDROP TABLE a;\nDROP TABLE b;\n",
                         "x.sql", Quiet());
    EXPECT_EQ(Count(ok, "drop-table"), 1u);
    EXPECT_EQ(ok.findings[0].line, 3u);
    Report bad = LintText("-- keel:allow drop-table \"  \"\nDROP TABLE a;\n", "x.sql", {});
    EXPECT_EQ(Count(bad, "invalid-waiver"), 1u);
    EXPECT_EQ(Count(bad, "drop-table"), 1u);
}

TEST(Lint, SqlRunByPlpgsqlAndDoBlocksIsLinted) {
    Report r =
        LintText("CREATE FUNCTION cleanup() RETURNS void LANGUAGE plpgsql AS $$\n"
                 "BEGIN\n  EXECUTE 'DROP TABLE old_events';\n  DELETE FROM sessions;\n"
                 "  EXECUTE 'DROP TABLE ' || tbl;  -- not a literal: PostgreSQL decides\nEND $$;\n"
                 "DO $do$ BEGIN EXECUTE 'ALTER TABLE users RENAME COLUMN a TO b'; END $do$;\n",
                 "x.sql", {});
    EXPECT_EQ(Count(r, "drop-table"), 1u);
    EXPECT_EQ(Count(r, "dml-without-where"), 1u);
    EXPECT_EQ(Count(r, "rename-column"), 1u);
    EXPECT_EQ(Count(r, "syntax-error"), 0u);
}

TEST(Lint, GarbageGivesOneSyntaxFindingNeverACrash) {
    const char *inputs[] = {"",
                            ";;;",
                            "\xff\xfe\x00",
                            "CREATE TABLE (",
                            "DO $$ BEGIN",
                            "$$",
                            "-- keel:allow\n",
                            "SELECT 'unterminated",
                            "/* open comment",
                            "DO $x$ BEGIN EXECUTE ''; END $x$;"};
    for (const char *in : inputs) {
        Report r = LintText(in, "x.sql", {});
        EXPECT_LE(Count(r, "syntax-error"), 1u) << in;
    }
    Report r = LintText("CREATE TABEL t ();\n", "x.sql", {});
    ASSERT_EQ(Count(r, "syntax-error"), 1u);
    EXPECT_EQ(r.findings[0].line, 1u);
    EXPECT_EQ(r.findings[0].column, 8u); /* at "TABEL" */
}

TEST(Lint, ExitCodes) {
    TempDir dir;
    dir.Write("0001_ok.sql", "CREATE TABLE t (id int);\n");
    std::string out;
    EXPECT_EQ(RunKeel("lint " + dir.path.string(), &out), 0) << out;
    dir.Write("0002_drop.sql", "ALTER TABLE users DROP COLUMN bio;\n");
    EXPECT_EQ(RunKeel("lint " + dir.path.string(), &out), 1) << out;
    EXPECT_EQ(RunKeel("lint --rule drop-column=warning " + dir.path.string(), &out), 0) << out;
    EXPECT_EQ(RunKeel("lint --rule drop-colum=warning " + dir.path.string(), &out), 2) << out;
    EXPECT_EQ(RunKeel("lint --format yaml " + dir.path.string(), &out), 2) << out;
    EXPECT_EQ(RunKeel("lint " + (dir.path / "nope").string(), &out), 2) << out;
    EXPECT_EQ(RunKeel("lint --format json " + dir.path.string(), &out), 1);
    EXPECT_EQ(nlohmann::json::parse(out)["errors"], 1);
}

// Every input scripts/fuzz kept (tests/fuzz/corpus) lints without a crash.
TEST(LintFuzzCorpus, ReplaysWithoutCrash) {
    fs::path dir = fs::path(KEEL_SOURCE_DIR) / "tests" / "fuzz" / "corpus";
    size_t n = 0;
    for (const auto &e : fs::directory_iterator(dir)) {
        std::ifstream in(e.path(), std::ios::binary);
        std::stringstream ss;
        ss << in.rdbuf();
        Report r = LintText(ss.str(), "0001_fuzz.sql", {});
        EXPECT_LE(Count(r, "syntax-error"), 1u) << e.path();
        n++;
    }
    EXPECT_GT(n, 100u);
}

// The seeds' own SQL (examples/, built from ../shared/seeds) as real input:
// the findings are listed in tests/lint/seeds/expected.txt (gcc format, paths
// relative to the repository). The seed folder applies cleanly; the seeds'
// destructive downgrades are what the guard refuses.
TEST(LintSeeds, FindingsAreTheListedOnes) {
    fs::path root(KEEL_SOURCE_DIR);
    Report r = keel::lint::LintPaths(
        {root / "examples" / "seed-migrations", root / "examples" / "destructive"}, {});
    std::string got = Render(r, Format::Gcc);
    std::string prefix = root.string() + "/";
    for (size_t at; (at = got.find(prefix)) != std::string::npos;)
        got.erase(at, prefix.size());
    std::ifstream in(root / "tests" / "lint" / "seeds" / "expected.txt");
    std::stringstream want;
    want << in.rdbuf();
    EXPECT_EQ(got, want.str());
    EXPECT_EQ(r.files, 17u);
}

// Inline COPY data (pg_dump style) is skipped as keel migrate skips it: no
// syntax error on the data, findings after the block on their own lines, and
// an unterminated block is one clear finding on the COPY's line (issue 12).
TEST(LintCopyData, InlineDataIsSkippedAndLinesStayRight) {
    std::string sql = "CREATE TABLE t (id int, note text);\n"
                      "COPY t (id, note) FROM stdin;\n"
                      "1\tDROP TABLE users;\n"
                      "2\t' unbalanced ; \\N\n"
                      "\\.\n"
                      "COPY t FROM STDIN WITH (FORMAT csv);\n"
                      "3,\"a;b\"\n"
                      "\\.\n"
                      "DROP TABLE users;\n";
    Report r = LintText(sql, "0001_copy.sql", {});
    EXPECT_EQ(Count(r, "syntax-error"), 0u) << Render(r, Format::Text);
    ASSERT_EQ(Count(r, "drop-table"), 1u) << Render(r, Format::Text);
    for (const auto &f : r.findings) {
        if (f.rule == "drop-table") {
            EXPECT_EQ(f.line, 9u);
        }
    }
    EXPECT_EQ(r.statements, 4u);

    Report open = LintText("SELECT 1;\nCOPY t FROM stdin;\n1\n2\n", "0002_open.sql", {});
    ASSERT_EQ(Count(open, "syntax-error"), 1u) << Render(open, Format::Text);
    EXPECT_EQ(open.findings.front().line, 2u);
    EXPECT_NE(open.findings.front().message.find("no \\. line"), std::string::npos)
        << open.findings.front().message;

    /* a "copy ... from stdin" inside a string is not a COPY: its next line is SQL */
    Report quoted = LintText("SELECT 'copy t from stdin;';\nDROP TABLE users;\n", "0003_q.sql", {});
    EXPECT_EQ(Count(quoted, "drop-table"), 1u) << Render(quoted, Format::Text);
}

// keep_waived keeps what the directive's break-glass and comment waivers let
// through, marked, and does not count it; LintSequence shares new tables
// across the files it is given (keel plan's static check, issue 12).
TEST(LintKeepWaived, MarksWaivedFindingsAndSequenceSharesNewTables) {
    std::string sql = "-- keel:allow-destructive \"retired\"\nDROP TABLE users;\n";
    EXPECT_EQ(Count(LintText(sql, "0001_a.sql", {}), "drop-table"), 0u);
    Options keep;
    keep.keep_waived = true;
    Report r = LintText(sql, "0001_a.sql", keep);
    ASSERT_EQ(Count(r, "drop-table"), 1u);
    for (const auto &f : r.findings) {
        if (f.rule == "drop-table") {
            EXPECT_EQ(f.waived_by, "allow-destructive");
        }
    }
    EXPECT_EQ(r.errors(), 0u);

    Report comment = LintText("-- keel:allow drop-table \"ok\"\nDROP TABLE users;\n"
                              "DROP VIEW v;\n",
                              "0001_b.sql", keep);
    for (const auto &f : comment.findings) {
        if (f.rule == "drop-table") {
            EXPECT_EQ(f.waived_by, "comment");
        }
        if (f.rule == "drop-view") {
            EXPECT_TRUE(f.at_commit);
            EXPECT_EQ(f.waived_by, "");
        }
    }
    EXPECT_EQ(Count(comment, "drop-view"), 1u);
    EXPECT_EQ(comment.errors(), 1u);

    Report seq =
        keel::lint::LintSequence({{"CREATE TABLE fresh (id int);\n", "0001_a.sql", "1"},
                                  {"DROP TABLE fresh;\nDROP TABLE old;\n", "0002_b.sql", "2"}},
                                 {});
    ASSERT_EQ(Count(seq, "drop-table"), 1u) << Render(seq, Format::Text);
    for (const auto &f : seq.findings) {
        if (f.rule == "drop-table") {
            EXPECT_EQ(f.line, 2u);
            EXPECT_EQ(f.file, "0002_b.sql");
        }
    }
}
