/*
 * client/lint/rules/drop_view.cpp — drop-view (guard rule; docs/rules/drop-view.md)
 *   A DROP VIEW holds no data of its own: dropped and re-created under the
 *   same name before the transaction ends, it is a replacement and passes.
 *   Flagged when no CREATE of the same view follows in the same transaction
 *   (the file, when keel migrate runs it in one), as the guard's pre-commit
 *   check would refuse it. Objects created earlier in the file pass.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    PendDrop(self, stmt, ctx, out, "view", "VIEW",
             "Re-create the view in the same transaction (or use CREATE OR REPLACE VIEW) so that "
             "running queries never miss it (docs/rules/drop-view.md).");
}

extern const Rule kDropView = GuardRule(keel::kRuleDropView, Check);

} // namespace keel::lint
