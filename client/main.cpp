/*
 * client/main.cpp
 *   The keel command line (CLI only; the work is in client/lib):
 *     keel [--db CONNINFO|URI] install [--grant-credits ROLE]... [--grant-credits-admin ROLE]...
 *                                      [--grant-migrations ROLE]...
 *     keel [--db ...] migrate --dir DIR [--backup [--restore-on-failure]] [...]
 *     keel [--db ...] status [--dir DIR] [--json]
 *     keel [--db ...] down --dir DIR [--to VERSION | --steps N] [--lock-wait S] [--lock-timeout MS]
 *                          [--lock-retries N] [--quiet] [--dry-run]
 *     keel [--db ...] plan --dir DIR [--json]
 *     keel new SLUG [--dir DIR] [--down]
 *     keel [--db ...] rehearse --dir DIR [--json] [--target V] [--lock-timeout MS]
 *     keel [--db ...] backup [--backup-dir DIR]
 *     keel backups [--backup-dir DIR] [--json]
 *     keel [--db ...] restore ID --into NEW_DB | --replace DATABASE [--lock-timeout MS]
 *                               [--backup-dir DIR]
 *     keel [--db ...] baseline VERSION --dir DIR
 *     keel [--db ...] repair --dir DIR --reason TEXT
 *     keel [--db ...] validate [--json]
 *     keel [--db ...] credits migrate-pool --table T [--batch N] [--quiet] [...]
 *     keel [--db ...] trash list [--json]
 *     keel [--db ...] trash restore ID [--as NAME] [--json]
 *     keel lint [FILES|DIRS...] [--format F] [--rule name=level]... [--list-rules]
 *     keel --version
 *   Connection: --db, else DATABASE_URL, else the PG* environment and service
 *   files (DESIGN.md, "Client"); keel lint needs no database. Exit codes: 0
 *   success; 1 failure (one line "keel: ..." on stderr), or keel lint found
 *   an error-level finding; 2 usage error; 3 keel status found checksum
 *   mismatches or file problems, or keel validate found a problem (report
 *   still printed).
 */
#include "lib/commands.hpp"
#include "lib/connection.hpp"
#include "lint/lint.hpp"

#include <CLI/CLI.hpp>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>

namespace {

constexpr const char *kVersion = "keel 0.2.0";

int Fail(const std::string &message) {
    std::cerr << "keel: " << message << std::endl;
    return 1;
}

/* RunLint runs keel lint; returns the exit code (0 clean, 1 error-level findings, 2 usage). */
int RunLint(const std::vector<std::string> &paths, const std::string &format_name,
            const std::vector<std::string> &rules, bool list) {
    using namespace keel::lint;
    if (list) {
        for (const RuleDescription &r : ListRules())
            std::cout << r.name << "\t" << LevelName(r.level) << "\t"
                      << (r.guard ? "guard" : "lint") << "\t" << r.summary << "\n";
        return 0;
    }
    Format format;
    if (!ParseFormat(format_name, &format)) {
        std::cerr << "keel: lint: unknown format \"" << format_name
                  << "\" (text, json, github, gcc, sarif)" << std::endl;
        return 2;
    }
    Options options;
    for (const std::string &item : rules) {
        size_t eq = item.find('=');
        Level level;
        std::string name = item.substr(0, eq);
        if (eq == std::string::npos || !ParseLevel(item.substr(eq + 1), &level)) {
            std::cerr << "keel: lint: --rule needs name=level (error, warning, off), not \"" << item
                      << "\"" << std::endl;
            return 2;
        }
        const std::vector<RuleDescription> all = ListRules();
        if (std::none_of(all.begin(), all.end(),
                         [&](const RuleDescription &r) { return r.name == name; })) {
            std::cerr << "keel: lint: unknown rule \"" << name << "\" (keel lint --list-rules)"
                      << std::endl;
            return 2;
        }
        options.levels[name] = level;
    }
    std::vector<std::filesystem::path> targets(paths.begin(), paths.end());
    if (targets.empty())
        targets.push_back("migrations");
    try {
        Report report = LintPaths(targets, options);
        WriteReport(report, format, format == Format::Text && isatty(STDOUT_FILENO), std::cout);
        return report.errors() > 0 ? 1 : 0;
    } catch (const UsageError &e) {
        std::cerr << "keel: lint: " << e.what() << std::endl;
        return 2;
    } catch (const std::exception &e) {
        std::cerr << "keel: lint: " << e.what() << std::endl;
        return 2;
    }
}

} // namespace

