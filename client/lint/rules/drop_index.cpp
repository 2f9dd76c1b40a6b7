/*
 * client/lint/rules/drop_index.cpp — drop-index (guard rule; docs/rules/drop-index.md)
 *   DROP INDEX is a replacement when the same index is created again in the
 *   same transaction; otherwise queries that relied on it turn into
 *   sequential scans. DROP INDEX CONCURRENTLY runs outside a transaction
 *   block, so it can never be a replacement: always flagged.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static const char *kHelp = "Create the replacement first (CREATE INDEX CONCURRENTLY), then drop "
                           "the old index in a later migration under -- keel:allow-destructive "
                           "\"reason\" (docs/rules/drop-index.md).";

static void Check(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out) {
    if (Is(stmt, PG_QUERY__NODE__NODE_DROP_STMT) && stmt.node->drop_stmt->concurrent) {
        ForEachDrop(stmt, ctx, "index", [&](const ObjectRef &o) {
            out.Report(self, stmt,
                       "DROP INDEX CONCURRENTLY " + o.key +
                           " runs outside a transaction, so it can never be a replacement",
                       kHelp);
        });
        return;
    }
    PendDrop(self, stmt, ctx, out, "index", "INDEX", kHelp);
}

extern const Rule kDropIndex = GuardRule(keel::kRuleDropIndex, Check);

} // namespace keel::lint
