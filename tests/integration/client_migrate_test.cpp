/*
 * tests/integration/client_migrate_test.cpp
 *   Runs the built `keel` client (KEEL_BINARY) against the throwaway cluster
 *   (PG* environment from pg_virtualenv): install, migrate the seed folder,
 *   status --json, re-runs, checksum mismatch, a failing migration, a bad file
 *   name, a concurrent runner (KL004), the guard's refusal (KL001) and an
 *   ordinary role. Each test makes its own scratch database keel_it_mig_*.
 */
#include "keel_run.hpp"
#include "test_db.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <thread>
#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <algorithm>
#include <sstream>
#include <sys/wait.h>
#include <unistd.h>

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

const fs::path kSeedDir = fs::path(KEEL_SOURCE_DIR) / "examples" / "seed-migrations";
const fs::path kDestructiveDir = fs::path(KEEL_SOURCE_DIR) / "examples" / "destructive";

std::string HistoryStatus(PGconn *conn, const std::string &version) {
    return ScalarText(conn, "SELECT coalesce(string_agg(status, ',' ORDER BY id), '') FROM "
                            "keel.migration_history WHERE version = " +
                                version);
}

} // namespace

TEST(ClientMigrate, VersionFlag) {
    KeelRun run = RunKeel("dbname=postgres", "--version");
    EXPECT_EQ(run.exit_code, 0);
    EXPECT_TRUE(Contains(run.out, "keel 0.2.0")) << run.out;
}

TEST(ClientMigrate, InstallIsIdempotent) {
    std::string db = ScratchDatabase("keel_it_mig_install", false);
    KeelRun first = RunKeel(db, "install");
    ASSERT_EQ(first.exit_code, 0) << first.err;
    EXPECT_TRUE(Contains(first.out, "installed keel 0.2.0")) << first.out;
    KeelRun second = RunKeel(db, "install");
    ASSERT_EQ(second.exit_code, 0) << second.err;
    EXPECT_TRUE(Contains(second.out, "already installed")) << second.out;
    auto conn = Connect("keel_it_mig_install");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT extversion FROM pg_extension WHERE extname = 'keel'"),
              "0.2.0");
}

TEST(ClientMigrate, InstallUpdatesAnOlderVersion) {
    std::string db = ScratchDatabase("keel_it_mig_update", false);
    {
        auto conn = Connect("keel_it_mig_update");
        Exec(conn.get(), "CREATE EXTENSION keel VERSION '0.1.0'");
    }
    KeelRun run = RunKeel(db, "install");
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_TRUE(Contains(run.out, "updated keel from 0.1.0 to 0.2.0")) << run.out;
    auto conn = Connect("keel_it_mig_update");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT extversion FROM pg_extension WHERE extname = 'keel'"),
              "0.2.0");
}

TEST(ClientMigrate, AppliesSeedFolderThenNothing) {
    std::string db = ScratchDatabase("keel_it_mig_seed", true);
    KeelRun run = RunKeel(db, "migrate --dir " + ShellQuote(kSeedDir.string()));
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_TRUE(Contains(run.out, "applied 0001_base_tables.sql")) << run.out;
    EXPECT_TRUE(Contains(run.out, "applied 0031_multi_credit_allocation.sql")) << run.out;
    EXPECT_TRUE(Contains(run.out, " ms")) << run.out;

    KeelRun status = RunKeel(db, "status --json --dir " + ShellQuote(kSeedDir.string()));
    ASSERT_EQ(status.exit_code, 0) << status.err;
    nlohmann::json report = nlohmann::json::parse(status.out);
    size_t files = 0;
    for (const auto &e : fs::directory_iterator(kSeedDir))
        files += e.path().extension() == ".sql";
    EXPECT_EQ(report["applied"].size(), files);
    EXPECT_TRUE(report["pending"].empty()) << status.out;
    EXPECT_TRUE(report["failed"].empty());
    EXPECT_TRUE(report["checksum_mismatches"].empty());
    EXPECT_EQ(report["superseded"].size(), 4u); /* 0004, 0005, 0009, 0010 */
    for (const auto &a : report["applied"])
        EXPECT_EQ(a["checksum_matches"], true) << a.dump();

    KeelRun again = RunKeel(db, "migrate --dir " + ShellQuote(kSeedDir.string()));
    ASSERT_EQ(again.exit_code, 0) << again.err;
    EXPECT_TRUE(Contains(again.out, "nothing to apply")) << again.out;
    auto conn = Connect("keel_it_mig_seed");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.migration_history WHERE "
                                     "status = 'applied'"),
              std::to_string(files));
    /* The multi-credit allocation ran through keel's credit functions. */
    EXPECT_EQ(ScalarText(conn.get(), "SELECT keel.get_available_credits("
                                     "'00000000-0000-0000-0000-000000000001', 'email')"),
              "20000");
}

TEST(ClientMigrate, ChangedAppliedFileStopsEverything) {
    std::string db = ScratchDatabase("keel_it_mig_checksum", true);
    TempDir dir("checksum");
    dir.CopyFrom(kSeedDir, "0003");
    ASSERT_EQ(RunKeel(db, "migrate --dir " + dir.path.string()).exit_code, 0);

    {
        std::ofstream(dir.path / "0003_sample_organizations.sql", std::ios::app)
            << "SELECT 1; -- edited after it was applied (a comment alone is cosmetic)\n";
    }
    dir.Write("0040_new_table.sql", "CREATE TABLE it_new_table (id int);\n");
    KeelRun run = RunKeel(db, "migrate --dir " + dir.path.string());
    EXPECT_NE(run.exit_code, 0);
    EXPECT_TRUE(Contains(run.err, "0003_sample_organizations.sql: checksum mismatch: recorded"))
        << run.err;
    EXPECT_TRUE(Contains(run.err, "current")) << run.err;
    EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
    auto conn = Connect("keel_it_mig_checksum");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('it_new_table') IS NULL"), "t");
    EXPECT_EQ(HistoryStatus(conn.get(), "40"), "");

    KeelRun status = RunKeel(db, "status --json --dir " + dir.path.string());
    EXPECT_EQ(status.exit_code, 3);
    nlohmann::json report = nlohmann::json::parse(status.out);
    ASSERT_EQ(report["checksum_mismatches"].size(), 1u);
    EXPECT_EQ(report["checksum_mismatches"][0]["version"], "3");
}

TEST(ClientMigrate, FailingMigrationIsRolledBackAndRecorded) {
    std::string db = ScratchDatabase("keel_it_mig_fail", true);
    TempDir dir("fail");
    dir.CopyFrom(kSeedDir, "0003");
    dir.Write("0004_broken.sql", "CREATE TABLE it_broken (id int);\n\nINSERT INTO it_broken\n"
                                 "  SELECT id FROM it_does_not_exist;\n");
    dir.Write("0005_after.sql", "CREATE TABLE it_after (id int);\n");
    KeelRun run = RunKeel(db, "migrate --dir " + dir.path.string());
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_TRUE(Contains(run.err, "0004_broken.sql:4:")) << run.err;
    EXPECT_TRUE(Contains(run.err, "relation \"it_does_not_exist\" does not exist")) << run.err;
    EXPECT_TRUE(Contains(run.out, "applied 0003_sample_organizations.sql")) << run.out;

    auto conn = Connect("keel_it_mig_fail");
    EXPECT_EQ(HistoryStatus(conn.get(), "1"), "applied");
    EXPECT_EQ(HistoryStatus(conn.get(), "3"), "applied");
    EXPECT_EQ(HistoryStatus(conn.get(), "4"), "failed");
    EXPECT_EQ(HistoryStatus(conn.get(), "5"), "");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('it_broken') IS NULL"), "t");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('it_after') IS NULL"), "t");
    EXPECT_TRUE(Contains(ScalarText(conn.get(), "SELECT error FROM keel.migration_history "
                                                "WHERE version = 4"),
                         "0004_broken.sql:4:"));

    KeelRun status = RunKeel(db, "status --json --dir " + dir.path.string());
    nlohmann::json report = nlohmann::json::parse(status.out);
    ASSERT_EQ(report["failed"].size(), 1u);
    EXPECT_EQ(report["failed"][0]["version"], "4");

    /* Fixed, it applies on the next run, and so does the one after it. */
    dir.Write("0004_broken.sql", "CREATE TABLE it_broken (id int);\n");
    KeelRun fixed = RunKeel(db, "migrate --dir " + dir.path.string());
    ASSERT_EQ(fixed.exit_code, 0) << fixed.err;
    EXPECT_EQ(HistoryStatus(conn.get(), "4"), "failed,applied");
    EXPECT_EQ(HistoryStatus(conn.get(), "5"), "applied");
}

