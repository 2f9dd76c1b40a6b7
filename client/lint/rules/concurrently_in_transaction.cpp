/*
 * client/lint/rules/concurrently_in_transaction.cpp — concurrently-in-transaction (lint rule)
 *   CREATE INDEX CONCURRENTLY, DROP INDEX CONCURRENTLY and REINDEX ...
 *   CONCURRENTLY cannot run inside a transaction block: in a file that keel
 *   migrate wraps in a transaction (no -- keel:no-transaction), or after the
 *   file's own BEGIN, PostgreSQL refuses them (25001). Default level: error.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static bool Concurrently(const Stmt &stmt) {
    const PgQuery__Node *n = stmt.node;
    if (n->node_case == PG_QUERY__NODE__NODE_INDEX_STMT)
        return n->index_stmt->concurrent;
    if (n->node_case == PG_QUERY__NODE__NODE_DROP_STMT)
        return n->drop_stmt->concurrent;
    if (n->node_case == PG_QUERY__NODE__NODE_REINDEX_STMT)
        for (size_t i = 0; i < n->reindex_stmt->n_params; i++) {
            const PgQuery__Node *p = n->reindex_stmt->params[i];
            if (p->node_case == PG_QUERY__NODE__NODE_DEF_ELEM && p->def_elem->defname &&
                strcmp(p->def_elem->defname, "concurrently") == 0)
                return true;
        }
    return false;
}

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    if (!ctx.InTransaction() || !Concurrently(stmt))
        return;
    out.Report(
        self, stmt,
        ctx.explicit_begin ? "CONCURRENTLY inside the file's own transaction block fails"
                           : "CONCURRENTLY in a file without -- keel:no-transaction fails: "
                             "keel migrate runs the file in a transaction",
        "Put the statement in a file of its own whose first line is -- keel:no-transaction.");
}

extern const Rule kConcurrentlyInTransaction{
    "concurrently-in-transaction", Level::Error,
    "CONCURRENTLY inside a transaction, or in a file without -- keel:no-transaction", false, Check};

} // namespace keel::lint
