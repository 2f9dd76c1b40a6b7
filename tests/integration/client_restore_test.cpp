/*
 * tests/integration/client_restore_test.cpp
 *   keel restore ID --replace DATABASE and keel migrate --backup
 *   --restore-on-failure (issue 12), run through the built client
 *   (KEEL_BINARY) against the throwaway cluster: rows, a dropped table, an
 *   added column and a new table come back as in the backup; the keel
 *   extension, its guard and its history survive (no duplicate rows, later
 *   failed attempts kept); a damaged archive, a missing or wrong --replace
 *   and a non-superuser are refused with nothing changed; a lock another
 *   session holds makes the restore give up, naming the session, with nothing
 *   changed. Each test makes its own scratch database keel_it_rs_*.
 */
#include "lib/checksum.hpp"
#include "keel_run.hpp"
#include "test_db.hpp"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;
using keel_test::Connect;
using keel_test::Contains;
using keel_test::Exec;
using keel_test::KeelRun;
using keel_test::RunKeel;
using keel_test::ScalarText;
using keel_test::ScratchDatabase;
using keel_test::ShellQuote;
using keel_test::Slurp;
using keel_test::TempDir;

namespace {

/* BackupId is the id in keel backup's first line "backup <id>: ...". */
std::string BackupId(const std::string &out) {
    size_t at = out.find("backup ");
    size_t colon = out.find(':', at);
    return out.substr(at + 7, colon - at - 7);
}

/* Schema is a fingerprint of the user schemas: every column of every user table, in order. */
std::string Schema(PGconn *conn) {
    return ScalarText(conn, "SELECT coalesce(string_agg(table_schema || '.' || table_name || '.' "
                            "|| column_name || ':' || data_type, ',' ORDER BY table_schema, "
                            "table_name, ordinal_position), '') FROM information_schema.columns "
                            "WHERE table_schema NOT IN ('pg_catalog', 'information_schema', "
                            "'keel', 'keel_trash')");
}

/* History is "version:status" of every keel.migration_history row, by id. */
std::string History(PGconn *conn) {
    return ScalarText(conn, "SELECT coalesce(string_agg(version || ':' || status, ',' ORDER BY "
                            "id), '') FROM keel.migration_history");
}

const char *kAccounts = "CREATE TABLE rs_accounts (id int PRIMARY KEY, email text NOT NULL);\n"
                        "INSERT INTO rs_accounts VALUES (1, 'a@example.com'), (2, "
                        "'b@example.com');\n"
                        "CREATE TABLE rs_coupons (code text PRIMARY KEY);\n"
                        "INSERT INTO rs_coupons VALUES ('SPRING');\n"
                        "CREATE SCHEMA rs_app;\n"
                        "CREATE VIEW rs_app.emails AS SELECT email FROM public.rs_accounts;\n";

} // namespace

/*
 * In place: rows deleted and added, a table dropped (under the break-glass),
 * a column and a table and a schema added after the backup -- all back to
 * the backup; keel, its guard and history survive; the restore is audited.
 */
