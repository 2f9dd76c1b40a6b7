/*
 * client/trash/trash.cpp
 *   keel trash list / keel trash restore (see commands.hpp).
 */
#include "lib/commands.hpp"
#include "lib/server_role.hpp"

#include <nlohmann/json.hpp>

#include <iomanip>

namespace keel::client {

void TrashList(const Connection &conn, bool json, std::ostream &out) {
    Result res = conn.Exec(
        "SELECT id, kind, original_identity, size_bytes, row_count, dropped_at, dropped_by, "
        "coalesce(reason, ''), expires_at, "
        "CASE WHEN purged_at IS NOT NULL THEN 'purged' WHEN restored_at IS NOT NULL THEN "
        "'restored' WHEN expires_at <= pg_catalog.now() THEN 'expired' ELSE 'kept' END "
        "FROM keel.dropped_objects ORDER BY id");
    int n = PQntuples(res.get());
    ServerRole role = Probe(conn);
    if (json) {
        nlohmann::json entries = nlohmann::json::array();
        for (int i = 0; i < n; i++)
            entries.push_back({{"id", std::stoll(PQgetvalue(res.get(), i, 0))},
                               {"kind", PQgetvalue(res.get(), i, 1)},
                               {"original_identity", PQgetvalue(res.get(), i, 2)},
                               {"size_bytes", std::stoll(PQgetvalue(res.get(), i, 3))},
                               {"rows", std::stoll(PQgetvalue(res.get(), i, 4))},
                               {"dropped_at", PQgetvalue(res.get(), i, 5)},
                               {"dropped_by", PQgetvalue(res.get(), i, 6)},
                               {"reason", PQgetvalue(res.get(), i, 7)},
                               {"expires_at", PQgetvalue(res.get(), i, 8)},
                               {"state", PQgetvalue(res.get(), i, 9)}});
        out << nlohmann::json{{"server_role", role.Label()},
                              {"standby", role.in_recovery},
                              {"entries", entries}}
                   .dump(2)
            << "\n";
        return;
    }
    if (role.in_recovery)
        out << "standby: " << HostPort(conn)
            << " is in recovery; this is the recycle bin as far as it has replayed\n";
    if (n == 0) {
        out << "keel's recycle bin is empty\n";
        return;
    }
    out << std::left << std::setw(6) << "id" << std::setw(8) << "kind" << std::setw(40) << "object"
        << std::setw(10) << "state" << std::setw(12) << "rows"
        << "dropped by, reason\n";
    for (int i = 0; i < n; i++)
        out << std::left << std::setw(6) << PQgetvalue(res.get(), i, 0) << std::setw(8)
            << PQgetvalue(res.get(), i, 1) << std::setw(40) << PQgetvalue(res.get(), i, 2)
            << std::setw(10) << PQgetvalue(res.get(), i, 9) << std::setw(12)
            << PQgetvalue(res.get(), i, 4) << PQgetvalue(res.get(), i, 6) << ", "
            << PQgetvalue(res.get(), i, 7) << "\n";
}

void TrashRestore(const Connection &conn, const std::string &id, const std::string &new_name,
                  bool json, std::ostream &out) {
    RequireWritable(conn, "trash restore");
    if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos)
        throw CommandError(
            "trash restore: the entry id must be a number (keel trash list shows them)");
    std::optional<std::string> name;
    if (!new_name.empty())
        name = new_name;
    std::string done = conn.Scalar("SELECT keel.restore_dropped($1::bigint, $2)", {id, name});
    if (json)
        out << nlohmann::json{{"id", std::stoll(id)}, {"restored", done}}.dump(2) << "\n";
    else
        out << done << "\n";
}

} // namespace keel::client
