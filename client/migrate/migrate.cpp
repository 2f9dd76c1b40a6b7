/*
 * client/migrate/migrate.cpp
 *   keel migrate (see commands.hpp for the rules).
 */
#include "lib/commands.hpp"
#include "lib/report.hpp"
#include "lib/server_role.hpp"
#include "lib/sql_script.hpp"
#include "migrate/restore_on_failure.hpp"
#include "migrate/runner.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <sstream>

namespace keel::client {

namespace {

/*
 * RunNotices shows the server's notices and warnings during the run
 * ("0003_x.sql: WARNING:  ..." with its DETAIL and HINT lines, as psql
 * names its file; "keel: " starts only keel's own errors) on stderr through
 * the status line, which libpq's default processor would write into the
 * middle of; restores the connection's receiver when it goes.
 */
class RunNotices {
  public:
    RunNotices(const Connection &conn, Progress &bar) : conn_(conn), bar_(bar) {
        old_ = PQsetNoticeReceiver(conn.get(), &RunNotices::Receive, this);
    }
    ~RunNotices() { PQsetNoticeReceiver(conn_.get(), old_, old_arg_); }
    RunNotices(const RunNotices &) = delete;
    RunNotices &operator=(const RunNotices &) = delete;
    void File(const std::string &name) { file_ = name; }