TEST(ClientRestore, ReplacePutsBackRowsAndSchemaAndKeepsKeel) {
    std::string db = ScratchDatabase("keel_it_rs_replace", true);
    TempDir migrations("replace_migrations");
    migrations.Write("0001_accounts.sql", kAccounts);
    ASSERT_EQ(RunKeel(db, "migrate --dir " + migrations.path.string()).exit_code, 0);
    TempDir backups("replace_backups");
    KeelRun taken = RunKeel(db, "backup --backup-dir " + backups.path.string());
    ASSERT_EQ(taken.exit_code, 0) << taken.err;
    std::string id = BackupId(taken.out);
    auto conn = Connect("keel_it_rs_replace");
    std::string schema_then = Schema(conn.get());
    std::string history_then = History(conn.get());
    ASSERT_EQ(history_then, "1:applied");

    migrations.Write("0002_changes.sql",
                     "-- keel:allow-destructive \"coupons moved to the billing service\"\n"
                     "DROP TABLE rs_coupons;\n"
                     "ALTER TABLE rs_accounts ADD COLUMN plan text DEFAULT 'free';\n"
                     "CREATE TABLE rs_later (id int);\n"
                     "CREATE SCHEMA rs_more;\n"
                     "CREATE TABLE rs_more.t (x int);\n"
                     "DELETE FROM rs_accounts WHERE id = 1;\n"
                     "INSERT INTO rs_accounts VALUES (3, 'c@example.com');\n");
    KeelRun second = RunKeel(db, "migrate --dir " + migrations.path.string());
    ASSERT_EQ(second.exit_code, 0) << second.err;
    /* a failed attempt after the backup: kept through the restore */
    migrations.Write("0003_broken.sql", "CREATE TABLE rs_broken (id int);\nSELECT 1/0;\n");
    ASSERT_EQ(RunKeel(db, "migrate --dir " + migrations.path.string()).exit_code, 1);
    ASSERT_EQ(History(conn.get()), "1:applied,2:applied,3:failed");
    std::string failed_row = ScalarText(
        conn.get(), "SELECT id || ' ' || started_at || ' ' || error FROM keel.migration_history "
                    "WHERE status = 'failed'");
    std::string audit_before = ScalarText(conn.get(), "SELECT count(*) FROM keel.guard_audit");

    /* without a confirmation, or naming another database: refused, nothing changes */
    KeelRun bare = RunKeel(db, "restore " + id + " --backup-dir " + backups.path.string());
    EXPECT_EQ(bare.exit_code, 2) << bare.err;
    EXPECT_TRUE(Contains(bare.err, "--replace DATABASE")) << bare.err;
    KeelRun wrong = RunKeel(db, "restore " + id + " --replace keel_it_rs_other --backup-dir " +
                                    backups.path.string());
    EXPECT_EQ(wrong.exit_code, 1);
    EXPECT_TRUE(Contains(wrong.err, "connected to \"keel_it_rs_replace\"")) << wrong.err;
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM rs_later"), "0");

    KeelRun restored = RunKeel(db, "restore " + id + " --replace keel_it_rs_replace --backup-dir " +
                                       backups.path.string());
    ASSERT_EQ(restored.exit_code, 0) << restored.err << restored.out;
    EXPECT_TRUE(Contains(restored.out, "replacing the contents of database \"keel_it_rs_replace\""))
        << restored.out;
    EXPECT_TRUE(Contains(restored.out, "rs_more (1 table)")) << restored.out;
    EXPECT_TRUE(Contains(restored.out, "migrations now up to 1")) << restored.out;
    EXPECT_TRUE(Contains(restored.out, "1 failed attempt(s) recorded after it, kept"))
        << restored.out;

    conn = Connect("keel_it_rs_replace");
    EXPECT_EQ(Schema(conn.get()), schema_then);
    EXPECT_EQ(ScalarText(conn.get(), "SELECT string_agg(id || '=' || email, ',' ORDER BY id) "
                                     "FROM rs_accounts"),
              "1=a@example.com,2=b@example.com");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT code FROM rs_coupons"), "SPRING");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM rs_app.emails"), "2");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM pg_namespace WHERE nspname = "
                                     "'rs_more'"),
              "0");
    /* the history matches the restored schema, once each, and the failed attempt is kept as it was
     */
    EXPECT_EQ(History(conn.get()), "1:applied,3:failed");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT id || ' ' || started_at || ' ' || error FROM "
                                     "keel.migration_history WHERE status = 'failed'"),
              failed_row);
    /* keel itself: still installed, its guard still refuses, the restore audited */
    EXPECT_EQ(ScalarText(conn.get(), "SELECT extversion FROM pg_extension WHERE extname = 'keel'"),
              "0.2.0");
    EXPECT_EQ(ScalarText(conn.get(),
                         "SELECT count(*) FROM keel.guard_audit WHERE action = 'break_glass' AND "
                         "reason LIKE 'keel restore " +
                             id + " --replace keel_it_rs_replace%'"),
              "1");
    EXPECT_GT(std::stoi(ScalarText(conn.get(), "SELECT count(*) FROM keel.guard_audit")),
              std::stoi(audit_before));
    PGresult *refused = PQexec(conn.get(), "DROP TABLE rs_coupons");
    EXPECT_STREQ(PQresultErrorField(refused, PG_DIAG_SQLSTATE), "KL001");
    PQclear(refused);

    /* the folder goes on from the restored state: 0002 applies again (0003 still fails) */
    fs::remove(migrations.path / "0003_broken.sql");
    KeelRun again = RunKeel(db, "migrate --dir " + migrations.path.string());
    EXPECT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(History(conn.get()), "1:applied,3:failed,2:applied");
}

