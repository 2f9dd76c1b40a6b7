/*
 * client/migrate/journal.cpp
 *   See journal.hpp.
 */
#include "migrate/journal.hpp"

#include "lib/checksum.hpp"
#include "lib/commands.hpp"
#include "migrate/runner.hpp"

#include <nlohmann/json.hpp>
#include <pg_query.h>

namespace keel::client {

std::vector<std::string> StatementChecksums(const Script &script) {
    std::vector<std::string> out;
    out.reserve(script.statements.size());
    for (const auto &stmt : script.statements)
        out.push_back(Sha256Hex(stmt.text + (stmt.has_copy_data ? "\n" + stmt.copy_data : "")));
    return out;
}

ResumePoint FindResumePoint(const Connection &conn, const MigrationFile &file,
                            const std::vector<std::string> &checksums) {
    ResumePoint rp;
    /* the latest attempt not recorded applied, and newer than any revert or apply */
    Result res = conn.ExecParams(
        "WITH attempt AS ("
        "  SELECT max(s.started_at) AS started_at FROM keel.migration_steps s "
        "   WHERE s.version OPERATOR(pg_catalog.=) $1::numeric "
        "     AND s.started_at OPERATOR(pg_catalog.>) coalesce((SELECT max(h.finished_at) "
        "         FROM keel.migration_history h WHERE h.version OPERATOR(pg_catalog.=) "
        "         $1::numeric AND h.status OPERATOR(pg_catalog.=) ANY (ARRAY['applied', "
        "         'reverted', 'baselined'])), '-infinity')) "
        "SELECT pg_catalog.to_char(a.started_at AT TIME ZONE 'UTC', "
        "         'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), a.started_at::text, s.step, s.checksum, "
        "       (SELECT f.error_statement FROM keel.migration_history f "
        "         WHERE f.version OPERATOR(pg_catalog.=) $1::numeric "
        "           AND f.status OPERATOR(pg_catalog.=) 'failed' "
        "           AND f.started_at OPERATOR(pg_catalog.=) a.started_at) "
        "FROM attempt a JOIN keel.migration_steps s "
        "  ON s.version OPERATOR(pg_catalog.=) $1::numeric "
        " AND s.started_at OPERATOR(pg_catalog.=) a.started_at "
        "ORDER BY s.step",
        {file.version});
    int n = PQntuples(res.get());
    if (n == 0) {
        /* no journal: a failed attempt that died on its first statement still counts */
        Result failed = conn.ExecParams(
            "SELECT error_statement FROM keel.migration_history "
            "WHERE version OPERATOR(pg_catalog.=) $1::numeric AND status OPERATOR(pg_catalog.=) "
            "'failed' AND finished_at OPERATOR(pg_catalog.>) coalesce((SELECT max(h.finished_at) "
            "FROM keel.migration_history h WHERE h.version OPERATOR(pg_catalog.=) $1::numeric "
            "AND h.status OPERATOR(pg_catalog.=) ANY (ARRAY['applied', 'reverted', "
            "'baselined'])), '-infinity') ORDER BY id DESC LIMIT 1",
            {file.version});
        if (PQntuples(failed.get()) == 1) {
            rp.interrupted = true;
            if (!PQgetisnull(failed.get(), 0, 0))
                rp.failed_statement = PQgetvalue(failed.get(), 0, 0);
        }
        return rp;
    }
    rp.interrupted = true;
    rp.attempt_started = PQgetvalue(res.get(), 0, 0);
    if (!PQgetisnull(res.get(), 0, 4))
        rp.failed_statement = PQgetvalue(res.get(), 0, 4);
    for (int i = 0; i < n; ++i) {
        size_t step = std::stoul(PQgetvalue(res.get(), i, 2));
        if (step != rp.completed + 1 || rp.completed >= checksums.size() ||
            checksums[rp.completed] != PQgetvalue(res.get(), i, 3))
            break;
        ++rp.completed;
    }
    return rp;
}

void JournalStep(const Connection &conn, const MigrationFile &file, const std::string &started,
                 size_t step, size_t line, const std::string &checksum) {
    conn.ExecParams(
        "SELECT keel.migration_step($1::numeric, $2::timestamptz, $3::integer, $4::integer, $5)",
        {file.version, started, std::to_string(step), std::to_string(line), checksum});
}

namespace {

/* ConcurrentIndex: the schema (may be empty) and name of a CREATE INDEX CONCURRENTLY. */
struct ConcurrentIndex {
    std::string schema;
    std::string name;
};

std::optional<ConcurrentIndex> ParseConcurrentIndex(const std::string &sql) {
    PgQueryParseResult parsed = pg_query_parse(sql.c_str());
    std::optional<ConcurrentIndex> out;
    if (parsed.error == nullptr && parsed.parse_tree != nullptr) {
        auto tree = nlohmann::json::parse(parsed.parse_tree, nullptr, false);
        if (tree.is_object() && tree.contains("stmts") && tree["stmts"].size() == 1) {
            const auto &stmt = tree["stmts"][0]["stmt"];
            if (stmt.contains("IndexStmt")) {
                const auto &idx = stmt["IndexStmt"];
                if (idx.value("concurrent", false) && idx.contains("idxname")) {
                    ConcurrentIndex ci;
                    ci.name = idx["idxname"].get<std::string>();
                    if (idx.contains("relation") && idx["relation"].contains("schemaname"))
                        ci.schema = idx["relation"]["schemaname"].get<std::string>();
                    out = ci;
                }
            }
        }
    }
    pg_query_free_parse_result(parsed);
    return out;
}

} // namespace

std::optional<std::string> HealInvalidIndex(const Connection &conn, const MigrationFile &file,
                                            const Statement &stmt, const ResumePoint &resume) {
    if (stmt.node != "IndexStmt")
        return std::nullopt;
    auto index = ParseConcurrentIndex(stmt.text);
    if (!index)
        return std::nullopt;
    /* the index goes into its table's schema; unqualified: the first of search_path */
    Result res = conn.ExecParams(
        "SELECT c.oid::regclass::text, i.indisvalid "
        "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_index i ON i.indexrelid "
        "OPERATOR(pg_catalog.=) c.oid "
        "WHERE c.relname OPERATOR(pg_catalog.=) $1 AND c.relnamespace OPERATOR(pg_catalog.=) "
        "  CASE WHEN $2 OPERATOR(pg_catalog.=) '' "
        "       THEN (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname "
        "             OPERATOR(pg_catalog.=) pg_catalog.current_schema()) "
        "       ELSE (SELECT n.oid FROM pg_catalog.pg_namespace n WHERE n.nspname "
        "             OPERATOR(pg_catalog.=) $2) END",
        {index->name, index->schema});
    if (PQntuples(res.get()) != 1 || std::string(PQgetvalue(res.get(), 0, 1)) == "t")
        return std::nullopt;
    std::string qualified = PQgetvalue(res.get(), 0, 0);
    std::string where = file.file_name + ":" + std::to_string(stmt.line);
    bool same = resume.interrupted && (!resume.failed_statement ||
                                       Trimmed(*resume.failed_statement) == Trimmed(stmt.text));
    if (!same)
        throw CommandError(
            where + ": index " + qualified +
            " exists and is invalid (what an interrupted CREATE INDEX CONCURRENTLY leaves "
            "behind), and this statement is not the one that built it, so it may have another "
            "definition; nothing of this statement ran. Drop it, then rerun keel migrate: "
            "BEGIN; SELECT keel.allow_destructive('invalid index left by a failed build'); "
            "DROP INDEX " +
            qualified + "; COMMIT;");
    conn.Exec("REINDEX INDEX CONCURRENTLY " + qualified);
    return where + ": index " + qualified +
           " was left invalid by the interrupted attempt; rebuilt it with REINDEX INDEX "
           "CONCURRENTLY (the same definition, without blocking writes)";
}

} // namespace keel::client
