/*
 * client/migrate/down.cpp
 *   keel down: reverts applied migrations, newest version first, by running
 *   their .down.sql files under the migration lock and the guard (see Down in
 *   lib/commands.hpp for the rules). Rule: issue 12; dbmate rollback and
 *   golang-migrate down for which versions count.
 */
#include "lib/commands.hpp"
#include "lib/report.hpp"
#include "lib/server_role.hpp"
#include "lib/sql_script.hpp"
#include "migrate/runner.hpp"

#include <iostream>

#include <sstream>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>

namespace keel::client {

namespace {

const char *kReverted = "keel.migration_reverted(numeric, text, text, timestamptz)";
const char *kLock = "keel.migration_lock()";

/* RevertTask is one version to revert: its applied entry and its prepared down file. */
struct RevertTask {
    const AppliedEntry *entry = nullptr;
    MigrationFile down;
    Script script;
};

/*
 * RequireRevertPrivileges throws CommandError unless the installed keel has
 * keel.migration_reverted (0.2.0) and the role may run it and take the
 * migration lock; the message gives the keel install line that grants them.
 */
void RequireRevertPrivileges(const Connection &conn) {
    Result res =
        conn.Exec(std::string("SELECT pg_catalog.to_regprocedure('") + kReverted +
                  "') IS NOT NULL, coalesce(pg_catalog.has_function_privilege("
                  "pg_catalog.to_regprocedure('" +
                  kReverted + "'), 'EXECUTE'), false) AND pg_catalog.has_function_privilege('" +
                  kLock + "', 'EXECUTE')");
    if (std::string(PQgetvalue(res.get(), 0, 0)) != "t")
        throw CommandError("keel down needs keel 0.2.0 or later in the server (" +
                           std::string(kReverted) + " records a revert); run keel install");
    if (std::string(PQgetvalue(res.get(), 0, 1)) != "t") {
        std::string role = PQuser(conn.get());
        throw CommandError("role \"" + role +
                           "\" may not take the migration lock or record reverts; a superuser "
                           "can grant it with keel install --grant-migrations " +
                           role + " (GRANT EXECUTE ON FUNCTION " + kLock + ", " + kReverted +
                           ", ... TO \"" + role + "\")");
    }
}

/*
 * Targets returns the applied entries to revert, newest version first:
 * those newer than options.to, else the options.steps (default 1) newest.
 * CommandError for a --to that is not a version number or --steps beyond
 * what is applied.
 */
std::vector<const AppliedEntry *> Targets(const Report &report, const DownOptions &options) {
    std::vector<const AppliedEntry *> applied;
    for (const auto &a : report.applied)
        applied.push_back(&a);
    std::sort(applied.begin(), applied.end(), [](const AppliedEntry *a, const AppliedEntry *b) {
        return CompareVersions(a->row.version, b->row.version) > 0;
    });
    if (!options.to.empty()) {
        if (options.to.find_first_not_of("0123456789") != std::string::npos)
            throw CommandError("--to must be a version number, not \"" + options.to + "\"");
        std::string to = CanonicalVersion(options.to);
        applied.erase(std::remove_if(applied.begin(), applied.end(),
                                     [&](const AppliedEntry *a) {
                                         return CompareVersions(a->row.version, to) <= 0;
                                     }),
                      applied.end());
        return applied;
    }
    size_t steps = options.steps > 0 ? static_cast<size_t>(options.steps) : 1;
    if (options.steps > 0 && steps > applied.size())
        throw CommandError("--steps " + std::to_string(steps) + ": only " +
                           std::to_string(applied.size()) +
                           " migration(s) are applied (--to 0 reverts them all); nothing reverted");
    if (applied.size() > steps)
        applied.resize(steps);
    return applied;
}

/*
 * Prepare checks every target (see Down, step 2) and returns the tasks;
 * CommandError naming every file that stands in the way, before anything
 * runs. Notes a cosmetic change of an applied file on out.
 */
std::vector<RevertTask> Prepare(const Report &report,
                                const std::vector<const AppliedEntry *> &targets,
                                const std::filesystem::path &dir, const DownOptions &options,
                                std::ostream &out) {
    std::vector<RevertTask> tasks;
    std::vector<std::string> refusals;
    for (const AppliedEntry *a : targets) {
        std::string name = a->row.name.value_or("?");
        if (a->row.status == "baselined") {
            refusals.push_back(
                "version " + a->row.version + " (" + name +
                ") is baselined: its schema existed before keel and keel never ran it, so "
                "there is nothing keel applied to revert (undo it by hand, or revert only newer "
                "versions with --to " +
                a->row.version + ")");
            continue;
        }
        if (!a->file) {
            refusals.push_back("version " + a->row.version + " (" + name +
                               ") is applied but its file is not in " + dir.string() +
                               "; its down file cannot be checked against it");
            continue;
        }
        const MigrationFile &up = *a->file;
        auto mismatch = std::find_if(report.mismatches.begin(), report.mismatches.end(),
                                     [&](const Mismatch &m) { return m.file == &up; });
        if (mismatch != report.mismatches.end()) {
            if (!mismatch->cosmetic) {
                refusals.push_back(up.file_name + ": checksum mismatch: recorded " +
                                   mismatch->recorded + ", current " + up.checksum +
                                   " (the folder is not what was applied, so its down file may "
                                   "not undo it; keel repair --reason records an intended edit)");
                continue;
            }
            if (!options.quiet)
                out << "note: " << up.file_name
                    << " changed since it was applied, but only in comments or whitespace\n";
        }
        if (!up.down_path) {
            std::string expected = up.file_name.substr(0, up.file_name.size() - 4) + ".down.sql";
            refusals.push_back(up.file_name + ": no down file " + expected +
                               " beside it, so keel down cannot revert version " + up.version);
            continue;
        }
        RevertTask task;
        task.entry = a;
        try {
            task.down = ReadDownFile(up);
            task.script = PrepareScript(task.down.contents, task.down.file_name,
                                        !task.down.directives.no_transaction);
        } catch (const std::runtime_error &e) {
            refusals.push_back(e.what());
            continue;
        }
        if (task.script.statements.empty()) {
            refusals.push_back(task.down.file_name + ": no statements; write what undoes " +
                               up.file_name +
                               " (keel down would record it reverted and change "
                               "nothing)");
            continue;
        }
        tasks.push_back(std::move(task));
    }
    if (!refusals.empty()) {
        std::string msg = std::to_string(refusals.size()) + " migration(s) cannot be reverted: ";
        for (size_t i = 0; i < refusals.size(); ++i)
            msg += (i ? "; " : "") + refusals[i];
        throw CommandError(msg + "; nothing reverted");
    }
    return tasks;
}

/*
 * RevertOne runs task's down file (Down, step 3) and returns its duration;
 * throws CommandError (Down, step 4), with nothing recorded, on failure.
 */
std::chrono::steady_clock::duration RevertOne(const Connection &conn, const RevertTask &task,
                                              int reverted_before, const DownOptions &options,
                                              const MigrateOptions &retry, std::ostream &out) {
    auto t0 = std::chrono::steady_clock::now();
    const MigrationFile &down = task.down;
    const std::string &version = down.version;
    bool transactional = !down.directives.no_transaction;
    std::string lock_timeout = "SET " + std::string(transactional ? "LOCAL " : "") +
                               "lock_timeout = " + std::to_string(options.lock_timeout_ms);
    std::string started;
    size_t line = 0;
    bool commit_sent = false;
    for (int file_attempt = 0;; ++file_attempt)
        try {
            line = 0;
            if (transactional) {
                conn.Exec("BEGIN");
                conn.Exec("SELECT keel.migration_lock()"); /* to the end of the file */
            }
            RestoreSession(conn, retry); /* as keel migrate starts each file */
            if (started.empty() || transactional)
                started = conn.Scalar("SELECT pg_catalog.clock_timestamp()");
            if (options.lock_timeout_ms > 0)
                conn.Exec(lock_timeout);
            if (down.directives.allow_destructive_reason) {
                line = down.directives.allow_destructive_line;
                conn.ExecParams("SELECT keel.allow_destructive($1)",
                                {*down.directives.allow_destructive_reason});
            }
            for (size_t i = 0; i < task.script.statements.size(); ++i) {
                const Statement &stmt = task.script.statements[i];
                line = stmt.line;
                if (retry.live)
                    retry.live->Statement(i + 1, i + 1, task.script.statements.size(), stmt.line,
                                          stmt.text);
                for (int attempt = 0;; ++attempt)
                    try {
                        RunStatement(conn, stmt);
                        if (!transactional)
                            KeepMigrationLock(conn, retry);
                        break;
                    } catch (const ServerError &e) {
                        /* autocommit: only this statement is retried */
                        if (!transactional && LockTimedOut(conn, e, retry, attempt)) {
                            Backoff(attempt, down.file_name + ":" + std::to_string(stmt.line),
                                    retry, out);
                            continue;
                        }
                        line = StatementErrorLine(down, stmt, e);
                        throw;
                    }
            }
            line = 0;
            RestoreSession(conn, retry); /* the reverted row is written as the runner */
            conn.ExecParams("SELECT keel.migration_reverted($1::numeric, $2, $3, $4::timestamptz)",
                            {version, down.file_name, down.checksum, started});
            if (transactional) {
                commit_sent = true;
                conn.Exec("COMMIT");
            } else if (options.lock_timeout_ms > 0) {
                conn.Exec("RESET lock_timeout");
            }
            break;
        } catch (const ServerError &e) {
            std::string where = down.file_name + (line ? ":" + std::to_string(line) : "");
            /* a transactional down file is retried whole: its transaction rolled back */
            if (transactional && LockTimedOut(conn, e, retry, file_attempt)) {
                PQclear(PQexec(conn.get(), "ROLLBACK"));
                Backoff(file_attempt, where, retry, out);
                continue;
            }
            std::string earlier = std::to_string(reverted_before) +
                                  " migration(s) reverted earlier in this run stay reverted";
            if (PQstatus(conn.get()) == CONNECTION_BAD) {
                std::string state =
                    !transactional ? "it runs without a transaction (keel:no-transaction), so the "
                                     "statements before this line are committed while version " +
                                         version + " is still recorded as applied"
                    : commit_sent ? "COMMIT was sent, so it may have committed together with its "
                                    "reverted row: keel status on the primary shows which"
                                  : "its transaction cannot have committed, so version " + version +
                                        " stays applied and a rerun of keel down is safe";
                throw CommandError(where + ": the connection was lost while reverting (" +
                                   e.OneLine() + "); " + state + "; " + earlier);
            }
            if (PQtransactionStatus(conn.get()) != PQTRANS_IDLE)
                PQclear(PQexec(conn.get(), "ROLLBACK"));
            if (!transactional && options.lock_timeout_ms > 0)
                PQclear(PQexec(conn.get(), "RESET lock_timeout"));
            std::string state =
                transactional
                    ? "rolled back; version " + version + " stays applied"
                    : "statements before the failing one stay committed (keel:no-transaction) "
                      "while version " +
                          version +
                          " stays recorded as applied; make the down file safe to run again "
                          "(IF EXISTS) and rerun keel down";
            throw CommandError(where + ": " + e.OneLine() + " [" + state + "; " + earlier + "]");
        }
    return std::chrono::steady_clock::now() - t0;
}

} // namespace

DownSummary Down(const Connection &conn, const std::filesystem::path &dir, std::ostream &out,
                 const DownOptions &options) {
    if (!options.to.empty() && options.steps > 0)
        throw CommandError("give --to or --steps, not both");
    if (options.steps < 0)
        throw CommandError("--steps must be 1 or more");
    MigrationSet set;
    try {
        set = LoadMigrationDir(dir);
    } catch (const std::runtime_error &e) {
        throw CommandError(e.what());
    }
    if (!set.problems.empty()) {
        std::string msg = dir.string() + ": " + std::to_string(set.problems.size()) +
                          " problem(s), nothing reverted: ";
        for (size_t i = 0; i < set.problems.size(); ++i)
            msg += (i ? "; " : "") + set.problems[i];
        throw CommandError(msg);
    }
    std::optional<MigrationLock> lock;
    if (!options.dry_run) {
        RequireWritable(conn, "down");
        RequireKeel(conn);
        RequireRevertPrivileges(conn);
        IdentifyTool(conn);
        lock.emplace(conn, options.lock_wait_seconds);
    } else {
        RequireKeel(conn);
    }

    Report report = Analyze(&set, ReadHistory(conn));
    std::vector<const AppliedEntry *> targets = Targets(report, options);
    DownSummary summary;
    if (targets.empty()) {
        if (report.applied.empty())
            out << "nothing to revert: no migration is applied\n";
        else
            out << "nothing to revert: no applied migration is newer than version "
                << CanonicalVersion(options.to) << "\n";
        return summary;
    }
    std::vector<RevertTask> tasks = Prepare(report, targets, dir, options, out);

    if (options.dry_run) {
        for (size_t i = 0; i < tasks.size(); ++i) {
            const RevertTask &t = tasks[i];
            out << "would revert " << t.entry->file->file_name << " with " << t.down.file_name
                << " (version " << t.down.version << ", " << i + 1 << " of " << tasks.size()
                << "): " << t.script.statements.size() << " statement(s), "
                << (t.down.directives.no_transaction
                        ? "keel:no-transaction, one by one"
                        : std::string("in one transaction") +
                              (t.script.unwrapped ? " (its own BEGIN/COMMIT dropped)" : ""));
            if (t.down.directives.allow_destructive_reason)
                out << ", allow-destructive \"" << *t.down.directives.allow_destructive_reason
                    << "\"";
            out << "\n";
        }
        out << tasks.size() << " migration(s) would be reverted (dry run: nothing ran)\n";
        return summary;
    }

    /* the live status line on a terminal, the run's session settings (as Migrate) */
    Progress bar(options.progress, options.quiet, std::cerr, STDERR_FILENO);
    MigrateOptions retry;
    retry.lock_timeout_ms = options.lock_timeout_ms;
    retry.lock_retries = options.lock_retries;
    retry.quiet = options.quiet;
    retry.live = bar.enabled() ? &bar : nullptr;
    RememberSession(conn, retry);
    for (size_t i = 0; i < tasks.size(); ++i) {
        const RevertTask &task = tasks[i];
        bar.File(i + 1, tasks.size(), task.down.file_name);
        std::chrono::steady_clock::duration took;
        try {
            took = RevertOne(conn, task, summary.reverted, options, retry, out);
        } catch (...) {
            bar.Clear();
            throw;
        }
        bar.Clear();
        ++summary.reverted;
        if (!options.quiet) {
            std::ostringstream line;
            line << "reverted " << task.entry->file->file_name << " with " << task.down.file_name
                 << " (version " << task.down.version << ", " << summary.reverted << " of "
                 << tasks.size() << ") in " << Ms(took) << "\n";
            Say(retry, out, line.str());
        }
    }
    /* the newest version still applied, for the summary */
    std::string newest;
    for (const auto &a : report.applied) {
        bool gone = std::any_of(tasks.begin(), tasks.end(), [&](const RevertTask &t) {
            return t.entry->row.version == a.row.version;
        });
        if (!gone && (newest.empty() || CompareVersions(a.row.version, newest) > 0))
            newest = a.row.version;
    }
    out << summary.reverted << " migration(s) reverted; "
        << (newest.empty() ? std::string("no migration is applied now")
                           : "the newest applied version is now " + newest)
        << "\n";
    return summary;
}

} // namespace keel::client
