/*
 * client/migrate/baseline.cpp
 *   keel baseline VERSION: a database older than keel.
 */
#include "lib/commands.hpp"
#include "lib/report.hpp"
#include "lib/server_role.hpp"
#include "lib/sql_script.hpp"
#include "lib/token_checksum.hpp"
#include "migrate/runner.hpp"

namespace keel::client {

void Baseline(const Connection &conn, const std::filesystem::path &dir, const std::string &version,
              std::ostream &out) {
    RequireWritable(conn, "baseline");
    if (version.empty() || version.find_first_not_of("0123456789") != std::string::npos)
        throw CommandError("baseline: VERSION must be a version number, not \"" + version + "\"");
    std::string upto = CanonicalVersion(version);
    MigrationSet set;
    try {
        set = LoadMigrationDir(dir);
    } catch (const std::runtime_error &e) {
        throw CommandError(e.what());
    }
    if (!set.problems.empty())
        throw CommandError(dir.string() + ": " + set.problems.front() + "; nothing baselined");
    RequireKeel(conn);
    if (conn.Scalar("SELECT pg_catalog.to_regprocedure('keel.migration_baselined(numeric, text, "
                    "text, text)') IS NOT NULL") != "t")
        throw CommandError("baseline: the server's keel is older than 0.2.0; run keel install");
    IdentifyTool(conn);
    MigrationLock lock(conn, 60);
    Report report = Analyze(&set, ReadHistory(conn));
    if (!report.applied.empty())
        throw CommandError("baseline: " + std::to_string(report.applied.size()) +
                           " migration(s) are already recorded as applied; a baseline is for a "
                           "database that existed before keel. Nothing baselined");
    std::vector<const MigrationFile *> files;
    for (const auto *f : report.pending)
        if (CompareVersions(f->version, upto) <= 0)
            files.push_back(f);
    if (files.empty())
        throw CommandError("baseline: no migration file in " + dir.string() +
                           " has a version up to " + upto + "; nothing baselined");
    conn.Exec("BEGIN");
    try {
        for (const auto *f : files)
            conn.ExecParams(
                "SELECT keel.migration_baselined($1::numeric, $2, $3, $4)",
                {f->version, f->file_name, f->checksum, TokenChecksum(f->contents, f->directives)});
        conn.Exec("COMMIT");
    } catch (const ServerError &e) {
        PQclear(PQexec(conn.get(), "ROLLBACK"));
        throw CommandError("baseline: " + e.OneLine() + "; nothing baselined");
    }
    for (const auto *f : files)
        out << "baselined " << f->file_name << " (version " << f->version << ")\n";
    out << files.size() << " migration(s) baselined up to version " << upto
        << "; keel migrate applies only what comes after\n";
}

} // namespace keel::client
