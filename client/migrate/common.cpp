/*
 * client/migrate/common.cpp
 *   Helpers shared by the migrate command group (runner.hpp).
 */
#include "lib/commands.hpp"
#include "lib/report.hpp"
#include "lib/server_role.hpp"
#include "lib/sql_script.hpp"
#include "migrate/runner.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

namespace keel::client {

namespace {

const char *kApplied = "keel.migration_applied(numeric, text, text, timestamptz)";
const char *kFailed = "keel.migration_failed(numeric, text, text, timestamptz, text)";
const char *kSuperseded = "keel.migration_superseded(numeric, text, text, numeric)";
const char *kLock = "keel.migration_lock()";

} // namespace

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
                    "', 'EXECUTE') AND has_function_privilege('" + kSuperseded +
                    "', 'EXECUTE') AND has_function_privilege('" + kLock + "', 'EXECUTE')");
    if (ok != "t") {
        std::string role = PQuser(conn.get());
        throw CommandError("role \"" + role +
                           "\" may not take the migration lock or record migrations; a superuser "
                           "can grant it with keel install --grant-migrations " +
                           role + " (GRANT EXECUTE ON FUNCTION " + kLock + ", " + kApplied + ", " +
                           kFailed + ", " + kSuperseded + ", ... TO \"" + role + "\")");
    }
}

/*
 * MigrationLock holds keel.migration_lock() for its lifetime. It retries every
 * 200 ms for up to wait_seconds (keel.migration_lock() only tries the lock,
 * so nothing ever queues behind it: a CREATE INDEX CONCURRENTLY of another
 * session cannot deadlock on it); then the KL004 error names the holder.
 */
MigrationLock::MigrationLock(const Connection &conn, int wait_seconds) : conn_(conn) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(wait_seconds);
    while (true) {
        try {
            conn_.Exec("SELECT keel.migration_lock()");
            return;
        } catch (const ServerError &e) {
            if (e.sqlstate != "KL004" || std::chrono::steady_clock::now() >= deadline)
                throw CommandError(e.OneLine() + (e.sqlstate == "KL004"
                                                      ? " (waited " + std::to_string(wait_seconds) +
                                                            " s; --lock-wait)"
                                                      : std::string()));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
}

MigrationLock::~MigrationLock() {
    PGresult *res = PQexec(conn_.get(), "SELECT keel.migration_unlock()");
    PQclear(res);
}

ServerFeatures ProbeFeatures(const Connection &conn) {
    Result res = conn.Exec(
        "SELECT coalesce(pg_catalog.has_function_privilege(pg_catalog.to_regprocedure("
        "'keel.migration_applied(numeric, text, text, timestamptz, text)'), 'EXECUTE'), false), "
        "coalesce(pg_catalog.has_function_privilege(pg_catalog.to_regprocedure("
        "'keel.migration_step(numeric, timestamptz, integer, integer, text)'), 'EXECUTE'), false)");
    ServerFeatures f;
    f.token_checksums = std::string(PQgetvalue(res.get(), 0, 0)) == "t";
    f.journal = std::string(PQgetvalue(res.get(), 0, 1)) == "t";
    return f;
}

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

void RequireStatements(const MigrationFile &file, const Script &script) {
    if (script.StatementCount() == 0 && file.directives.supersedes.empty())
        throw FileError(file.file_name, 0,
                        "holds no SQL statement (the file is empty or only comments); write the "
                        "migration, or delete the file if it is not needed");
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

CommandError RecordFailure(const Connection &conn, const MigrationFile &file,
                           const std::string &started, const ServerError &e, size_t line,
                           const std::string &statement, std::string recorded, int applied_before) {
    std::string where = file.file_name + (line ? ":" + std::to_string(line) : "");
    try {
        if (DetailedFailures(conn))
            conn.ExecParams(
                "SELECT keel.migration_failed($1::numeric, $2, $3, "
                "$4::timestamptz, $5, $6, $7::integer, $8)",
                {file.version, file.file_name, file.checksum, started, ErrorText(where, e),
                 e.sqlstate.empty() ? std::nullopt : std::optional<std::string>(e.sqlstate),
                 line ? std::optional<std::string>(std::to_string(line)) : std::nullopt,
                 statement.empty() ? std::nullopt
                                   : std::optional<std::string>(Trimmed(statement))});
        else
            conn.ExecParams(
                "SELECT keel.migration_failed($1::numeric, $2, $3, $4::timestamptz, $5)",
                {file.version, file.file_name, file.checksum, started, ErrorText(where, e)});
    } catch (const ServerError &again) {
        recorded += ", but recording the failure failed too: " + again.OneLine();
    }
    return CommandError(where + ": " + e.OneLine() + " [" + recorded + "; " +
                        std::to_string(applied_before) +
                        " earlier migration(s) of this run stay applied]");
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
                "this line are committed while it is not recorded as applied; each is journaled "
                "in keel.migration_steps, and a rerun of keel migrate resumes after the last one "
                "that completed (rebuilding an index that an interrupted CREATE INDEX "
                "CONCURRENTLY left invalid)";
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
const char kRestoreSessionSql[] =
    "SELECT CASE WHEN pg_catalog.current_setting('search_path') OPERATOR(pg_catalog.<>) $1 "
    "THEN pg_catalog.set_config('search_path', $1, false) END, "
    "CASE WHEN pg_catalog.current_setting('role') OPERATOR(pg_catalog.<>) $2 "
    "THEN pg_catalog.set_config('role', $2, false) END";

void RememberSession(const Connection &conn, MigrateOptions &options) {
    Result res = conn.Exec("SELECT pg_catalog.current_setting('search_path'), "
                           "pg_catalog.current_setting('role')");
    options.restore_session = true;
    options.session_search_path = PQgetvalue(res.get(), 0, 0);
    options.session_role = PQgetvalue(res.get(), 0, 1);
}

void RestoreSession(const Connection &conn, const MigrateOptions &options) {
    if (options.restore_session)
        conn.ExecParams(kRestoreSessionSql, {options.session_search_path, options.session_role});
}

void Say(const MigrateOptions &options, std::ostream &out, const std::string &text) {
    if (options.live)
        options.live->Print(out, text);
    else
        out << text << std::flush;
}

void Backoff(int attempt, const std::string &what, const MigrateOptions &options,
             std::ostream &out) {
    int ms = std::min(5000, 200 << std::min(attempt, 5));
    if (!options.quiet)
        Say(options, out,
            what + ": lock not granted within " + std::to_string(options.lock_timeout_ms) +
                " ms (--lock-timeout), attempt " + std::to_string(attempt + 1) + " of " +
                std::to_string(options.lock_retries + 1) + "; retrying in " + std::to_string(ms) +
                " ms\n");
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

void RunStatement(const Connection &conn, const Statement &stmt) {
    if (stmt.has_copy_data)
        conn.CopyIn(stmt.text, stmt.copy_data);
    else
        conn.Exec(stmt.text);
}

size_t StatementErrorLine(const MigrationFile &file, const Statement &stmt, const ServerError &e) {
    if (e.position <= 0)
        return stmt.line;
    return LineAt(file.contents, stmt.offset + CharPositionToOffset(stmt.text, e.position));
}

} // namespace keel::client