TEST(ClientMigrate, MalformedFileNameAppliesNothing) {
    std::string db = ScratchDatabase("keel_it_mig_names", true);
    TempDir dir("names");
    dir.Write("0001_ok.sql", "CREATE TABLE it_ok (id int);\n");
    dir.Write("add_users.sql", "CREATE TABLE it_users (id int);\n");
    KeelRun run = RunKeel(db, "migrate --dir " + dir.path.string());
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_TRUE(Contains(run.err, "add_users.sql: not a migration file name")) << run.err;
    auto conn = Connect("keel_it_mig_names");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.migration_history"), "0");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('it_ok') IS NULL"), "t");
}

TEST(ClientMigrate, TransactionControlInsideAMigrationIsRefused) {
    std::string db = ScratchDatabase("keel_it_mig_txn", true);
    TempDir dir("txn");
    dir.Write("0001_a.sql", "CREATE TABLE it_a (id int);\n");
    dir.Write("0002_b.sql", "CREATE TABLE it_b (id int);\nCOMMIT;\nCREATE TABLE it_c (id int);\n");
    KeelRun run = RunKeel(db, "migrate --dir " + dir.path.string());
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_TRUE(Contains(run.err, "0002_b.sql:2: transaction control")) << run.err;
    auto conn = Connect("keel_it_mig_txn");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.migration_history"), "0");
}

TEST(ClientMigrate, ConcurrentRunnerGetsKL004) {
    std::string db = ScratchDatabase("keel_it_mig_lock", true);
    auto holder = Connect("keel_it_mig_lock");
    Exec(holder.get(), "SELECT keel.migration_lock()");
    KeelRun run = RunKeel(db, "migrate --lock-wait 1 --dir " + ShellQuote(kSeedDir.string()));
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_TRUE(Contains(run.err, "waited 1 s")) << run.err;
    EXPECT_TRUE(Contains(run.err, "another keel migration runner holds the migration lock"))
        << run.err;
    EXPECT_TRUE(Contains(run.err, "KL004")) << run.err;
    EXPECT_TRUE(Contains(run.err, "process " + std::to_string(PQbackendPID(holder.get()))))
        << run.err;
    EXPECT_TRUE(
        Contains(run.err, "holds the keel migration lock of database \"keel_it_mig_lock\" since "))
        << run.err;
    EXPECT_EQ(ScalarText(holder.get(), "SELECT count(*) FROM keel.migration_history"), "0");

    /* a runner that waits gets the lock once the holder lets go */
    std::thread release([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(700));
        Exec(holder.get(), "SELECT keel.migration_unlock()");
    });
    KeelRun waited =
        RunKeel(db, "migrate --lock-wait 20 --target 3 --dir " + ShellQuote(kSeedDir.string()));
    release.join();
    EXPECT_EQ(waited.exit_code, 0) << waited.err;
    EXPECT_TRUE(Contains(waited.out, "applied 0003_sample_organizations.sql")) << waited.out;
    EXPECT_FALSE(Contains(waited.out, "0011_")) << "--target 3 applied past 3: " << waited.out;
    KeelRun after = RunKeel(db, "migrate --dir " + ShellQuote(kSeedDir.string()));
    EXPECT_EQ(after.exit_code, 0) << after.err;
}

TEST(ClientMigrate, GuardRefusalIsShownWithDetailAndHint) {
    std::string db = ScratchDatabase("keel_it_mig_guard", true);
    auto conn = Connect("keel_it_mig_guard");
    if (ScalarText(conn.get(), "SELECT count(*) FROM pg_event_trigger WHERE evtname = "
                               "'keel_guard_ddl_command_start'") == "0")
        GTEST_SKIP() << "the guard is not installed";
    /* one folder, as a project has: the seed migrations, then the destructive ones after them */
    TempDir dir("guard");
    dir.CopyFrom(kSeedDir, "9999");
    ASSERT_EQ(RunKeel(db, "migrate --dir " + dir.path.string()).exit_code, 0);
    dir.CopyFrom(kDestructiveDir, "9999");
    KeelRun run = RunKeel(db, "migrate --dir " + dir.path.string());
    EXPECT_EQ(run.exit_code, 1);
    /* 0100 uses the break-glass directive and goes through. */
    EXPECT_TRUE(Contains(run.out, "applied 0100_break_glass_drop_coupons.sql")) << run.out;
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('coupons') IS NULL"), "t");
    /* 0101 is refused: message, DETAIL and HINT on the one stderr line. */
    EXPECT_TRUE(Contains(run.err, "0101_downgrade_billing_models.sql:5:")) << run.err;
    EXPECT_TRUE(Contains(run.err, "KL001")) << run.err;
    EXPECT_TRUE(Contains(run.err, "DETAIL: ")) << run.err;
    EXPECT_TRUE(Contains(run.err, "organization_billing")) << run.err;
    EXPECT_TRUE(Contains(run.err, "HINT: ")) << run.err;
    EXPECT_EQ(HistoryStatus(conn.get(), "101"), "failed");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('organization_billing') IS NOT NULL"),
              "t");
}

TEST(ClientMigrate, OrdinaryRoleRunsTheSeedFolder) {
    {
        auto admin = Connect("postgres");
        Exec(admin.get(), "DROP DATABASE IF EXISTS keel_it_mig_role WITH (FORCE)");
        Exec(admin.get(), "DROP ROLE IF EXISTS keel_it_migrator");
        Exec(admin.get(), "CREATE ROLE keel_it_migrator LOGIN PASSWORD 'it-secret-pw'");
        Exec(admin.get(), "CREATE DATABASE keel_it_mig_role OWNER keel_it_migrator");
    }
    {
        auto conn = Connect("keel_it_mig_role");
        Exec(conn.get(), "CREATE EXTENSION keel");
    }
    std::string db = "dbname=keel_it_mig_role user=keel_it_migrator password=it-secret-pw";
    KeelRun refused = RunKeel(db, "migrate --dir " + ShellQuote(kSeedDir.string()));
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_TRUE(Contains(refused.err, "may not take the migration lock or record migrations"))
        << refused.err;
    EXPECT_TRUE(Contains(refused.err, "keel install --grant-migrations keel_it_migrator"))
        << refused.err;
    KeelRun granted =
        RunKeel("dbname=keel_it_mig_role", "install --grant-migrations keel_it_migrator");
    ASSERT_EQ(granted.exit_code, 0) << granted.err;
    EXPECT_TRUE(Contains(granted.out, "granted running migrations to keel_it_migrator"))
        << granted.out;
    /* the seed's 0031 allocates and reads credits: since 0.2.0 that needs a grant too */
    KeelRun grant =
        RunKeel("dbname=keel_it_mig_role", "install --grant-credits-admin keel_it_migrator");
    ASSERT_EQ(grant.exit_code, 0) << grant.err;
    KeelRun run = RunKeel(db, "migrate --dir " + ShellQuote(kSeedDir.string()));
    EXPECT_EQ(run.exit_code, 0) << run.err;
    KeelRun status = RunKeel(db, "status");
    EXPECT_EQ(status.exit_code, 0) << status.err;
    EXPECT_TRUE(Contains(status.out, "user=keel_it_migrator")) << status.out;
    for (const KeelRun *r : {&refused, &run, &status}) {
        EXPECT_FALSE(Contains(r->out, "it-secret-pw"));
        EXPECT_FALSE(Contains(r->err, "it-secret-pw"));
    }
    auto conn = Connect("keel_it_mig_role");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT string_agg(DISTINCT applied_by::text, ',') FROM "
                                     "keel.migration_history"),
              "keel_it_migrator");
    conn.reset();
    auto admin = Connect("postgres");
    Exec(admin.get(), "DROP DATABASE keel_it_mig_role WITH (FORCE)");
    Exec(admin.get(), "DROP ROLE keel_it_migrator");
}

