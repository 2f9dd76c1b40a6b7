/*
 * client/lib/migrate.cpp
 *   keel migrate and keel status (see commands.hpp for the rules).
 */
#include "lib/commands.hpp"
#include "lib/report.hpp"
#include "lib/server_role.hpp"

#include <nlohmann/json.hpp>
#include "lib/sql_script.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <cstdio>
#include <map>

namespace keel::client {

namespace {

const char *kApplied = "keel.migration_applied(numeric, text, text, timestamptz)";
const char *kFailed = "keel.migration_failed(numeric, text, text, timestamptz, text)";
const char *kSuperseded = "keel.migration_superseded(numeric, text, text, numeric)";

std::string Ms(std::chrono::steady_clock::duration d) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.1f ms", std::chrono::duration<double, std::milli>(d).count());
    return buf;
}

/* RequireKeel throws CommandError unless the keel extension is installed. */
void RequireKeel(const Connection &conn) {
    Result res = conn.Exec("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'keel'");
    if (PQntuples(res.get()) == 0)
        throw CommandError(std::string("keel is not installed in database \"") + PQdb(conn.get()) +
                           "\"; run keel install first");
}

/* RequireRecordingPrivileges throws CommandError unless the role may write history. */
void RequireRecordingPrivileges(const Connection &conn) {
    std::string ok =
        conn.Scalar(std::string("SELECT has_function_privilege('") + kApplied +
                    "', 'EXECUTE') AND has_function_privilege('" + kFailed +
                    "', 'EXECUTE') AND has_function_privilege('" + kSuperseded + "', 'EXECUTE')");
    if (ok != "t") {
        std::string role = PQuser(conn.get());
        throw CommandError("role \"" + role +
                           "\" may not record migrations; a superuser can grant it: GRANT EXECUTE "
                           "ON FUNCTION " +
                           kApplied + ", " + kFailed + ", " + kSuperseded + " TO \"" + role + "\"");
    }
}

/*
 * MigrationLock holds keel.migration_lock() for its lifetime. It retries every
 * 200 ms for up to wait_seconds (keel.migration_lock() only tries the lock,
 * so nothing ever queues behind it: a CREATE INDEX CONCURRENTLY of another
 * session cannot deadlock on it); then the KL004 error names the holder.
 */
class MigrationLock {
  public:
    MigrationLock(const Connection &conn, int wait_seconds) : conn_(conn) {
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
        while (true) {
            try {
                conn_.Exec("SELECT keel.migration_lock()");
                return;
            } catch (const ServerError &e) {
                if (e.sqlstate != "KL004" || std::chrono::steady_clock::now() >= deadline)
                    throw CommandError(
                        e.OneLine() +
                        (e.sqlstate == "KL004"
                             ? " (waited " + std::to_string(wait_seconds) + " s; --lock-wait)"
                             : std::string()));
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(200));
        }
    }
    ~MigrationLock() {
        PGresult *res = PQexec(conn_.get(), "SELECT keel.migration_unlock()");
        PQclear(res);
    }
    MigrationLock(const MigrationLock &) = delete;
    MigrationLock &operator=(const MigrationLock &) = delete;