/* A damaged archive is refused before anything is touched. */
TEST(ClientRestore, DamagedArchiveIsRefusedAndNothingChanges) {
    std::string db = ScratchDatabase("keel_it_rs_damaged", true);
    auto conn = Connect("keel_it_rs_damaged");
    Exec(conn.get(), "CREATE TABLE rs_t (id int); INSERT INTO rs_t VALUES (1)");
    TempDir backups("damaged_backups");
    KeelRun taken = RunKeel(db, "backup --backup-dir " + backups.path.string());
    ASSERT_EQ(taken.exit_code, 0) << taken.err;
    std::string id = BackupId(taken.out);
    Exec(conn.get(), "INSERT INTO rs_t VALUES (2)");
    fs::path archive = backups.path / (id + ".dump");
    std::string bytes = Slurp(archive);
    bytes[bytes.size() / 2] ^= 0x20;
    std::ofstream(archive, std::ios::binary | std::ios::trunc) << bytes;

    KeelRun damaged = RunKeel(db, "restore " + id + " --replace keel_it_rs_damaged --backup-dir " +
                                      backups.path.string());
    EXPECT_EQ(damaged.exit_code, 1);
    EXPECT_TRUE(Contains(damaged.err, "does not match its manifest")) << damaged.err;
    EXPECT_TRUE(Contains(damaged.err, "nothing restored")) << damaged.err;
    EXPECT_FALSE(Contains(damaged.out, "replacing")) << damaged.out;
    EXPECT_EQ(ScalarText(conn.get(), "SELECT string_agg(id::text, ',' ORDER BY id) FROM rs_t"),
              "1,2");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.guard_audit"), "0");

    /* cut short, with a manifest that matches it: pg_restore fails half-way through the
     * stream, and the transaction it fed never commits */
    std::string whole = Slurp(archive);
    whole[whole.size() / 2] ^= 0x20;
    std::ofstream(archive, std::ios::binary | std::ios::trunc)
        << whole.substr(0, whole.size() - 200);
    fs::path manifest_path = backups.path / (id + ".json");
    nlohmann::json manifest = nlohmann::json::parse(Slurp(manifest_path));
    manifest["sha256"] = keel::client::Sha256Hex(Slurp(archive));
    std::ofstream(manifest_path, std::ios::trunc) << manifest.dump(2);
    KeelRun cut = RunKeel(db, "restore " + id + " --replace keel_it_rs_damaged --backup-dir " +
                                  backups.path.string());
    EXPECT_EQ(cut.exit_code, 1);
    EXPECT_TRUE(Contains(cut.err, "pg_restore failed")) << cut.err;
    EXPECT_TRUE(Contains(cut.err, "nothing changed")) << cut.err;
    EXPECT_EQ(ScalarText(conn.get(), "SELECT string_agg(id::text, ',' ORDER BY id) FROM rs_t"),
              "1,2");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.guard_audit"), "0");
}

/* A role that is not a superuser gets one clear error, and nothing changes. */
TEST(ClientRestore, NonSuperuserIsRefused) {
    {
        auto admin = Connect("postgres");
        Exec(admin.get(), "DROP DATABASE IF EXISTS keel_it_rs_role WITH (FORCE)");
        Exec(admin.get(), "DROP ROLE IF EXISTS keel_it_rs_owner");
        Exec(admin.get(), "CREATE ROLE keel_it_rs_owner LOGIN PASSWORD 'rs-secret-pw'");
        Exec(admin.get(), "CREATE DATABASE keel_it_rs_role OWNER keel_it_rs_owner");
    }
    {
        auto conn = Connect("keel_it_rs_role");
        Exec(conn.get(), "CREATE EXTENSION keel");
    }
    std::string owner = "dbname=keel_it_rs_role user=keel_it_rs_owner password=rs-secret-pw";
    {
        auto conn = Connect("keel_it_rs_role");
        Exec(conn.get(), "SET ROLE keel_it_rs_owner; CREATE TABLE rs_owned (id int); "
                         "INSERT INTO rs_owned VALUES (1); RESET ROLE");
    }
    TempDir backups("role_backups");
    KeelRun taken =
        RunKeel("dbname=keel_it_rs_role", "backup --backup-dir " + backups.path.string());
    ASSERT_EQ(taken.exit_code, 0) << taken.err;
    std::string id = BackupId(taken.out);
    KeelRun refused = RunKeel(owner, "restore " + id + " --replace keel_it_rs_role --backup-dir " +
                                         backups.path.string());
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_TRUE(Contains(refused.err, "needs a superuser")) << refused.err;
    EXPECT_TRUE(Contains(refused.err, "keel_it_rs_owner")) << refused.err;
    EXPECT_TRUE(Contains(refused.err, "restore --into NEW_DB")) << refused.err;
    EXPECT_FALSE(Contains(refused.err + refused.out, "rs-secret-pw"));
    auto conn = Connect("keel_it_rs_role");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM rs_owned"), "1");
    conn.reset();
    auto admin = Connect("postgres");
    Exec(admin.get(), "DROP DATABASE keel_it_rs_role WITH (FORCE)");
    Exec(admin.get(), "DROP ROLE keel_it_rs_owner");
}