int main(int argc, char **argv) {
    CLI::App app{"keel: safe PostgreSQL schema changes, migration bookkeeping, exact credits",
                 "keel"};
    app.set_version_flag("--version", kVersion);
    app.require_subcommand(1);
    app.fallthrough();
    std::string db;
    app.add_option("--db", db,
                   "conninfo string or postgresql:// URI (default: DATABASE_URL, then the PG* "
                   "environment)");

    CLI::App *install = app.add_subcommand("install", "create or update the keel extension");
    std::vector<std::string> grant_credits, grant_credits_admin, grant_migrations;
    install
        ->add_option("--grant-credits", grant_credits,
                     "let ROLE read and consume credits (repeatable)")
        ->expected(1)
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    install
        ->add_option("--grant-credits-admin", grant_credits_admin,
                     "let ROLE also allocate and verify credits (repeatable)")
        ->expected(1)
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);

    install
        ->add_option("--grant-migrations", grant_migrations,
                     "let ROLE run keel migrate, baseline, repair and down (repeatable)")
        ->expected(1)
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);

    std::string migrate_dir;
    CLI::App *migrate =
        app.add_subcommand("migrate", "apply pending migrations of a folder, in version order");
    migrate->add_option("--dir", migrate_dir, "folder of <digits>_<slug>.sql files")->required();
    keel::client::MigrateOptions migrate_options;
    migrate->add_flag("--allow-out-of-order", migrate_options.allow_out_of_order,
                      "apply pending files older than the newest applied one");
    migrate->add_option("--target", migrate_options.target, "apply nothing after this version");
    migrate->add_option("--lock-wait", migrate_options.lock_wait_seconds,
                        "seconds to wait for another runner's lock (default 60)");
    migrate->add_option("--lock-timeout", migrate_options.lock_timeout_ms,
                        "milliseconds a statement may wait for a table lock before it is retried "
                        "(SET lock_timeout; default off)");
    migrate->add_option("--lock-retries", migrate_options.lock_retries,
                        "retries after a lock timeout (default 3)");
    migrate->add_flag("--quiet", migrate_options.quiet, "print only failures and the summary");
    std::string migrate_progress = "auto";
    migrate
        ->add_option("--progress", migrate_progress,
                     "live status line on stderr: file n of N, statement, elapsed time (auto: "
                     "when stderr is a terminal; always; never)")
        ->check(CLI::IsMember({"auto", "always", "never"}));
    migrate->add_flag("--dry-run", migrate_options.dry_run,
                      "rehearse: run the pending files in one transaction, then roll it back");
    bool migrate_backup = false;
    auto *backup_flag =
        migrate->add_flag("--backup", migrate_backup,
                          "pg_dump a backup first when something is pending (keel backup)");
    migrate
        ->add_flag("--restore-on-failure", migrate_options.restore_on_failure,
                   "with --backup: when a migration fails after this run committed something, "
                   "restore the backup in place (keel restore --replace)")
        ->needs(backup_flag);

    std::string down_dir;
    keel::client::DownOptions down_options;
    CLI::App *down = app.add_subcommand(
        "down", "revert the newest applied migration (or more) by running its .down.sql file");
    down->add_option("--dir", down_dir, "folder of <digits>_<slug>.sql and .down.sql files")
        ->required();
    auto *down_to = down->add_option(
        "--to", down_options.to,
        "revert every applied migration newer than VERSION, newest first (0: all)");
    down_to->type_name("VERSION");
    down->add_option("--steps", down_options.steps,
                     "revert the N newest applied migrations (default 1)")
        ->type_name("N")
        ->check(CLI::PositiveNumber)
        ->excludes(down_to);
    down->add_option("--lock-wait", down_options.lock_wait_seconds,
                     "seconds to wait for another runner's lock (default 60)");
    down->add_option("--lock-timeout", down_options.lock_timeout_ms,
                     "milliseconds a statement may wait for a table lock before it is retried "
                     "(SET lock_timeout; default off)");
    down->add_option("--lock-retries", down_options.lock_retries,
                     "retries after a lock timeout (default 3)");
    down->add_flag("--quiet", down_options.quiet, "print only failures and the summary");
    std::string down_progress = "auto";
    down->add_option("--progress", down_progress,
                     "live status line on stderr: file n of N, statement, elapsed time (auto: "
                     "when stderr is a terminal; always; never)")
        ->check(CLI::IsMember({"auto", "always", "never"}));
    down->add_flag("--dry-run", down_options.dry_run,
                   "check everything and print what would run; run nothing");

    std::string status_dir;
    bool status_json = false;
    CLI::App *status = app.add_subcommand("status", "applied, pending, failed, superseded");
    status->add_option("--dir", status_dir, "folder to compare with the history");
    status->add_flag("--json", status_json, "print a JSON report");

    bool trash_json = false;
    std::string trash_id, trash_as;
    CLI::App *trash = app.add_subcommand("trash", "keel's recycle bin: list and restore");
    trash->require_subcommand(1);
    CLI::App *trash_list = trash->add_subcommand("list", "what the recycle bin keeps");
    trash_list->add_flag("--json", trash_json, "print a JSON report");
    CLI::App *trash_restore = trash->add_subcommand("restore", "put an entry back");
    trash_restore->add_option("id", trash_id, "entry id (keel trash list)")->required();
    trash_restore->add_option("--as", trash_as, "restore under this name");
    trash_restore->add_flag("--json", trash_json, "print a JSON report");

    const char *backup_env = std::getenv("KEEL_BACKUP_DIR");
    std::string backup_dir = backup_env && *backup_env ? backup_env : "keel-backups";
    migrate->add_option("--backup-dir", backup_dir, "folder for --backup (default keel-backups)");
    std::string restore_id, restore_into;
    bool backups_json = false;
    CLI::App *backup = app.add_subcommand("backup", "pg_dump the database into a backup folder");
    backup->add_option("--backup-dir", backup_dir,
                       "folder of backups (default $KEEL_BACKUP_DIR, else keel-backups)");
    CLI::App *backups = app.add_subcommand("backups", "list the backups of a folder (no database)");
    backups->add_option("--backup-dir", backup_dir, "folder of backups");
    backups->add_flag("--json", backups_json, "print a JSON report");
    CLI::App *restore = app.add_subcommand(
        "restore", "verify a backup's checksum, then restore it into a new database (--into) or "
                   "replace the current database's contents with it (--replace)");
    restore->add_option("id", restore_id, "backup id (keel backups)")->required();
    keel::client::RestoreInPlaceOptions replace_options;
    auto *into_opt =
        restore->add_option("--into", restore_into, "new database to create and restore into");
    auto *replace_opt = restore->add_option(
        "--replace", replace_options.confirm_database,
        "replace the contents of the database --db connects to, which you name here to "
        "confirm (superuser; one transaction; keeps keel, its audit and credits)");
    into_opt->excludes(replace_opt);
    restore->add_option("--lock-timeout", replace_options.lock_timeout_ms,
                        "with --replace: milliseconds to wait for a table lock another session "
                        "holds before giving up, changing nothing (default 10000)");
    restore->add_option("--backup-dir", backup_dir,
                        "folder of backups (default $KEEL_BACKUP_DIR, else keel-backups)");

    std::string baseline_dir, baseline_version, repair_dir, repair_reason;
    CLI::App *baseline = app.add_subcommand(
        "baseline",
        "record the files up to VERSION as already applied (a database older than keel)");
    baseline->add_option("version", baseline_version, "the last version the database holds")
        ->required();
    baseline->add_option("--dir", baseline_dir, "folder of <digits>_<slug>.sql files")->required();
    CLI::App *repair = app.add_subcommand(
        "repair", "re-record edited or missing applied files, with a reason, so migrate goes on");
    repair->add_option("--dir", repair_dir, "folder of <digits>_<slug>.sql files")->required();
    repair->add_option("--reason", repair_reason, "why they changed or went away (recorded)")
        ->required();

    std::string new_dir = "migrations", new_slug, rehearse_dir;
    CLI::App *new_cmd = app.add_subcommand("new", "create the next migration file (no database)");
    new_cmd->add_option("slug", new_slug, "what it does, e.g. add_users_email")->required();
    new_cmd->add_option("--dir", new_dir, "migrations folder (default migrations)");
    bool new_down = false;
    new_cmd->add_flag("--down", new_down,
                      "also create <version>_<slug>.down.sql beside it (keel down runs it)");
    CLI::App *rehearse = app.add_subcommand(
        "rehearse",
        "run the pending files in one transaction, then roll it back (migrate --dry-run)");
    rehearse->add_option("--dir", rehearse_dir, "folder of <digits>_<slug>.sql files")->required();
    keel::client::MigrateOptions rehearse_options;
    rehearse_options.dry_run = true;
    rehearse->add_flag("--json", rehearse_options.json, "print a JSON report");
    rehearse->add_option("--target", rehearse_options.target,
                         "rehearse nothing after this version");
    rehearse->add_flag("--allow-out-of-order", rehearse_options.allow_out_of_order,
                       "rehearse pending files older than the newest applied one");
    rehearse->add_option("--lock-timeout", rehearse_options.lock_timeout_ms,
                         "milliseconds a statement may wait for a lock before it fails "
                         "(SET LOCAL lock_timeout; default off)");
    rehearse->add_option("--lock-wait", rehearse_options.lock_wait_seconds,
                         "seconds to wait for another runner's lock (default 60)");

    std::string plan_dir;
    bool plan_json = false;
    CLI::App *plan =
        app.add_subcommand("plan", "what keel migrate would apply, and what blocks it");
    plan->add_option("--dir", plan_dir, "folder of <digits>_<slug>.sql files")->required();
    plan->add_flag("--json", plan_json, "print a JSON report");

    std::string verify_expect, verify_write;
    bool verify_json = false;
    CLI::App *verify = app.add_subcommand(
        "verify", "compare the live schema with expectations (--expect) or write them (--write)");
    auto *expect_opt = verify->add_option("--expect", verify_expect, "expectations file to check");
    auto *write_opt = verify->add_option("--write", verify_write, "write the expectations here");
    expect_opt->excludes(write_opt);
    verify->require_option(1, 2);
    verify->add_flag("--json", verify_json, "print a JSON report");

    bool validate_json = false;
    CLI::App *validate = app.add_subcommand(
        "validate",
        "check data integrity: invalid indexes, NOT VALID constraints, orphans, CHECKs, "
        "credits");
    validate->add_flag("--json", validate_json, "print a JSON report");

    keel::client::PoolOptions pool;
    CLI::App *credits = app.add_subcommand("credits", "credit administration");
    credits->require_subcommand(1);
    CLI::App *migrate_pool = credits->add_subcommand(
        "migrate-pool", "move a unified total_credits column into per-type credits by plan");
    migrate_pool->add_option("--table", pool.table, "table holding the unified pool")->required();
    migrate_pool->add_option("--name", pool.name, "progress name (default: the table)");
    migrate_pool->add_option("--id-column", pool.id_column, "uuid account column (default id)");
    migrate_pool->add_option("--plan-column", pool.plan_column,
                             "plan name column (default plan_name)");
    migrate_pool->add_option("--total-column", pool.total_column,
                             "unified credits column (default total_credits)");
    migrate_pool->add_option("--batch", pool.batch, "rows per transaction (default 1000)");
    migrate_pool->add_flag("--quiet", pool.quiet, "print only the final line");

    std::vector<std::string> lint_paths, lint_rules;
    std::string lint_format = "text";
    bool lint_list = false;
    CLI::App *lint = app.add_subcommand(
        "lint", "check migration files for destructive and lock-heavy statements (no database)");
    lint->add_option("paths", lint_paths, "files and folders (default: migrations)");
    lint->add_option("--format", lint_format, "text (default), json, github, gcc or sarif");
    lint->add_option("--rule", lint_rules, "name=level (error, warning, off); repeatable")
        ->expected(1)
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
    lint->add_flag("--list-rules", lint_list, "print every rule with its default level");

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success &e) {
        return app.exit(e);
    } catch (const CLI::ParseError &e) {
        /* name an unknown command rather than "a subcommand is required" */
        for (int i = 1; i < argc; ++i) {
            std::string arg = argv[i];
            if (arg == "--db") {
                ++i;
                continue;
            }
            if (arg.rfind("-", 0) == 0)
                continue;
            bool known = false;
            for (const CLI::App *sub : app.get_subcommands({}))
                known = known || sub->check_name(arg);
            if (!known) {
                std::cerr << "keel: unknown command \"" << arg
                          << "\" (keel --help lists the commands)" << std::endl;
                return 2;
            }
            break;
        }
        app.exit(e);
        return 2;
    }

    if (*restore && restore_into.empty() && replace_options.confirm_database.empty()) {
        std::cerr << "keel: restore: pass --into NEW_DB (a new database) or --replace DATABASE "
                     "(replace the contents of the database --db connects to, named to confirm)"
                  << std::endl;
        return 2;
    }
    if (*lint)
        return RunLint(lint_paths, lint_format, lint_rules, lint_list);
    if (*new_cmd) {
        try {
            keel::client::NewMigration(new_dir, new_slug, std::cout, new_down);
            return 0;
        } catch (const std::exception &e) {
            return Fail(e.what());
        }
    }
    if (*backups) {
        try {
            keel::client::Backups(backup_dir, backups_json, std::cout);
            return 0;
        } catch (const std::exception &e) {
            return Fail(e.what());
        }
    }

    try {
        keel::client::Connection conn = keel::client::Connection::Open(db);
        if (*install) {
            keel::client::Install(conn, std::cout);
            keel::client::GrantCredits(conn, grant_credits, false, std::cout);
            keel::client::GrantCredits(conn, grant_credits_admin, true, std::cout);
            keel::client::GrantMigrations(conn, grant_migrations, std::cout);
        } else if (*migrate) {
            if (migrate_backup)
                migrate_options.backup_dir = backup_dir;
            migrate_options.progress = keel::client::ParseProgressMode(migrate_progress);
            keel::client::Migrate(conn, migrate_dir, std::cout, migrate_options);
        } else if (*down) {
            down_options.progress = keel::client::ParseProgressMode(down_progress);
            keel::client::Down(conn, down_dir, std::cout, down_options);
        } else if (*backup) {
            keel::client::Backup(conn, backup_dir, std::cout);
        } else if (*restore) {
            if (!replace_options.confirm_database.empty())
                keel::client::RestoreInPlace(conn, backup_dir, restore_id, replace_options,
                                             std::cout);
            else
                keel::client::Restore(conn, backup_dir, restore_id, restore_into, std::cout);
        } else if (*baseline) {
            keel::client::Baseline(conn, baseline_dir, baseline_version, std::cout);
        } else if (*repair) {
            keel::client::Repair(conn, repair_dir, repair_reason, std::cout);
        } else if (*rehearse) {
            keel::client::Migrate(conn, rehearse_dir, std::cout, rehearse_options);
        } else if (*plan) {
            if (!keel::client::Plan(conn, plan_dir, plan_json, std::cout)) {
                std::cerr << "keel: plan: keel migrate would refuse (see report)" << std::endl;
                return 3;
            }
        } else if (*verify) {
            if (!keel::client::Verify(conn, verify_expect, verify_write, verify_json, std::cout)) {
                std::cerr << "keel: verify: the schema differs from " << verify_expect
                          << " (see report)" << std::endl;
                return 3;
            }
        } else if (*validate) {
            if (!keel::client::Validate(conn, validate_json, std::cout)) {
                std::cerr << "keel: validate: problems found (see report)" << std::endl;
                return 3;
            }
        } else if (*migrate_pool) {
            keel::client::MigratePool(conn, pool, std::cout);
        } else if (*trash_list) {
            keel::client::TrashList(conn, trash_json, std::cout);
        } else if (*trash_restore) {
            keel::client::TrashRestore(conn, trash_id, trash_as, trash_json, std::cout);
        } else if (*status) {
            if (!keel::client::Status(conn, status_dir, status_json, std::cout)) {
                std::cerr << "keel: status: checksum mismatches or file problems found (see "
                             "report)"
                          << std::endl;
                return 3;
            }
        }
    } catch (const keel::client::ServerError &e) {
        return Fail(e.OneLine());
    } catch (const std::exception &e) {
        return Fail(e.what());
    }
    return 0;
}
