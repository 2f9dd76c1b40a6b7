/*
 * client/lint/rules/create_index_non_concurrently.cpp — create-index-non-concurrently (lint rule)
 *   CREATE INDEX without CONCURRENTLY on a table that already exists holds a
 *   SHARE lock for the whole build: every INSERT, UPDATE and DELETE waits.
 *   An index on a table created earlier in the file or folder passes.
 *   Safe alternative: CREATE INDEX CONCURRENTLY in a file of its own marked
 *   -- keel:no-transaction. (PostgreSQL docs, CREATE INDEX, "Building
 *   Indexes Concurrently".) Default level: error.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    if (!Is(stmt, PG_QUERY__NODE__NODE_INDEX_STMT))
        return;
    const auto *s = stmt.node->index_stmt;
    std::string table = KeyOf(s->relation);
    if (s->concurrent || ctx.IsNew("table", table) || ctx.IsNew("materialized view", table))
        return;
    out.Report(self, stmt,
               "CREATE INDEX on existing table " + table +
                   " without CONCURRENTLY blocks writes while the index builds",
               "Use CREATE INDEX CONCURRENTLY in a file marked -- keel:no-transaction.");
}

extern const Rule kCreateIndexNonConcurrently{
    "create-index-non-concurrently", Level::Error,
    "CREATE INDEX without CONCURRENTLY on an existing table", false, Check};

} // namespace keel::lint
