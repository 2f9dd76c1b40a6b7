/*
 * client/check/validate.cpp
 *   keel validate: the integrity checks the seeds ask for after migrating
 *   ("validate data integrity"), on the whole database, read-only:
 *     1. invalid indexes (pg_index.indisvalid false: what a failed CREATE
 *        INDEX CONCURRENTLY leaves behind);
 *     2. NOT VALID CHECK and FOREIGN KEY constraints (pg_constraint.convalidated);
 *     3. foreign-key orphans: child rows whose key has no parent row (MATCH
 *        SIMPLE: a key with a NULL column is not checked), counted per
 *        constraint, NOT VALID ones included;
 *     4. CHECK constraints that existing rows violate (the expression is
 *        false, not NULL), NOT VALID ones included;
 *     5. keel's own invariants: keel.verify_credits().
 *   Every check skips PostgreSQL's own schemas, and a check the role may not
 *   run (no SELECT, no EXECUTE) is reported as skipped, never as clean.
 *   Rule: seed 001/002 "validate data integrity afterwards"; PostgreSQL docs
 *   ALTER TABLE ... VALIDATE CONSTRAINT and CREATE INDEX "Building Indexes
 *   Concurrently" (a failed build leaves an INVALID index).
 */
#include "lib/commands.hpp"
#include "lib/server_role.hpp"

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace keel::client {

namespace {

const char *kUserRelations =
    "n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') "
    "AND n.nspname NOT LIKE 'pg_temp_%' AND n.nspname NOT LIKE 'pg_toast_temp_%'";

struct Finding {
    std::string
        check; /* invalid_index, not_valid_constraint, fk_orphans, check_violation, credits */
    std::string object; /* the index, constraint or account */
    std::string table;
    long long rows = 0; /* offending rows, where counted */
    std::string detail;
};

struct Skipped {
    std::string check;
    std::string object;
    std::string why;
};

} // namespace

bool Validate(const Connection &conn, bool json, std::ostream &out) {
    std::vector<Finding> findings;
    std::vector<Skipped> skipped;

    /* 1. invalid indexes */
    Result idx =
        conn.Exec(std::string("SELECT i.indexrelid::regclass::text, i.indrelid::regclass::text "
                              "FROM pg_catalog.pg_index i "
                              "JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid "
                              "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                              "WHERE NOT i.indisvalid AND ") +
                  kUserRelations + " ORDER BY 1");
    for (int r = 0; r < PQntuples(idx.get()); r++)
        findings.push_back(
            {"invalid_index", PQgetvalue(idx.get(), r, 0), PQgetvalue(idx.get(), r, 1), 0,
             "a failed CREATE INDEX CONCURRENTLY leaves it; it is maintained on every "
             "write but never used: REINDEX INDEX CONCURRENTLY it once the cause "
             "is fixed"});

    /* 2. NOT VALID constraints */
    Result nv =
        conn.Exec(std::string("SELECT con.conname, con.conrelid::regclass::text, "
                              "CASE con.contype WHEN 'f' THEN 'foreign key' ELSE 'check' END "
                              "FROM pg_catalog.pg_constraint con "
                              "JOIN pg_catalog.pg_class c ON c.oid = con.conrelid "
                              "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                              "WHERE NOT con.convalidated AND con.contype IN ('c', 'f') AND ") +
                  kUserRelations + " ORDER BY 2, 1");
    for (int r = 0; r < PQntuples(nv.get()); r++)
        findings.push_back({"not_valid_constraint", PQgetvalue(nv.get(), r, 0),
                            PQgetvalue(nv.get(), r, 1), 0,
                            std::string(PQgetvalue(nv.get(), r, 2)) +
                                " constraint added NOT VALID and never validated: ALTER TABLE " +
                                PQgetvalue(nv.get(), r, 1) + " VALIDATE CONSTRAINT " +
                                PQgetvalue(nv.get(), r, 0)});

    /* 3. foreign-key orphans and 4. CHECK violations: one counting query per
     * constraint, built on the server from the catalog (quote_ident, regclass). */
    Result q = conn.Exec(
        std::string(
            "SELECT 'fk_orphans', con.conname, con.conrelid::regclass::text, "
            "pg_catalog.format('SELECT pg_catalog.count(*) FROM ONLY %s c WHERE %s AND NOT EXISTS "
            "(SELECT 1 FROM %s p WHERE %s)', con.conrelid::regclass, "
            "pg_catalog.string_agg(pg_catalog.format('c.%I IS NOT NULL', ca.attname), ' AND '), "
            "con.confrelid::regclass, "
            "pg_catalog.string_agg(pg_catalog.format('p.%I = c.%I', pa.attname, ca.attname), ' AND "
            "')), "
            "'rows whose key has no row in ' || con.confrelid::regclass::text "
            "FROM pg_catalog.pg_constraint con "
            "JOIN pg_catalog.pg_class c ON c.oid = con.conrelid "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "CROSS JOIN LATERAL unnest(con.conkey, con.confkey) AS k(ck, pk) "
            "JOIN pg_catalog.pg_attribute ca ON ca.attrelid = con.conrelid AND ca.attnum = k.ck "
            "JOIN pg_catalog.pg_attribute pa ON pa.attrelid = con.confrelid AND pa.attnum = k.pk "
            "WHERE con.contype = 'f' AND con.conparentid = 0 AND ") +
        kUserRelations +
        " GROUP BY con.oid, con.conname, con.conrelid, con.confrelid "
        "UNION ALL "
        "SELECT 'check_violation', con.conname, con.conrelid::regclass::text, "
        "pg_catalog.format('SELECT pg_catalog.count(*) FROM %s WHERE (%s) IS FALSE', "
        "con.conrelid::regclass, pg_catalog.pg_get_expr(con.conbin, con.conrelid)), "
        "'rows for which ' || pg_catalog.pg_get_expr(con.conbin, con.conrelid) || ' is false' "
        "FROM pg_catalog.pg_constraint con "
        "JOIN pg_catalog.pg_class c ON c.oid = con.conrelid "
        "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
        "WHERE con.contype = 'c' AND con.conislocal AND c.relkind IN ('r', 'p') AND " +
        kUserRelations + " ORDER BY 1, 3, 2");
    for (int r = 0; r < PQntuples(q.get()); r++) {
        std::string check = PQgetvalue(q.get(), r, 0);
        std::string name = PQgetvalue(q.get(), r, 1);
        std::string table = PQgetvalue(q.get(), r, 2);
        try {
            long long n = std::stoll(conn.Scalar(PQgetvalue(q.get(), r, 3)));
            if (n > 0)
                findings.push_back({check, name, table, n, PQgetvalue(q.get(), r, 4)});
        } catch (const ServerError &e) {
            skipped.push_back({check, table + " " + name, e.OneLine()});
        }
    }

    /* 5. keel's own invariants */
    Result keel =
        conn.Exec("SELECT pg_catalog.to_regprocedure('keel.verify_credits()') IS NOT NULL, "
                  "pg_catalog.has_function_privilege(pg_catalog.to_regprocedure("
                  "'keel.verify_credits()'), 'EXECUTE')");
    bool have_keel = std::string(PQgetvalue(keel.get(), 0, 0)) == "t";
    if (!have_keel)
        skipped.push_back({"credits", "keel.verify_credits()", "keel is not installed"});
    else if (std::string(PQgetvalue(keel.get(), 0, 1)) != "t")
        skipped.push_back(
            {"credits", "keel.verify_credits()",
             "no EXECUTE on keel.verify_credits() (keel install --grant-credits-admin)"});
    else {
        Result v = conn.Exec("SELECT account::text, credit_type, problem, detail "
                             "FROM keel.verify_credits() ORDER BY 1, 2, 3");
        for (int r = 0; r < PQntuples(v.get()); r++)
            findings.push_back(
                {"credits", PQgetvalue(v.get(), r, 0), PQgetvalue(v.get(), r, 1), 0,
                 std::string(PQgetvalue(v.get(), r, 2)) + ": " + PQgetvalue(v.get(), r, 3)});
    }

    std::string role = Probe(conn).Label();
    if (json) {
        nlohmann::json f = nlohmann::json::array(), s = nlohmann::json::array();
        for (const Finding &x : findings)
            f.push_back({{"check", x.check},
                         {"object", x.object},
                         {"table", x.table},
                         {"rows", x.rows},
                         {"detail", x.detail}});
        for (const Skipped &x : skipped)
            s.push_back({{"check", x.check}, {"object", x.object}, {"why", x.why}});
        out << nlohmann::json{{"database", conn.Target()},
                              {"server_role", role},
                              {"problems", findings.size()},
                              {"findings", f},
                              {"skipped", s}}
                   .dump(2)
            << "\n";
        return findings.empty();
    }
    out << "database: " << conn.Target() << "  [" << role << "]\n";
    for (const Finding &x : findings) {
        out << x.check << "  " << x.object;
        if (!x.table.empty() && x.check != "credits")
            out << " on " << x.table;
        if (x.check == "credits")
            out << " " << x.table;
        if (x.rows > 0)
            out << "  " << x.rows << " row(s)";
        out << "  " << x.detail << "\n";
    }
    for (const Skipped &x : skipped)
        out << "skipped  " << x.check << "  " << x.object << "  " << x.why << "\n";
    if (findings.empty())
        out << "valid: no invalid index, NOT VALID constraint, orphan row, CHECK violation or "
               "credit "
               "inconsistency"
            << (skipped.empty() ? "" : " (some checks skipped, see above)") << "\n";
    else
        out << findings.size() << " problem(s) found\n";
    return findings.empty();
}

} // namespace keel::client
