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

std::chrono::steady_clock::duration ApplyOne(const Connection &conn, const MigrationFile &file,
                                             const Script &script,
                                             const std::vector<const SupersedeTask *> &retire,
                                             int applied_before, const MigrateOptions &options,
                                             const ServerFeatures &features, std::ostream &out) {
    if (script.streamed) /* a file above the streaming threshold: apply_streamed.cpp */
        return ApplyStreamed(conn, file, script, retire, applied_before, options, out);
    auto t0 = std::chrono::steady_clock::now();
    bool transactional = !file.directives.no_transaction;
    /* a transactional file without inline COPY data goes in pipeline mode: its BEGIN,
     * migration_start, statements and history row cost one round trip per 200
     * statements, its COMMIT one */
    bool pipelined =
        transactional && std::none_of(script.statements.begin(), script.statements.end(),
                                      [](const Statement &s) { return s.has_copy_data; });
    auto refused_at_start = [&](const ServerError &e) {
        if (PQstatus(conn.get()) == CONNECTION_BAD)
            return LostConnection(file.file_name, e, true, false, applied_before);
        return CommandError(file.file_name + ": " + e.OneLine());
    };
    std::string started; /* keel.migration_start()'s answer: the attempt's started_at */
    if (!pipelined)
        try {
            started = conn.Scalar("SELECT keel.migration_start($1::numeric, $2, $3)",
                                  {file.version, file.file_name, file.checksum});
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
                std::vector<long> stmt_of; /* step -> statement index, -1 before, -2 after */
                auto add = [&](std::string sql, std::vector<std::optional<std::string>> params,
                               long which) {
                    /* keel's own calls repeat for every file: prepared once per run */
                    bool keel_call = use_prepared && (which == -4 || which == -2);
                    steps.push_back({std::move(sql), std::move(params), keel_call});
                    stmt_of.push_back(which);
                };
                add("BEGIN", {}, -1);
                /* validated in the file's own transaction: KL005 when already applied */
                const size_t start_step = steps.size();
                add("SELECT keel.migration_start($1::numeric, $2, $3)",
                    {file.version, file.file_name, file.checksum}, -4);
                if (options.lock_timeout_ms > 0)
                    add(lock_timeout, {}, -1);
                if (file.directives.allow_destructive_reason)
                    add("SELECT keel.allow_destructive($1)",
                        {*file.directives.allow_destructive_reason}, -3);
                for (size_t i = 0; i < script.statements.size(); ++i)
                    add(script.statements[i].text, {}, static_cast<long>(i));
                /* applied first: 0.2.0 refuses to supersede by a version not applied.
                 * started_at is the file's transaction start, a few microseconds before
                 * migration_start's clock_timestamp() in the same pipeline */
                if (features.token_checksums)
                    add("SELECT keel.migration_applied($1::numeric, $2, $3, "
                        "pg_catalog.transaction_timestamp(), $4)",
                        {file.version, file.file_name, file.checksum,
                         TokenChecksum(file.contents, file.directives)},
                        -2);
                else
                    add("SELECT keel.migration_applied($1::numeric, $2, $3, "
                        "pg_catalog.transaction_timestamp())",
                        {file.version, file.file_name, file.checksum}, -2);
                for (const auto *task : retire)
                    add("SELECT keel.migration_superseded($1::numeric, $2, $3, $4::numeric)",
                        {task->version,
                         task->file ? std::optional<std::string>(task->file->file_name)
                                    : std::nullopt,
                         task->file ? std::optional<std::string>(task->file->checksum)
                                    : std::nullopt,
                         task->by->version},
                        -2);
                /* COMMIT goes on its own, after every result is in: a client killed or
                 * interrupted mid-file leaves a transaction the server rolls back, never one
                 * that commits from the queue */
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
                    if (use_prepared && (which == -4 || which == -2) && e.sqlstate == "26000") {
                        prepared_lost = true; /* retried below, prepared again */
                        throw ServerError(e);
                    }
                    if (which == -4 || e.step < start_step) {
                        /* refused before anything ran: nothing to record */
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
                line = 0;
                commit_sent = true;
                conn.Exec("COMMIT");
                break;
            }
            if (transactional)
                conn.Exec("BEGIN");
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
            }
            line = 0;
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
            break;
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
                                     transactional, commit_sent, applied_before);
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
                                applied_before);
        }
    return std::chrono::steady_clock::now() - t0;
}

} // namespace keel::client
