/*
 * client/lib/install.cpp
 *   keel install (see commands.hpp).
 */
#include "lib/commands.hpp"

namespace keel::client {

void Install(const Connection &conn, std::ostream &out) {
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

} // namespace keel::client
