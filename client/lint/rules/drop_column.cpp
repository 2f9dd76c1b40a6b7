/*
 * client/lint/rules/drop_column.cpp — drop-column (guard rule; docs/rules/drop-column.md)
 *   Flags ALTER TABLE ... DROP COLUMN on a table not created earlier in the
 *   file or folder, ALTER TYPE ... DROP ATTRIBUTE, and DROP TYPE / DOMAIN
 *   ... CASCADE (it drops the columns that use the type). Running clients
 *   that still read the column fail, and its values are gone.
 *   Safe alternative: stop using the column, deploy, then drop it under the
 *   break-glass in a later release.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static const char *kHelp = "Stop reading and writing the column first; drop it in a later "
                           "release with -- keel:allow-destructive \"reason\" (docs/rules/"
                           "drop-column.md).";

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    ForEachCmd(stmt, [&](const PgQuery__AlterTableStmt *s, const PgQuery__AlterTableCmd *cmd) {
        if (cmd->subtype != PG_QUERY__ALTER_TABLE_TYPE__AT_DropColumn || !Has(cmd->name))
            return;
        std::string table = KeyOf(s->relation);
        if (ctx.IsNew("table", table) || ctx.IsNew("type", table))
            return;
        out.Report(self, stmt,
                   "DROP COLUMN " + std::string(cmd->name) + " of " + table +
                       " destroys the column and its values",
                   kHelp);
    });
    if (Is(stmt, PG_QUERY__NODE__NODE_DROP_STMT) &&
        stmt.node->drop_stmt->behavior == PG_QUERY__DROP_BEHAVIOR__DROP_CASCADE)
        ForEachDrop(stmt, ctx, "type", [&](const ObjectRef &o) {
            out.Report(self, stmt,
                       "DROP TYPE " + o.key +
                           " CASCADE drops every column of that type, with its values",
                       kHelp);
        });
}

extern const Rule kDropColumn = GuardRule(keel::kRuleDropColumn, Check);

} // namespace keel::lint
