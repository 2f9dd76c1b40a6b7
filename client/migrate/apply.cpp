/*
 * client/migrate/apply.cpp
 *   ApplyOne: one migration file, in its transaction or statement by statement.
 */
#include "lib/commands.hpp"
#include "lib/report.hpp"
#include "lib/server_role.hpp"
#include "lib/sql_script.hpp"
#include "lib/pipeline.hpp"
#include "lib/token_checksum.hpp"
#include "migrate/journal.hpp"
#include "migrate/runner.hpp"

#include <algorithm>
#include <chrono>

namespace keel::client {

void CommitQueue::Report(const MigrationFile &done, const std::vector<const SupersedeTask *> &tasks,
                         std::chrono::steady_clock::duration ran) {
    ++count;
    if (committed)
        committed(done, tasks, ran);
}

void CommitQueue::ReportWaiting() {
    const MigrationFile *done = file;
    file = nullptr;
    if (done)
        Report(*done, *retire, took);
}

void FlushCommit(const Connection &conn, CommitQueue &queue) {
    if (!queue.file)
        return;
    try {
        conn.Exec("COMMIT");
    } catch (const ServerError &e) {
        throw queue.CommitFailed(conn, e);
    }
    queue.ReportWaiting();
}

CommandError CommitQueue::CommitFailed(const Connection &conn, const ServerError &e) {
    const MigrationFile &done = *file;
    file = nullptr;
    failed = &done;
    if (PQstatus(conn.get()) == CONNECTION_BAD)
        return LostConnection(done.file_name, e, true, true, count);
    if (PQtransactionStatus(conn.get()) != PQTRANS_IDLE)
        PQclear(PQexec(conn.get(), "ROLLBACK"));
    return RecordFailure(conn, done, started, e, 0, std::string(),
                         "rolled back at its COMMIT and recorded as failed", count);
}

namespace {

const char kStartSql[] = "SELECT keel.migration_start($1::numeric, $2, $3)";
/* the attempt's started_at, and keel's migration lock held to the file's end:
 * taken again if a statement of an earlier file released it (KL004 if another
 * runner took it meanwhile) */
const char kStartedSql[] = "SELECT pg_catalog.transaction_timestamp() FROM keel.migration_lock()";
const char kAppliedSql[] = "SELECT keel.migration_applied($1::numeric, $2, $3, "
                           "pg_catalog.transaction_timestamp())";
const char kAppliedTokensSql[] = "SELECT keel.migration_applied($1::numeric, $2, $3, "
                                 "pg_catalog.transaction_timestamp(), $4)";

} // namespace

void KeepMigrationLock(const Connection &conn, const MigrateOptions &options) {
    Result res = conn.Exec("SELECT pg_catalog.current_setting('keel.tool_version', true) FROM "
                           "keel.migration_lock()");
    if (PQgetisnull(res.get(), 0, 0) || PQgetvalue(res.get(), 0, 0)[0] == '\0') {
        /* DISCARD ALL or RESET ALL: the session's settings are gone too */
        IdentifyTool(conn);
        if (options.lock_timeout_ms > 0)
            conn.Exec("SET lock_timeout = " + std::to_string(options.lock_timeout_ms));
    }
}

void ApplyOne(const Connection &conn, const MigrationFile &file, const Script &script,
              const std::vector<const SupersedeTask *> &retire, CommitQueue &queue,
              const MigrateOptions &options, const ServerFeatures &features, std::ostream &out) {
    auto t0 = std::chrono::steady_clock::now();
    queue.failed = nullptr;
    if (script.streamed) { /* a file above the streaming threshold: apply_streamed.cpp */
        FlushCommit(conn, queue);
        ApplyStreamed(conn, file, script, retire, queue.count, options, out);
        queue.Report(file, retire, std::chrono::steady_clock::now() - t0);
        return;
    }
    bool transactional = !file.directives.no_transaction;
    /* a transactional file without inline COPY data goes in pipeline mode: its BEGIN,
     * migration_start, statements and history row cost one round trip per 200
     * statements, its COMMIT one */
    bool pipelined =
        transactional && std::none_of(script.statements.begin(), script.statements.end(),
                                      [](const Statement &s) { return s.has_copy_data; });
    auto refused_at_start = [&](const ServerError &e) {
        if (PQstatus(conn.get()) == CONNECTION_BAD)
            return LostConnection(file.file_name, e, true, false, queue.count);
        return CommandError(file.file_name + ": " + e.OneLine());
    };
    if (!pipelined)
        FlushCommit(conn, queue);
    std::string started; /* keel.migration_start()'s answer: the attempt's started_at */
    if (!pipelined)
        try {
            started = conn.Scalar(kStartSql, {file.version, file.file_name, file.checksum});
        } catch (const ServerError &e) {
            throw refused_at_start(e);
        }

    size_t line = 0;
    bool commit_sent = false;
    const std::string *current_statement = nullptr;
    const std::string *failed_statement = nullptr;
    std::string lock_timeout = "SET " + std::string(transactional ? "LOCAL " : "") +
                               "lock_timeout = " + std::to_string(options.lock_timeout_ms);
    /* keel:no-transaction: journal every statement; resume after an interrupted attempt */
    bool journal = !transactional && features.journal;
    std::vector<std::string> sums;
    ResumePoint resume;
    if (journal) {
        sums = StatementChecksums(script);
        try {
            resume = FindResumePoint(conn, file, sums);
        } catch (const ServerError &e) {
            throw CommandError(file.file_name + ": cannot read its journal: " + e.OneLine());
        }
        if (resume.completed > 0 && !options.quiet)
            Say(options, out,
                file.file_name + ": resuming at statement " + std::to_string(resume.completed + 1) +
                    " of " + std::to_string(script.statements.size()) + " (line " +
                    std::to_string(resume.completed < script.statements.size()
                                       ? script.statements[resume.completed].line
                                       : 0) +
                    "): statements 1-" + std::to_string(resume.completed) +
                    " completed in the interrupted attempt of " + resume.attempt_started +
                    " and are unchanged\n");
    }
    /* keel's prepared statements were deallocated (26000): by an earlier file, or by this
     * one, which is then run again with its bookkeeping calls unprepared */
    bool prepared_lost = false, use_prepared = true;
    for (int file_attempt = 0;; ++file_attempt)
        try {
            if (pipelined) {
                std::vector<PipelineStep> steps;
                /* step -> statement index, or -1 BEGIN/SET, -2 a supersede record,
                 * -3 allow_destructive, -4 started_at, -5 the previous file's COMMIT,
                 * -6 migration_applied, -7 the run's search_path and role */
                std::vector<long> stmt_of;
                auto add = [&](std::string sql, std::vector<std::optional<std::string>> params,
                               long which) {
                    /* keel's own calls repeat for every file: prepared once per run */
                    bool keel_call = use_prepared && (which == -4 || which == -6 || which == -7);
                    steps.push_back({std::move(sql), std::move(params), keel_call});
                    stmt_of.push_back(which);
                };
                /* the previous file's COMMIT first (CommitQueue), unless keel's calls
                 * must be prepared first: PQprepare cannot go into a pipeline */
                const char *applied_sql =
                    features.token_checksums ? kAppliedTokensSql : kAppliedSql;
                if (queue.file && use_prepared &&
                    !(conn.IsPrepared(kStartedSql) && conn.IsPrepared(applied_sql) &&
                      (!options.restore_session || conn.IsPrepared(kRestoreSessionSql))))
                    FlushCommit(conn, queue);
                bool commit_first = queue.file != nullptr;
                if (commit_first)
                    add("COMMIT", {}, -5);
                add("BEGIN", {}, -1);
                if (options.restore_session)
                    add(kRestoreSessionSql, {options.session_search_path, options.session_role},
                        -7);
                /* no keel.migration_start() here: keel.migration_applied() validates the
                 * same in the same transaction (KL005 when already applied, which under
                 * the migration lock only a writer that bypasses keel can cause), and a
                 * refusal there rolls the file back whole; the attempt's started_at is
                 * its transaction's start */
                const size_t start_step = steps.size();
                add(kStartedSql, {}, -4);
                if (options.lock_timeout_ms > 0)
                    add(lock_timeout, {}, -1);
                if (file.directives.allow_destructive_reason)
                    add("SELECT keel.allow_destructive($1)",
                        {*file.directives.allow_destructive_reason}, -3);
                for (size_t i = 0; i < script.statements.size(); ++i)
                    add(script.statements[i].text, {}, static_cast<long>(i));
                /* the history rows are written as the runner: a file's SET ROLE is undone */
                if (options.restore_session)
                    add(kRestoreSessionSql, {options.session_search_path, options.session_role},
                        -7);
                /* applied first: 0.2.0 refuses to supersede by a version not applied */
                if (features.token_checksums)
                    add(applied_sql,
                        {file.version, file.file_name, file.checksum,
                         TokenChecksum(file.contents, file.directives)},
                        -6);
                else
                    add(applied_sql, {file.version, file.file_name, file.checksum}, -6);
                for (const auto *task : retire)
                    add("SELECT keel.migration_superseded($1::numeric, $2, $3, $4::numeric)",
                        {task->version,
                         task->file ? std::optional<std::string>(task->file->file_name)
                                    : std::nullopt,
                         task->file ? std::optional<std::string>(task->file->checksum)
                                    : std::nullopt,
                         task->by->version},
                        -2);
                /* this file's COMMIT is not in its pipeline: it waits in queue until every
                 * result is in, so a client killed or interrupted mid-file leaves a
                 * transaction the server rolls back, never one that commits from the
                 * server's input */
                /* the status line names the statements of the chunk the server runs */
                auto on_chunk = [&](size_t begin, size_t end) {
                    if (!options.live)
                        return;
                    long first = -1, last = -1;
                    for (size_t k = begin; k < end; ++k)
                        if (stmt_of[k] >= 0) {
                            if (first < 0)
                                first = stmt_of[k];
                            last = stmt_of[k];
                        }
                    if (first < 0)
                        return;
                    const Statement &st = script.statements[static_cast<size_t>(first)];
                    options.live->Statement(static_cast<size_t>(first) + 1,
                                            static_cast<size_t>(last) + 1, script.statements.size(),
                                            st.line, st.text);
                };
                try {
                    started = RunPipeline(conn, steps, 200, on_chunk)[start_step];
                } catch (const PipelineError &e) {
                    long which = stmt_of[e.step];
                    if (which == -5) /* the previous file's COMMIT; this file never started */
                        throw queue.CommitFailed(conn, e);
                    if (commit_first) /* results come in order: the COMMIT before succeeded */
                        queue.ReportWaiting();
                    if (use_prepared && (which == -4 || which == -6 || which == -7) &&
                        e.sqlstate == "26000") {
                        prepared_lost = true; /* retried below, prepared again */
                        throw ServerError(e);
                    }
                    if (which == -4 || which == -6 || which == -7 || e.step < start_step) {
                        /* refused (KL005, 22023): rolled back whole, nothing to record */
                        if (PQtransactionStatus(conn.get()) != PQTRANS_IDLE)
                            PQclear(PQexec(conn.get(), "ROLLBACK"));
                        throw refused_at_start(e);
                    }
                    started = e.results[start_step];
                    line = 0;
                    current_statement = nullptr;
                    if (which == -3)
                        line = file.directives.allow_destructive_line;
                    if (which >= 0) {
                        const Statement &stmt = script.statements[static_cast<size_t>(which)];
                        line = stmt.line;
                        current_statement = &stmt.text;
                        if (e.position > 0)
                            line =
                                LineAt(file.contents,
                                       stmt.offset + CharPositionToOffset(stmt.text, e.position));
                    }
                    throw ServerError(e);
                }
                if (commit_first)
                    queue.ReportWaiting();
                queue.file = &file;
                queue.retire = &retire;
                queue.started = started;
                queue.took = std::chrono::steady_clock::now() - t0;
                return;
            }
            if (transactional) {
                conn.Exec("BEGIN");
                conn.Exec("SELECT keel.migration_lock()"); /* to the end of the file */
            }
            RestoreSession(conn, options);
            if (options.lock_timeout_ms > 0)
                conn.Exec(lock_timeout);
            if (file.directives.allow_destructive_reason) {
                line = file.directives.allow_destructive_line;
                conn.ExecParams("SELECT keel.allow_destructive($1)",
                                {*file.directives.allow_destructive_reason});
            }
            for (size_t i = 0; i < script.statements.size(); ++i) {
                const Statement &stmt = script.statements[i];
                line = stmt.line;
                current_statement = &stmt.text;
                if (journal && i < resume.completed) {
                    /* done before: carried into this attempt's journal, not run again */
                    JournalStep(conn, file, started, i + 1, stmt.line, sums[i]);
                    continue;
                }
                if (journal && resume.interrupted && i == resume.completed)
                    if (auto healed = HealInvalidIndex(conn, file, stmt, resume)) {
                        if (!options.quiet)
                            Say(options, out, *healed + "\n");
                        JournalStep(conn, file, started, i + 1, stmt.line, sums[i]);
                        continue;
                    }
                if (options.live)
                    options.live->Statement(i + 1, i + 1, script.statements.size(), stmt.line,
                                            stmt.text);
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
                if (journal)
                    JournalStep(conn, file, started, i + 1, stmt.line, sums[i]);
                if (!transactional)
                    try {
                        KeepMigrationLock(conn, options);
                    } catch (const ServerError &e) {
                        if (e.sqlstate != "KL004")
                            throw;
                        throw ServerError(
                            e.sqlstate,
                            "statement " + std::to_string(i + 1) +
                                " completed but released keel's migration lock, and another "
                                "runner took it: " +
                                e.message,
                            e.detail,
                            "Remove DISCARD ALL or pg_advisory_unlock_all() from the file; "
                            "statements 1-" +
                                std::to_string(i + 1) + " stay committed" +
                                (journal ? ", and keel migrate resumes after them." : "."),
                            0, e.context);
                    }
            }
            line = 0;
            RestoreSession(conn, options); /* the history rows are written as the runner */
            /* applied first: 0.2.0 refuses to supersede by a version not applied */
            if (features.token_checksums)
                conn.ExecParams(
                    "SELECT keel.migration_applied($1::numeric, $2, $3, $4::timestamptz, $5)",
                    {file.version, file.file_name, file.checksum, started,
                     TokenChecksum(file.contents, file.directives)});
            else
                conn.ExecParams(
                    "SELECT keel.migration_applied($1::numeric, $2, $3, $4::timestamptz)",
                    {file.version, file.file_name, file.checksum, started});
            for (const auto *task : retire)
                RecordSuperseded(conn, *task);
            if (transactional) {
                commit_sent = true;
                conn.Exec("COMMIT");
            }
            if (options.lock_timeout_ms > 0 && !transactional)
                conn.Exec("RESET lock_timeout");
            queue.Report(file, retire, std::chrono::steady_clock::now() - t0);
            return;
        } catch (const ServerError &e) {
            /* a DEALLOCATE ALL or DISCARD ALL dropped keel's prepared statements (26000):
             * this file's transaction rolled back; run it again unprepared (later files
             * prepare them anew) */
            if (prepared_lost && PQstatus(conn.get()) == CONNECTION_OK) {
                prepared_lost = false;
                use_prepared = false;
                if (PQtransactionStatus(conn.get()) != PQTRANS_IDLE)
                    PQclear(PQexec(conn.get(), "ROLLBACK"));
                conn.ForgetPrepared();
                continue;
            }
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
                                     transactional, commit_sent, queue.count);
            failed_statement = current_statement;
            if (PQtransactionStatus(conn.get()) != PQTRANS_IDLE)
                PQclear(PQexec(conn.get(), "ROLLBACK"));
            std::string where = file.file_name + (line ? ":" + std::to_string(line) : "");
            std::string recorded = "rolled back and recorded as failed";
            if (!transactional)
                recorded = journal
                               ? "statements before the failing one stay committed "
                                 "(keel:no-transaction) and journaled; recorded as failed; after a "
                                 "fix, keel migrate resumes at this statement"
                               : "statements before the failing one stay committed "
                                 "(keel:no-transaction); recorded as failed";
            throw RecordFailure(conn, file, started, e, line,
                                failed_statement ? *failed_statement : std::string(), recorded,
                                queue.count);
        }
}

} // namespace keel::client
