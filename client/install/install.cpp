/*
 * client/install/install.cpp
 *   keel install (see commands.hpp).
 */
#include "lib/commands.hpp"
#include "lib/server_role.hpp"

namespace keel::client {

void Install(const Connection &conn, std::ostream &out) {
    RequireWritable(conn, "install");
    Result avail = conn.Exec("SELECT default_version, installed_version "
                             "FROM pg_catalog.pg_available_extensions WHERE name = 'keel'");
    if (PQntuples(avail.get()) == 0)
        throw CommandError("the keel extension is not available on the server: install its files "
                           "there first (make -f Makefile.pgxs install)");
    std::string available = PQgetvalue(avail.get(), 0, 0);
    bool installed = !PQgetisnull(avail.get(), 0, 1);
    std::string current = installed ? PQgetvalue(avail.get(), 0, 1) : "";

    if (!installed) {
        conn.Exec("CREATE EXTENSION keel");
        out << "installed keel "
            << conn.Scalar("SELECT extversion FROM pg_catalog.pg_extension "
                           "WHERE extname = 'keel'")
            << "\n";
        return;
    }
    if (current == available) {
        out << "keel " << current << " is already installed; nothing to do\n";
        return;
    }
    /* ALTER EXTENSION UPDATE follows the upgrade scripts to default_version; it
     * fails clearly (no path) when the installed version is newer. */
    conn.Exec("ALTER EXTENSION keel UPDATE");
    std::string now =
        conn.Scalar("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'keel'");
    if (now == current)
        out << "keel " << current << " is installed; the server offers " << available
            << " and no update path leads there; nothing done\n";
    else
        out << "updated keel from " << current << " to " << now << "\n";
}

void GrantMigrations(const Connection &conn, const std::vector<std::string> &roles,
                     std::ostream &out) {
    static const char *const kFunctions[] = {
        "keel.migration_lock()",
        "keel.migration_unlock()",
        "keel.migration_applied(numeric, text, text, timestamptz)",
        "keel.migration_applied(numeric, text, text, timestamptz, text)",
        "keel.migration_failed(numeric, text, text, timestamptz, text)",
        "keel.migration_failed(numeric, text, text, timestamptz, text, text, integer, text)",
        "keel.migration_superseded(numeric, text, text, numeric)",
        "keel.migration_baselined(numeric, text, text)",
        "keel.migration_baselined(numeric, text, text, text)",
        "keel.migration_repaired(numeric, text, text, text)",
        "keel.migration_repaired(numeric, text, text, text, text)",
        "keel.migration_reverted(numeric, text, text, timestamptz)",
        "keel.migration_step(numeric, timestamptz, integer, integer, text)"};
    for (const std::string &role : roles) {
        if (conn.Scalar("SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname = $1", {role}) ==
            "0")
            throw CommandError("install: role \"" + role +
                               "\" does not exist; create it first (keel never creates roles)");
        std::string quoted = conn.Scalar("SELECT pg_catalog.quote_ident($1)", {role});
        std::string functions;
        for (const char *f : kFunctions)
            if (conn.Scalar("SELECT pg_catalog.to_regprocedure($1) IS NOT NULL", {f}) == "t")
                functions += std::string(functions.empty() ? "" : ", ") + f;
        conn.Exec("GRANT EXECUTE ON FUNCTION " + functions + " TO " + quoted);
        out << "granted running migrations to " << role << "\n";
    }
}

void GrantCredits(const Connection &conn, const std::vector<std::string> &roles, bool admin,
                  std::ostream &out) {
    static const char *const kApp[] = {"keel.get_available_credits(uuid, text)",
                                       "keel.consume_credits(uuid, text, bigint, text, text)",
                                       "keel.consume_specific_credits(uuid, text, integer, text)",
                                       "keel.consume_credits_batch(uuid[], text[], bigint[], "
                                       "text[], text, boolean)",
                                       "keel.hold_credits(uuid, text, bigint, timestamptz, text)",
                                       "keel.settle_hold(uuid, bigint)",
                                       "keel.settle_hold(uuid, uuid, bigint)",
                                       "keel.release_hold(uuid)",
                                       "keel.release_hold(uuid, uuid)"};
    static const char *const kAdmin[] = {
        "keel.allocate_plan_credits(uuid, text, bigint)",
        "keel.verify_credits()",
        "keel.grant_credits(uuid, text, bigint, timestamptz, integer, text, text)",
        "keel.expire_grants()",
        "keel.refund_credits(bigint, bigint, text, text)",
        "keel.refund_credits_by_key(uuid, text, bigint, text, text)",
        "keel.expire_holds()",
        "keel.migrate_unified_pool(text, regclass, name, name, name, integer)"};
    for (const std::string &role : roles) {
        if (conn.Scalar("SELECT count(*) FROM pg_catalog.pg_roles WHERE rolname = $1", {role}) ==
            "0")
            throw CommandError("install: role \"" + role +
                               "\" does not exist; create it first (keel never creates roles)");
        std::string quoted = conn.Scalar("SELECT pg_catalog.quote_ident($1)", {role});
        std::string functions;
        for (const char *f : kApp)
            functions += std::string(functions.empty() ? "" : ", ") + f;
        if (admin)
            for (const char *f : kAdmin)
                functions += std::string(", ") + f;
        conn.Exec("GRANT EXECUTE ON FUNCTION " + functions + " TO " + quoted);
        out << "granted " << (admin ? "credit administration" : "credit use") << " to " << role
            << "\n";
    }
}

} // namespace keel::client
