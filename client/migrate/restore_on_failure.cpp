/*
 * client/migrate/restore_on_failure.cpp
 *   keel migrate --restore-on-failure (restore_on_failure.hpp).
 */
#include "migrate/restore_on_failure.hpp"

#include "migrate/runner.hpp"

namespace keel::client {

namespace {

/* NoTransactionFileCommitted: did statements of a failed keel:no-transaction file commit? */
bool NoTransactionFileCommitted(const Connection &conn, const RunFacts &facts) {
    const MigrationFile &file = *facts.failed_file;
    const Script &script = *facts.failed_script;
    if (script.statements.empty())
        return false;
    Result row = conn.ExecParams(
        "SELECT h.error_statement, h.error_line::text FROM keel.migration_history h "
        "WHERE h.id > $1::bigint AND h.version = $2::numeric AND h.status = 'failed' "
        "ORDER BY h.id DESC LIMIT 1",
        {facts.history_id_before, file.version});
    if (PQntuples(row.get()) == 0)
        return false; /* it failed before its first statement ran (keel.migration_start) */
    if (PQgetisnull(row.get(), 0, 0))
        return true; /* no statement recorded (keel 0.1.0): assume the worst */
    std::string statement = PQgetvalue(row.get(), 0, 0);
    const Statement &first = script.statements.front();
    bool line_in_first = PQgetisnull(row.get(), 0, 1) || script.statements.size() == 1 ||
                         std::stoul(PQgetvalue(row.get(), 0, 1)) < script.statements[1].line;
    return !(statement == Trimmed(first.text) && line_in_first);
}

} // namespace

std::string HistoryHighWater(const Connection &conn) {
    return conn.Scalar("SELECT coalesce(max(id), 0)::text FROM keel.migration_history");
}

std::string RestoreOnFailure(const Connection &conn, const std::filesystem::path &backup_dir,
                             const std::string &backup_id, const std::string &failure,
                             const RunFacts &facts, std::ostream &out) {
    std::string database = PQdb(conn.get());
    std::string by_hand = "keel restore " + backup_id + " --replace " + database;
    if (PQstatus(conn.get()) == CONNECTION_BAD)
        return failure + "; the connection was lost, so backup " + backup_id +
               " was not restored (" + by_hand + " restores it)";
    std::vector<std::string> committed;
    if (facts.applied > 0)
        committed.push_back(std::to_string(facts.applied) + " earlier file(s) of this run");
    if (facts.superseded > 0)
        committed.push_back(std::to_string(facts.superseded) + " superseded record(s)");
    try {
        if (facts.failed_file && facts.failed_script &&
            facts.failed_file->directives.no_transaction && NoTransactionFileCommitted(conn, facts))
            committed.push_back("statements of " + facts.failed_file->file_name +
                                " (keel:no-transaction) before the failing one");
    } catch (const ServerError &e) {
        committed.push_back("possibly statements of " + facts.failed_file->file_name +
                            " (cannot tell: " + e.OneLine() + ")");
    }
    if (committed.empty())
        return failure + "; nothing of this run was committed, so no restore was needed (backup " +
               backup_id + " kept)";
    std::string what;
    for (size_t i = 0; i < committed.size(); ++i)
        what += (i ? ", " : "") + committed[i];
    out << "restoring backup " << backup_id << " because this run committed " << what << "\n";
    RestoreInPlaceOptions options;
    options.confirm_database = database;
    options.take_migration_lock = false; /* migrate holds it on this connection */
    try {
        RestoreInPlaceResult r = RestoreInPlace(conn, backup_dir, backup_id, options, out);
        return failure + "; restored backup " + backup_id + " (it undid " + what +
               "; migrations now up to " + r.history_version + ")";
    } catch (const std::exception &e) {
        return failure + "; restoring backup " + backup_id + " failed too: " + e.what() +
               "; the database is as the failure left it (" + by_hand + " retries)";
    }
}

} // namespace keel::client
