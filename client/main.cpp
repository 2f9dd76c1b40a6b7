/*
 * client/main.cpp
 *   The keel command line (CLI only; the work is in client/lib):
 *     keel [--db CONNINFO|URI] install
 *     keel [--db ...] migrate --dir DIR
 *     keel [--db ...] status [--dir DIR] [--json]
 *     keel --version
 *   Connection: --db, else DATABASE_URL, else the PG* environment and service
 *   files (DESIGN.md, "Client"). Exit codes: 0 success; 1 failure (one line
 *   "keel: ..." on stderr); 2 usage error; 3 keel status found checksum
 *   mismatches or file problems (report still printed).
 */
#include "lib/commands.hpp"
#include "lib/connection.hpp"

#include <CLI/CLI.hpp>

#include <iostream>

namespace {

constexpr const char *kVersion = "keel 0.2.0";

int Fail(const std::string &message) {
    std::cerr << "keel: " << message << std::endl;
    return 1;
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

    std::string migrate_dir;
    CLI::App *migrate =
        app.add_subcommand("migrate", "apply pending migrations of a folder, in version order");
    migrate->add_option("--dir", migrate_dir, "folder of <digits>_<slug>.sql files")->required();

    std::string status_dir;
    bool status_json = false;
    CLI::App *status = app.add_subcommand("status", "applied, pending, failed, superseded");
    status->add_option("--dir", status_dir, "folder to compare with the history");
    status->add_flag("--json", status_json, "print a JSON report");

    try {
        app.parse(argc, argv);
    } catch (const CLI::Success &e) {
        return app.exit(e);
    } catch (const CLI::ParseError &e) {
        app.exit(e);
        return 2;
    }

    try {
        keel::client::Connection conn = keel::client::Connection::Open(db);
        if (*install) {
            keel::client::Install(conn, std::cout);
        } else if (*migrate) {
            keel::client::Migrate(conn, migrate_dir, std::cout);
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
