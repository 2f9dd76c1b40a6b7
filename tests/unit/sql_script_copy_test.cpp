/*
 * tests/unit/sql_script_copy_test.cpp
 *   COPY ... FROM STDIN with its data inline, as pg_dump writes it (issue 12:
 *   "refused as a syntax error on the first data line").
 */
#include "lib/sql_script.hpp"

#include <gtest/gtest.h>

using keel::client::FileError;
using keel::client::PrepareScript;

TEST(SqlScriptCopy, InlineDataGoesWithItsCopyStatement) {
    std::string sql = "CREATE TABLE t (id int, note text);\n"
                      "COPY public.t (id, note) FROM stdin;\n"
                      "1\tone; two\n"
                      "2\t\\N\n"
                      "\\.\n"
                      "\n"
                      "CREATE INDEX t_id ON t (id);\n"
                      "copy t FROM STDIN WITH (FORMAT csv);\r\n"
                      "3,\"x;y\"\r\n"
                      "\\.\r\n"
                      "SELECT 'copy t from stdin;';\n";
    auto script = PrepareScript(sql, "0001_x.sql", true);
    ASSERT_EQ(script.statements.size(), 5u);
    EXPECT_TRUE(script.statements[1].has_copy_data);
    EXPECT_EQ(script.statements[1].copy_data, "1\tone; two\n2\t\\N\n");
    EXPECT_EQ(script.statements[2].node, "IndexStmt");
    EXPECT_EQ(script.statements[2].line, 7u);
    EXPECT_TRUE(script.statements[3].has_copy_data);
    EXPECT_EQ(script.statements[3].copy_data, "3,\"x;y\"\r\n");
    EXPECT_FALSE(script.statements[4].has_copy_data);
    EXPECT_EQ(script.statements[4].line, 11u);
}

TEST(SqlScriptCopy, DataWithoutItsEndLineIsAnError) {
    try {
        PrepareScript("COPY t FROM stdin;\n1\n2\n", "0002_y.sql", true);
        FAIL() << "expected a FileError";
    } catch (const FileError &e) {
        EXPECT_NE(std::string(e.what()).find("0002_y.sql:1"), std::string::npos) << e.what();
        EXPECT_NE(std::string(e.what()).find("\\."), std::string::npos) << e.what();
    }
}

TEST(SqlScriptCopy, CopyFromAFileOrToStdoutHasNoInlineData) {
    auto script = PrepareScript("COPY t TO STDOUT;\nSELECT 1;\n", "0003_z.sql", true);
    ASSERT_EQ(script.statements.size(), 2u);
    EXPECT_FALSE(script.statements[0].has_copy_data);
    EXPECT_THROW(PrepareScript("-- copy t from stdin;\nCOPY t FROM stdin;\n1\n", "0004.sql", true),
                 FileError);
}

/*
 * pg_dump's plain format (PostgreSQL 15.14 and later) opens with
 * "\restrict KEY" and ends with "\unrestrict KEY": psql meta-commands, left
 * out between statements; the same text inside a string, a dollar-quoted
 * body or a comment is kept, and any other meta-command is still a syntax
 * error naming its line.
 */
TEST(SqlScriptCopy, PgDumpRestrictLinesAreLeftOut) {
    std::string sql = "--\n-- PostgreSQL database dump\n--\n\n"
                      "\\restrict PtHkK4fgtzUlsx5iNd0KvbeOqZWIbOBc\n\n"
                      "SET statement_timeout = 0;\n"
                      "CREATE FUNCTION f() RETURNS text LANGUAGE sql AS $$\n"
                      "\\restrict kept\n"
                      "$$;\n"
                      "COPY public.t (id) FROM stdin;\n"
                      "\\restrict not-a-command-in-data\n"
                      "\\.\n"
                      "/*\n\\unrestrict in a comment\n*/\n"
                      "SELECT 1;\n"
                      "\\unrestrict PtHkK4fgtzUlsx5iNd0KvbeOqZWIbOBc\r\n";
    auto script = PrepareScript(sql, "0001_dump.sql", true);
    ASSERT_EQ(script.statements.size(), 4u);
    EXPECT_EQ(script.statements[0].line, 7u);
    EXPECT_NE(script.statements[1].text.find("\\restrict kept"), std::string::npos);
    EXPECT_EQ(script.statements[2].copy_data, "\\restrict not-a-command-in-data\n");
    EXPECT_EQ(script.statements[3].line, 17u);
    EXPECT_NE(script.statements[3].text.find("unrestrict in a comment"), std::string::npos);
    EXPECT_EQ(script.statements[3].text.find("PtHk"), std::string::npos);

    for (const char *bad :
         {"SELECT 1;\n\\connect other\nSELECT 2;\n", "SELECT 1\n\\restrict KEY\n;\n"}) {
        try {
            PrepareScript(bad, "0002_meta.sql", true);
            FAIL() << "expected a FileError for " << bad;
        } catch (const FileError &e) {
            EXPECT_NE(std::string(e.what()).find("0002_meta.sql:2:"), std::string::npos)
                << e.what();
        }
    }
}
