/*
 * client/lint/rules/table_rewrite.cpp — table-rewrite (guard rule; docs/rules/table-rewrite.md)
 *   Flags the ALTER TABLEs that rewrite a table under an ACCESS EXCLUSIVE
 *   lock: ALTER COLUMN ... TYPE (unless the change is binary-coercible,
 *   which lint cannot know), ADD COLUMN with a volatile default (random(),
 *   gen_random_uuid(), clock_timestamp(), nextval(), a serial type), ADD
 *   COLUMN of an identity or a stored generated column (every row is
 *   computed), SET
 *   LOGGED / UNLOGGED and SET ACCESS METHOD. Tables created earlier pass.
 *   (PostgreSQL docs, ALTER TABLE, Notes.)
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    ForEachCmd(stmt, [&](const PgQuery__AlterTableStmt *s, const PgQuery__AlterTableCmd *cmd) {
        std::string table = KeyOf(s->relation);
        if (ctx.IsNew("table", table))
            return;
        std::string col = cmd->name ? cmd->name : "";
        switch (cmd->subtype) {
        case PG_QUERY__ALTER_TABLE_TYPE__AT_AlterColumnType:
            out.Report(self, stmt,
                       "ALTER COLUMN " + col + " TYPE rewrites " + table +
                           " under an ACCESS EXCLUSIVE lock unless the change is binary-coercible",
                       "Add a new column of the new type, backfill it in batches, switch readers, "
                       "then drop the old one (docs/rules/table-rewrite.md).");
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumn: {
            if (!cmd->def || cmd->def->node_case != PG_QUERY__NODE__NODE_COLUMN_DEF)
                break;
            const PgQuery__ColumnDef *def = cmd->def->column_def;
            bool fills = Has(def->identity) || Has(def->generated);
            for (size_t i = 0; i < def->n_constraints; i++) {
                const auto *c = def->constraints[i]->constraint;
                fills = fills || (c && (c->contype == PG_QUERY__CONSTR_TYPE__CONSTR_IDENTITY ||
                                        c->contype == PG_QUERY__CONSTR_TYPE__CONSTR_GENERATED));
            }
            if (fills || IsVolatileDefault(ColumnDefault(def)) || IsSerialType(def->type_name))
                out.Report(self, stmt,
                           "ADD COLUMN " + std::string(def->colname ? def->colname : "") +
                               " with a volatile default rewrites " + table +
                               " under an ACCESS EXCLUSIVE lock",
                           "Add the column without a default (or with a constant one), then set "
                           "the default and backfill in batches (docs/rules/table-rewrite.md).");
            break;
        }
        case PG_QUERY__ALTER_TABLE_TYPE__AT_SetLogged:
        case PG_QUERY__ALTER_TABLE_TYPE__AT_SetUnLogged:
        case PG_QUERY__ALTER_TABLE_TYPE__AT_SetAccessMethod:
            out.Report(self, stmt,
                       "this ALTER TABLE rewrites " + table + " under an ACCESS EXCLUSIVE lock",
                       "Create a new table the way you want it, copy in batches and switch "
                       "(docs/rules/table-rewrite.md).");
            break;
        default:
            break;
        }
    });
}

extern const Rule kTableRewrite = GuardRule(keel::kRuleTableRewrite, Check);

} // namespace keel::lint