/*
 * Another session holding a lock on a table the restore replaces: the
 * restore waits --lock-timeout, then fails naming that session, and the
 * database is as it was (one transaction).
 */
TEST(ClientRestore, LockHeldByAnotherSessionFailsWholeNamingIt) {
    std::string db = ScratchDatabase("keel_it_rs_locked", true);
    auto conn = Connect("keel_it_rs_locked");
    Exec(conn.get(), "CREATE TABLE rs_t (id int); INSERT INTO rs_t VALUES (1)");
    TempDir backups("locked_backups");
    KeelRun taken = RunKeel(db, "backup --backup-dir " + backups.path.string());
    ASSERT_EQ(taken.exit_code, 0) << taken.err;
    std::string id = BackupId(taken.out);
    Exec(conn.get(), "INSERT INTO rs_t VALUES (2); CREATE TABLE rs_new (x int)");
    auto other = Connect("keel_it_rs_locked");
    Exec(other.get(), "SET application_name = 'rs_reader'");
    Exec(other.get(), "BEGIN; SELECT count(*) FROM rs_t");
    std::string pid = ScalarText(other.get(), "SELECT pg_backend_pid()");

    auto t0 = std::chrono::steady_clock::now();
    KeelRun blocked = RunKeel(db, "restore " + id +
                                      " --replace keel_it_rs_locked --lock-timeout 500 "
                                      "--backup-dir " +
                                      backups.path.string());
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_EQ(blocked.exit_code, 1);
    EXPECT_TRUE(Contains(blocked.out, "other session(s) connected")) << blocked.out;
    EXPECT_TRUE(Contains(blocked.err, "lock timeout")) << blocked.err;
    EXPECT_TRUE(Contains(blocked.err, "nothing changed")) << blocked.err;
    EXPECT_TRUE(Contains(blocked.err, "pid " + pid)) << blocked.err;
    EXPECT_TRUE(Contains(blocked.err, "rs_reader")) << blocked.err;
    EXPECT_LT(secs, 30.0);
    Exec(other.get(), "COMMIT");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT string_agg(id::text, ',' ORDER BY id) FROM rs_t"),
              "1,2");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM rs_new"), "0");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.guard_audit WHERE action = "
                                     "'break_glass'"),
              "0");
    /* once the reader is done, the same restore goes through */
    KeelRun done = RunKeel(db, "restore " + id + " --replace keel_it_rs_locked --backup-dir " +
                                   backups.path.string());
    EXPECT_EQ(done.exit_code, 0) << done.err;
    EXPECT_EQ(ScalarText(conn.get(), "SELECT string_agg(id::text, ',' ORDER BY id) FROM rs_t"),
              "1");
}

/*
 * migrate --backup --restore-on-failure: a keel:no-transaction file fails
 * after its first statement committed, and after an earlier file of the run
 * applied; the run's backup is restored, the failure reported with
 * "restored backup ID", and the failed attempt stays recorded.
 */
