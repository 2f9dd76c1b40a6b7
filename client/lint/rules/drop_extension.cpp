/*
 * client/lint/rules/drop_extension.cpp — drop-extension (guard rule; docs/rules/drop-extension.md)
 *   DROP EXTENSION takes the extension's objects with it; re-created in the
 *   same transaction it is a replacement. DROP EXTENSION keel is
 *   guard-tamper instead.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    ForEachDrop(stmt, ctx, "extension", [&](const ObjectRef &o) {
        if (o.key == "keel")
            return;
        out.Pend(
            self, stmt, o.kind, o.key,
            "DROP EXTENSION " + o.key +
                " is not followed by CREATE EXTENSION of the same name before the transaction ends",
            "Use ALTER EXTENSION ... UPDATE, or re-create it in the same transaction; tables "
            "it holds are lost (docs/rules/drop-extension.md).");
    });
}

extern const Rule kDropExtension = GuardRule(keel::kRuleDropExtension, Check);

} // namespace keel::lint
