/*
 * client/migrate/status.cpp
 *   keel status: the history, and the folder against it.
 */
#include "lib/commands.hpp"
#include "lib/report.hpp"
#include "lib/server_role.hpp"
#include "lib/sql_script.hpp"
#include "migrate/runner.hpp"

namespace keel::client {

bool Status(const Connection &conn, const std::filesystem::path &dir, bool json,
            std::ostream &out) {
    MigrationSet set;
    bool have_dir = !dir.empty();
    if (have_dir) {
        try {
            set = LoadMigrationDir(dir);
        } catch (const std::runtime_error &e) {
            throw CommandError(e.what());
        }
    }
    RequireKeel(conn);
    Report report = Analyze(have_dir ? &set : nullptr, ReadHistory(conn));
    AddInterrupted(conn, &report);
    std::string role = Probe(conn).Label();
    if (json)
        out << ReportJson(report, conn.Target(), role).dump(2) << "\n";
    else
        PrintReport(out, report, conn.Target(), role);
    return report.RealMismatches() == 0 && report.problems.empty();
}

} // namespace keel::client
