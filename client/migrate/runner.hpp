/*
 * client/migrate/runner.hpp
 *   What the migrate command group (migrate, rehearse, status, plan,
 *   baseline, repair) shares: the preconditions, the migration lock, the
 *   history writers and the error texts. Internal to client/migrate.
 */
#pragma once

#include "lib/commands.hpp"
#include "lib/report.hpp"
#include "lib/sql_script.hpp"

#include <chrono>
#include <functional>
#include <map>
#include <ostream>
#include <string>
#include <vector>

namespace keel::client {

/* Ms formats a duration as "12.3 ms". */
std::string Ms(std::chrono::steady_clock::duration d);

/* RequireKeel throws CommandError unless the keel extension is installed. */
void RequireKeel(const Connection &conn);

/* RequireRecordingPrivileges throws CommandError (with the GRANT line) unless the role may write
 * history. */
void RequireRecordingPrivileges(const Connection &conn);

/*
 * MigrationLock holds keel.migration_lock() for its lifetime. It retries every
 * 200 ms for up to wait_seconds (keel.migration_lock() only tries the lock,
 * so nothing ever queues behind it: a CREATE INDEX CONCURRENTLY of another
 * session cannot deadlock on it); then the KL004 error, which names the
 * holder, becomes a CommandError.
 */
class MigrationLock {
  public:
    MigrationLock(const Connection &conn, int wait_seconds);
    ~MigrationLock();
    MigrationLock(const MigrationLock &) = delete;
    MigrationLock &operator=(const MigrationLock &) = delete;

  private:
    const Connection &conn_;
};

/*
 * ServerFeatures: what the server's keel offers beyond 0.1.0, probed once per
 * run (one query): token checksums (the 5-argument migration_applied) and the
 * journal of keel:no-transaction files (keel.migration_step), each only when
 * the role may execute it.
 */
struct ServerFeatures {
    bool token_checksums = false;
    bool journal = false;
};
ServerFeatures ProbeFeatures(const Connection &conn);

/* IdentifyTool sets keel.client_host and keel.tool_version for the session (history columns). */
void IdentifyTool(const Connection &conn);

/* RecordSuperseded runs keel.migration_superseded() for task; ServerError on refusal. */
void RecordSuperseded(const Connection &conn, const SupersedeTask &task);

/* SupersededLine is the report line for a superseded migration. */
std::string SupersededLine(const SupersedeTask &task);

/* Trimmed is s without leading and trailing white space. */
std::string Trimmed(const std::string &s);

/*
 * RequireStatements throws FileError "<file>: holds no SQL statement ..." when
 * a pending file has no statement (empty, or only white space and comments)
 * and supersedes nothing: applying it would record as applied a migration
 * that did nothing, most often a file created and never written (issue 12,
 * malformed inputs, "an empty file"). Applied files are never checked.
 */
void RequireStatements(const MigrationFile &file, const Script &script);

/* DetailedFailures: the 8-argument keel.migration_failed (0.2.0) exists and the role may run it. */
bool DetailedFailures(const Connection &conn);

/* ErrorText is what keel.migration_failed records: "file:line: message\nDETAIL: ...\nHINT: ...". */
std::string ErrorText(const std::string &where, const ServerError &e);

/*
 * LostConnection is the CommandError for a connection that dropped while a
 * migration ran: which file and line, whether it can have committed, and how
 * to go on.
 */
CommandError LostConnection(const std::string &where, const ServerError &e, bool transactional,
                            bool commit_sent, int applied_before);

/*
 * RecordFailure records a failed attempt of file (keel.migration_failed: the
 * 8-argument form with SQLSTATE, line (0: unknown) and statement ("":
 * unknown) when the server and role have it, else the 5-argument one) and
 * returns the CommandError keel stops with: "file:line: error [recorded;
 * N earlier migration(s) of this run stay applied]". recorded says what
 * became of the file; a failure to record is appended to it.
 */
CommandError RecordFailure(const Connection &conn, const MigrationFile &file,
                           const std::string &started, const ServerError &e, size_t line,
                           const std::string &statement, std::string recorded, int applied_before);

/* LockTimedOut: 55P03 under --lock-timeout with attempts left and the connection fine. */
bool LockTimedOut(const Connection &conn, const ServerError &e, const MigrateOptions &options,
                  int attempt);

/* Say writes text (whole lines) to out, through the run's status line when it has one. */
void Say(const MigrateOptions &options, std::ostream &out, const std::string &text);

/* Backoff waits before retry attempt+1: 200 ms, doubling, at most 5 s. */
void Backoff(int attempt, const std::string &what, const MigrateOptions &options,
             std::ostream &out);

/*
 * RunStatement runs one statement of a migration or down file on conn: COPY
 * ... FROM STDIN with its inline data through libpq's COPY protocol (as
 * psql runs a pg_dump file), anything else with the simple protocol.
 * Throws ServerError as the server reports it.
 */
void RunStatement(const Connection &conn, const Statement &stmt);

/*
 * StatementErrorLine is the 1-based line of file where error e points: the
 * server's statement position mapped into the file, else the statement's
 * first line.
 */
size_t StatementErrorLine(const MigrationFile &file, const Statement &stmt, const ServerError &e);

/*
 * CommitQueue is the COMMIT keel migrate has not sent yet. A pipelined file
 * (apply.cpp) whose every result is in leaves its transaction open here, and
 * its COMMIT goes first in the next file's pipeline: one round trip per tiny
 * file instead of two. Nothing is sent that the client has not checked: a
 * client killed before the COMMIT leaves a transaction the server rolls back
 * whole, one killed after it a file that committed whole. Report runs
 * (committed) for each file once its COMMIT succeeded; count is how many
 * files of this run committed; failed names the file a CommandError was
 * about when it was an earlier, deferred one.
 */
struct CommitQueue {
    using Committed =
        std::function<void(const MigrationFile &, const std::vector<const SupersedeTask *> &,
                           std::chrono::steady_clock::duration)>;
    Committed committed;
    int count = 0;
    const MigrationFile *file = nullptr; /* the file whose COMMIT waits, or nullptr */
    const std::vector<const SupersedeTask *> *retire = nullptr;
    std::string started;
    std::chrono::steady_clock::duration took{}; /* the waiting file's run, to its last result */
    const MigrationFile *failed = nullptr;