/*
 * A migration that drops a view and re-creates it under the same name in the
 * same file is a replacement and applies; one that only drops it is refused
 * (rule drop-view) at the end of its transaction, and nothing of it stays
 * (issue 5: 9 of a real project's 45 refusals were such replacements).
 */
TEST(ClientMigrate, ViewReplacedInOneFileAppliesAndDroppedAloneIsRefused) {
    std::string db = ScratchDatabase("keel_it_mig_replace", true);
    TempDir dir("replace");
    dir.Write("0001_base.sql",
              "CREATE TABLE it_orders (id int, total int);\n"
              "CREATE VIEW it_totals AS SELECT id, total FROM it_orders;\n"
              "CREATE MATERIALIZED VIEW it_summary AS SELECT count(*) AS n FROM it_orders;\n");
    dir.Write("0002_replace.sql",
              "DROP VIEW it_totals;\n"
              "CREATE VIEW it_totals AS SELECT id, total, total * 2 AS doubled FROM it_orders;\n"
              "DROP MATERIALIZED VIEW it_summary;\n"
              "CREATE MATERIALIZED VIEW it_summary AS SELECT count(*) AS n, sum(total) AS s FROM "
              "it_orders;\n");
    dir.Write("0003_drop_only.sql", "CREATE TABLE it_more (id int);\nDROP VIEW it_totals;\n");
    KeelRun run = RunKeel(db, "migrate --dir " + dir.path.string());
    EXPECT_EQ(run.exit_code, 1) << run.out;
    EXPECT_TRUE(Contains(run.out, "applied 0002_replace.sql")) << run.out;
    EXPECT_TRUE(Contains(run.err, "0003_drop_only.sql")) << run.err;
    EXPECT_TRUE(Contains(run.err, "rule drop-view")) << run.err;
    EXPECT_TRUE(Contains(run.err, "KL001")) << run.err;

    auto conn = Connect("keel_it_mig_replace");
    EXPECT_EQ(HistoryStatus(conn.get(), "2"), "applied");
    EXPECT_EQ(HistoryStatus(conn.get(), "3"), "failed");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM information_schema.columns "
                                     "WHERE table_name = 'it_totals'"),
              "3");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('it_more') IS NULL"), "t");
}

/*
 * keel trash list / restore (issue 8): a column dropped by a migration under
 * -- keel:allow-destructive is listed and restored, values and all; an id
 * that is no number is one clear error, and a second restore fails.
 */
TEST(ClientTrash, ListAndRestoreAColumnDroppedByAMigration) {
    std::string db = ScratchDatabase("keel_it_trash", true);
    TempDir dir("trash");
    dir.Write("0001_users.sql",
              "CREATE TABLE it_users (id int PRIMARY KEY, bio text);\n"
              "INSERT INTO it_users SELECT g, 'bio ' || g FROM generate_series(1, 50) g;\n");
    dir.Write("0002_drop_bio.sql",
              "-- keel:allow-destructive \"bio moved to profiles (ticket 3)\"\n"
              "ALTER TABLE it_users DROP COLUMN bio;\n");
    KeelRun run = RunKeel(db, "migrate --dir " + dir.path.string());
    ASSERT_EQ(run.exit_code, 0) << run.err;

    KeelRun list = RunKeel(db, "trash list --json");
    ASSERT_EQ(list.exit_code, 0) << list.err;
    nlohmann::json entries = nlohmann::json::parse(list.out)["entries"];
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0]["kind"], "column");
    EXPECT_EQ(entries[0]["original_identity"], "public.it_users.bio");
    EXPECT_EQ(entries[0]["rows"], 50);
    EXPECT_EQ(entries[0]["reason"], "bio moved to profiles (ticket 3)");
    EXPECT_EQ(entries[0]["state"], "kept");
    std::string id = std::to_string(entries[0]["id"].get<long long>());

    KeelRun bad = RunKeel(db, "trash restore abc");
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_TRUE(Contains(bad.err, "must be a number")) << bad.err;

    KeelRun restore = RunKeel(db, "trash restore " + id);
    ASSERT_EQ(restore.exit_code, 0) << restore.err;
    EXPECT_TRUE(Contains(restore.out, "column bio of public.it_users restored")) << restore.out;
    auto conn = Connect("keel_it_trash");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM it_users WHERE bio = 'bio ' || id"),
              "50");

    KeelRun again = RunKeel(db, "trash restore " + id);
    EXPECT_EQ(again.exit_code, 1);
    EXPECT_TRUE(Contains(again.err, "already restored")) << again.err;
    KeelRun text = RunKeel(db, "trash list");
    EXPECT_TRUE(Contains(text.out, "restored")) << text.out;
}

/*
 * keel install --grant-credits / --grant-credits-admin (issue 13): PUBLIC can
 * neither read nor consume credits; the granted role can, the admin role can
 * also allocate; a missing role is one clear error.
 */
TEST(ClientInstall, GrantsCreditsToNamedRolesOnly) {
    std::string db = ScratchDatabase("keel_it_grants", false);
    auto conn = Connect("keel_it_grants");
    Exec(conn.get(), "DROP ROLE IF EXISTS keel_it_app");
    Exec(conn.get(), "DROP ROLE IF EXISTS keel_it_admin");
    Exec(conn.get(), "DROP ROLE IF EXISTS keel_it_other");
    Exec(conn.get(), "CREATE ROLE keel_it_app");
    Exec(conn.get(), "CREATE ROLE keel_it_admin");
    Exec(conn.get(), "CREATE ROLE keel_it_other");
    KeelRun run =
        RunKeel(db, "install --grant-credits keel_it_app --grant-credits-admin keel_it_admin");
    ASSERT_EQ(run.exit_code, 0) << run.err;
    EXPECT_TRUE(Contains(run.out, "granted credit use to keel_it_app")) << run.out;
    EXPECT_TRUE(Contains(run.out, "granted credit administration to keel_it_admin")) << run.out;
    auto can = [&](const std::string &role, const std::string &fn) {
        return ScalarText(conn.get(),
                          "SELECT has_function_privilege('" + role + "', '" + fn + "', 'EXECUTE')");
    };
    const std::string consume = "keel.consume_credits(uuid, text, bigint, text, text)";
    const std::string allocate = "keel.allocate_plan_credits(uuid, text, bigint)";
    EXPECT_EQ(can("keel_it_app", consume), "t");
    EXPECT_EQ(can("keel_it_app", allocate), "f");
    EXPECT_EQ(can("keel_it_admin", allocate), "t");
    EXPECT_EQ(can("keel_it_other", consume), "f");
    EXPECT_EQ(can("keel_it_other", "keel.get_available_credits(uuid, text)"), "f");
    KeelRun missing = RunKeel(db, "install --grant-credits keel_it_nobody");
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_TRUE(Contains(missing.err, "does not exist")) << missing.err;
    Exec(conn.get(), "DROP OWNED BY keel_it_app, keel_it_admin");
}

/*
 * Before anything runs (issue 12): a pending file older than the newest
 * applied one is refused unless --allow-out-of-order, and an applied file
 * that went missing stops the run.
 */
TEST(ClientMigrate, OutOfOrderAndMissingAppliedFilesAreRefused) {
    std::string db = ScratchDatabase("keel_it_mig_order", true);
    TempDir dir("order");
    dir.Write("0001_a.sql", "CREATE TABLE it_a (id int);\n");
    dir.Write("0003_c.sql", "CREATE TABLE it_c (id int);\n");
    ASSERT_EQ(RunKeel(db, "migrate --dir " + dir.path.string()).exit_code, 0);
    dir.Write("0002_b.sql", "CREATE TABLE it_b (id int);\n");
    KeelRun late = RunKeel(db, "migrate --dir " + dir.path.string());
    EXPECT_EQ(late.exit_code, 1);
    EXPECT_TRUE(Contains(late.err, "older than the newest applied version 3: 0002_b.sql"))
        << late.err;
    auto conn = Connect("keel_it_mig_order");
    EXPECT_EQ(HistoryStatus(conn.get(), "2"), "");
    KeelRun allowed = RunKeel(db, "migrate --allow-out-of-order --dir " + dir.path.string());
    EXPECT_EQ(allowed.exit_code, 0) << allowed.err;
    EXPECT_EQ(HistoryStatus(conn.get(), "2"), "applied");

    std::filesystem::remove(dir.path / "0001_a.sql");
    dir.Write("0004_d.sql", "CREATE TABLE it_d (id int);\n");
    KeelRun missing = RunKeel(db, "migrate --dir " + dir.path.string());
    EXPECT_EQ(missing.exit_code, 1);
    EXPECT_TRUE(Contains(missing.err, "missing from")) << missing.err;
    EXPECT_TRUE(Contains(missing.err, "1 (0001_a.sql)")) << missing.err;
    EXPECT_EQ(HistoryStatus(conn.get(), "4"), "");
}