  private:
    static void Receive(void *arg, const PGresult *res) {
        auto *self = static_cast<RunNotices *>(arg);
        std::string text = PQresultErrorMessage(res);
        if (text.empty())
            return;
        if (text.back() != '\n')
            text += '\n';
        self->bar_.Print(std::cerr, (self->file_.empty() ? "" : self->file_ + ": ") + text);
    }
    const Connection &conn_;
    Progress &bar_;
    std::string file_;
    PQnoticeReceiver old_ = nullptr;
    void *old_arg_ = nullptr;
};

} // namespace

MigrateSummary Migrate(const Connection &conn, const std::filesystem::path &dir, std::ostream &out,
                       const MigrateOptions &options) {
    bool allow_out_of_order = options.allow_out_of_order;
    MigrationSet set;
    try {
        set = LoadMigrationDir(dir);
    } catch (const std::runtime_error &e) {
        throw CommandError(e.what());
    }
    if (!set.problems.empty()) {
        std::string msg = dir.string() + ": " + std::to_string(set.problems.size()) +
                          " problem(s), nothing applied: ";
        for (size_t i = 0; i < set.problems.size(); ++i)
            msg += (i ? "; " : "") + set.problems[i];
        throw CommandError(msg);
    }
    RequireWritable(conn, "migrate");
    RequireKeel(conn);
    RequireRecordingPrivileges(conn);
    IdentifyTool(conn);
    MigrationLock lock(conn, options.lock_wait_seconds);

    Report report = Analyze(&set, ReadHistory(conn));
    ServerFeatures features = ProbeFeatures(conn);
    std::vector<const Mismatch *> real;
    for (const auto &m : report.mismatches)
        if (!m.cosmetic)
            real.push_back(&m);
        else if (!options.quiet)
            out << "note: " << m.file->file_name
                << " changed since it was applied, but only in comments or whitespace (its "
                   "token stream is the same); keel repair --reason records the new checksum\n";
    if (!real.empty()) {
        const Mismatch &m = *real.front();
        std::string msg = m.file->file_name + ": checksum mismatch: recorded " + m.recorded +
                          ", current " + m.file->checksum + " (version " + m.file->version +
                          " was applied from a different file, and not only in comments or "
                          "whitespace; applied migrations must not change)";
        if (real.size() > 1)
            msg +=
                " and " + std::to_string(real.size() - 1) + " more mismatch(es), see keel status";
        throw CommandError(msg + "; nothing applied (keel repair --reason records an intended "
                                 "edit)");
    }

    /* An applied migration whose file is gone: the folder no longer describes the database. */
    std::string missing;
    for (const auto &a : report.applied)
        if (a.missing())
            missing += (missing.empty() ? "" : ", ") + a.row.version + " (" +
                       a.row.name.value_or("?") + ")";
    if (!missing.empty())
        throw CommandError(
            "applied migration(s) missing from " + dir.string() + ": " + missing +
            "; put the file(s) back (applied migrations must stay), or record why they are gone "
            "with keel repair --reason; nothing applied");
    /* Out of order: a pending file older than the newest applied one. */
    if (!allow_out_of_order && !report.applied.empty()) {
        std::string newest;
        for (const auto &a : report.applied)
            if (newest.empty() || CompareVersions(a.row.version, newest) > 0)
                newest = a.row.version;
        std::string older;
        for (const auto *file : report.pending)
            if (CompareVersions(file->version, newest) < 0)
                older += (older.empty() ? "" : ", ") + file->file_name;
        if (!older.empty())
            throw CommandError("pending migration(s) older than the newest applied version " +
                               newest + ": " + older +
                               "; rename them after it, or pass --allow-out-of-order to apply "
                               "them anyway; nothing applied");
    }

    /* --target: nothing after it */
    if (!options.target.empty()) {
        std::string target = options.target;
        if (target.find_first_not_of("0123456789") != std::string::npos)
            throw CommandError("--target must be a version number, not \"" + target + "\"");
        target = CanonicalVersion(target);
        report.pending.erase(std::remove_if(report.pending.begin(), report.pending.end(),
                                            [&](const MigrationFile *f) {
                                                return CompareVersions(f->version, target) > 0;
                                            }),
                             report.pending.end());
    }

    /* Preflight: every pending file parses and obeys the transaction rules. */
    std::map<std::string, Script> scripts;
    for (const auto *file : report.pending) {
        try {
            Script script = PrepareFile(*file);
            RequireStatements(*file, script);
            scripts.emplace(file->version, std::move(script));
        } catch (const FileError &e) {
            throw CommandError(std::string(e.what()) + "; nothing applied");
        } catch (const std::runtime_error &e) { /* a streamed file that cannot be read */
            throw CommandError(std::string(e.what()) + "; nothing applied");
        }
    }

    if (options.dry_run)
        return Rehearse(conn, report, scripts, options, out);

    std::string backup_id, history_before = "0";
    if (!options.backup_dir.empty() && (!report.pending.empty() || !report.to_supersede.empty())) {
        backup_id = Backup(conn, options.backup_dir, out);
        if (!options.quiet)
            out << "backup " << backup_id << " taken before applying; keel restore " << backup_id
                << " --replace " << PQdb(conn.get()) << " brings it back\n";
        if (options.restore_on_failure)
            history_before = HistoryHighWater(conn);
    }

    /* the live status line on a terminal (lib/progress.hpp); lines go through Say */
    Progress bar(options.progress, options.quiet, std::cerr, STDERR_FILENO);
    MigrateOptions run = options;
    run.live = bar.enabled() ? &bar : nullptr;
    RememberSession(conn, run); /* each file starts from it (runner.hpp) */
    MigrateSummary summary;
    std::map<std::string, std::vector<const SupersedeTask *>> retire_by;
    for (const auto &task : report.to_supersede) {
        if (task.by_applied) {
            try {
                RecordSuperseded(conn, task);
            } catch (const ServerError &e) {
                throw CommandError("cannot record version " + task.version +
                                   " as superseded: " + e.OneLine());
            }
            Say(run, out, SupersededLine(task) + "\n");
            ++summary.superseded;
        } else {
            retire_by[task.by->version].push_back(&task);
        }
    }

    /* each file's report line once its COMMIT succeeded (CommitQueue, runner.hpp) */
    CommitQueue queue;
    queue.committed = [&](const MigrationFile &file,
                          const std::vector<const SupersedeTask *> &tasks,
                          std::chrono::steady_clock::duration took) {
        for (const auto *task : tasks) {
            Say(run, out, SupersededLine(*task) + "\n");
            ++summary.superseded;
        }
        if (!options.quiet) {
            std::ostringstream line;
            line << "applied " << file.file_name << " (version " << file.version << ", "
                 << summary.applied + 1 << " of " << report.pending.size() << ") in " << Ms(took)
                 << "\n";
            Say(run, out, line.str());
        }
        ++summary.applied;
    };
    auto restore = [&](const CommandError &e, const MigrationFile *file) {
        bar.Clear();
        if (!options.restore_on_failure || backup_id.empty())
            throw;
        if (queue.failed)
            file = queue.failed;
        RunFacts facts{summary.applied, summary.superseded, file, &scripts.at(file->version),
                       history_before};
        throw CommandError(
            RestoreOnFailure(conn, options.backup_dir, backup_id, e.what(), facts, out));
    };
    RunNotices notices(conn, bar);
    for (size_t position = 0; position < report.pending.size(); ++position) {
        const MigrationFile *file = report.pending[position];
        bar.File(position + 1, report.pending.size(), file->file_name);
        notices.File(file->file_name);
        try {
            ApplyOne(conn, *file, scripts.at(file->version), retire_by[file->version], queue, run,
                     features, out);
        } catch (const CommandError &e) {
            restore(e, file);
        }
        bar.Clear(); /* until the next file starts */
    }
    try {
        FlushCommit(conn, queue);
    } catch (const CommandError &e) {
        restore(e, queue.failed);
    }
    bar.Clear();
    if (summary.applied == 0 && summary.superseded == 0)
        out << "nothing to apply: " << report.applied.size()
            << " migration(s) applied, database is up to date\n";
    else
        out << summary.applied << " migration(s) applied, " << summary.superseded
            << " superseded\n";
    return summary;
}

} // namespace keel::client
