/*
 * client/lint/rules/unclosed_transaction.cpp — unclosed-transaction (lint rule)
 *   BEGIN without COMMIT. Nothing to check per statement: the engine reports a BEGIN still open at
 * the end of the file (client/lint/engine.cpp). Default level: error.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &, const Stmt &, Context &, Emitter &) {}

extern const Rule kUnclosedTransaction{"unclosed-transaction", Level::Error, "BEGIN without COMMIT",
                                       false, Check};

} // namespace keel::lint
