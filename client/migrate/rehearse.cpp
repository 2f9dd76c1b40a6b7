/*
 * client/migrate/rehearse.cpp
 *   keel rehearse (= migrate --dry-run): the pending files in one rolled-back
 *   transaction, every error and guard verdict collected, and the locks each
 *   statement takes (issue 12, "rehearse").
 */
#include "lib/commands.hpp"
#include "lib/report.hpp"
#include "lib/server_role.hpp"
#include "lib/sql_script.hpp"
#include "migrate/runner.hpp"
#include "migrate/verdicts.hpp"

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <map>
#include <regex>
#include <set>

namespace keel::client {

namespace {

/* HeldLock is one relation lock this backend holds. */
struct HeldLock {
    std::string oid, relation, mode;
};

/*
 * HeldLocks returns this backend's granted relation-level locks on user
 * relations (oid >= 16384, FirstNormalObjectId: the catalogs a statement
 * reads are left out), keyed by oid and mode. Locks are held until the
 * transaction ends, so the keys new since the previous call are the ones
 * the statements in between took (Eugene's trace does the same).
 */
std::map<std::string, HeldLock> HeldLocks(const Connection &conn) {
    Result res =
        conn.Exec("SELECT l.relation::text, coalesce(pg_catalog.textin(pg_catalog.regclassout("
                  "l.relation)), l.relation::text), l.mode FROM pg_catalog.pg_locks l "
                  "WHERE l.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid() AND l.granted "
                  "AND l.locktype OPERATOR(pg_catalog.=) 'relation' "
                  "AND l.relation OPERATOR(pg_catalog.>=) 16384::oid");
    std::map<std::string, HeldLock> out;
    for (int i = 0; i < PQntuples(res.get()); ++i) {
        HeldLock l{PQgetvalue(res.get(), i, 0), PQgetvalue(res.get(), i, 1),
                   PQgetvalue(res.get(), i, 2)};
        out[l.oid + "/" + l.mode] = l;
    }
    return out;
}

/* Relation is a user relation there before the rehearsal. */
struct Relation {
    std::string label;  /* as regclass prints it (qualified unless on the search_path) */
    std::string name;   /* schema-qualified, quoted as needed */
    bool table;         /* a table, partitioned table or materialized view */
    double reltuples;   /* pg_class.reltuples: -1 when never vacuumed or analyzed */
    long long relpages; /* pg_class.relpages */
};

/* Relations reads pg_class (no lock on the relations themselves) at the rehearsal's start. */
std::map<std::string, Relation> Relations(const Connection &conn) {
    Result res = conn.Exec(
        "SELECT c.oid::text, pg_catalog.textin(pg_catalog.regclassout(c.oid)), "
        "pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) "
        "pg_catalog.quote_ident(c.relname), c.relkind IN ('r', 'p', 'm'), c.reltuples::text, "
        "c.relpages::text FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid "
        "OPERATOR(pg_catalog.=) c.relnamespace WHERE c.oid OPERATOR(pg_catalog.>=) 16384::oid");
    std::map<std::string, Relation> out;
    for (int i = 0; i < PQntuples(res.get()); ++i)
        out[PQgetvalue(res.get(), i, 0)] = {PQgetvalue(res.get(), i, 1),
                                            PQgetvalue(res.get(), i, 2),
                                            std::string(PQgetvalue(res.get(), i, 3)) == "t",
                                            std::strtod(PQgetvalue(res.get(), i, 4), nullptr),
                                            std::strtoll(PQgetvalue(res.get(), i, 5), nullptr, 10)};
    return out;
}

/* Notices collects the WARNINGs the server sends while a statement runs (the guard's level warn).
 */
class Notices {
  public:
    explicit Notices(const Connection &conn) : conn_(conn) {
        old_ = PQsetNoticeReceiver(conn.get(), &Notices::Receive, this);
    }
    /* libpq's default receiver ignores its argument (it passes the notice on to the processor) */
    ~Notices() { PQsetNoticeReceiver(conn_.get(), old_, nullptr); }
    Notices(const Notices &) = delete;
    Notices &operator=(const Notices &) = delete;
    /* Take returns the warnings since the last call. */
    std::vector<std::string> Take() { return std::move(warnings_); }

