/*
 * tests/integration/lint_guard_agreement_test.cpp
 *   keel lint and the server's guard share their rule names (issue 7): a
 *   statement the guard refuses is one that lint reports, under the same
 *   rule name, and a replacement both let through. Each statement is linted
 *   as a migration file and run as one (BEGIN; ...; COMMIT) against a
 *   database with keel installed (not preloaded: the hook-only rules,
 *   truncate, drop-database and drop-role, are left to the regress suite
 *   that preloads keel). Scratch database keel_it_lint_guard.
 */
#include "lint/lint.hpp"
#include "test_db.hpp"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace {

using keel_test::Connect;
using keel_test::Exec;
using keel_test::Result;

constexpr const char *kDb = "keel_it_lint_guard";

const char *kSetup = R"sql(
CREATE TABLE accounts (id int PRIMARY KEY, email text, plan text, balance int CONSTRAINT balance_nonneg CHECK (balance >= 0));
INSERT INTO accounts VALUES (1, 'a@example.com', 'pro', 10);
CREATE TABLE notes (id int, account_id int REFERENCES accounts);
CREATE VIEW account_emails AS SELECT id, email FROM accounts;
CREATE MATERIALIZED VIEW plan_counts AS SELECT plan, count(*) AS n FROM accounts GROUP BY plan;
CREATE FUNCTION account_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM accounts';
CREATE INDEX accounts_email ON accounts (email);
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN RETURN NEW; END';
CREATE TRIGGER accounts_touch BEFORE UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION touch();
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE SEQUENCE invoice_no;
CREATE SCHEMA archive;
CREATE TABLE archive.old_orders (id int);
)sql";

/* GuardRule runs sql as one transaction and returns the rule of its KL001, or "". */
std::string GuardRule(PGconn *conn, const std::string &sql) {
    Result res(PQexec(conn, ("BEGIN;\n" + sql + "\nCOMMIT;").c_str()), &PQclear);
    const char *state = PQresultErrorField(res.get(), PG_DIAG_SQLSTATE);
    std::string rule;
    if (state && std::string(state) == "KL001") {
        std::string msg = PQresultErrorField(res.get(), PG_DIAG_MESSAGE_PRIMARY);
        size_t at = msg.rfind("(rule ");
        if (at != std::string::npos)
            rule = msg.substr(at + 6, msg.find_first_of(",)", at + 6) - at - 6);
    } else if (PQresultStatus(res.get()) == PGRES_FATAL_ERROR) {
        rule = std::string("other error: ") + PQresultErrorMessage(res.get());
    }
    if (PQtransactionStatus(conn) != PQTRANS_IDLE)
        Result rollback(PQexec(conn, "ROLLBACK"), &PQclear);
    return rule;
}

/* LintGuardRules returns the guard rules lint reports for sql as a migration file. */
std::set<std::string> LintGuardRules(const std::string &sql) {
    std::set<std::string> guard;
    for (const auto &r : keel::lint::ListRules())
        if (r.guard)
            guard.insert(r.name);
    std::set<std::string> out;
    for (const auto &f : keel::lint::LintText(sql + "\n", "0099_case.sql", {}).findings)
        if (guard.count(f.rule))
            out.insert(f.rule);
    return out;
}

} // namespace

TEST(LintGuardAgreement, RefusedByTheGuardIsReportedByLintUnderTheSameName) {
    keel_test::ScratchDatabase(kDb, true);
    auto conn = Connect(kDb);
    Exec(conn.get(), kSetup);
    const char *refused[] = {
        "DROP TABLE notes;",
        "ALTER TABLE accounts DROP COLUMN plan;",
        "DROP SEQUENCE invoice_no;",
        "DROP VIEW account_emails;",
        "DROP MATERIALIZED VIEW plan_counts;",
        "DROP FUNCTION account_count();",
        "DROP INDEX accounts_email;",
        "ALTER TABLE accounts DROP CONSTRAINT balance_nonneg;",
        "DROP TRIGGER accounts_touch ON accounts;",
        "DROP TYPE mood;",
        "DROP SCHEMA archive CASCADE;",
        "ALTER TABLE accounts ALTER COLUMN balance TYPE bigint;",
        "ALTER TABLE accounts ADD COLUMN token uuid DEFAULT gen_random_uuid();",
        "ALTER TABLE accounts RENAME TO customers;",
        "ALTER TABLE accounts RENAME COLUMN email TO mail;",
        "ALTER VIEW account_emails RENAME TO emails;",
        "ALTER TYPE mood RENAME VALUE 'sad' TO 'blue';",
        "DROP EXTENSION keel;",
        "ALTER TABLE keel.credit_ledger DISABLE TRIGGER credit_ledger_append_only;",
        "DO $$ BEGIN EXECUTE 'DROP TABLE notes'; END $$;",
    };
    for (const char *sql : refused) {
        SCOPED_TRACE(sql);
        std::string guard = GuardRule(conn.get(), sql);
        ASSERT_FALSE(guard.empty()) << "the guard let it through";
        ASSERT_EQ(guard.find("other error"), std::string::npos) << guard;
        std::set<std::string> lint = LintGuardRules(sql);
        EXPECT_TRUE(lint.count(guard)) << "guard: " << guard << "; lint reported "
                                       << (lint.empty() ? "nothing" : *lint.begin());
    }
}

TEST(LintGuardAgreement, ReplacementsPassBoth) {
    keel_test::ScratchDatabase(kDb, true);
    auto conn = Connect(kDb);
    Exec(conn.get(), kSetup);
    const char *allowed[] = {
        "DROP VIEW account_emails; CREATE VIEW account_emails AS SELECT id, email, plan FROM "
        "accounts;",
        "DROP INDEX accounts_email; CREATE INDEX accounts_email ON accounts (lower(email));",
        "DROP FUNCTION account_count(); CREATE FUNCTION account_count() RETURNS bigint LANGUAGE "
        "sql AS 'SELECT 1::bigint';",
        "DROP TRIGGER accounts_touch ON accounts; CREATE TRIGGER accounts_touch BEFORE INSERT ON "
        "accounts FOR EACH ROW EXECUTE FUNCTION touch();",
        "CREATE TABLE scratch (a int); INSERT INTO scratch VALUES (1); ALTER TABLE scratch ALTER "
        "COLUMN a TYPE bigint; DROP TABLE scratch;",
        "ALTER TABLE accounts ADD COLUMN created_at timestamptz DEFAULT now();",
        "ALTER TYPE mood ADD VALUE 'calm';",
    };
    for (const char *sql : allowed) {
        SCOPED_TRACE(sql);
        EXPECT_EQ(GuardRule(conn.get(), sql), "");
        EXPECT_TRUE(LintGuardRules(sql).empty());
    }
}
