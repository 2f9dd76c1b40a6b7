/*
 * client/lint/rules/rename_enum_value.cpp — rename-enum-value (guard rule;
 * docs/rules/rename-enum-value.md) ALTER TYPE ... RENAME VALUE breaks every client that sends the
 * old label (ADD VALUE is additive and passes).
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    if (!Is(stmt, PG_QUERY__NODE__NODE_ALTER_ENUM_STMT) ||
        !Has(stmt.node->alter_enum_stmt->old_val))
        return;
    const auto *s = stmt.node->alter_enum_stmt;
    std::string type = KeyOfNames(s->n_type_name, s->type_name);
    if (ctx.IsNew("type", type))
        return;
    out.Report(self, stmt,
               "RENAME VALUE '" + std::string(s->old_val) + "' of " + type +
                   " breaks the clients that send the old label",
               "Add the new label with ADD VALUE, move writers and rows to it, and keep the old "
               "one (docs/rules/rename-enum-value.md).");
}

extern const Rule kRenameEnumValue = GuardRule(keel::kRuleRenameEnumValue, Check);

} // namespace keel::lint
