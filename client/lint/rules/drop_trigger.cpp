/*
 * client/lint/rules/drop_trigger.cpp — drop-trigger (guard rule; docs/rules/drop-trigger.md)
 *   A DROP TRIGGER holds no data of its own: dropped and re-created under the
 *   same name before the transaction ends, it is a replacement and passes.
 *   Flagged when no CREATE of the same trigger follows in the same transaction
 *   (the file, when keel migrate runs it in one), as the guard's pre-commit
 *   check would refuse it. Objects created earlier in the file pass.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    PendDrop(self, stmt, ctx, out, "trigger", "TRIGGER",
             "Re-create the trigger in the same transaction, or use CREATE OR REPLACE TRIGGER "
             "(docs/rules/drop-trigger.md).");
}

extern const Rule kDropTrigger = GuardRule(keel::kRuleDropTrigger, Check);

} // namespace keel::lint
