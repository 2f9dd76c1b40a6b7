/*
 * client/lint/rules/drop_type.cpp — drop-type (guard rule; docs/rules/drop-type.md)
 *   A DROP TYPE holds no data of its own: dropped and re-created under the
 *   same name before the transaction ends, it is a replacement and passes.
 *   Flagged when no CREATE of the same type follows in the same transaction
 *   (the file, when keel migrate runs it in one), as the guard's pre-commit
 *   check would refuse it. Objects created earlier in the file pass.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    PendDrop(self, stmt, ctx, out, "type", "TYPE",
             "Re-create the type in the same transaction; a type that columns use cannot be "
             "dropped without losing them (docs/rules/drop-type.md).");
}

extern const Rule kDropType = GuardRule(keel::kRuleDropType, Check);

} // namespace keel::lint