/*
 * A read-only session (here default_transaction_read_only = on in the
 * conninfo; on a hot standby pg_is_in_recovery() takes the same path, run by
 * scripts/test-ha): every writing command refuses before anything runs, in
 * one line naming host:port with the target_session_attrs hint; status and
 * trash list still work and say where they are.
 */
TEST(ClientReadOnly, WritingCommandsRefuseUpFrontAndReadCommandsWork) {
    std::string db = ScratchDatabase("keel_it_read_only", true);
    std::string ro = db + " options='-c default_transaction_read_only=on'";
    TempDir dir("read_only");
    dir.Write("0001_a.sql", "CREATE TABLE it_ro (id int);\n");
    for (const std::string &cmd : {std::string("install"), "migrate --dir " + dir.path.string(),
                                   std::string("trash restore 1")}) {
        KeelRun run = RunKeel(ro, cmd);
        EXPECT_EQ(run.exit_code, 1) << cmd;
        EXPECT_TRUE(Contains(run.err, "refused: the server at ")) << cmd << ": " << run.err;
        EXPECT_TRUE(Contains(run.err, "transaction_read_only is on")) << cmd << ": " << run.err;
        EXPECT_TRUE(Contains(run.err, "target_session_attrs=read-write")) << cmd << ": " << run.err;
        EXPECT_TRUE(Contains(run.err, "nothing was run")) << cmd << ": " << run.err;
        EXPECT_EQ(std::count(run.err.begin(), run.err.end(), '\n'), 1) << run.err;
    }
    auto conn = Connect("keel_it_read_only");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.migration_history"), "0");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('it_ro') IS NULL"), "t");

    KeelRun status = RunKeel(ro, "status --dir " + dir.path.string());
    EXPECT_EQ(status.exit_code, 0) << status.err;
    EXPECT_TRUE(Contains(status.out, "[read-only session]")) << status.out;
    KeelRun json = RunKeel(ro, "status --json");
    EXPECT_TRUE(Contains(json.out, "\"server_role\": \"read-only session\"")) << json.out;
    EXPECT_TRUE(Contains(json.out, "\"standby\": false")) << json.out;
    EXPECT_EQ(RunKeel(ro, "trash list").exit_code, 0);
    KeelRun primary = RunKeel(db, "status");
    EXPECT_TRUE(Contains(primary.out, "[primary]")) << primary.out;
}

/*
 * A password in --db or DATABASE_URL never reaches keel's output, in any of
 * its forms (issue 12): libpq quotes a malformed URI whole in its error.
 */
TEST(ClientSecrets, PasswordsInConnectionStringsAreRedacted) {
    const std::vector<std::string> forms = {
        "postgresql://alice:s3cr3tpw@[bad", "postgresql://alice:s3cr%33tpw@[bad",
        "postgresql://[bad/x?password=s3cr3tpw", "host=/nonexistent port=1 password=s3cr3tpw",
        "host=/nonexistent port=1 password='s3cr3tpw'"};
    fs::path base = fs::temp_directory_path() / ("keel_it_secret_" + std::to_string(::getpid()));
    for (const std::string &form : forms) {
        for (bool env : {false, true}) {
            std::string cmd =
                env ? "DATABASE_URL=" + ShellQuote(form) + " " + KEEL_BINARY + " status"
                    : std::string(KEEL_BINARY) + " --db " + ShellQuote(form) + " status";
            int status = std::system(
                (cmd + " >" + base.string() + ".out 2>" + base.string() + ".err").c_str());
            std::string all = Slurp(base.string() + ".out") + Slurp(base.string() + ".err");
            EXPECT_NE(WEXITSTATUS(status), 0) << form;
            EXPECT_EQ(all.find("s3cr"), std::string::npos)
                << (env ? "DATABASE_URL " : "--db ") << form << ": " << all;
            EXPECT_NE(all.find("cannot connect"), std::string::npos) << all;
        }
    }
    fs::remove(base.string() + ".out");
    fs::remove(base.string() + ".err");
}

/*
 * keel validate finds what a migration can leave behind: the invalid index
 * of a failed CREATE UNIQUE INDEX CONCURRENTLY, NOT VALID constraints, rows
 * that violate them, and exits 3; a clean database exits 0 (issue 12).
 */
TEST(ClientValidate, FindsInvalidIndexesNotValidConstraintsOrphansAndCheckViolations) {
    std::string db = ScratchDatabase("keel_it_validate", true);
    EXPECT_EQ(RunKeel(db, "validate").exit_code, 0) << RunKeel(db, "validate").out;
    auto conn = Connect("keel_it_validate");
    Exec(conn.get(), "SET keel.trash = off");
    Exec(conn.get(),
         "CREATE TABLE it_parent (id int PRIMARY KEY); INSERT INTO it_parent VALUES (1)");
    Exec(conn.get(), "CREATE TABLE it_child (id int, parent_id int, qty int, code text)");
    Exec(conn.get(),
         "INSERT INTO it_child VALUES (1, 1, 1, 'a'), (2, 2, -1, 'a'), (3, NULL, 3, 'b')");
    Exec(conn.get(),
         "ALTER TABLE it_child ADD CONSTRAINT it_child_parent_fk FOREIGN KEY (parent_id) "
         "REFERENCES it_parent (id) NOT VALID");
    Exec(conn.get(),
         "ALTER TABLE it_child ADD CONSTRAINT it_child_qty_check CHECK (qty >= 0) NOT VALID");
    /* fails on the duplicate 'a' and leaves an INVALID index behind */
    PQclear(PQexec(conn.get(),
                   "CREATE UNIQUE INDEX CONCURRENTLY it_child_code_key ON it_child (code)"));
    KeelRun run = RunKeel(db, "validate");
    EXPECT_EQ(run.exit_code, 3) << run.out << run.err;
    EXPECT_TRUE(Contains(run.out, "invalid_index  it_child_code_key on it_child")) << run.out;
    EXPECT_TRUE(Contains(run.out, "not_valid_constraint  it_child_parent_fk on it_child"))
        << run.out;
    EXPECT_TRUE(Contains(run.out, "not_valid_constraint  it_child_qty_check on it_child"))
        << run.out;
    EXPECT_TRUE(Contains(run.out, "fk_orphans  it_child_parent_fk on it_child  1 row(s)"))
        << run.out;
    EXPECT_TRUE(Contains(run.out, "check_violation  it_child_qty_check on it_child  1 row(s)"))
        << run.out;
    EXPECT_TRUE(Contains(run.out, "5 problem(s) found")) << run.out;
    KeelRun json = RunKeel(db, "validate --json");
    EXPECT_EQ(json.exit_code, 3);
    EXPECT_TRUE(Contains(json.out, "\"problems\": 5")) << json.out;
    /* and the credits invariants: a tampered balance */
    Exec(conn.get(), "SELECT count(*) FROM keel.allocate_plan_credits("
                     "'00000000-0000-0000-0000-0000000000f1', 'premium')");
    Exec(conn.get(), "UPDATE keel.credit_balances SET used = 1 WHERE credit_type = 'sms'");
    KeelRun credits = RunKeel(db, "validate");
    EXPECT_TRUE(Contains(credits.out, "credits  00000000-0000-0000-0000-0000000000f1 sms"))
        << credits.out;
    EXPECT_TRUE(Contains(credits.out, "used_mismatch")) << credits.out;
}

