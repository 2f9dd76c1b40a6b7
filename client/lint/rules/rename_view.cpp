/*
 * client/lint/rules/rename_view.cpp — rename-view (guard rule; docs/rules/rename-view.md)
 *   ALTER VIEW / MATERIALIZED VIEW ... RENAME TO (or SET SCHEMA) breaks
 *   every client that queries the old name.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static bool IsViewType(PgQuery__ObjectType t) {
    return t == PG_QUERY__OBJECT_TYPE__OBJECT_VIEW || t == PG_QUERY__OBJECT_TYPE__OBJECT_MATVIEW;
}

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    const PgQuery__RangeVar *rv = nullptr;
    if (Is(stmt, PG_QUERY__NODE__NODE_RENAME_STMT) &&
        IsViewType(stmt.node->rename_stmt->rename_type))
        rv = stmt.node->rename_stmt->relation;
    if (Is(stmt, PG_QUERY__NODE__NODE_ALTER_OBJECT_SCHEMA_STMT) &&
        IsViewType(stmt.node->alter_object_schema_stmt->object_type))
        rv = stmt.node->alter_object_schema_stmt->relation;
    if (!rv || ctx.IsNew("view", KeyOf(rv)) || ctx.IsNew("materialized view", KeyOf(rv)))
        return;
    out.Report(self, stmt, "renaming view " + KeyOf(rv) + " breaks the clients that query it",
               "Create the view under its new name beside the old one, move clients, then drop "
               "the old one (docs/rules/rename-view.md).");
}

extern const Rule kRenameView = GuardRule(keel::kRuleRenameView, Check);

} // namespace keel::lint
