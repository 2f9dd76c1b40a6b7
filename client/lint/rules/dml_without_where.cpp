/*
 * client/lint/rules/dml_without_where.cpp — dml-without-where (lint rule)
 *   DELETE or UPDATE without WHERE touches every row of the table: in a
 *   migration that is almost always a mistake, and on a big table one long
 *   transaction holding row locks. Default level: error.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &self, const Stmt &stmt, Context &, Emitter &out) {
    const PgQuery__Node *n = stmt.node;
    if (n->node_case == PG_QUERY__NODE__NODE_DELETE_STMT && !n->delete_stmt->where_clause &&
        n->delete_stmt->n_using_clause == 0)
        out.Report(self, stmt,
                   "DELETE without WHERE deletes every row of " + KeyOf(n->delete_stmt->relation),
                   "Add the WHERE you mean; delete in batches on big tables.");
    if (n->node_case == PG_QUERY__NODE__NODE_UPDATE_STMT && !n->update_stmt->where_clause &&
        n->update_stmt->n_from_clause == 0)
        out.Report(self, stmt,
                   "UPDATE without WHERE rewrites every row of " + KeyOf(n->update_stmt->relation),
                   "Add the WHERE you mean; backfill in batches on big tables.");
}

extern const Rule kDmlWithoutWhere{"dml-without-where", Level::Error,
                                   "DELETE / UPDATE without WHERE", false, Check};

} // namespace keel::lint