/*
 * keel baseline VERSION: a database that existed before keel records its
 * files up to VERSION as baselined; migrate then applies only what follows
 * (issue 12).
 */
TEST(ClientMigrate, BaselineThenMigrateAppliesOnlyWhatFollows) {
    std::string db = ScratchDatabase("keel_it_baseline", true);
    auto conn = Connect("keel_it_baseline");
    Exec(conn.get(), "CREATE TABLE it_old_a (id int); CREATE TABLE it_old_b (id int)");
    TempDir dir("baseline");
    dir.Write("0001_a.sql", "CREATE TABLE it_old_a (id int);\n");
    dir.Write("0002_b.sql", "CREATE TABLE it_old_b (id int);\n");
    dir.Write("0003_c.sql", "CREATE TABLE it_new_c (id int);\n");
    KeelRun bad = RunKeel(db, "baseline x --dir " + dir.path.string());
    EXPECT_EQ(bad.exit_code, 1);
    KeelRun base = RunKeel(db, "baseline 2 --dir " + dir.path.string());
    EXPECT_EQ(base.exit_code, 0) << base.err;
    EXPECT_TRUE(Contains(base.out, "2 migration(s) baselined up to version 2")) << base.out;
    KeelRun mig = RunKeel(db, "migrate --dir " + dir.path.string());
    EXPECT_EQ(mig.exit_code, 0) << mig.err;
    EXPECT_TRUE(Contains(mig.out, "applied 0003_c.sql")) << mig.out;
    EXPECT_FALSE(Contains(mig.out, "0001_a.sql")) << mig.out;
    EXPECT_EQ(HistoryStatus(conn.get(), "1"), "baselined");
    EXPECT_EQ(HistoryStatus(conn.get(), "3"), "applied");
    EXPECT_EQ(
        ScalarText(conn.get(), "SELECT tool_version FROM keel.migration_history WHERE version = 3"),
        "keel 0.2.0");
    EXPECT_NE(ScalarText(conn.get(), "SELECT coalesce(client_host, '') FROM keel.migration_history "
                                     "WHERE version = 3"),
              "");
    KeelRun status = RunKeel(db, "status --dir " + dir.path.string());
    EXPECT_TRUE(Contains(status.out, "baselined   1  0001_a.sql")) << status.out;
    /* a second baseline is refused: the history is no longer empty */
    EXPECT_EQ(RunKeel(db, "baseline 2 --dir " + dir.path.string()).exit_code, 1);
}

/*
 * keel repair --reason: an edited applied file and a missing one stop
 * migrate; repair records them with the reason and migrate goes on.
 */
TEST(ClientMigrate, RepairRecordsEditedAndMissingFilesWithTheReason) {
    std::string db = ScratchDatabase("keel_it_repair", true);
    TempDir dir("repair");
    dir.Write("0001_a.sql", "CREATE TABLE it_rep_a (id int);\n");
    dir.Write("0002_b.sql", "CREATE TABLE it_rep_b (id int);\n");
    ASSERT_EQ(RunKeel(db, "migrate --dir " + dir.path.string()).exit_code, 0);
    dir.Write("0001_a.sql", "-- reviewed\nCREATE TABLE it_rep_a (id int);\n");
    fs::remove(dir.path / "0002_b.sql");
    dir.Write("0003_c.sql", "CREATE TABLE it_rep_c (id int);\n");
    KeelRun stopped = RunKeel(db, "migrate --dir " + dir.path.string());
    EXPECT_EQ(stopped.exit_code, 1);
    EXPECT_TRUE(Contains(stopped.err, "keel repair")) << stopped.err;
    EXPECT_EQ(RunKeel(db, "repair --dir " + dir.path.string() + " --reason ' '").exit_code, 1);
    KeelRun repair =
        RunKeel(db, "repair --dir " + dir.path.string() + " --reason 'comment added in review'");
    EXPECT_EQ(repair.exit_code, 0) << repair.err;
    EXPECT_TRUE(Contains(repair.out, "repaired 0001_a.sql: checksum")) << repair.out;
    EXPECT_TRUE(Contains(repair.out, "repaired 0002_b.sql: recorded as gone")) << repair.out;
    KeelRun again = RunKeel(db, "repair --dir " + dir.path.string() + " --reason 'again'");
    EXPECT_TRUE(Contains(again.out, "nothing to repair")) << again.out;
    KeelRun mig = RunKeel(db, "migrate --dir " + dir.path.string());
    EXPECT_EQ(mig.exit_code, 0) << mig.err;
    EXPECT_TRUE(Contains(mig.out, "applied 0003_c.sql")) << mig.out;
    auto conn = Connect("keel_it_repair");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT string_agg(reason, ',') FROM keel.migration_history "
                                     "WHERE status = 'repaired'"),
              "comment added in review,comment added in review");
    KeelRun status = RunKeel(db, "status --dir " + dir.path.string());
    EXPECT_EQ(status.exit_code, 0) << status.err;
    EXPECT_TRUE(Contains(status.out, "(repaired: comment added in review)")) << status.out;
    EXPECT_TRUE(Contains(status.out, "(repaired as gone: comment added in review)")) << status.out;
    /* the reason is read from the repaired rows only: an applied row that was never repaired
     * has no "repaired" entry */
    KeelRun json = RunKeel(db, "status --json");
    ASSERT_EQ(json.exit_code, 0) << json.err;
    nlohmann::json report = nlohmann::json::parse(json.out);
    ASSERT_EQ(report["applied"].size(), 3u) << json.out;
    EXPECT_EQ(report["applied"][0]["repaired"]["reason"], "comment added in review");
    EXPECT_EQ(report["applied"][1]["repaired"]["reason"], "comment added in review");
    EXPECT_TRUE(report["applied"][1]["repaired"]["checksum"].is_null()) << json.out;
    EXPECT_FALSE(report["applied"][2].contains("repaired")) << json.out;
}

/* A failed migration's history row has its SQLSTATE, file line and statement. */
TEST(ClientMigrate, FailureRecordsSqlstateLineAndStatement) {
    std::string db = ScratchDatabase("keel_it_fail_detail", true);
    TempDir dir("fail_detail");
    dir.Write("0001_a.sql", "CREATE TABLE it_fd (id int);\n\n\nSELECT * FROM it_missing;\n");
    EXPECT_EQ(RunKeel(db, "migrate --dir " + dir.path.string()).exit_code, 1);
    auto conn = Connect("keel_it_fail_detail");
    EXPECT_EQ(ScalarText(conn.get(),
                         "SELECT sqlstate || ' ' || error_line || ' ' || error_statement "
                         "FROM keel.migration_history WHERE status = 'failed'"),
              "42P01 4 SELECT * FROM it_missing");
}

/*
 * --lock-timeout: a migration waiting on a table another session holds
 * gives up after the timeout instead of queueing every other query behind
 * it, and is retried whole; once the lock is free it applies. Without the
 * lock ever coming free it fails with 55P03 after its retries (issue 12).
 */
TEST(ClientMigrate, LockTimeoutRetriesThenAppliesOrFails) {
    std::string db = ScratchDatabase("keel_it_lock_timeout", true);
    auto holder = Connect("keel_it_lock_timeout");
    Exec(holder.get(), "CREATE TABLE it_busy (id int)");
    TempDir dir("lock_timeout");
    dir.Write("0001_busy.sql", "ALTER TABLE it_busy ADD COLUMN note text;\n");
    /* never released: every attempt times out */
    Exec(holder.get(), "BEGIN; LOCK TABLE it_busy IN ACCESS SHARE MODE");
    KeelRun fail =
        RunKeel(db, "migrate --lock-timeout 100 --lock-retries 2 --dir " + dir.path.string());
    EXPECT_EQ(fail.exit_code, 1);
    EXPECT_TRUE(Contains(fail.err, "55P03")) << fail.err;
    EXPECT_TRUE(Contains(fail.out, "attempt 2 of 3")) << fail.out;
    Exec(holder.get(), "COMMIT");
    /* released while keel backs off: the retry applies it */
    Exec(holder.get(), "BEGIN; LOCK TABLE it_busy IN ACCESS SHARE MODE");
    std::thread release([&] {
        std::this_thread::sleep_for(std::chrono::milliseconds(400));
        PQclear(PQexec(holder.get(), "COMMIT"));
    });
    KeelRun ok =
        RunKeel(db, "migrate --lock-timeout 100 --lock-retries 5 --dir " + dir.path.string());
    release.join();
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_TRUE(Contains(ok.out, "retrying in")) << ok.out;
    EXPECT_TRUE(Contains(ok.out, "applied 0001_busy.sql")) << ok.out;
    EXPECT_EQ(HistoryStatus(holder.get(), "1"), "failed,applied");
    KeelRun quiet = RunKeel(db, "migrate --quiet --dir " + dir.path.string());
    EXPECT_EQ(quiet.exit_code, 0);
}

