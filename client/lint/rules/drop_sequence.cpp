/*
 * client/lint/rules/drop_sequence.cpp — drop-sequence (guard rule; docs/rules/drop-sequence.md)
 *   Flags DROP SEQUENCE of a sequence not created earlier: its position is
 *   lost, and a re-created sequence hands out numbers already used.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    ForEachDrop(stmt, ctx, "sequence", [&](const ObjectRef &o) {
        out.Report(self, stmt, "DROP SEQUENCE " + o.key + " loses its position",
                   "Keep the sequence; if it must go, drop it under -- keel:allow-destructive "
                   "\"reason\" (docs/rules/drop-sequence.md).");
    });
}

extern const Rule kDropSequence = GuardRule(keel::kRuleDropSequence, Check);

} // namespace keel::lint
