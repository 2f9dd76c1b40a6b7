/*
 * client/lint/rules/missing_lock_timeout.cpp — missing-lock-timeout (lint rule)
 *   A statement that takes an ACCESS EXCLUSIVE lock on an existing table
 *   (ALTER TABLE, DROP TABLE, TRUNCATE, RENAME, CLUSTER, REFRESH
 *   MATERIALIZED VIEW without CONCURRENTLY) waits behind any long query, and
 *   every later query on the table queues behind it: an outage. SET
 *   lock_timeout earlier in the file bounds the wait. Reported once per
 *   file, at the first such statement. Default level: warning.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

/* Target is the existing table an ACCESS EXCLUSIVE statement locks, or "". */
static std::string Target(const Stmt &stmt, const Context &ctx) {
    const PgQuery__Node *n = stmt.node;
    std::string t;
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
        if (n->alter_table_stmt->objtype == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE)
            t = KeyOf(n->alter_table_stmt->relation);
        break;
    case PG_QUERY__NODE__NODE_TRUNCATE_STMT:
        if (n->truncate_stmt->n_relations &&
            n->truncate_stmt->relations[0]->node_case == PG_QUERY__NODE__NODE_RANGE_VAR)
            t = KeyOf(n->truncate_stmt->relations[0]->range_var);
        break;
    case PG_QUERY__NODE__NODE_DROP_STMT:
        if (n->drop_stmt->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE)
            for (const ObjectRef &o : DropTargets(n->drop_stmt))
                t = o.key;
        break;
    case PG_QUERY__NODE__NODE_RENAME_STMT:
        if (n->rename_stmt->relation)
            t = KeyOf(n->rename_stmt->relation);
        break;
    case PG_QUERY__NODE__NODE_CLUSTER_STMT:
        t = KeyOf(n->cluster_stmt->relation);
        break;
    case PG_QUERY__NODE__NODE_REFRESH_MAT_VIEW_STMT:
        if (!n->refresh_mat_view_stmt->concurrent)
            t = KeyOf(n->refresh_mat_view_stmt->relation);
        break;
    default:
        break;
    }
    return t.empty() || ctx.IsNew("table", t) || ctx.IsNew("materialized view", t) ? "" : t;
}

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    if (ctx.lock_timeout_set || stmt.nested)
        return;
    std::string t = Target(stmt, ctx);
    if (t.empty())
        return;
    out.Report(self, stmt,
               "ACCESS EXCLUSIVE lock on " + t +
                   " with no lock_timeout: a long query ahead makes "
                   "every later query on it wait",
               "Start the file with SET lock_timeout = '5s' (and retry on 55P03).");
    ctx.lock_timeout_set = true; /* once per file */
}

extern const Rule kMissingLockTimeout{"missing-lock-timeout", Level::Warning,
                                      "no lock_timeout before an ACCESS EXCLUSIVE lock", false,
                                      Check};

} // namespace keel::lint