/* A pg_dump-style file with COPY ... FROM stdin data inline applies (issue 12). */
TEST(ClientMigrate, InlineCopyDataIsLoaded) {
    std::string db = ScratchDatabase("keel_it_copy", true);
    TempDir dir("copy");
    dir.Write("0001_data.sql", "CREATE TABLE it_copy (id int PRIMARY KEY, note text);\n"
                               "COPY public.it_copy (id, note) FROM stdin;\n"
                               "1\tfirst; with a semicolon\n"
                               "2\t\\N\n"
                               "\\.\n"
                               "CREATE INDEX it_copy_note ON it_copy (note);\n");
    dir.Write("0002_bad.sql", "COPY public.it_copy (id, note) FROM stdin;\n"
                              "3\tok\n"
                              "oops\n"
                              "\\.\n");
    KeelRun run = RunKeel(db, "migrate --dir " + dir.path.string());
    EXPECT_EQ(run.exit_code, 1);
    EXPECT_TRUE(Contains(run.out, "applied 0001_data.sql")) << run.out << run.err;
    EXPECT_TRUE(Contains(run.err, "0002_bad.sql")) << run.err;
    auto conn = Connect("keel_it_copy");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) || ' ' || count(note) FROM it_copy"), "2 1");
    EXPECT_EQ(HistoryStatus(conn.get(), "2"), "failed");
}

/*
 * A plain-format pg_dump of a database (with its "\restrict KEY" and
 * "\unrestrict KEY" lines, COPY data, a view and a function) is a migration
 * keel applies as psql would: the same rows in the new database. The files
 * after it in the same run start from the run's search_path and role, not
 * from what the dump (or a keel:no-transaction file's SET) left.
 */
TEST(ClientMigrate, APlainPgDumpAppliesAsAMigration) {
    ScratchDatabase("keel_it_dump_src", false);
    {
        auto src = Connect("keel_it_dump_src");
        Exec(src.get(), "CREATE TABLE it_dump (id int PRIMARY KEY, note text);"
                        "INSERT INTO it_dump SELECT g, 'row ' || g FROM generate_series(1, 50) g;"
                        "CREATE VIEW it_dump_v AS SELECT id FROM it_dump WHERE id > 10;"
                        "CREATE FUNCTION it_dump_f() RETURNS int LANGUAGE sql AS 'SELECT 7';");
    }
    std::string db = ScratchDatabase("keel_it_dump_dst", true);
    TempDir dir("dump");
    ASSERT_EQ(std::system(("pg_dump --no-owner -d keel_it_dump_src > " +
                           ShellQuote((dir.path / "0001_baseline.sql").string()))
                              .c_str()),
              0);
    /* the dump empties search_path for its session (set_config(..., false)); the next
     * file of the same run starts from the run's search_path and role again, and a
     * file's SET ROLE (to a role that may not write history) is undone before its
     * history row */
    dir.Write("0002_after.sql", "ALTER TABLE it_dump ADD COLUMN extra int;\n"
                                "SET ROLE pg_read_all_data;\n");
    dir.Write("0003_role.sql", "-- keel:no-transaction\nSET search_path = nowhere;\n");
    dir.Write("0004_more.sql", "CREATE TABLE it_dump_more (id int);\n");
    KeelRun run = RunKeel(db, "migrate --dir " + dir.path.string());
    ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
    auto conn = Connect("keel_it_dump_dst");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM it_dump_v"), "40");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT it_dump_f()"), "7");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(extra) FROM public.it_dump"), "0");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('public.it_dump_more') IS NOT NULL"), "t");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT string_agg(status, ',') FROM keel.migration_history"),
              "applied,applied,applied,applied");
}

/*
 * keel backup / backups / restore: a pg_dump archive with its manifest, the
 * checksum verified before a restore into a new database (issue 12).
 */
TEST(ClientBackup, BackupListRestoreIntoANewDatabaseAndRefuseADamagedArchive) {
    std::string db = ScratchDatabase("keel_it_backup", true);
    {
        auto admin = Connect("postgres");
        Exec(admin.get(), "DROP DATABASE IF EXISTS keel_it_backup_restored WITH (FORCE)");
        Exec(admin.get(), "DROP DATABASE IF EXISTS keel_it_backup_again WITH (FORCE)");
    }
    TempDir migrations("backup_migrations");
    migrations.Write("0001_t.sql", "CREATE TABLE it_bk (id int PRIMARY KEY, note text);\n"
                                   "INSERT INTO it_bk VALUES (1, 'kept');\n");
    ASSERT_EQ(RunKeel(db, "migrate --dir " + migrations.path.string()).exit_code, 0);
    TempDir dir("backups");
    KeelRun taken = RunKeel(db, "backup --backup-dir " + dir.path.string());
    ASSERT_EQ(taken.exit_code, 0) << taken.err;
    EXPECT_TRUE(Contains(taken.out, "migrations up to 1")) << taken.out;
    std::string id = taken.out.substr(7, taken.out.find(':') - 7);
    KeelRun list = RunKeel(db, "backups --json --backup-dir " + dir.path.string());
    EXPECT_TRUE(Contains(list.out, "\"id\": \"" + id + "\"")) << list.out;
    EXPECT_TRUE(Contains(list.out, "\"history_version\": \"1\"")) << list.out;
    EXPECT_TRUE(Contains(list.out, "\"sha256\"")) << list.out;

    KeelRun restored = RunKeel(
        db, "restore " + id + " --into keel_it_backup_restored --backup-dir " + dir.path.string());
    ASSERT_EQ(restored.exit_code, 0) << restored.err;
    auto copy = Connect("keel_it_backup_restored");
    EXPECT_EQ(ScalarText(copy.get(), "SELECT note FROM it_bk WHERE id = 1"), "kept");
    EXPECT_EQ(ScalarText(copy.get(), "SELECT count(*) FROM keel.migration_history WHERE status = "
                                     "'applied'"),
              "1");
    /* into an existing database: refused */
    EXPECT_EQ(RunKeel(db, "restore " + id + " --into keel_it_backup_restored --backup-dir " +
                              dir.path.string())
                  .exit_code,
              1);
    /* a damaged archive: refused before anything is created */
    std::ofstream(dir.path / (id + ".dump"), std::ios::app | std::ios::binary) << "x";
    KeelRun damaged = RunKeel(db, "restore " + id + " --into keel_it_backup_again --backup-dir " +
                                      dir.path.string());
    EXPECT_EQ(damaged.exit_code, 1);
    EXPECT_TRUE(Contains(damaged.err, "does not match its manifest")) << damaged.err;
    auto admin = Connect("postgres");
    EXPECT_EQ(ScalarText(admin.get(),
                         "SELECT count(*) FROM pg_database WHERE datname = 'keel_it_backup_again'"),
              "0");
    EXPECT_EQ(RunKeel(db, "restore nope --into x --backup-dir " + dir.path.string()).exit_code, 1);
}

/* keel migrate --backup takes a backup first when something is pending, and none otherwise. */
TEST(ClientBackup, MigrateBackupTakesOneWhenSomethingIsPending) {
    std::string db = ScratchDatabase("keel_it_migrate_backup", true);
    TempDir migrations("migrate_backup");
    migrations.Write("0001_t.sql", "CREATE TABLE it_mb (id int);\n");
    TempDir dir("migrate_backups");
    KeelRun first = RunKeel(db, "migrate --backup --backup-dir " + dir.path.string() + " --dir " +
                                    migrations.path.string());
    EXPECT_EQ(first.exit_code, 0) << first.err;
    EXPECT_TRUE(Contains(first.out, "taken before applying")) << first.out;
    KeelRun second = RunKeel(db, "migrate --backup --backup-dir " + dir.path.string() + " --dir " +
                                     migrations.path.string());
    EXPECT_FALSE(Contains(second.out, "taken before applying")) << second.out;
    int manifests = 0;
    for (const auto &e : fs::directory_iterator(dir.path))
        manifests += e.path().extension() == ".json";
    EXPECT_EQ(manifests, 1);
}

