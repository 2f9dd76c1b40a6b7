/*
 * client/lib/connection.hpp
 *   The client's libpq connection: chosen the libpq way (DESIGN.md, "Client":
 *   --db conninfo or URI, else DATABASE_URL, else the PG* environment and
 *   service files), and server errors kept with their fields so keel can
 *   print message, DETAIL, HINT and map the statement position to a line.
 */
#pragma once

#include <libpq-fe.h>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace keel::client {

/* ServerError is an error result from PostgreSQL (or a lost connection). */
class ServerError : public std::runtime_error {
  public:
    ServerError(std::string sqlstate, std::string message, std::string detail, std::string hint,
                long position, std::string context)
        : std::runtime_error(message), sqlstate(std::move(sqlstate)), message(std::move(message)),
          detail(std::move(detail)), hint(std::move(hint)), position(position),
          context(std::move(context)) {}
    std::string sqlstate; /* "" when libpq itself failed */
    std::string message;  /* primary message */
    std::string detail;
    std::string hint;
    long position; /* PG_DIAG_STATEMENT_POSITION, 1-based characters; 0 when absent */
    std::string context;

    /* OneLine joins message, DETAIL and HINT on one line (newlines become spaces). */
    std::string OneLine() const;
};

using Result = std::unique_ptr<PGresult, decltype(&PQclear)>;

/*
 * ResolveConninfo returns what keel passes to libpq as dbname (expanded as a
 * conninfo string or URI): db_option if not empty, else $DATABASE_URL if set
 * and not empty, else "" (libpq then uses PG* variables and service files).
 */
std::string ResolveConninfo(const std::string &db_option);

/* Connection owns one PGconn. */
class Connection {
  public:
    /*
     * Open connects with ResolveConninfo(db_option), application_name keel
     * (unless given) and client_encoding UTF8. Throws std::runtime_error with
     * libpq's message, every password in it redacted (redact.hpp: libpq
     * quotes a malformed URI whole).
     */
    static Connection Open(const std::string &db_option);

    PGconn *get() const { return conn_.get(); }

    /* Exec runs sql (simple protocol); throws ServerError unless it succeeded. */
    Result Exec(const std::string &sql) const;

    /* ExecParams runs sql with text parameters (nullopt = NULL); throws ServerError. */
    Result ExecParams(const std::string &sql,
                      const std::vector<std::optional<std::string>> &params) const;

    /*
     * CopyIn runs sql, a COPY ... FROM STDIN, and sends data (text lines) as
     * its input; throws ServerError unless the COPY succeeded (a bad data line
     * is the server's error, with its CONTEXT naming the line).
     */
    void CopyIn(const std::string &sql, const std::string &data) const;

    /*
     * CopyIn with the data in pieces: next_piece appends the next piece to
     * its argument (an emptied string) and returns false after the last one,
     * so a COPY of any size passes through bounded memory (streamed files,
     * sql_stream.hpp). An exception from next_piece ends the COPY with an
     * error (PQputCopyEnd) and is rethrown once the server has answered.
     */
    void CopyIn(const std::string &sql, const std::function<bool(std::string &)> &next_piece) const;

    /* Scalar returns the first column of the first row ("" for NULL); throws if no row. */
    std::string Scalar(const std::string &sql,
                       const std::vector<std::optional<std::string>> &params = {}) const;

    /* Target describes the server as host/port/dbname/user (never the password). */
    std::string Target() const;

    /*
     * Prepared returns the name of a server-side prepared statement for sql
     * (its parameter types from its casts, as ExecParams), preparing it with
     * PQprepare on first use in this session: keel migrate's per-file
     * bookkeeping calls then cost no parse. Throws ServerError.
     * IsPrepared: Prepared(sql) would not go to the server.
     * ForgetPrepared drops the names (after DEALLOCATE ALL or DISCARD ALL in
     * a migration, the server answers 26000 for them).
     */
    std::string Prepared(const std::string &sql) const;
    bool IsPrepared(const std::string &sql) const { return prepared_.count(sql) > 0; }
    void ForgetPrepared() const { prepared_.clear(); }

  private:
    explicit Connection(PGconn *conn) : conn_(conn, &PQfinish) {}
    std::unique_ptr<PGconn, decltype(&PQfinish)> conn_;
    mutable std::map<std::string, std::string> prepared_; /* sql -> statement name */
};

/* ResultError builds a ServerError from a failed result (or the connection if res is null). */
ServerError ResultError(PGconn *conn, const PGresult *res);

} // namespace keel::client
