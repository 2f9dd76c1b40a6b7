/*
 * client/lint/rules/guard_rule.hpp
 *   Helpers for the rule files: a guard rule's name, level and summary come
 *   from the one shared list (extension/guard/rule_list.def, through
 *   extension/guard/rules.hpp); lint-only rules give their own.
 */
#pragma once

#include "guard/rules.hpp"
#include "lint/rule.hpp"
#include "lint/tree.hpp"

#include <cstring>

namespace keel::lint {

/* GuardRule makes the lint side of guard rule id. */
inline Rule GuardRule(int id, void (*check)(const Rule &, const Stmt &, Context &, Emitter &)) {
    keel::RuleLevel l = keel::RuleDefaultLevel(id);
    Level level = l == keel::RuleLevel::Error  ? Level::Error
                  : l == keel::RuleLevel::Warn ? Level::Warning
                                               : Level::Off;
    return Rule{keel::RuleName(id), level, keel::RuleSummary(id), true, check};
}

/* Is reports whether node is a statement of the given case. */
inline bool Is(const Stmt &stmt, PgQuery__Node__NodeCase c) {
    return stmt.node && stmt.node->node_case == c;
}

/* Cmds calls fn(cmd) for each ALTER TABLE subcommand of stmt (if it is an ALTER TABLE). */
template <typename Fn>
void ForEachCmd(const Stmt &stmt, Fn fn) {
    if (!Is(stmt, PG_QUERY__NODE__NODE_ALTER_TABLE_STMT))
        return;
    const PgQuery__AlterTableStmt *s = stmt.node->alter_table_stmt;
    for (size_t i = 0; i < s->n_cmds; i++)
        if (s->cmds[i]->node_case == PG_QUERY__NODE__NODE_ALTER_TABLE_CMD)
            fn(s, s->cmds[i]->alter_table_cmd);
}

/* Drops calls fn(target) for each object a DROP of kind names that is not new. */
template <typename Fn>
void ForEachDrop(const Stmt &stmt, const Context &ctx, const char *kind, Fn fn) {
    if (!Is(stmt, PG_QUERY__NODE__NODE_DROP_STMT))
        return;
    for (const ObjectRef &o : DropTargets(stmt.node->drop_stmt))
        if (o.kind == kind && !ctx.IsNew(o.kind, o.key))
            fn(o);
}

/* Pended: a drop of a derived object, judged at the end of the transaction. */
inline void PendDrop(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out,
                     const char *kind, const char *what, const char *help) {
    ForEachDrop(stmt, ctx, kind, [&](const ObjectRef &o) {
        out.Pend(self, stmt, o.kind, o.key,
                 std::string("DROP ") + what + " " + o.key +
                     " is not followed by a CREATE of the same name before the transaction ends",
                 help);
    });
}

} // namespace keel::lint
