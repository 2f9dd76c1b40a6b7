/*
 * client/lint/rules/add_constraint_without_not_valid.cpp — add-constraint-without-not-valid (lint
 * rule) ADD FOREIGN KEY or CHECK without NOT VALID scans the whole table under its lock (a FOREIGN
 * KEY also locks the referenced table); ADD UNIQUE or PRIMARY KEY without USING INDEX builds the
 * index under an ACCESS EXCLUSIVE lock. Tables created earlier pass. Safe alternative: ADD
 * CONSTRAINT ... NOT VALID, then VALIDATE CONSTRAINT (SHARE UPDATE EXCLUSIVE only); for UNIQUE,
 * CREATE UNIQUE INDEX CONCURRENTLY then ADD CONSTRAINT ... USING INDEX. Default level: error.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    ForEachCmd(stmt, [&](const PgQuery__AlterTableStmt *s, const PgQuery__AlterTableCmd *cmd) {
        if (cmd->subtype != PG_QUERY__ALTER_TABLE_TYPE__AT_AddConstraint || !cmd->def ||
            cmd->def->node_case != PG_QUERY__NODE__NODE_CONSTRAINT)
            return;
        std::string table = KeyOf(s->relation);
        if (ctx.IsNew("table", table))
            return;
        const PgQuery__Constraint *c = cmd->def->constraint;
        std::string name = Has(c->conname) ? std::string(" ") + c->conname : "";
        switch (c->contype) {
        case PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN:
        case PG_QUERY__CONSTR_TYPE__CONSTR_CHECK:
            if (!c->skip_validation)
                out.Report(self, stmt,
                           std::string(c->contype == PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN
                                           ? "ADD FOREIGN KEY"
                                           : "ADD CHECK") +
                               name + " on " + table +
                               " without NOT VALID scans the table under its lock",
                           "Add it NOT VALID, then VALIDATE CONSTRAINT in a later statement.");
            break;
        case PG_QUERY__CONSTR_TYPE__CONSTR_UNIQUE:
        case PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY:
            if (!Has(c->indexname))
                out.Report(self, stmt,
                           std::string(c->contype == PG_QUERY__CONSTR_TYPE__CONSTR_UNIQUE
                                           ? "ADD UNIQUE"
                                           : "ADD PRIMARY KEY") +
                               name + " on " + table +
                               " builds its index under an ACCESS EXCLUSIVE lock",
                           "CREATE UNIQUE INDEX CONCURRENTLY first, then ADD CONSTRAINT ... USING "
                           "INDEX.");
            break;
        default:
            break;
        }
    });
}

extern const Rule kAddConstraintWithoutNotValid{
    "add-constraint-without-not-valid", Level::Error,
    "ADD FOREIGN KEY / CHECK without NOT VALID, ADD UNIQUE / PRIMARY KEY without USING INDEX",
    false, Check};

} // namespace keel::lint