    /* Report: file committed, having run for took; tells committed and counts it. */
    void Report(const MigrationFile &done, const std::vector<const SupersedeTask *> &tasks,
                std::chrono::steady_clock::duration took);
    /* ReportWaiting: the waiting file's COMMIT succeeded. */
    void ReportWaiting();
    /* CommitFailed: the waiting file's COMMIT failed with e; the error keel stops with
     * (LostConnection's, or RecordFailure's after the file is recorded failed). */
    CommandError CommitFailed(const Connection &conn, const ServerError &e);
};

/*
 * FlushCommit sends the waiting COMMIT of queue (if any) on its own, before
 * anything that is not pipelined and at the end of a run. A COMMIT that fails
 * (a deferred constraint, a serialization failure) rolls the file back: it is
 * recorded failed and the CommandError from RecordFailure is thrown; a lost
 * connection gives LostConnection's.
 */
void FlushCommit(const Connection &conn, CommitQueue &queue);

/*
 * kRestoreSessionSql sets the session's search_path ($1) and role ($2) again,
 * each only when it differs (no search-path cache invalidation per file).
 * RememberSession reads both into options (restore_session on), when a run
 * begins; RestoreSession runs kRestoreSessionSql with them (nothing when
 * restore_session is off). Every file of migrate, down and rehearse starts
 * from them, as Flyway restores them: a file's session-level SET (pg_dump's
 * set_config('search_path', '', false), a SET ROLE) would otherwise reach
 * the files after it in this run, and not in the next. ServerError.
 */
extern const char kRestoreSessionSql[];
void RememberSession(const Connection &conn, MigrateOptions &options);
void RestoreSession(const Connection &conn, const MigrateOptions &options);

/*
 * KeepMigrationLock runs after each statement of a keel:no-transaction file:
 * keel.migration_lock() takes the migration lock again if the statement
 * released it (DISCARD ALL, pg_advisory_unlock_all()), and the session's
 * keel settings (IdentifyTool, --lock-timeout) are set again if it reset
 * them. Throws ServerError KL004 when another runner took the lock in
 * between: the run must stop.
 */
void KeepMigrationLock(const Connection &conn, const MigrateOptions &options);

/*
 * ApplyOne runs one migration (see Migrate in commands.hpp); a pipelined one
 * leaves its COMMIT in queue, any other commits it (after the waiting one)
 * and reports it there. Throws CommandError after recording a failure.
 */
void ApplyOne(const Connection &conn, const MigrationFile &file, const Script &script,
              const std::vector<const SupersedeTask *> &retire, CommitQueue &queue,
              const MigrateOptions &options, const ServerFeatures &features, std::ostream &out);

/* StreamedPlace is where a streamed file's run is: the file line and statement (for errors). */
struct StreamedPlace {
    size_t line = 0;
    std::string statement;
    Progress *live = nullptr; /* the run's status line, told of each batch (or nullptr) */
    size_t statements = 0;    /* the file's statement count, for the status line */
};

/*
 * RunStreamed runs the statements of a streamed file (apply_streamed.cpp)
 * from disk: transactional, inside the caller's open transaction, in batches
 * of about 1 MiB with its own BEGIN/COMMIT wrapper left out (script from
 * PrepareStreamedScript); else statement by statement in autocommit, each
 * retried under --lock-timeout (options; nullptr for none). Throws
 * ServerError with place set to the failing statement and its file line;
 * also when the file changed on disk since its checksum (place.line 0).
 */
void RunStreamed(const Connection &conn, const MigrationFile &file, const Script &script,
                 bool transactional, const MigrateOptions *options, std::ostream &out,
                 StreamedPlace &place);

/* ApplyStreamed is ApplyOne for a streamed file (RunStreamed in place of the statement loop). */
std::chrono::steady_clock::duration ApplyStreamed(const Connection &conn, const MigrationFile &file,
                                                  const Script &script,
                                                  const std::vector<const SupersedeTask *> &retire,
                                                  int applied_before, const MigrateOptions &options,
                                                  std::ostream &out);

/*
 * Rehearse runs every pending transactional file in one transaction and rolls
 * it back (keel rehearse, migrate --dry-run): every error, the guard's
 * verdicts and each statement's locks, as text or JSON (options.json);
 * CommandError after the report when there was an error (rehearse.cpp).
 */
MigrateSummary Rehearse(const Connection &conn, const Report &report,
                        const std::map<std::string, Script> &scripts, const MigrateOptions &options,
                        std::ostream &out);

} // namespace keel::client
