/*
 * client/lint/rules/set_not_null_without_check.cpp — set-not-null-without-check (lint rule)
 *   ALTER COLUMN ... SET NOT NULL scans the whole table under an ACCESS
 *   EXCLUSIVE lock, unless a validated CHECK (col IS NOT NULL) already
 *   proves it (PostgreSQL 12 and later skip the scan then). The rule also
 *   keeps track of such CHECKs: added valid, or NOT VALID and validated
 *   later, earlier in the file. Default level: error.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

/* NotNullColumn: the column of CHECK (col IS NOT NULL), or "". */
static std::string NotNullColumn(const PgQuery__Constraint *c) {
    const PgQuery__Node *e = c->raw_expr;
    if (c->contype != PG_QUERY__CONSTR_TYPE__CONSTR_CHECK || !e ||
        e->node_case != PG_QUERY__NODE__NODE_NULL_TEST ||
        e->null_test->nulltesttype != PG_QUERY__NULL_TEST_TYPE__IS_NOT_NULL || !e->null_test->arg ||
        e->null_test->arg->node_case != PG_QUERY__NODE__NODE_COLUMN_REF)
        return "";
    const auto *ref = e->null_test->arg->column_ref;
    return ref->n_fields ? StringOf(ref->fields[ref->n_fields - 1]) : "";
}

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    ForEachCmd(stmt, [&](const PgQuery__AlterTableStmt *s, const PgQuery__AlterTableCmd *cmd) {
        std::string table = KeyOf(s->relation);
        if (cmd->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_AddConstraint && cmd->def &&
            cmd->def->node_case == PG_QUERY__NODE__NODE_CONSTRAINT) {
            const PgQuery__Constraint *c = cmd->def->constraint;
            std::string col = NotNullColumn(c);
            if (col.empty())
                return;
            if (!c->skip_validation)
                ctx.not_null_checks.insert(table + "." + col);
            else if (Has(c->conname))
                ctx.unvalidated_checks[table + ":" + c->conname] = table + "." + col;
            return;
        }
        if ((cmd->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_ValidateConstraint ||
             cmd->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_ValidateConstraintRecurse) &&
            Has(cmd->name)) {
            auto it = ctx.unvalidated_checks.find(table + ":" + cmd->name);
            if (it != ctx.unvalidated_checks.end())
                ctx.not_null_checks.insert(it->second);
            return;
        }
        if (cmd->subtype != PG_QUERY__ALTER_TABLE_TYPE__AT_SetNotNull || !Has(cmd->name) ||
            ctx.IsNew("table", table) || ctx.not_null_checks.count(table + "." + cmd->name))
            return;
        out.Report(
            self, stmt,
            "SET NOT NULL on " + table + "." + cmd->name +
                " scans the table under an ACCESS EXCLUSIVE lock",
            "First ADD CONSTRAINT ... CHECK (" + std::string(cmd->name) +
                " IS NOT NULL) NOT VALID and VALIDATE it; SET NOT NULL then skips the scan.");
    });
}

extern const Rule kSetNotNullWithoutCheck{"set-not-null-without-check", Level::Error,
                                          "SET NOT NULL without a validated CHECK first", false,
                                          Check};

} // namespace keel::lint
