/*
 * client/lib/server_role.cpp
 *   See server_role.hpp.
 */
#include "lib/server_role.hpp"

#include "lib/commands.hpp"

namespace keel::client {

std::string ServerRole::Label() const {
    if (in_recovery)
        return "standby (in recovery, read-only)";
    if (read_only)
        return "read-only session";
    return "primary";
}

ServerRole Probe(const Connection &conn) {
    Result res = conn.Exec("SELECT pg_catalog.pg_is_in_recovery(), "
                           "pg_catalog.current_setting('transaction_read_only')");
    ServerRole role;
    role.in_recovery = std::string(PQgetvalue(res.get(), 0, 0)) == "t";
    role.read_only = std::string(PQgetvalue(res.get(), 0, 1)) == "on";
    return role;
}

std::string HostPort(const Connection &conn) {
    const char *host = PQhost(conn.get());
    std::string h = host && *host ? host : "(default)";
    if (!h.empty() && h.front() == '/')
        h = "[" + h + "]";
    return h + ":" + PQport(conn.get());
}

void RequireWritable(const Connection &conn, const std::string &command) {
    ServerRole role = Probe(conn);
    if (role.writable())
        return;
    std::string why = role.in_recovery
                          ? "is a standby (pg_is_in_recovery() is true)"
                          : "gives this session read-only transactions (transaction_read_only "
                            "is on)";
    throw CommandError(command + ": refused: the server at " + HostPort(conn) + " " + why +
                       "; nothing was run. HINT: connect to the primary, or add "
                       "target_session_attrs=read-write to a multi-host conninfo");
}

} // namespace keel::client
