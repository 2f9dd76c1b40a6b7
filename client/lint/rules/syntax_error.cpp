/*
 * client/lint/rules/syntax_error.cpp — syntax-error (lint rule)
 *   a statement PostgreSQL 15's parser rejects. Nothing to check per statement: the engine reports
 * the parser's error at its position, never a crash (client/lint/engine.cpp). Default level: error.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &, const Stmt &, Context &, Emitter &) {}

extern const Rule kSyntaxError{"syntax-error", Level::Error,
                               "a statement PostgreSQL 15's parser rejects", false, Check};

} // namespace keel::lint
