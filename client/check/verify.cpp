/*
 * client/check/verify.cpp
 *   keel verify: the live schema against expectations written down.
 *   --write FILE writes, from a database, every user table (not PostgreSQL's
 *   schemas, not keel's, not an extension's) with its columns (type, NOT
 *   NULL, default), indexes (pg_get_indexdef) and constraints
 *   (pg_get_constraintdef), as JSON sorted by name; --expect FILE compares a
 *   database with such a file and reports every table, column, index and
 *   constraint that is missing, unexpected or different.
 *   Rule: seed 002 ("no migration required" was checked by eye); issue 12.
 */
#include "lib/commands.hpp"
#include "lib/server_role.hpp"

#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <set>

namespace keel::client {

namespace {

using nlohmann::json;

/* LiveSchema reads the user tables of the database as the expectations format. */
json LiveSchema(const Connection &conn) {
    const char *user_tables =
        "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', "
        "'pg_toast', 'keel', 'keel_trash') AND n.nspname NOT LIKE 'pg_temp_%' "
        "AND n.nspname NOT LIKE 'pg_toast_temp_%' AND NOT EXISTS (SELECT 1 FROM "
        "pg_catalog.pg_depend d "
        "WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid "
        "AND d.deptype = 'e') ";
    json tables = json::object();
    Result t = conn.Exec(std::string("SELECT c.oid, pg_catalog.quote_ident(n.nspname) || '.' || "
                                     "pg_catalog.quote_ident(c.relname) ") +
                         user_tables + "ORDER BY 2");
    for (int r = 0; r < PQntuples(t.get()); r++) {
        std::string oid = PQgetvalue(t.get(), r, 0);
        std::string name = PQgetvalue(t.get(), r, 1);
        json table = {{"columns", json::object()},
                      {"indexes", json::object()},
                      {"constraints", json::object()}};
        Result cols = conn.ExecParams(
            "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, "
            "pg_catalog.pg_get_expr(d.adbin, d.adrelid) FROM pg_catalog.pg_attribute a "
            "LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum "
            "WHERE a.attrelid = $1::pg_catalog.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attname",
            {oid});
        for (int i = 0; i < PQntuples(cols.get()); i++) {
            json col = {{"type", PQgetvalue(cols.get(), i, 1)},
                        {"not_null", std::string(PQgetvalue(cols.get(), i, 2)) == "t"}};
            col["default"] =
                PQgetisnull(cols.get(), i, 3) ? json(nullptr) : json(PQgetvalue(cols.get(), i, 3));
            table["columns"][PQgetvalue(cols.get(), i, 0)] = col;
        }
        Result idx = conn.ExecParams(
            "SELECT c.relname, pg_catalog.pg_get_indexdef(i.indexrelid) FROM pg_catalog.pg_index i "
            "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = "
            "$1::pg_catalog.oid ORDER BY 1",
            {oid});
        for (int i = 0; i < PQntuples(idx.get()); i++)
            table["indexes"][PQgetvalue(idx.get(), i, 0)] = PQgetvalue(idx.get(), i, 1);
        Result con = conn.ExecParams(
            "SELECT conname, pg_catalog.pg_get_constraintdef(oid) FROM pg_catalog.pg_constraint "
            "WHERE conrelid = $1::pg_catalog.oid ORDER BY 1",
            {oid});
        for (int i = 0; i < PQntuples(con.get()); i++)
            table["constraints"][PQgetvalue(con.get(), i, 0)] = PQgetvalue(con.get(), i, 1);
        tables[name] = table;
    }
    return {{"format", "keel verify 1"}, {"tables", tables}};
}

void Diff(const std::string &what, const json &expected, const json &live,
          std::vector<std::string> *out) {
    for (auto it = expected.begin(); it != expected.end(); ++it)
        if (!live.contains(it.key()))
            out->push_back("missing " + what + it.key() + ": expected " + it.value().dump());
        else if (live[it.key()] != it.value())
            out->push_back("different " + what + it.key() + ": expected " + it.value().dump() +
                           ", found " + live[it.key()].dump());
    for (auto it = live.begin(); it != live.end(); ++it)
        if (!expected.contains(it.key()))
            out->push_back("unexpected " + what + it.key() + ": " + it.value().dump());
}

} // namespace

bool Verify(const Connection &conn, const std::string &expect_file, const std::string &write_file,
            bool json_out, std::ostream &out) {
    if (expect_file.empty() && write_file.empty())
        throw CommandError("verify: pass --expect FILE or --write FILE");
    json live = LiveSchema(conn);
    if (!write_file.empty()) {
        std::ofstream f(write_file);
        if (!f)
            throw CommandError("verify: cannot write " + write_file);
        f << live.dump(2) << "\n";
        out << "wrote the expectations of " << live["tables"].size() << " table(s) to "
            << write_file << "\n";
        return true;
    }
    std::ifstream f(expect_file);
    if (!f)
        throw CommandError("verify: cannot read " + expect_file);
    json expected = json::parse(f, nullptr, false);
    if (expected.is_discarded() || !expected.contains("tables") || !expected["tables"].is_object())
        throw CommandError("verify: " + expect_file +
                           " is not a keel verify file (write one with keel verify --write)");
    std::vector<std::string> diffs;
    const json &et = expected["tables"];
    const json &lt = live["tables"];
    for (auto it = et.begin(); it != et.end(); ++it) {
        if (!lt.contains(it.key())) {
            diffs.push_back("missing table " + it.key());
            continue;
        }
        for (const char *part : {"columns", "indexes", "constraints"})
            Diff(std::string(part).substr(0, std::string(part).size() - (part[0] == 'i' ? 2 : 1)) +
                     " " + it.key() + ".",
                 it.value().value(part, json::object()), lt[it.key()].value(part, json::object()),
                 &diffs);
    }
    for (auto it = lt.begin(); it != lt.end(); ++it)
        if (!et.contains(it.key()))
            diffs.push_back("unexpected table " + it.key());
    std::string role = Probe(conn).Label();
    if (json_out) {
        out << json{{"database", conn.Target()},
                    {"server_role", role},
                    {"expectations", expect_file},
                    {"differences", diffs}}
                   .dump(2)
            << "\n";
        return diffs.empty();
    }
    out << "database: " << conn.Target() << "  [" << role << "]\n";
    for (const auto &d : diffs)
        out << d << "\n";
    if (diffs.empty())
        out << "the schema matches " << expect_file << " (" << lt.size() << " table(s))\n";
    else
        out << diffs.size() << " difference(s) from " << expect_file << "\n";
    return diffs.empty();
}

} // namespace keel::client
