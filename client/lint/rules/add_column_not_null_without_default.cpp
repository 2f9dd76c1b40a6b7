/*
 * client/lint/rules/add_column_not_null_without_default.cpp — add-column-not-null-without-default
 * (lint rule) ADD COLUMN ... NOT NULL without a DEFAULT fails on any table that has rows (its
 * existing rows would be NULL). Identity and generated columns fill themselves and pass; so do
 * tables created earlier. Default level: error.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    ForEachCmd(stmt, [&](const PgQuery__AlterTableStmt *s, const PgQuery__AlterTableCmd *cmd) {
        if (cmd->subtype != PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumn || !cmd->def ||
            cmd->def->node_case != PG_QUERY__NODE__NODE_COLUMN_DEF)
            return;
        std::string table = KeyOf(s->relation);
        const PgQuery__ColumnDef *def = cmd->def->column_def;
        if (ctx.IsNew("table", table) || !ColumnIsNotNull(def) || ColumnDefault(def) ||
            IsSerialType(def->type_name) || (def->identity && *def->identity) ||
            (def->generated && *def->generated))
            return;
        for (size_t i = 0; i < def->n_constraints; i++) {
            const auto *c = def->constraints[i]->constraint;
            if (c && (c->contype == PG_QUERY__CONSTR_TYPE__CONSTR_IDENTITY ||
                      c->contype == PG_QUERY__CONSTR_TYPE__CONSTR_GENERATED))
                return;
        }
        out.Report(self, stmt,
                   "ADD COLUMN " + std::string(def->colname ? def->colname : "") +
                       " NOT NULL without a DEFAULT fails on " + table + " once it has rows",
                   "Give it a constant DEFAULT, or add it nullable, backfill, then add NOT NULL "
                   "through a validated CHECK.");
    });
}

extern const Rule kAddColumnNotNullWithoutDefault{
    "add-column-not-null-without-default", Level::Error,
    "ADD COLUMN ... NOT NULL without a default", false, Check};

} // namespace keel::lint
