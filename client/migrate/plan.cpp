/*
 * client/migrate/plan.cpp
 *   keel plan: what migrate would do, and every blocker, read-only (a
 *   standby will do): each pending file in order with its transaction mode
 *   and its statements, each with the guard's verdict from a static check
 *   (migrate/verdicts.hpp; issue 12, "plan").
 */
#include "lib/commands.hpp"
#include "lib/report.hpp"
#include "lib/server_role.hpp"
#include "lib/sql_script.hpp"
#include "lint/lint.hpp"
#include "migrate/runner.hpp"
#include "migrate/verdicts.hpp"

#include <nlohmann/json.hpp>

#include <map>

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
    std::vector<std::string> notes;
    for (const auto &m : report.mismatches)
        if (m.cosmetic)
            notes.push_back(m.file->file_name +
                            ": only comments or whitespace changed since it was applied "
                            "(not a blocker; keel repair --reason records it)");
        else
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
    /* what migrate would run: each pending file's statements (those that parse) */
    std::map<std::string, Script> scripts;
    std::map<std::string, std::string> errors;
    for (const auto *f : report.pending) {
        try {
            Script script = PrepareFile(*f);
            RequireStatements(*f, script);
            scripts.emplace(f->version, std::move(script));
        } catch (const std::runtime_error &e) { /* FileError, or a streamed file unreadable */
            errors[f->version] = e.what();
        }
    }
    /* the guard's verdicts, statically; keel.toml sets the lint-only rules' levels */
    std::map<std::string, lint::Level> levels;
    if (std::filesystem::exists(dir / "keel.toml"))
        try {
            lint::ReadKeelToml(dir / "keel.toml", &levels);
        } catch (const lint::UsageError &e) {
            notes.push_back(std::string(e.what()) + " (lint rules at their default levels)");
            levels.clear();
        }
    std::map<std::string, FileVerdicts> verdicts =
        StaticVerdicts(report.pending, scripts, levels, ReadGuardSettings(conn));
    nlohmann::json refused = nlohmann::json::array();
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
        if (errors.count(f->version)) {
            step["error"] = errors[f->version];
            blockers.push_back(errors[f->version]);
        } else if (scripts.at(f->version).streamed) {
            /* a file above the streaming threshold: counted from disk, not linted */
            step["statement_count"] = scripts.at(f->version).StatementCount();
            step["streamed_bytes"] = f->size;
        } else {
            const FileVerdicts &fv = verdicts[f->version];
            nlohmann::json statements = nlohmann::json::array();
            for (const StatementVerdict &v : fv.statements) {
                statements.push_back({{"line", v.line},
                                      {"text", v.text},
                                      {"verdict", v.verdict},
                                      {"rules", v.rules}});
                if (!v.refused.empty())
                    refused.push_back({{"name", f->file_name},
                                       {"line", v.line},
                                       {"rules", v.refused},
                                       {"at_commit", !v.refused_later.empty()}});
            }
            step["statement_count"] = fv.statements.size();
            step["statements"] = statements;
            nlohmann::json findings = nlohmann::json::array();
            for (const lint::Finding &finding : fv.file_findings)
                findings.push_back({{"line", finding.line},
                                    {"rule", finding.rule},
                                    {"level", lint::LevelName(finding.level)},
                                    {"message", finding.message}});
            step["file_findings"] = findings;
        }
        steps.push_back(step);
    }
    std::string role = Probe(conn).Label();
    if (json) {
        nlohmann::json supersede = nlohmann::json::array();
        for (const auto &t : report.to_supersede)
            supersede.push_back({{"version", t.version}, {"by", t.by->version}});
        out << nlohmann::json{{"database", conn.Target()},
                              {"server_role", role},
                              {"applied", report.applied.size()},
                              {"pending", steps},
                              {"to_supersede", supersede},
                              {"refused", refused},
                              {"blockers", blockers},
                              {"notes", notes}}
                   .dump(2)
            << "\n";
        return blockers.empty() && refused.empty();
    }
    out << "database: " << conn.Target() << "  [" << role << "]\n";
    int n = 0;
    for (const auto &step : steps) {
        out << ++n << ". " << step["name"].get<std::string>() << "  ("
            << (step["transaction"].get<bool>() ? "one transaction" : "no transaction");
        if (step.contains("statement_count"))
            out << ", " << step["statement_count"].get<size_t>() << " statement(s)";
        if (step.contains("streamed_bytes"))
            out << ", streamed from disk";
        if (step.contains("allow_destructive"))
            out << ", allow-destructive";
        if (!step["supersedes"].empty())
            out << ", supersedes " << step["supersedes"].dump();
        out << ")\n";
        if (step.contains("statements"))
            for (const auto &v : step["statements"])
                out << "   line " << v["line"].get<size_t>() << ": " << v["text"].get<std::string>()
                    << " => " << v["verdict"].get<std::string>() << "\n";
        if (step.contains("file_findings"))
            for (const auto &finding : step["file_findings"])
                out << "   line " << finding["line"].get<size_t>() << ": "
                    << (finding["level"] == "error" ? "error" : "warning") << " ("
                    << finding["rule"].get<std::string>()
                    << "): " << finding["message"].get<std::string>() << "\n";
    }
    for (const auto &t : report.to_supersede)
        out << "supersede " << t.version << " by " << t.by->version << "\n";
    for (const auto &n : notes)
        out << "NOTE     " << n << "\n";
    for (const auto &b : blockers)
        out << "BLOCKED  " << b << "\n";
    if (steps.empty() && report.to_supersede.empty())
        out << "nothing to apply: " << report.applied.size() << " migration(s) applied\n";
    else
        out << steps.size() << " migration(s) to apply"
            << (refused.empty() ? ""
                                : "; the guard would refuse " + std::to_string(refused.size()) +
                                      " statement(s) (-- keel:allow-destructive \"reason\" lets "
                                      "a file through, docs/guard.md)")
            << (blockers.empty() ? "" : "; keel migrate would refuse until the blockers are fixed")
            << "\n";
    return blockers.empty() && refused.empty();
}

} // namespace keel::client
