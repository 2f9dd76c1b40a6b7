/*
 * client/migrate/apply_streamed.cpp
 *   A streamed migration file (MigrationFile::streamed, above the streaming
 *   threshold) run from disk in bounded memory (issue 12: a 212 MB file in
 *   under 300 MB of client memory and within 1.2x of psql -f):
 *   - inside its transaction, the statements go in batches of about 1 MiB,
 *     each batch one multi-statement simple query (PQsendQuery): one round
 *     trip per batch, not per statement, and keel cuts the next batch while
 *     the server runs the last one. Each statement of a batch gets its own
 *     result, so the failing one is known; the server's error position is a
 *     character position in the batch, mapped back to the file line;
 *   - a COPY ends a batch and runs alone; COPY ... FROM STDIN sends its
 *     inline data with the COPY protocol as it is read;
 *   - the file's own BEGIN/COMMIT wrapper is left out, as PrepareScript
 *     leaves it out;
 *   - a keel:no-transaction file runs statement by statement, each in
 *     autocommit, as the in-memory path runs it;
 *   - the bytes run are checksummed again: a file edited after the preflight
 *     is rolled back, not recorded as applied with the old checksum.
 */
#include "lib/commands.hpp"
#include "lib/report.hpp"
#include "lib/server_role.hpp"
#include "lib/sql_script.hpp"
#include "lib/sql_stream.hpp"
#include "migrate/runner.hpp"

#include <chrono>
#include <cstring>

namespace keel::client {

namespace {

/* kExecBatchBytes: SQL per multi-statement query (1 MiB). */
constexpr size_t kExecBatchBytes = size_t(1) << 20;

/* ExecBatch is statements sent as one simple query. */
struct ExecBatch {
    struct Piece {
        size_t begin;      /* byte offset in sql */
        size_t start_line; /* file line of its first byte */
        size_t line;       /* file line of its first token */
    };
    std::string sql;
    std::vector<Piece> pieces;
    size_t first_statement = 0; /* 1-based number of its first statement in the file */

