/*
 * client/lint/rules/drop_role.cpp — drop-role (guard rule; docs/rules/drop-role.md)
 *   DROP ROLE / USER / GROUP locks out whoever logs in as it, and what it
 *   owned must have been reassigned or dropped first.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &self, const Stmt &stmt, Context &, Emitter &out) {
    if (!Is(stmt, PG_QUERY__NODE__NODE_DROP_ROLE_STMT))
        return;
    const auto *s = stmt.node->drop_role_stmt;
    for (size_t i = 0; i < s->n_roles; i++) {
        const PgQuery__Node *r = s->roles[i];
        std::string name = r->node_case == PG_QUERY__NODE__NODE_ROLE_SPEC && r->role_spec->rolename
                               ? r->role_spec->rolename
                               : "?";
        out.Report(self, stmt, "DROP ROLE " + name + " removes a role other sessions may use",
                   "Revoke LOGIN first (ALTER ROLE ... NOLOGIN) and drop the role later by hand "
                   "(docs/rules/drop-role.md).");
    }
}

extern const Rule kDropRole = GuardRule(keel::kRuleDropRole, Check);

} // namespace keel::lint