  private:
    static void Receive(void *arg, const PGresult *res) {
        const char *severity = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
        const char *message = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        if (severity && std::string(severity) == "WARNING" && message)
            static_cast<Notices *>(arg)->warnings_.push_back(message);
    }
    const Connection &conn_;
    PQnoticeReceiver old_ = nullptr;
    std::vector<std::string> warnings_;
};

/* GuardRules returns the rule names of a KL001 message "... (rule drop-table, truncate)". */
std::vector<std::string> GuardRules(const std::string &message) {
    std::vector<std::string> out;
    static const std::regex kRule(R"re(\(rule ([a-z0-9, -]+)\))re");
    std::smatch m;
    if (!std::regex_search(message, m, kRule))
        return out;
    std::string list = m[1];
    size_t at = 0;
    while (at < list.size()) {
        size_t comma = list.find(',', at);
        std::string rule =
            Trimmed(list.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
        if (!rule.empty())
            out.push_back(rule);
        if (comma == std::string::npos)
            break;
        at = comma + 1;
    }
    return out;
}

/* Joined is rules joined by ", ". */
std::string Joined(const std::vector<std::string> &rules) {
    std::string out;
    for (const auto &r : rules)
        out += (out.empty() ? "" : ", ") + r;
    return out;
}

/* Rows describes a reltuples estimate. */
std::string Rows(double reltuples) {
    if (reltuples < 0)
        return "row estimate unknown (never vacuumed or analyzed)";
    char buf[64];
    std::snprintf(buf, sizeof buf, "~%.0f rows", reltuples);
    return buf;
}

} // namespace

/*
 * Rehearse runs every pending transactional file, in order, inside one
 * transaction that is then rolled back: nothing changes (except the guard's
 * durable 'blocked' rows in keel.guard_audit for what it refuses, docs/guard.md).
 *
 * Each file runs inside a savepoint and each statement inside one of its
 * own, so an error is recorded (file:line, message, SQLSTATE; a guard
 * refusal, KL001, with its rule), rolled back to the statement's savepoint,
 * and the rehearsal goes on with the next statement of the same file and
 * then the next files: every error is reported, not only the first. Later
 * statements may fail as a consequence of an earlier failure; they are
 * reported too. A file's own SAVEPOINT / RELEASE / ROLLBACK TO run bare (a
 * savepoint of keel's around them would change what they mean); when one of
 * them fails, the file is rolled back to its start and its remaining
 * statements are reported as not run.
 *
 * What the rehearsal cannot see at run time comes from the static check
 * (migrate/verdicts.hpp): the guard's checks at COMMIT (a dropped view,
 * function, index, constraint ... not re-created) never run, since the
 * rehearsal never commits; and a file's -- keel:allow-destructive
 * break-glass lasts until the transaction ends, so in a rehearsal it would
 * also cover the later files, which keel migrate runs in transactions of
 * their own. Both are reported as errors from the static verdict.
 *
 * After each statement this backend's locks (pg_locks) are compared with
 * those held before it: the new ones are that statement's. Every ACCESS
 * EXCLUSIVE lock on a table that existed when the rehearsal started is
 * reported with the table's total size (pg_total_relation_size, measured at
 * the end of the rehearsal under the locks still held, so no one waits and
 * the measurement's own locks are nobody's; a table the rehearsal dropped
 * gets pg_class.relpages' estimate) and, as the row estimate, its
 * pg_class.reltuples when the rehearsal started.
 *
 * A keel:no-transaction file is reported as not rehearsable and skipped; the
 * files after it run against a database that lacks its change.
 *
 * Returns the summary when there was no error; otherwise, after the report,
 * throws CommandError naming the first error (exit 1). --lock-timeout sets
 * lock_timeout for the rehearsal's transaction. Rule: issue 12, "rehearse".
 */
MigrateSummary Rehearse(const Connection &conn, const Report &report,
                        const std::map<std::string, Script> &scripts, const MigrateOptions &options,
                        std::ostream &out) {
    std::map<std::string, FileVerdicts> verdicts =
        StaticVerdicts(report.pending, scripts, {}, ReadGuardSettings(conn));
    MigrateSummary summary;
    nlohmann::json files = nlohmann::json::array(), errors = nlohmann::json::array(),
                   exclusive = nlohmann::json::array();
    size_t not_rehearsable = 0;
    bool text = !options.json;
    bool chatty = text && !options.quiet;

    Notices notices(conn);
    conn.Exec("BEGIN");
    try {
        if (options.lock_timeout_ms > 0)
            conn.Exec("SET LOCAL lock_timeout = " + std::to_string(options.lock_timeout_ms));
        std::map<std::string, Relation> existing = Relations(conn);
        std::map<std::string, HeldLock> held = HeldLocks(conn);
        /* every file starts from the session's search_path and role, as keel migrate runs it */
        MigrateOptions session;
        RememberSession(conn, session);
        std::string glass_from; /* the file whose break-glass is still active */

        /* add_error records one error: kind "run" (the server's) or "static" (the verdict's) */
        auto add_error = [&](const MigrationFile &file, size_t line, const std::string &message,
                             const std::string &detail, const std::string &hint,
                             const std::string &sqlstate, const std::vector<std::string> &rules,
                             const std::string &kind, nlohmann::json *stmt) {
            nlohmann::json e = {{"name", file.file_name}, {"line", line}, {"message", message},
                                {"detail", detail},       {"hint", hint}, {"sqlstate", sqlstate},
                                {"rules", rules},         {"kind", kind}};
            errors.push_back(e);
            if (stmt) {
                (*stmt)["status"] = "error";
                (*stmt)["error"] = e;
            }
            if (text)
                out << "  error     " << file.file_name << ":" << line << ": " << message
                    << (sqlstate.empty() ? "" : " (SQLSTATE " + sqlstate + ")")
                    << (detail.empty() ? "" : ". DETAIL: " + detail) << "\n";
        };

        for (const auto *file : report.pending) {
            nlohmann::json fj = {{"name", file->file_name}, {"version", file->version}};
            if (file->directives.no_transaction) {
                ++not_rehearsable;
                fj["status"] = "not_rehearsable";
                files.push_back(fj);
                if (text)
                    out << "not rehearsable " << file->file_name
                        << " (keel:no-transaction: its statements cannot run in the rehearsal's "
                           "transaction; the files after it run without its change)\n";
                continue;
            }
            const Script &script = scripts.at(file->version);
            const FileVerdicts &fv = verdicts[file->version];
            auto t0 = std::chrono::steady_clock::now();
            size_t errors_before = errors.size();
            RestoreSession(conn, session);
            conn.Exec("SAVEPOINT keel_rehearsal_file");
            bool glass = false;
            if (file->directives.allow_destructive_reason) {
                conn.Exec("SAVEPOINT keel_rehearsal_statement");
                try {
                    conn.ExecParams("SELECT keel.allow_destructive($1)",
                                    {*file->directives.allow_destructive_reason});
                    conn.Exec("RELEASE SAVEPOINT keel_rehearsal_statement");
                    glass = true;
                } catch (const ServerError &e) {
                    if (PQstatus(conn.get()) == CONNECTION_BAD)
                        throw;
                    conn.Exec("ROLLBACK TO SAVEPOINT keel_rehearsal_statement");
                    conn.Exec("RELEASE SAVEPOINT keel_rehearsal_statement");
                    add_error(*file, file->directives.allow_destructive_line,
                              "-- keel:allow-destructive: " + e.message, e.detail, e.hint,
                              e.sqlstate, {}, "run", nullptr);
                }
                notices.Take();
                held = HeldLocks(conn); /* the break-glass's audit row is not a statement's */
            }
            if (script.streamed) { /* a file above the streaming threshold: apply_streamed.cpp */
                StreamedPlace place;
                conn.Exec("SAVEPOINT keel_rehearsal_statement");
                try {
                    RunStreamed(conn, *file, script, true, nullptr, out, place);
                    conn.Exec("RELEASE SAVEPOINT keel_rehearsal_statement");
                } catch (const ServerError &e) {
                    if (PQstatus(conn.get()) == CONNECTION_BAD)
                        throw;
                    conn.Exec("ROLLBACK TO SAVEPOINT keel_rehearsal_statement");
                    conn.Exec("RELEASE SAVEPOINT keel_rehearsal_statement");
                    add_error(*file, place.line, e.message, e.detail, e.hint, e.sqlstate, {}, "run",
                              nullptr);
                }
                notices.Take();
            }
            bool file_rolled_back = false;
            nlohmann::json statements = nlohmann::json::array();
            for (size_t i = 0; i < script.statements.size(); ++i) {
                const Statement &stmt = script.statements[i];
                nlohmann::json sj = {{"line", stmt.line},
                                     {"text", i < fv.statements.size() ? fv.statements[i].text
                                                                       : Abbreviated(stmt.text)},
                                     {"status", "ok"}};
                if (file_rolled_back) {
                    sj["status"] = "not_run";
                    statements.push_back(sj);
                    continue;
                }
                bool bare = stmt.node == "TransactionStmt";
                if (!bare)
                    conn.Exec("SAVEPOINT keel_rehearsal_statement");
                try {
                    if (stmt.has_copy_data)
                        conn.CopyIn(stmt.text, stmt.copy_data);
                    else
                        conn.Exec(stmt.text);
                    if (!bare)
                        conn.Exec("RELEASE SAVEPOINT keel_rehearsal_statement");
                } catch (const ServerError &e) {
                    if (PQstatus(conn.get()) == CONNECTION_BAD)
                        throw;
                    size_t line = stmt.line;
                    if (e.position > 0)
                        line = LineAt(file->contents,
                                      stmt.offset + CharPositionToOffset(stmt.text, e.position));
                    if (bare) {
                        conn.Exec("ROLLBACK TO SAVEPOINT keel_rehearsal_file");
                        file_rolled_back = true;
                        glass = false; /* rolled back with the savepoint it was called in */
                    } else {
                        conn.Exec("ROLLBACK TO SAVEPOINT keel_rehearsal_statement");
                        conn.Exec("RELEASE SAVEPOINT keel_rehearsal_statement");
                    }
                    add_error(*file, line, e.message, e.detail, e.hint, e.sqlstate,
                              e.sqlstate == "KL001" ? GuardRules(e.message)
                                                    : std::vector<std::string>{},
                              "run", &sj);
                    if (file_rolled_back && text)
                        out << "  rolled back to the start of " << file->file_name
                            << "; its remaining statements were not rehearsed\n";
                }
                /* what the run could not judge: the static verdict */
                if (sj["status"] == "ok" && i < fv.statements.size()) {
                    const StatementVerdict &v = fv.statements[i];
                    if (!v.refused.empty() && !glass_from.empty() && !glass)
                        add_error(*file, stmt.line,
                                  "the guard would refuse it in keel migrate (rule " +
                                      Joined(v.refused) +
                                      "; static check): the rehearsal's single transaction "
                                      "still holds the break-glass of " +
                                      glass_from + ", keel migrate runs " + file->file_name +
                                      " in a transaction of its own",
                                  "", "", "KL001", v.refused, "static", &sj);
                    else if (!v.refused_later.empty())
                        add_error(*file, stmt.line,
                                  "the guard would refuse it at COMMIT (rule " +
                                      Joined(v.refused_later) +
                                      "; static check: not re-created before the transaction "
                                      "ends, and a rehearsal never commits)",
                                  "", "", "KL001", v.refused_later, "static", &sj);
                }
                nlohmann::json warnings = notices.Take();
                if (!warnings.empty()) {
                    sj["warnings"] = warnings;
                    if (text)
                        for (const auto &w : warnings)
                            out << "  warning   " << file->file_name << ":" << stmt.line << ": "
                                << w.get<std::string>() << "\n";
                }
                /* the locks it took */
                std::map<std::string, HeldLock> now = HeldLocks(conn);
                nlohmann::json locks = nlohmann::json::array();
                std::string lock_text;
                for (const auto &[key, lock] : now) {
                    if (held.count(key))
                        continue;
                    auto table = existing.find(lock.oid);
                    /* a relation the statement dropped has no name left: the snapshot's */
                    std::string relation = table != existing.end() && lock.relation == lock.oid
                                               ? table->second.label
                                               : lock.relation;
                    locks.push_back({{"relation", relation}, {"mode", lock.mode}});
                    lock_text += (lock_text.empty() ? "" : ", ") + lock.mode + " on " + relation;
                    if (lock.mode != "AccessExclusiveLock" || table == existing.end() ||
                        !table->second.table)
                        continue;
                    nlohmann::json x = {
                        {"table", table->second.name},
                        {"name", file->file_name},
                        {"line", stmt.line},
                        {"text", sj["text"]},
                        {"oid", lock.oid},
                        {"relpages", table->second.relpages},
                        {"row_estimate",
                         table->second.reltuples < 0
                             ? nlohmann::json(nullptr)
                             : nlohmann::json(static_cast<long long>(table->second.reltuples))}};
                    exclusive.push_back(x);
                }
                sj["locks"] = locks;
                if (!locks.empty()) {
                    if (chatty)
                        out << "  locks     " << file->file_name << ":" << stmt.line << ": "
                            << lock_text << "\n";
                }
                held = now;
                statements.push_back(sj);
            }
            if (!file_rolled_back)
                conn.Exec("RELEASE SAVEPOINT keel_rehearsal_file");
            if (glass && !file_rolled_back)
                glass_from = file->file_name;
            size_t file_errors = errors.size() - errors_before;
            fj["status"] = "rehearsed";
            fj["statements"] = statements;
            fj["errors"] = file_errors;
            fj["ms"] =
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                    .count();
            files.push_back(fj);
            if (text && (chatty || file_errors > 0))
                out << "rehearsed " << file->file_name << " (version " << file->version << ", "
                    << script.statements.size() << " statement(s), " << file_errors
                    << " error(s)) in " << Ms(std::chrono::steady_clock::now() - t0) << "\n";
            ++summary.applied;
        }
        /* sizes last, under the ACCESS EXCLUSIVE locks still held (no wait, no one blocked,
         * and the size query's own locks are attributed to no statement) */
        for (auto &x : exclusive) {
            Result size = conn.ExecParams(
                "SELECT s, pg_catalog.pg_size_pretty(s), pg_catalog.pg_size_pretty($2::bigint "
                "OPERATOR(pg_catalog.*) pg_catalog.current_setting('block_size')::bigint) FROM "
                "(SELECT pg_catalog.pg_total_relation_size($1::oid) AS s) t",
                {x["oid"].get<std::string>(), std::to_string(x["relpages"].get<long long>())});
            if (PQgetisnull(size.get(), 0, 0)) {
                x["total_bytes"] = nullptr;
                x["size"] = x["relpages"].get<long long>() > 0
                                ? std::string("dropped in the rehearsal; about ") +
                                      PQgetvalue(size.get(), 0, 2) + " by pg_class.relpages"
                                : std::string("dropped in the rehearsal; size unknown");
            } else {
                x["total_bytes"] = std::strtoll(PQgetvalue(size.get(), 0, 0), nullptr, 10);
                x["size"] = PQgetvalue(size.get(), 0, 1);
            }
            x.erase("oid");
            x.erase("relpages");
        }
    } catch (const ServerError &e) {
        if (PQstatus(conn.get()) != CONNECTION_BAD)
            PQclear(PQexec(conn.get(), "ROLLBACK"));
        throw CommandError("rehearsal: " + e.OneLine() +
                           (PQstatus(conn.get()) == CONNECTION_BAD
                                ? " (the connection was lost; its transaction cannot have "
                                  "committed, nothing was changed)"
                                : " [rolled back, nothing was changed]"));
    }
    conn.Exec("ROLLBACK");

    if (text) {
        for (const auto &x : exclusive)
            out << "ACCESS EXCLUSIVE on existing table " << x["table"].get<std::string>() << " ("
                << x["size"].get<std::string>() << ", "
                << (x["row_estimate"].is_null() ? Rows(-1)
                                                : Rows(double(x["row_estimate"].get<long long>())))
                << ") by " << x["name"].get<std::string>() << ":" << x["line"].get<size_t>() << ": "
                << x["text"].get<std::string>() << "\n";
        out << summary.applied
            << " migration(s) rehearsed and rolled back; nothing was changed: " << errors.size()
            << " error(s), " << exclusive.size() << " ACCESS EXCLUSIVE lock(s) on existing tables";
        if (not_rehearsable > 0)
            out << ", " << not_rehearsable << " file(s) not rehearsable (keel:no-transaction)";
        out << "\n";
    } else {
        out << nlohmann::json{{"database", conn.Target()},
                              {"files", files},
                              {"errors", errors},
                              {"access_exclusive", exclusive},
                              {"rehearsed", summary.applied},
                              {"not_rehearsable", not_rehearsable},
                              {"rolled_back", true}}
                   .dump(2)
            << "\n";
    }
    out << std::flush;
    if (!errors.empty()) {
        const auto &first = errors.front();
        throw CommandError("rehearsal: " + first["name"].get<std::string>() + ":" +
                           std::to_string(first["line"].get<size_t>()) + ": " +
                           first["message"].get<std::string>() +
                           (first["sqlstate"].get<std::string>().empty()
                                ? std::string()
                                : " (SQLSTATE " + first["sqlstate"].get<std::string>() + ")") +
                           (errors.size() > 1 ? " and " + std::to_string(errors.size() - 1) +
                                                    " more error(s), see the report"
                                              : std::string()) +
                           "; rolled back, nothing was changed");
    }
    return summary;
}

} // namespace keel::client