    void Add(const StreamStatement &st) {
        pieces.push_back({sql.size(), st.start_line, st.line});
        sql += st.text;
        if (st.terminated)
            sql += ';';
    }
    void Clear() {
        sql.clear();
        pieces.clear();
    }
    std::string Text(size_t k) const {
        size_t end = k + 1 < pieces.size() ? pieces[k + 1].begin : sql.size();
        std::string text = sql.substr(pieces[k].begin, end - pieces[k].begin);
        if (!text.empty() && text.back() == ';')
            text.pop_back();
        return text;
    }
    /* LineOf maps a server position (1-based characters in sql) to a file line. */
    size_t LineOf(long position) const {
        size_t offset = CharPositionToOffset(sql, position);
        size_t k = pieces.size() - 1;
        while (k > 0 && pieces[k].begin > offset)
            --k;
        return pieces[k].start_line - 1 +
               LineAt(std::string_view(sql).substr(pieces[k].begin), offset - pieces[k].begin);
    }
};

/* Drain reads and drops every pending result (after an error while a batch ran). */
void Drain(const Connection &conn) {
    while (PGresult *r = PQgetResult(conn.get())) {
        ExecStatusType status = PQresultStatus(r);
        PQclear(r);
        if (status == PGRES_COPY_IN)
            PQputCopyEnd(conn.get(), "keel stopped");
        else if (status == PGRES_COPY_OUT) {
            char *buf = nullptr;
            while (PQgetCopyData(conn.get(), &buf, 0) > 0)
                PQfreemem(buf);
        }
    }
}

/* Send starts batch on the server; throws ServerError when libpq cannot send it. */
void Send(const Connection &conn, const ExecBatch &batch, StreamedPlace &place) {
    if (place.live)
        place.live->Statement(batch.first_statement,
                              batch.first_statement + batch.pieces.size() - 1, place.statements,
                              batch.pieces.front().line, batch.Text(0));
    if (PQsendQuery(conn.get(), batch.sql.c_str()) != 1) {
        place.line = batch.pieces.front().line;
        place.statement = batch.Text(0);
        throw ResultError(conn.get(), nullptr);
    }
}

/* Collect reads batch's results; throws the first error with place set to its statement. */
void Collect(const Connection &conn, const ExecBatch &batch, StreamedPlace &place) {
    size_t done = 0;
    std::optional<ServerError> error;
    while (PGresult *r = PQgetResult(conn.get())) {
        Result res(r, &PQclear);
        switch (PQresultStatus(r)) {
        case PGRES_COMMAND_OK:
        case PGRES_TUPLES_OK:
        case PGRES_EMPTY_QUERY:
            ++done;
            break;
        case PGRES_COPY_IN: /* cannot happen: a COPY runs alone, with its data */
            PQputCopyEnd(conn.get(), "keel sends COPY data only after its own statement");
            break;
        case PGRES_COPY_OUT: { /* COPY ... TO STDOUT in a migration: the rows are dropped */
            char *buf = nullptr;
            while (PQgetCopyData(conn.get(), &buf, 0) > 0)
                PQfreemem(buf);
            break;
        }
        default:
            if (!error)
                error = ResultError(conn.get(), r);
        }
    }
    if (!error && PQstatus(conn.get()) == CONNECTION_BAD)
        error = ResultError(conn.get(), nullptr);
    if (error) {
        size_t k = std::min(done, batch.pieces.size() - 1);
        place.line = error->position > 0 ? batch.LineOf(error->position) : batch.pieces[k].line;
        place.statement = batch.Text(k);
        throw *error;
    }
}

/* CheckStandardStrings: the connection still reads strings as the splitter did. */
void CheckStandardStrings(const Connection &conn, size_t line) {
    const char *scs = PQparameterStatus(conn.get(), "standard_conforming_strings");
    if (scs && std::strcmp(scs, "on") != 0)
        throw ServerError("",
                          "standard_conforming_strings is off" +
                              (line ? " after line " + std::to_string(line) : std::string()) +
                              "; keel cuts a streamed file as PostgreSQL's default (on) "
                              "reads it, so it stops here",
                          "", "", 0, "");
}

/* ServerErrorOf turns a FileError met while running (the file changed) into a ServerError. */
ServerError ServerErrorOf(const FileError &e) {
    return ServerError("", e.message() + " (the file changed on disk after keel checked it)", "",
                       "", 0, "");
}

void RunBatched(const Connection &conn, const MigrationFile &file, const Script &script,
                SqlStream &stream, StreamedPlace &place) {
    CheckStandardStrings(conn, 0);
    size_t index = 0, last = script.streamed_total ? script.streamed_total - 1 : 0;
    ExecBatch inflight, next;
    bool sent = false, end = false;
    StreamStatement st;
    try {
        while (!end) {
            next.Clear();
            bool copy = false;
            while (next.sql.size() < kExecBatchBytes) {
                if (!stream.Next(st)) {
                    end = true;
                    break;
                }
                size_t i = index++;
                if (script.unwrapped && (i == 0 || i == last))
                    continue; /* the file's own BEGIN / COMMIT */
                if (st.words[0] == "copy") {
                    copy = true;
                    break;
                }
                if (next.pieces.empty())
                    next.first_statement = i + 1;
                next.Add(st);
            }
            if (sent) {
                sent = false;
                Collect(conn, inflight, place);
                CheckStandardStrings(conn, inflight.pieces.back().line);
            }
            if (!next.pieces.empty()) {
                std::swap(inflight, next);
                Send(conn, inflight, place);
                sent = true;
            }
            if (copy) {
                if (sent) {
                    sent = false;
                    Collect(conn, inflight, place);
                    CheckStandardStrings(conn, inflight.pieces.back().line);
                }
                place.line = st.line;
                place.statement = st.text;
                if (place.live)
                    place.live->Statement(index, index, place.statements, st.line, st.text);
                try {
                    if (st.copy_from_stdin)
                        conn.CopyIn(st.text,
                                    [&](std::string &data) { return stream.ReadCopyData(data); });
                    else {
                        ExecBatch alone;
                        alone.Add(st);
                        Send(conn, alone, place);
                        Collect(conn, alone, place);
                    }
                } catch (const ServerError &e) {
                    if (e.position > 0)
                        place.line = st.start_line - 1 +
                                     LineAt(st.text, CharPositionToOffset(st.text, e.position));
                    throw;
                }
            }
        }
        if (sent) {
            sent = false;
            Collect(conn, inflight, place);
        }
    } catch (const FileError &e) {
        if (sent)
            Drain(conn);
        place.line = e.line();
        throw ServerErrorOf(e);
    } catch (...) {
        if (sent)
            Drain(conn);
        throw;
    }
    (void)file;
}

void RunEach(const Connection &conn, const MigrationFile &file, SqlStream &stream,
             const MigrateOptions *options, std::ostream &out, StreamedPlace &place) {
    StreamStatement st;
    size_t index = 0;
    try {
        while (stream.Next(st)) {
            place.line = st.line;
            place.statement = st.text;
            ++index;
            if (place.live)
                place.live->Statement(index, index, place.statements, st.line, st.text);
            CheckStandardStrings(conn, st.line);
            for (int attempt = 0;; ++attempt) {
                bool data_read = false;
                try {
                    if (st.copy_from_stdin)
                        conn.CopyIn(st.text, [&](std::string &data) {
                            data_read = true;
                            return stream.ReadCopyData(data);
                        });
                    else
                        conn.Exec(st.text);
                    break;
                } catch (const ServerError &e) {
                    /* autocommit: only this statement is retried (not a COPY whose data was
                     * already read from the file) */
                    if (options && !data_read && LockTimedOut(conn, e, *options, attempt)) {
                        Backoff(attempt, file.file_name + ":" + std::to_string(st.line), *options,
                                out);
                        continue;
                    }
                    if (e.position > 0)
                        place.line = st.start_line - 1 +
                                     LineAt(st.text, CharPositionToOffset(st.text, e.position));
                    throw;
                }
            }
        }
    } catch (const FileError &e) {
        place.line = e.line();
        throw ServerErrorOf(e);
    }
}

} // namespace

void RunStreamed(const Connection &conn, const MigrationFile &file, const Script &script,
                 bool transactional, const MigrateOptions *options, std::ostream &out,
                 StreamedPlace &place) {
    ChecksumStream sum;
    SqlStream stream = SqlStream::Open(file.path, file.file_name, &sum);
    if (transactional)
        RunBatched(conn, file, script, stream, place);
    else
        RunEach(conn, file, stream, options, out, place);
    place = StreamedPlace{};
    if (sum.Final() != file.checksum)
        throw ServerError("",
                          "the file changed on disk after keel checked it (its checksum is no "
                          "longer " +
                              file.checksum.substr(0, 12) + "...)",
                          "", "", 0, "");
}

std::chrono::steady_clock::duration ApplyStreamed(const Connection &conn, const MigrationFile &file,
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
    bool commit_sent = false;
    StreamedPlace place;
    std::string lock_timeout = "SET " + std::string(transactional ? "LOCAL " : "") +
                               "lock_timeout = " + std::to_string(options.lock_timeout_ms);
    for (int file_attempt = 0;; ++file_attempt)
        try {
            place = StreamedPlace{};
            place.live = options.live;
            place.statements = script.streamed_total;
            if (transactional) {
                conn.Exec("BEGIN");
                conn.Exec("SELECT keel.migration_lock()"); /* to the end of the file */
            }
            RestoreSession(conn, options);
            if (options.lock_timeout_ms > 0)
                conn.Exec(lock_timeout);
            if (file.directives.allow_destructive_reason) {
                place.line = file.directives.allow_destructive_line;
                conn.ExecParams("SELECT keel.allow_destructive($1)",
                                {*file.directives.allow_destructive_reason});
            }
            RunStreamed(conn, file, script, transactional, &options, out, place);
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
            size_t line = place.line;
            std::string where = file.file_name + (line ? ":" + std::to_string(line) : "");
            /* a transactional file is retried whole: its transaction rolled back */
            if (transactional && LockTimedOut(conn, e, options, file_attempt)) {
                PQclear(PQexec(conn.get(), "ROLLBACK"));
                Backoff(file_attempt, where, options, out);
                continue;
            }
            if (options.lock_timeout_ms > 0 && !transactional)
                PQclear(PQexec(conn.get(), "RESET lock_timeout"));
            if (PQstatus(conn.get()) == CONNECTION_BAD)
                throw LostConnection(where, e, transactional, commit_sent, applied_before);
            if (PQtransactionStatus(conn.get()) != PQTRANS_IDLE)
                PQclear(PQexec(conn.get(), "ROLLBACK"));
            std::string recorded = "rolled back and recorded as failed";
            if (!transactional)
                recorded =
                    "statements before the failing one stay committed (keel:no-transaction); "
                    "recorded as failed";
            throw RecordFailure(conn, file, started, e, line, place.statement, recorded,
                                applied_before);
        }
    return std::chrono::steady_clock::now() - t0;
}

} // namespace keel::client
