/*
 * client/migrate/rehearse.cpp
 *   keel rehearse (= migrate --dry-run): the pending files in one rolled-back transaction.
 */
#include "lib/commands.hpp"
#include "lib/report.hpp"
#include "lib/server_role.hpp"
#include "lib/sql_script.hpp"
#include "migrate/runner.hpp"

#include <chrono>
#include <map>

namespace keel::client {

/*
 * Rehearse runs every pending transactional file, in order, inside one
 * transaction that is then rolled back: what would fail fails here, and
 * nothing changes. A keel:no-transaction file cannot be rehearsed (its
 * statements refuse a transaction block) and is listed as skipped; the
 * files after it still run against a database that lacks its change.
 */
MigrateSummary Rehearse(const Connection &conn, const Report &report,
                        const std::map<std::string, Script> &scripts, std::ostream &out) {
    MigrateSummary summary;
    conn.Exec("BEGIN");
    for (const auto *file : report.pending) {
        if (file->directives.no_transaction) {
            out << "skipped   " << file->file_name
                << " (keel:no-transaction: cannot run in the rehearsal's transaction)\n";
            continue;
        }
        const Script &script = scripts.at(file->version);
        auto t0 = std::chrono::steady_clock::now();
        conn.Exec("SAVEPOINT keel_rehearsal");
        try {
            if (file->directives.allow_destructive_reason)
                conn.ExecParams("SELECT keel.allow_destructive($1)",
                                {*file->directives.allow_destructive_reason});
            if (script.streamed) { /* a file above the streaming threshold: apply_streamed.cpp */
                StreamedPlace place;
                try {
                    RunStreamed(conn, *file, script, true, nullptr, out, place);
                } catch (const ServerError &e) {
                    PQclear(PQexec(conn.get(), "ROLLBACK"));
                    throw CommandError(
                        "rehearsal: " + file->file_name +
                        (place.line ? ":" + std::to_string(place.line) : std::string()) + ": " +
                        e.OneLine() + " [" + std::to_string(summary.applied) +
                        " file(s) rehearsed before it; nothing was changed]");
                }
            }
            for (const auto &stmt : script.statements) {
                try {
                    if (stmt.has_copy_data)
                        conn.CopyIn(stmt.text, stmt.copy_data);
                    else
                        conn.Exec(stmt.text);
                } catch (const ServerError &e) {
                    size_t line = stmt.line;
                    if (e.position > 0)
                        line = LineAt(file->contents,
                                      stmt.offset + CharPositionToOffset(stmt.text, e.position));
                    PQclear(PQexec(conn.get(), "ROLLBACK"));
                    throw CommandError("rehearsal: " + file->file_name + ":" +
                                       std::to_string(line) + ": " + e.OneLine() + " [" +
                                       std::to_string(summary.applied) +
                                       " file(s) rehearsed before it; nothing was changed]");
                }
            }
        } catch (const ServerError &e) {
            PQclear(PQexec(conn.get(), "ROLLBACK"));
            throw CommandError("rehearsal: " + file->file_name + ": " + e.OneLine() +
                               " [nothing was changed]");
        }
        conn.Exec("RELEASE SAVEPOINT keel_rehearsal");
        out << "rehearsed " << file->file_name << " (version " << file->version << ") in "
            << Ms(std::chrono::steady_clock::now() - t0) << "\n";
        ++summary.applied;
    }
    conn.Exec("ROLLBACK");
    out << summary.applied << " migration(s) rehearsed and rolled back; nothing was changed\n";
    return summary;
}

} // namespace keel::client
