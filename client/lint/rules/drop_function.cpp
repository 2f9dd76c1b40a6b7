/*
 * client/lint/rules/drop_function.cpp — drop-function (guard rule; docs/rules/drop-function.md)
 *   A DROP FUNCTION holds no data of its own: dropped and re-created under the
 *   same name before the transaction ends, it is a replacement and passes.
 *   Flagged when no CREATE of the same function follows in the same transaction
 *   (the file, when keel migrate runs it in one), as the guard's pre-commit
 *   check would refuse it. Objects created earlier in the file pass.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    PendDrop(self, stmt, ctx, out, "function", "FUNCTION",
             "Use CREATE OR REPLACE FUNCTION, or re-create the function in the same transaction "
             "(docs/rules/drop-function.md).");
}

extern const Rule kDropFunction = GuardRule(keel::kRuleDropFunction, Check);

} // namespace keel::lint