  private:
    const Connection &conn_;
};

/*
 * IdentifyTool sets keel.client_host (this machine's name) and
 * keel.tool_version for the session; keel.migration_history records them on
 * every row it writes. A server whose keel.so predates them refuses the
 * names; the history then records NULL.
 */
void IdentifyTool(const Connection &conn) {
    char host[256] = {0};
    if (gethostname(host, sizeof host - 1) != 0)
        host[0] = '\0';
    const char *values[1] = {host};
    PGresult *res = PQexecParams(conn.get(),
                                 "SELECT pg_catalog.set_config('keel.client_host', $1, false), "
                                 "pg_catalog.set_config('keel.tool_version', 'keel 0.2.0', false)",
                                 1, nullptr, values, nullptr, nullptr, 0);
    PQclear(res);
}

void RecordSuperseded(const Connection &conn, const SupersedeTask &task) {
    conn.ExecParams("SELECT keel.migration_superseded($1::numeric, $2, $3, $4::numeric)",
                    {task.version,
                     task.file ? std::optional<std::string>(task.file->file_name) : std::nullopt,
                     task.file ? std::optional<std::string>(task.file->checksum) : std::nullopt,
                     task.by->version});
}

std::string SupersededLine(const SupersedeTask &task) {
    return "superseded " + task.version + " " +
           (task.file ? task.file->file_name : std::string("(no file)")) + " by " +
           task.by->version + " " + task.by->file_name + "; it will never be applied";
}

/* Trimmed is s without leading and trailing white space. */
std::string Trimmed(const std::string &s) {
    size_t b = s.find_first_not_of(" \t\r\n");
    if (b == std::string::npos)
        return "";
    size_t e = s.find_last_not_of(" \t\r\n");
    return s.substr(b, e - b + 1);
}

/*
 * DetailedFailures: keel 0.2.0's migration_failed with SQLSTATE, line and
 * statement exists and the role may run it (a server still at 0.1.0 has only
 * the 5-argument form; a role granted only that one uses it).
 */
bool DetailedFailures(const Connection &conn) {
    return conn.Scalar("SELECT coalesce(pg_catalog.has_function_privilege("
                       "pg_catalog.to_regprocedure('keel.migration_failed(numeric, text, text, "
                       "timestamptz, text, text, integer, text)'), 'EXECUTE'), false)") == "t";
}

/* ErrorText is what keel.migration_failed records: "file:line: message\nDETAIL: ...\nHINT: ...". */
std::string ErrorText(const std::string &where, const ServerError &e) {
    std::string text = where + ": " + e.message;
    if (!e.sqlstate.empty())
        text += " (SQLSTATE " + e.sqlstate + ")";
    if (!e.detail.empty())
        text += "\nDETAIL: " + e.detail;
    if (!e.hint.empty())
        text += "\nHINT: " + e.hint;
    return text;
}

/*
 * LostConnection is the CommandError for a connection that dropped while a
 * migration ran (a failover, a server crash or restart): which file and
 * line, whether its transaction can have committed, and how to go on. A
 * transactional file's history row commits in its own transaction, so the
 * history says exactly whether it is applied and a rerun is safe.
 */
CommandError LostConnection(const std::string &where, const ServerError &e, bool transactional,
                            bool commit_sent, int applied_before) {
    std::string state;
    if (!transactional)
        state = "it runs without a transaction (keel:no-transaction), so the statements before "
                "this line may be committed while it is not recorded as applied; check them "
                "before you rerun, as a rerun runs the whole file again";
    else if (commit_sent)
        state = "COMMIT was sent, so it may have committed together with its history row: "
                "keel status on the primary shows which; a rerun of keel migrate is safe either "
                "way";
    else
        state = "its transaction cannot have committed, so nothing of it is applied; a rerun of "
                "keel migrate is safe";
    return CommandError(where + ": the connection was lost while applying it (" + e.OneLine() +
                        "); " + state + "; " + std::to_string(applied_before) +
                        " earlier migration(s) of this run are applied and recorded. HINT: with "
                        "a multi-host conninfo, add target_session_attrs=read-write so the rerun "
                        "finds the new primary");
}

/*
 * ApplyOne runs one migration (see Migrate in commands.hpp) and returns its
 * duration; throws CommandError after recording a failure.
 */
/*
 * LockTimedOut: a statement gave up waiting for a lock under --lock-timeout
 * (55P03 lock_not_available) and may be retried: the connection is fine and
 * attempts remain.
 */
bool LockTimedOut(const Connection &conn, const ServerError &e, const MigrateOptions &options,
                  int attempt) {
    return e.sqlstate == "55P03" && options.lock_timeout_ms > 0 && attempt < options.lock_retries &&
           PQstatus(conn.get()) == CONNECTION_OK;
}

/* Backoff waits before retry attempt+1: 200 ms, doubling, at most 5 s. */
void Backoff(int attempt, const std::string &what, const MigrateOptions &options,
             std::ostream &out) {
    int ms = std::min(5000, 200 << std::min(attempt, 5));
    if (!options.quiet)
        out << what << ": lock not granted within " << options.lock_timeout_ms
            << " ms (--lock-timeout), attempt " << attempt + 1 << " of " << options.lock_retries + 1
            << "; retrying in " << ms << " ms\n"
            << std::flush;
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

std::chrono::steady_clock::duration ApplyOne(const Connection &conn, const MigrationFile &file,
                                             const Script &script,
                                             const std::vector<const SupersedeTask *> &retire,
                                             int applied_before, const MigrateOptions &options,
                                             std::ostream &out) {
    auto t0 = std::chrono::steady_clock::now();
    std::string started;
    try {
        started = conn.Scalar("SELECT keel.migration_start($1::numeric, $2, $3)",
                              {file.version, file.file_name, file.checksum});
    } catch (const ServerError &e) {
        if (PQstatus(conn.get()) == CONNECTION_BAD)
            throw LostConnection(file.file_name, e, true, false, applied_before);
        throw CommandError(file.file_name + ": " + e.OneLine());
    }

    bool transactional = !file.directives.no_transaction;
    size_t line = 0;
    bool commit_sent = false;
    const std::string *current_statement = nullptr;
    const std::string *failed_statement = nullptr;
    std::string lock_timeout = "SET " + std::string(transactional ? "LOCAL " : "") +
                               "lock_timeout = " + std::to_string(options.lock_timeout_ms);
    for (int file_attempt = 0;; ++file_attempt)
        try {
            if (transactional)
                conn.Exec("BEGIN");
            if (options.lock_timeout_ms > 0)
                conn.Exec(lock_timeout);
            if (file.directives.allow_destructive_reason) {
                line = file.directives.allow_destructive_line;
                conn.ExecParams("SELECT keel.allow_destructive($1)",
                                {*file.directives.allow_destructive_reason});
            }
            for (const auto &stmt : script.statements) {
                line = stmt.line;
                current_statement = &stmt.text;
                for (int attempt = 0;; ++attempt)
                    try {
                        if (stmt.has_copy_data)
                            conn.CopyIn(stmt.text, stmt.copy_data);
                        else
                            conn.Exec(stmt.text);
                        break;
                    } catch (const ServerError &e) {
                        /* autocommit: only this statement is retried */
                        if (!transactional && LockTimedOut(conn, e, options, attempt)) {
                            Backoff(attempt, file.file_name + ":" + std::to_string(stmt.line),
                                    options, out);
                            continue;
                        }
                        if (e.position > 0)
                            line =
                                LineAt(file.contents,
                                       stmt.offset + CharPositionToOffset(stmt.text, e.position));
                        throw;
                    }
            }
            line = 0;
            /* applied first: 0.2.0 refuses to supersede by a version not applied */
            conn.ExecParams("SELECT keel.migration_applied($1::numeric, $2, $3, $4::timestamptz)",
                            {file.version, file.file_name, file.checksum, started});
            for (const auto *task : retire)
                RecordSuperseded(conn, *task);
            if (transactional) {
                commit_sent = true;
                conn.Exec("COMMIT");
            }
            if (options.lock_timeout_ms > 0 && !transactional)
                conn.Exec("RESET lock_timeout");
            break;
        } catch (const ServerError &e) {
            /* a transactional file is retried whole: its transaction rolled back */
            if (transactional && LockTimedOut(conn, e, options, file_attempt)) {
                PQclear(PQexec(conn.get(), "ROLLBACK"));
                Backoff(file_attempt, file.file_name + (line ? ":" + std::to_string(line) : ""),
                        options, out);
                continue;
            }
            if (options.lock_timeout_ms > 0 && !transactional)
                PQclear(PQexec(conn.get(), "RESET lock_timeout"));
            if (PQstatus(conn.get()) == CONNECTION_BAD)
                throw LostConnection(file.file_name + (line ? ":" + std::to_string(line) : ""), e,
                                     transactional, commit_sent, applied_before);
            failed_statement = current_statement;
            if (PQtransactionStatus(conn.get()) != PQTRANS_IDLE)
                PQclear(PQexec(conn.get(), "ROLLBACK"));
            std::string where = file.file_name + (line ? ":" + std::to_string(line) : "");
            std::string recorded = "rolled back and recorded as failed";
            if (!transactional)
                recorded =
                    "statements before the failing one stay committed (keel:no-transaction); "
                    "recorded as failed";
            try {
                if (DetailedFailures(conn))
                    conn.ExecParams(
                        "SELECT keel.migration_failed($1::numeric, $2, $3, "
                        "$4::timestamptz, $5, $6, $7::integer, $8)",
                        {file.version, file.file_name, file.checksum, started, ErrorText(where, e),
                         e.sqlstate.empty() ? std::nullopt : std::optional<std::string>(e.sqlstate),
                         line ? std::optional<std::string>(std::to_string(line)) : std::nullopt,
                         failed_statement ? std::optional<std::string>(Trimmed(*failed_statement))
                                          : std::nullopt});
                else
                    conn.ExecParams(
                        "SELECT keel.migration_failed($1::numeric, $2, $3, $4::timestamptz, $5)",
                        {file.version, file.file_name, file.checksum, started,
                         ErrorText(where, e)});
            } catch (const ServerError &again) {
                recorded += ", but recording the failure failed too: " + again.OneLine();
            }
            throw CommandError(where + ": " + e.OneLine() + " [" + recorded + "; " +
                               std::to_string(applied_before) +
                               " earlier migration(s) of this run stay applied]");
        }
    return std::chrono::steady_clock::now() - t0;
}

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
    if (!report.mismatches.empty()) {
        const Mismatch &m = report.mismatches.front();
        std::string msg = m.file->file_name + ": checksum mismatch: recorded " + m.recorded +
                          ", current " + m.file->checksum + " (version " + m.file->version +
                          " was applied from a different file; applied migrations must not "
                          "change)";
        if (report.mismatches.size() > 1)
            msg += " and " + std::to_string(report.mismatches.size() - 1) +
                   " more mismatch(es), see keel status";
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
            scripts.emplace(file->version, PrepareScript(file->contents, file->file_name,
                                                         !file->directives.no_transaction));
        } catch (const FileError &e) {
            throw CommandError(std::string(e.what()) + "; nothing applied");
        }
    }

