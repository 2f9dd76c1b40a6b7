/*
 * client/migrate/repair.cpp
 *   keel repair --reason: re-record edited or missing applied files.
 */
#include "lib/commands.hpp"
#include "lib/report.hpp"
#include "lib/server_role.hpp"
#include "lib/sql_script.hpp"
#include "lib/token_checksum.hpp"
#include "migrate/runner.hpp"

namespace keel::client {

void Repair(const Connection &conn, const std::filesystem::path &dir, const std::string &reason,
            std::ostream &out) {
    RequireWritable(conn, "repair");
    if (reason.find_first_not_of(" \t\r\n") == std::string::npos)
        throw CommandError("repair: --reason must say why the applied files changed or went away");
    MigrationSet set;
    try {
        set = LoadMigrationDir(dir);
    } catch (const std::runtime_error &e) {
        throw CommandError(e.what());
    }
    RequireKeel(conn);
    if (conn.Scalar("SELECT pg_catalog.to_regprocedure('keel.migration_repaired(numeric, text, "
                    "text, text, text)') IS NOT NULL") != "t")
        throw CommandError("repair: the server's keel is older than 0.2.0; run keel install");
    IdentifyTool(conn);
    MigrationLock lock(conn, 60);
    Report report = Analyze(&set, ReadHistory(conn));
    int repaired = 0;
    conn.Exec("BEGIN");
    try {
        for (const auto &m : report.mismatches) {
            conn.ExecParams("SELECT keel.migration_repaired($1::numeric, $2, $3, $4, $5)",
                            {m.file->version, m.file->file_name, m.file->checksum, reason,
                             TokenChecksum(m.file->contents, m.file->directives)});
            out << "repaired " << m.file->file_name << ": checksum " << m.recorded.substr(0, 12)
                << "... -> " << m.file->checksum.substr(0, 12) << "..."
                << (m.cosmetic ? " (comments or whitespace only)" : "") << "\n";
            ++repaired;
        }
        for (const auto &a : report.applied)
            if (a.missing()) {
                conn.ExecParams("SELECT keel.migration_repaired($1::numeric, NULL, NULL, $2)",
                                {a.row.version, reason});
                out << "repaired " << a.row.name.value_or(a.row.version)
                    << ": recorded as gone from the folder\n";
                ++repaired;
            }
        conn.Exec("COMMIT");
    } catch (const ServerError &e) {
        PQclear(PQexec(conn.get(), "ROLLBACK"));
        throw CommandError("repair: " + e.OneLine() + "; nothing repaired");
    }
    if (repaired == 0)
        out << "nothing to repair: every applied migration's file is present and unchanged\n";
    else
        out << repaired << " migration(s) repaired, reason: " << reason << "\n";
}

} // namespace keel::client
