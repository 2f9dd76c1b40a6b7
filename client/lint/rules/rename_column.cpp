/*
 * client/lint/rules/rename_column.cpp — rename-column (guard rule; docs/rules/rename-column.md)
 *   ALTER TABLE / VIEW ... RENAME COLUMN breaks every running client that
 *   reads or writes the old name. Tables created earlier pass.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    if (!Is(stmt, PG_QUERY__NODE__NODE_RENAME_STMT))
        return;
    const auto *s = stmt.node->rename_stmt;
    if (s->rename_type != PG_QUERY__OBJECT_TYPE__OBJECT_COLUMN &&
        s->rename_type != PG_QUERY__OBJECT_TYPE__OBJECT_ATTRIBUTE)
        return;
    std::string rel = s->relation ? KeyOf(s->relation) : "";
    if (rel.empty() || ctx.IsNew("table", rel) || ctx.IsNew("view", rel) || ctx.IsNew("type", rel))
        return;
    out.Report(self, stmt,
               "renaming column " + std::string(s->subname ? s->subname : "") + " of " + rel +
                   " breaks the clients that use its name",
               "Add the new column, write both, backfill, move readers, then drop the old column "
               "(docs/rules/rename-column.md).");
}

extern const Rule kRenameColumn = GuardRule(keel::kRuleRenameColumn, Check);

} // namespace keel::lint
