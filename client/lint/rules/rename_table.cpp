/*
 * client/lint/rules/rename_table.cpp — rename-table (guard rule; docs/rules/rename-table.md)
 *   ALTER TABLE ... RENAME TO and ALTER TABLE ... SET SCHEMA break every
 *   running client that names the table. Tables created earlier pass.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static const char *kHelp = "Create the new name as a view over the table (or the reverse), move "
                           "clients, then drop the old name later (docs/rules/rename-table.md).";

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    if (Is(stmt, PG_QUERY__NODE__NODE_RENAME_STMT)) {
        const auto *s = stmt.node->rename_stmt;
        if ((s->rename_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE ||
             s->rename_type == PG_QUERY__OBJECT_TYPE__OBJECT_FOREIGN_TABLE) &&
            s->relation && !ctx.IsNew("table", KeyOf(s->relation)))
            out.Report(self, stmt,
                       "renaming table " + KeyOf(s->relation) +
                           " breaks the clients that use its name",
                       kHelp);
    }
    if (Is(stmt, PG_QUERY__NODE__NODE_ALTER_OBJECT_SCHEMA_STMT)) {
        const auto *s = stmt.node->alter_object_schema_stmt;
        if (s->object_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE && s->relation &&
            !ctx.IsNew("table", KeyOf(s->relation)))
            out.Report(self, stmt,
                       "moving table " + KeyOf(s->relation) +
                           " to another schema breaks the clients that use its name",
                       kHelp);
    }
}

extern const Rule kRenameTable = GuardRule(keel::kRuleRenameTable, Check);

} // namespace keel::lint
