/*
 * client/lint/rules/drop_constraint.cpp — drop-constraint (guard rule;
 * docs/rules/drop-constraint.md) ALTER TABLE ... DROP CONSTRAINT is a replacement when a constraint
 * of the same name is added again to the same table in the same transaction (ideally NOT VALID,
 * then VALIDATE); otherwise rows that break the rule can come in.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    ForEachCmd(stmt, [&](const PgQuery__AlterTableStmt *s, const PgQuery__AlterTableCmd *cmd) {
        if (cmd->subtype != PG_QUERY__ALTER_TABLE_TYPE__AT_DropConstraint || !Has(cmd->name))
            return;
        std::string table = KeyOf(s->relation);
        std::string key = std::string(cmd->name) + " on " + table;
        if (ctx.IsNew("table", table) || ctx.IsNew("constraint", key))
            return;
        out.Pend(
            self, stmt, "constraint", key,
            "DROP CONSTRAINT " + std::string(cmd->name) + " of " + table +
                " is not followed by ADD CONSTRAINT of the same name before the transaction ends",
            "Add the new constraint under the same name in the same transaction, NOT VALID "
            "and then VALIDATE CONSTRAINT (docs/rules/drop-constraint.md).");
    });
}

extern const Rule kDropConstraint = GuardRule(keel::kRuleDropConstraint, Check);

} // namespace keel::lint