TEST(ClientRestore, RestoreOnFailureBringsTheDatabaseBackToTheBackup) {
    std::string db = ScratchDatabase("keel_it_rs_rof", true);
    TempDir migrations("rof_migrations");
    migrations.Write("0001_accounts.sql", kAccounts);
    ASSERT_EQ(RunKeel(db, "migrate --dir " + migrations.path.string()).exit_code, 0);
    auto conn = Connect("keel_it_rs_rof");
    std::string schema_then = Schema(conn.get());
    migrations.Write("0002_plan.sql", "ALTER TABLE rs_accounts ADD COLUMN plan text;\n"
                                      "UPDATE rs_accounts SET plan = 'pro';\n");
    migrations.Write("0003_index.sql", "-- keel:no-transaction\n"
                                       "CREATE INDEX CONCURRENTLY rs_accounts_email ON "
                                       "rs_accounts (email);\n"
                                       "CREATE TABLE rs_side (id int);\n"
                                       "INSERT INTO rs_missing VALUES (1);\n");
    TempDir backups("rof_backups");
    KeelRun run = RunKeel(db, "migrate --backup --restore-on-failure --backup-dir " +
                                  backups.path.string() + " --dir " + migrations.path.string());
    EXPECT_EQ(run.exit_code, 1) << run.out;
    EXPECT_TRUE(Contains(run.err, "0003_index.sql:4")) << run.err;
    EXPECT_TRUE(Contains(run.err, "rs_missing")) << run.err;
    EXPECT_TRUE(Contains(run.err, "restored backup keel_it_rs_rof-")) << run.err;
    EXPECT_TRUE(Contains(run.err, "1 earlier file(s) of this run")) << run.err;
    EXPECT_TRUE(Contains(run.err, "statements of 0003_index.sql")) << run.err;
    EXPECT_TRUE(Contains(run.err, "migrations now up to 1")) << run.err;

    conn = Connect("keel_it_rs_rof");
    EXPECT_EQ(Schema(conn.get()), schema_then);
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM pg_class WHERE relname IN "
                                     "('rs_accounts_email', 'rs_side')"),
              "0");
    EXPECT_EQ(History(conn.get()), "1:applied,3:failed");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT error_statement FROM keel.migration_history WHERE "
                                     "status = 'failed'"),
              "INSERT INTO rs_missing VALUES (1)");
    /* the journal went back with the schema: a fixed rerun starts 0003 from its first statement */
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.migration_steps"), "0");
    migrations.Write("0003_index.sql", "-- keel:no-transaction\n"
                                       "CREATE INDEX CONCURRENTLY rs_accounts_email ON "
                                       "rs_accounts (email);\n"
                                       "CREATE TABLE rs_side (id int);\n");
    KeelRun rerun = RunKeel(db, "migrate --dir " + migrations.path.string());
    EXPECT_EQ(rerun.exit_code, 0) << rerun.err;
    EXPECT_FALSE(Contains(rerun.out, "resuming")) << rerun.out;
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM pg_class WHERE relname IN "
                                     "('rs_accounts_email', 'rs_side')"),
              "2");
}

/* Nothing of the run committed (a transactional file failed first): no restore. */
TEST(ClientRestore, RestoreOnFailureSaysNoRestoreWasNeeded) {
    std::string db = ScratchDatabase("keel_it_rs_rof_none", true);
    TempDir migrations("rof_none_migrations");
    migrations.Write("0001_broken.sql", "CREATE TABLE rs_x (id int);\nSELECT 1/0;\n");
    TempDir backups("rof_none_backups");
    KeelRun run = RunKeel(db, "migrate --backup --restore-on-failure --backup-dir " +
                                  backups.path.string() + " --dir " + migrations.path.string());
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_TRUE(Contains(run.err, "division by zero")) << run.err;
    EXPECT_TRUE(Contains(run.err, "no restore was needed")) << run.err;
    EXPECT_FALSE(Contains(run.out, "replacing")) << run.out;
    auto conn = Connect("keel_it_rs_rof_none");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.guard_audit"), "0");
    EXPECT_EQ(History(conn.get()), "1:failed");

    /* a keel:no-transaction file failing at its first statement committed nothing either */
    migrations.Write("0001_broken.sql", "-- keel:no-transaction\nINSERT INTO rs_nope VALUES (1);\n"
                                        "CREATE TABLE rs_y (id int);\n");
    KeelRun first = RunKeel(db, "migrate --backup --restore-on-failure --backup-dir " +
                                    backups.path.string() + " --dir " + migrations.path.string());
    EXPECT_EQ(first.exit_code, 1);
    EXPECT_TRUE(Contains(first.err, "no restore was needed")) << first.err;

    /* --restore-on-failure needs --backup: a usage error */
    KeelRun usage = RunKeel(db, "migrate --restore-on-failure --dir " + migrations.path.string());
    EXPECT_EQ(usage.exit_code, 2);
    EXPECT_TRUE(Contains(usage.err, "--restore-on-failure requires --backup")) << usage.err;
}