    if (options.dry_run)
        return Rehearse(conn, report, scripts, out);

    if (!options.backup_dir.empty() && (!report.pending.empty() || !report.to_supersede.empty())) {
        std::string id = Backup(conn, options.backup_dir, out);
        if (!options.quiet)
            out << "backup " << id << " taken before applying; keel restore " << id
                << " --into NEW_DB brings it back\n";
    }

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
            out << SupersededLine(task) << "\n";
            ++summary.superseded;
        } else {
            retire_by[task.by->version].push_back(&task);
        }
    }

    for (const auto *file : report.pending) {
        const auto &retire = retire_by[file->version];
        auto took =
            ApplyOne(conn, *file, scripts.at(file->version), retire, summary.applied, options, out);
        for (const auto *task : retire) {
            out << SupersededLine(*task) << "\n";
            ++summary.superseded;
        }
        if (!options.quiet)
            out << "applied " << file->file_name << " (version " << file->version << ", "
                << summary.applied + 1 << " of " << report.pending.size() << ") in " << Ms(took)
                << "\n"
                << std::flush;
        ++summary.applied;
    }
    if (summary.applied == 0 && summary.superseded == 0)
        out << "nothing to apply: " << report.applied.size()
            << " migration(s) applied, database is up to date\n";
    else
        out << summary.applied << " migration(s) applied, " << summary.superseded
            << " superseded\n";
    return summary;
}

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
    std::string role = Probe(conn).Label();
    if (json)
        out << ReportJson(report, conn.Target(), role).dump(2) << "\n";
    else
        PrintReport(out, report, conn.Target(), role);
    return report.mismatches.empty() && report.problems.empty();
}

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
                    "text)') IS NOT NULL") != "t")
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
            conn.ExecParams("SELECT keel.migration_baselined($1::numeric, $2, $3)",
                            {f->version, f->file_name, f->checksum});
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
                    "text, text)') IS NOT NULL") != "t")
        throw CommandError("repair: the server's keel is older than 0.2.0; run keel install");
    IdentifyTool(conn);
    MigrationLock lock(conn, 60);
    Report report = Analyze(&set, ReadHistory(conn));
    int repaired = 0;
    conn.Exec("BEGIN");
    try {
        for (const auto &m : report.mismatches) {
            conn.ExecParams("SELECT keel.migration_repaired($1::numeric, $2, $3, $4)",
                            {m.file->version, m.file->file_name, m.file->checksum, reason});
            out << "repaired " << m.file->file_name << ": checksum " << m.recorded.substr(0, 12)
                << "... -> " << m.file->checksum.substr(0, 12) << "...\n";
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
            Script script = PrepareScript(f->contents, f->file_name, !f->directives.no_transaction);
            step["statements"] = script.statements.size();
        } catch (const FileError &e) {
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
