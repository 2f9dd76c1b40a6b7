/*
 * client/migrate/status.cpp
 *   keel status: the history, and the folder against it.
 */
#include "lib/commands.hpp"
#include "lib/report.hpp"
#include "lib/server_role.hpp"
#include "lib/sql_script.hpp"
#include "migrate/runner.hpp"

#include <future>

namespace keel::client {

bool Status(const Connection &conn, const std::filesystem::path &dir, bool json,
            std::ostream &out) {
    MigrationSet set;
    bool have_dir = !dir.empty();
    /* the folder is read and checksummed on a second thread while the server
     * answers (bench/migrate/status: 10,000 files) */
    std::future<MigrationSet> loading;
    if (have_dir)
        loading = std::async(std::launch::async, [&dir] { return LoadMigrationDir(dir); });
    RequireKeel(conn);
    std::vector<HistoryRow> history = ReadHistory(conn);
    if (have_dir) {
        try {
            set = loading.get();
        } catch (const std::runtime_error &e) {
            throw CommandError(e.what());
        }
    }
    Report report = Analyze(have_dir ? &set : nullptr, history);
    AddInterrupted(conn, &report);
    std::string role = Probe(conn).Label();
    if (json)
        out << ReportJson(report, conn.Target(), role).dump(2) << "\n";
    else
        PrintReport(out, report, conn.Target(), role);
    return report.RealMismatches() == 0 && report.problems.empty();
}

} // namespace keel::client