/* keel migrate --dry-run rehearses the pending files and changes nothing (issue 12). */
TEST(ClientMigrate, DryRunRehearsesAndChangesNothing) {
    std::string db = ScratchDatabase("keel_it_dry_run", true);
    TempDir dir("dry_run");
    dir.Write("0001_a.sql", "CREATE TABLE it_dry (id int);\n");
    dir.Write("0002_b.sql", "ALTER TABLE it_dry ADD COLUMN note text;\n");
    KeelRun ok = RunKeel(db, "migrate --dry-run --dir " + dir.path.string());
    EXPECT_EQ(ok.exit_code, 0) << ok.err;
    EXPECT_TRUE(Contains(ok.out, "rehearsed 0002_b.sql")) << ok.out;
    EXPECT_TRUE(Contains(ok.out, "2 migration(s) rehearsed and rolled back")) << ok.out;
    auto conn = Connect("keel_it_dry_run");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('it_dry') IS NULL"), "t");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.migration_history"), "0");
    dir.Write("0003_c.sql", "SELECT 1;\n\nALTER TABLE it_missing ADD COLUMN x int;\n");
    KeelRun bad = RunKeel(db, "migrate --dry-run --dir " + dir.path.string());
    EXPECT_EQ(bad.exit_code, 1);
    EXPECT_TRUE(Contains(bad.err, "rehearsal: 0003_c.sql:3")) << bad.err;
    EXPECT_TRUE(Contains(bad.err, "nothing was changed")) << bad.err;
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('it_dry') IS NULL"), "t");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.migration_history"), "0");
}

/* keel plan lists what migrate would apply and what blocks it, and writes nothing (issue 12). */
TEST(ClientMigrate, PlanListsPendingFilesAndBlockers) {
    std::string db = ScratchDatabase("keel_it_plan", true);
    TempDir dir("plan");
    dir.Write("0001_a.sql", "CREATE TABLE it_plan (id int);\n");
    dir.Write("0002_b.sql",
              "-- keel:no-transaction\nCREATE INDEX CONCURRENTLY it_plan_id ON it_plan (id);\n");
    KeelRun plan = RunKeel(db, "plan --dir " + dir.path.string());
    EXPECT_EQ(plan.exit_code, 0) << plan.err;
    EXPECT_TRUE(Contains(plan.out, "1. 0001_a.sql  (one transaction, 1 statement(s))")) << plan.out;
    EXPECT_TRUE(Contains(plan.out, "2. 0002_b.sql  (no transaction, 1 statement(s))")) << plan.out;
    auto conn = Connect("keel_it_plan");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM keel.migration_history"), "0");
    ASSERT_EQ(RunKeel(db, "migrate --dir " + dir.path.string()).exit_code, 0);
    dir.Write("0001_a.sql", "CREATE TABLE it_plan (id bigint);\n");
    dir.Write("0003_c.sql", "SELEC 1;\n");
    KeelRun blocked = RunKeel(db, "plan --json --dir " + dir.path.string());
    EXPECT_EQ(blocked.exit_code, 3);
    EXPECT_TRUE(Contains(blocked.out, "0001_a.sql: applied with checksum")) << blocked.out;
    EXPECT_TRUE(Contains(blocked.out, "0003_c.sql:1")) << blocked.out;
}

/* keel verify --write then --expect: the live schema against expectations (issue 12). */
TEST(ClientVerify, WritesExpectationsAndReportsEveryDifference) {
    std::string db = ScratchDatabase("keel_it_verify", true);
    auto conn = Connect("keel_it_verify");
    Exec(conn.get(), "SET keel.trash = off");
    Exec(conn.get(), "CREATE TABLE it_v (id int PRIMARY KEY, note text NOT NULL DEFAULT '', "
                     "qty int CHECK (qty >= 0))");
    Exec(conn.get(), "CREATE INDEX it_v_note ON it_v (note)");
    TempDir dir("verify");
    std::string file = (dir.path / "schema.json").string();
    KeelRun write = RunKeel(db, "verify --write " + file);
    EXPECT_EQ(write.exit_code, 0) << write.err;
    EXPECT_TRUE(Contains(write.out, "1 table(s)")) << write.out;
    KeelRun same = RunKeel(db, "verify --expect " + file);
    EXPECT_EQ(same.exit_code, 0) << same.out << same.err;
    EXPECT_TRUE(Contains(same.out, "the schema matches")) << same.out;
    Exec(conn.get(), "BEGIN; SELECT keel.allow_destructive('regress: verify sees it'); "
                     "ALTER TABLE it_v ALTER COLUMN qty TYPE bigint; DROP INDEX it_v_note; COMMIT");
    Exec(conn.get(), "ALTER TABLE it_v ADD COLUMN extra int");
    Exec(conn.get(), "CREATE TABLE it_v2 (id int)");
    KeelRun diff = RunKeel(db, "verify --expect " + file);
    EXPECT_EQ(diff.exit_code, 3);
    EXPECT_TRUE(Contains(diff.out, "different column public.it_v.qty")) << diff.out;
    EXPECT_TRUE(Contains(diff.out, "missing index public.it_v.it_v_note")) << diff.out;
    EXPECT_TRUE(Contains(diff.out, "unexpected column public.it_v.extra")) << diff.out;
    EXPECT_TRUE(Contains(diff.out, "unexpected table public.it_v2")) << diff.out;
    EXPECT_EQ(RunKeel(db, "verify --json").exit_code, 1);
}

/* keel new keeps the folder's numbering; keel rehearse is migrate --dry-run (issue 12). */
TEST(ClientMigrate, NewNumbersTheNextFileAndRehearseChangesNothing) {
    TempDir dir("new_file");
    dir.Write("0007_first.sql", "CREATE TABLE it_new_a (id int);\n");
    KeelRun made = RunKeel("dbname=postgres", "new add_notes --dir " + dir.path.string());
    EXPECT_EQ(made.exit_code, 0) << made.err;
    EXPECT_TRUE(fs::exists(dir.path / "0008_add_notes.sql")) << made.out;
    EXPECT_EQ(RunKeel("dbname=postgres", "new Bad-Slug --dir " + dir.path.string()).exit_code, 1);
    TempDir empty("new_file_empty");
    KeelRun stamp = RunKeel("dbname=postgres", "new first --dir " + empty.path.string());
    EXPECT_EQ(stamp.exit_code, 0) << stamp.err;
    EXPECT_TRUE(Contains(stamp.out, "_first.sql")) << stamp.out;

    std::string db = ScratchDatabase("keel_it_rehearse", true);
    /* the new file is only comments until it is written: refused, never recorded as applied */
    KeelRun unwritten = RunKeel(db, "rehearse --dir " + dir.path.string());
    EXPECT_EQ(unwritten.exit_code, 1);
    EXPECT_TRUE(Contains(unwritten.err, "0008_add_notes.sql: holds no SQL statement"))
        << unwritten.err;
    std::ofstream(dir.path / "0008_add_notes.sql", std::ios::app)
        << "ALTER TABLE it_new_a ADD COLUMN notes text;\n";
    KeelRun rehearsed = RunKeel(db, "rehearse --dir " + dir.path.string());
    EXPECT_EQ(rehearsed.exit_code, 0) << rehearsed.err;
    EXPECT_TRUE(Contains(rehearsed.out, "rehearsed and rolled back")) << rehearsed.out;
    auto conn = Connect("keel_it_rehearse");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('it_new_a') IS NULL"), "t");
}

/*
 * Progress (issue 12): with --progress always, stderr carries the live
 * status line (file n of N, the statement and its line, elapsed time),
 * redrawn while a statement runs and cleared at the end; stdout keeps its
 * plain lines. Not on a terminal (the default, auto) stderr stays empty,
 * and --quiet turns the line off even when asked for.
 */
