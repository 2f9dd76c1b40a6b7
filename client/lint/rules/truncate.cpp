/*
 * client/lint/rules/truncate.cpp — truncate (guard rule; docs/rules/truncate.md)
 *   TRUNCATE empties tables at once, with CASCADE also every table that
 *   references them, under an ACCESS EXCLUSIVE lock. Tables created earlier
 *   in the file or folder pass.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    if (!Is(stmt, PG_QUERY__NODE__NODE_TRUNCATE_STMT))
        return;
    const auto *s = stmt.node->truncate_stmt;
    for (size_t i = 0; i < s->n_relations; i++) {
        if (s->relations[i]->node_case != PG_QUERY__NODE__NODE_RANGE_VAR)
            continue;
        std::string table = KeyOf(s->relations[i]->range_var);
        if (ctx.IsNew("table", table))
            continue;
        out.Report(self, stmt,
                   "TRUNCATE " + table + " deletes every row" +
                       (s->behavior == PG_QUERY__DROP_BEHAVIOR__DROP_CASCADE
                            ? ", and CASCADE empties the tables that reference it"
                            : ""),
                   "Delete the rows you mean with DELETE ... WHERE, in batches (docs/rules/"
                   "truncate.md).");
    }
}

extern const Rule kTruncate = GuardRule(keel::kRuleTruncate, Check);

} // namespace keel::lint
