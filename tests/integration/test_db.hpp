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