TEST(ClientMigrate, ProgressLineOnlyWhenATerminalOrAskedFor) {
    std::string db = ScratchDatabase("keel_it_progress", true);
    TempDir dir("progress");
    dir.Write("0001_slow.sql", "CREATE TABLE it_pg_a (id int);\nSELECT pg_sleep(0.6);\n");
    dir.Write("0002_b.sql", "-- keel:no-transaction\nCREATE TABLE it_pg_b (id int);\n"
                            "SELECT pg_sleep(0.5);\n");
    KeelRun run = RunKeel(db, "migrate --progress always --dir " + dir.Dir());
    ASSERT_EQ(run.exit_code, 0) << run.err;
    /* 79 columns without a terminal: the statement text is shortened */
    EXPECT_TRUE(Contains(run.err, "\r[1/2] 0001_slow.sql  statements 1-2 of 2, line 1: CREATE "
                                  "TABLE"))
        << run.err;
    /* redrawn by the ticker while the 0.6 s statement runs */
    size_t draws = 0;
    for (size_t at = run.err.find("statements 1-2 of 2"); at != std::string::npos;
         at = run.err.find("statements 1-2 of 2", at + 1))
        ++draws;
    EXPECT_GE(draws, 2u) << run.err;
    EXPECT_TRUE(Contains(run.err, "\r[2/2] 0002_b.sql  statement 2 of 2, line 3: SELECT "
                                  "pg_sleep(0.5)  0."))
        << run.err;
    EXPECT_EQ(run.err.substr(run.err.size() - 4), "\r\033[K") << run.err;
    EXPECT_TRUE(Contains(run.out, "applied 0001_slow.sql (version 1, 1 of 2)")) << run.out;
    EXPECT_FALSE(Contains(run.out, "\r")) << run.out;

    dir.Write("0003_c.sql", "CREATE TABLE it_pg_c (id int);\n");
    KeelRun plain = RunKeel(db, "migrate --dir " + dir.Dir());
    ASSERT_EQ(plain.exit_code, 0) << plain.err;
    EXPECT_EQ(plain.err, "");
    EXPECT_TRUE(Contains(plain.out, "applied 0003_c.sql")) << plain.out;

    dir.Write("0004_d.sql", "CREATE TABLE it_pg_d (id int);\n");
    KeelRun quiet = RunKeel(db, "migrate --quiet --progress always --dir " + dir.Dir());
    ASSERT_EQ(quiet.exit_code, 0) << quiet.err;
    EXPECT_EQ(quiet.err, "");

    KeelRun bad = RunKeel(db, "migrate --progress sometimes --dir " + dir.Dir());
    EXPECT_EQ(bad.exit_code, 2) << bad.err;

    /* keel down draws the same line for its down files */
    dir.Write("0004_d.down.sql", "-- keel:allow-destructive \"undoes 0004 (test)\"\n"
                                 "SELECT pg_sleep(0.5);\nDROP TABLE it_pg_d;\n");
    KeelRun down = RunKeel(db, "down --progress always --dir " + dir.Dir());
    ASSERT_EQ(down.exit_code, 0) << down.err;
    EXPECT_TRUE(Contains(down.err, "\r[1/1] 0004_d.down.sql  statement 1 of 2, line 2: SELECT "
                                   "pg_sleep(0.5)"))
        << down.err;
    EXPECT_TRUE(Contains(down.out, "reverted 0004_d.sql with 0004_d.down.sql")) << down.out;
    EXPECT_FALSE(Contains(down.out, "\r")) << down.out;
}

/*
 * keel's per-file bookkeeping calls are server-side prepared statements: a
 * migration that runs DEALLOCATE ALL (or DISCARD ALL in a
 * keel:no-transaction file) drops them, and the next file, refused with
 * 26000, is rolled back and run again with them prepared anew: every file
 * applies once.
 */
TEST(ClientMigrate, DeallocateAllInAMigrationDoesNotBreakTheRun) {
    std::string db = ScratchDatabase("keel_it_dealloc", true);
    TempDir dir("dealloc");
    dir.Write("0001_a.sql", "CREATE TABLE it_da_a (id int);\n");
    dir.Write("0002_dealloc.sql", "DEALLOCATE ALL;\n");
    dir.Write("0003_b.sql", "CREATE TABLE it_da_b (id int);\n");
    dir.Write("0004_discard.sql", "-- keel:no-transaction\nDISCARD ALL;\n");
    dir.Write("0005_c.sql", "CREATE TABLE it_da_c (id int);\nINSERT INTO it_da_c VALUES (1);\n");
    KeelRun run = RunKeel(db, "migrate --dir " + dir.Dir());
    ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
    EXPECT_TRUE(Contains(run.out, "5 migration(s) applied")) << run.out;
    auto conn = Connect("keel_it_dealloc");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM it_da_c"), "1");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT string_agg(status, ',' ORDER BY version) FROM "
                                     "keel.migration_history"),
              "applied,applied,applied,applied,applied");
}

/*
 * A pipelined file's COMMIT goes at the head of the next file's pipeline
 * (CommitQueue): a deferred constraint that fails at that COMMIT fails its
 * own file (recorded, rolled back), the next file never runs, and the files
 * before stay applied; the same for the last file, whose COMMIT is sent on
 * its own at the end of the run.
 */
TEST(ClientMigrate, ACommitThatFailsFailsItsOwnFileOnly) {
    std::string db = ScratchDatabase("keel_it_commit_fail", true);
    TempDir dir("commit_fail");
    dir.Write("0001_tables.sql", "CREATE TABLE it_cf_parent (id int PRIMARY KEY);\n"
                                 "CREATE TABLE it_cf_child (parent int REFERENCES it_cf_parent "
                                 "DEFERRABLE INITIALLY DEFERRED);\n");
    dir.Write("0002_orphan.sql", "INSERT INTO it_cf_child VALUES (7);\n");
    dir.Write("0003_after.sql", "CREATE TABLE it_cf_after (id int);\n");
    KeelRun run = RunKeel(db, "migrate --dir " + dir.Dir());
    EXPECT_EQ(run.exit_code, 1) << run.out << run.err;
    EXPECT_TRUE(Contains(run.err, "0002_orphan.sql")) << run.err;
    EXPECT_TRUE(Contains(run.err, "it_cf_child")) << run.err;
    EXPECT_TRUE(Contains(run.err, "1 earlier migration")) << run.err;
    EXPECT_TRUE(Contains(run.out, "applied 0001_tables.sql")) << run.out;
    EXPECT_FALSE(Contains(run.out, "applied 0002_orphan.sql")) << run.out;
    auto conn = Connect("keel_it_commit_fail");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM it_cf_child"), "0");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT to_regclass('it_cf_after') IS NULL"), "t");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT string_agg(version || ':' || status, ',' ORDER BY "
                                     "id) FROM keel.migration_history"),
              "1:applied,2:failed");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT sqlstate FROM keel.migration_history WHERE "
                                     "version = 2"),
              "23503");

    /* fixed, and the failing file last: its COMMIT goes alone at the end */
    dir.Write("0002_orphan.sql", "INSERT INTO it_cf_parent VALUES (7);\n"
                                 "INSERT INTO it_cf_child VALUES (7);\n");
    dir.Write("0004_orphan_again.sql", "INSERT INTO it_cf_child VALUES (8);\n");
    KeelRun again = RunKeel(db, "migrate --dir " + dir.Dir());
    EXPECT_EQ(again.exit_code, 1) << again.out << again.err;
    EXPECT_TRUE(Contains(again.err, "0004_orphan_again.sql")) << again.err;
    EXPECT_TRUE(Contains(again.out, "applied 0003_after.sql")) << again.out;
    EXPECT_EQ(ScalarText(conn.get(), "SELECT string_agg(version || ':' || status, ',' ORDER BY "
                                     "id) FROM keel.migration_history"),
              "1:applied,2:failed,2:applied,3:applied,4:failed");
    EXPECT_EQ(ScalarText(conn.get(), "SELECT count(*) FROM it_cf_child"), "1");
}
