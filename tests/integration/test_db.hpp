/*
 * tests/integration/test_db.hpp
 *   Helpers for integration tests against the throwaway cluster that
 *   scripts/test starts (pg_virtualenv sets PGHOST, PGPORT, PGUSER, PGPASSWORD).
 *   Each test suite makes its own scratch database so suites never share state.
 */
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace keel_test {

using Conn = std::unique_ptr<PGconn, decltype(&PQfinish)>;
using Result = std::unique_ptr<PGresult, decltype(&PQclear)>;

/* Connect opens a connection to dbname (other settings from the PG* environment). */
inline Conn Connect(const std::string &dbname) {
    std::string conninfo = "dbname=" + dbname;
    Conn conn(PQconnectdb(conninfo.c_str()), &PQfinish);
    if (PQstatus(conn.get()) != CONNECTION_OK)
        throw std::runtime_error("cannot connect to " + dbname + ": " + PQerrorMessage(conn.get()));
    return conn;
}

/* Exec runs sql and throws unless it succeeded; returns the result. */
inline Result Exec(PGconn *conn, const std::string &sql) {
    Result res(PQexec(conn, sql.c_str()), &PQclear);
    auto status = PQresultStatus(res.get());
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        throw std::runtime_error("query failed: " + sql + ": " + PQerrorMessage(conn));
    return res;
}

/* ScalarText runs sql and returns the first column of its first row. */
inline std::string ScalarText(PGconn *conn, const std::string &sql) {
    Result res = Exec(conn, sql);
    if (PQntuples(res.get()) < 1)
        throw std::runtime_error("no row from: " + sql);
    return PQgetvalue(res.get(), 0, 0);
}

/* Outcome of one statement that may fail: ok with the first column of its
 * first row in value ("" when it returns no row), else its SQLSTATE ("" when
 * the server sent none) and the connection's error message. */
struct Outcome {
    bool ok = false;
    std::string value;
    std::string sqlstate;
    std::string message;
};

/*
 * Try runs sql and never throws: with params, as one statement whose $1, $2,
 * ... are the texts given (PQexecParams); without, as PQexec does (several
 * statements allowed).
 */
inline Outcome Try(PGconn *conn, const std::string &sql,
                   const std::vector<std::string> &params = {}) {
    std::vector<const char *> values;
    for (const auto &p : params)
        values.push_back(p.c_str());
    Result res(params.empty() ? PQexec(conn, sql.c_str())
                              : PQexecParams(conn, sql.c_str(), static_cast<int>(values.size()),
                                             nullptr, values.data(), nullptr, nullptr, 0),
               &PQclear);
    Outcome out;
    ExecStatusType status = PQresultStatus(res.get());
    if (status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK) {
        out.ok = true;
        if (PQntuples(res.get()) > 0 && PQnfields(res.get()) > 0)
            out.value = PQgetvalue(res.get(), 0, 0);
    } else {
        const char *state = PQresultErrorField(res.get(), PG_DIAG_SQLSTATE);
        out.sqlstate = state ? state : "";
        out.message = PQerrorMessage(conn);
    }
    return out;
}

/* Failure is "" when o succeeded, else its SQLSTATE and message, for
 * assertions that print why a statement failed. */
inline std::string Failure(const Outcome &o) {
    return o.ok ? "" : (o.sqlstate.empty() ? "?????" : o.sqlstate) + ": " + o.message;
}

/*
 * ScratchDatabase drops and recreates database `name` (connected through the
 * postgres database) and returns its conninfo fragment "dbname=<name>".
 * With install_keel the extension is created in it.
 */
inline std::string ScratchDatabase(const std::string &name, bool install_keel) {
    {
        Conn admin = Connect("postgres");
        Exec(admin.get(), "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
        Exec(admin.get(), "CREATE DATABASE " + name);
    }
    if (install_keel) {
        Conn conn = Connect(name);
        Exec(conn.get(), "CREATE EXTENSION keel");
    }
    return "dbname=" + name;
}

} // namespace keel_test
