/*
 * client/lint/rules/drop_schema.cpp — drop-schema (guard rule; docs/rules/drop-schema.md)
 *   A DROP SCHEMA holds no data of its own: dropped and re-created under the
 *   same name before the transaction ends, it is a replacement and passes.
 *   Flagged when no CREATE of the same schema follows in the same transaction
 *   (the file, when keel migrate runs it in one), as the guard's pre-commit
 *   check would refuse it. Objects created earlier in the file pass.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    PendDrop(
        self, stmt, ctx, out, "schema", "SCHEMA",
        "Re-create the schema in the same transaction, or keep it (docs/rules/drop-schema.md).");
}

extern const Rule kDropSchema = GuardRule(keel::kRuleDropSchema, Check);

} // namespace keel::lint
