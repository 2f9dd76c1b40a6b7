/*
 * client/migrate/plan.cpp
 *   keel plan: what migrate would do, and every blocker, read-only.
 */
#include "lib/commands.hpp"
#include "lib/report.hpp"
#include "lib/server_role.hpp"
#include "lib/sql_script.hpp"
#include "migrate/runner.hpp"

#include <nlohmann/json.hpp>

namespace keel::client {

bool Plan(const Connection &conn, const std::filesystem::path &dir, bool json, std::ostream &out) {
    MigrationSet set;
    try {
        set = LoadMigrationDir(dir);
    } catch (const std::runtime_error &e) {
        throw CommandError(e.what());
    }
    RequireKeel(conn);
    Report report = Analyze(&set, ReadHistory(conn));
    std::vector<std::string> blockers = set.problems;
    for (const auto &m : report.mismatches)
        blockers.push_back(m.file->file_name + ": applied with checksum " +
                           m.recorded.substr(0, 12) + "..., the file now has " +
                           m.file->checksum.substr(0, 12) + "... (keel repair --reason)");
    std::string newest;
    for (const auto &a : report.applied) {
        if (a.missing())
            blockers.push_back(a.row.name.value_or(a.row.version) +
                               ": applied but missing from the folder (keel repair --reason)");
        if (newest.empty() || CompareVersions(a.row.version, newest) > 0)
            newest = a.row.version;
    }
    nlohmann::json steps = nlohmann::json::array();
    for (const auto *f : report.pending) {
        nlohmann::json step = {{"version", f->version},
                               {"name", f->file_name},
                               {"transaction", !f->directives.no_transaction},
                               {"supersedes", f->directives.supersedes}};
        if (f->directives.allow_destructive_reason)
            step["allow_destructive"] = *f->directives.allow_destructive_reason;
        if (!newest.empty() && CompareVersions(f->version, newest) < 0) {
            step["out_of_order"] = true;
            blockers.push_back(f->file_name + ": older than the newest applied version " + newest +
                               " (--allow-out-of-order)");
        }
        try {
            Script script = PrepareFile(*f);
            step["statements"] = script.StatementCount();
            if (script.streamed)
                step["streamed_bytes"] = f->size;
        } catch (const std::runtime_error &e) { /* FileError, or a streamed file unreadable */
            step["error"] = e.what();
            blockers.push_back(e.what());
        }
        steps.push_back(step);
    }
    std::string role = Probe(conn).Label();
    if (json) {
        nlohmann::json supersede = nlohmann::json::array();
        for (const auto &t : report.to_supersede)
            supersede.push_back({{"version", t.version}, {"by", t.by->version}});
        out << nlohmann::json{{"database", conn.Target()},        {"server_role", role},
                              {"applied", report.applied.size()}, {"pending", steps},
                              {"to_supersede", supersede},        {"blockers", blockers}}
                   .dump(2)
            << "\n";
        return blockers.empty();
    }
    out << "database: " << conn.Target() << "  [" << role << "]\n";
    int n = 0;
    for (const auto &step : steps) {
        out << ++n << ". " << step["name"].get<std::string>() << "  ("
            << (step["transaction"].get<bool>() ? "one transaction" : "no transaction");
        if (step.contains("statements"))
            out << ", " << step["statements"].get<size_t>() << " statement(s)";
        if (step.contains("streamed_bytes"))
            out << ", streamed from disk";
        if (step.contains("allow_destructive"))
            out << ", allow-destructive";
        if (!step["supersedes"].empty())
            out << ", supersedes " << step["supersedes"].dump();
        out << ")\n";
    }
    for (const auto &t : report.to_supersede)
        out << "supersede " << t.version << " by " << t.by->version << "\n";
    for (const auto &b : blockers)
        out << "BLOCKED  " << b << "\n";
    if (steps.empty() && report.to_supersede.empty())
        out << "nothing to apply: " << report.applied.size() << " migration(s) applied\n";
    else
        out << steps.size() << " migration(s) to apply"
            << (blockers.empty() ? "" : "; keel migrate would refuse until the blockers are fixed")
            << "\n";
    return blockers.empty();
}

} // namespace keel::client
