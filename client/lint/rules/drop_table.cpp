/*
 * client/lint/rules/drop_table.cpp — drop-table (guard rule; docs/rules/drop-table.md)
 *   Flags DROP TABLE of a table not created earlier in the file or folder,
 *   DROP OWNED (it drops every table the roles own) and DROP SCHEMA ...
 *   CASCADE (it drops every table in the schema). The rows are gone; a new
 *   table of the same name does not bring them back.
 *   Safe alternative: expand/contract: stop writing, keep the table, drop it
 *   in a later release under -- keel:allow-destructive "reason".
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static const char *kHelp = "Keep the table until nothing uses it, then drop it in a migration of "
                           "its own with -- keel:allow-destructive \"reason\" (docs/rules/"
                           "drop-table.md).";

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    ForEachDrop(stmt, ctx, "table", [&](const ObjectRef &o) {
        out.Report(self, stmt, "DROP TABLE " + o.key + " destroys the table and its rows", kHelp);
    });
    if (Is(stmt, PG_QUERY__NODE__NODE_DROP_OWNED_STMT))
        out.Report(self, stmt, "DROP OWNED drops every table the roles own, with their rows",
                   kHelp);
    if (Is(stmt, PG_QUERY__NODE__NODE_DROP_STMT) &&
        stmt.node->drop_stmt->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_SCHEMA &&
        stmt.node->drop_stmt->behavior == PG_QUERY__DROP_BEHAVIOR__DROP_CASCADE)
        for (const ObjectRef &o : DropTargets(stmt.node->drop_stmt))
            if (!ctx.IsNew("schema", o.key))
                out.Report(self, stmt,
                           "DROP SCHEMA " + o.key +
                               " CASCADE drops every table in it, with their rows",
                           kHelp);
}

extern const Rule kDropTable = GuardRule(keel::kRuleDropTable, Check);

} // namespace keel::lint
