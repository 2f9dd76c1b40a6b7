/*
 * client/lint/rules/drop_materialized_view.cpp — drop-materialized-view (guard rule;
 * docs/rules/drop-materialized-view.md) A DROP MATERIALIZED VIEW holds no data of its own: dropped
 * and re-created under the same name before the transaction ends, it is a replacement and passes.
 *   Flagged when no CREATE of the same materialized view follows in the same transaction
 *   (the file, when keel migrate runs it in one), as the guard's pre-commit
 *   check would refuse it. Objects created earlier in the file pass.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    PendDrop(self, stmt, ctx, out, "materialized view", "MATERIALIZED VIEW",
             "Re-create the materialized view under the same name in the same transaction "
             "(docs/rules/drop-materialized-view.md).");
}

extern const Rule kDropMaterializedView = GuardRule(keel::kRuleDropMaterializedView, Check);

} // namespace keel::lint
