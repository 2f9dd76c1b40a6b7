/*
 * client/lint/rules/invalid_directive.cpp — invalid-directive (lint rule)
 *   a malformed -- keel: directive. Nothing to check per statement: the engine reports directives
 * keel migrate would refuse (client/lib/migration_file.cpp) (client/lint/engine.cpp). Default
 * level: error.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &, const Stmt &, Context &, Emitter &) {}

extern const Rule kInvalidDirective{"invalid-directive", Level::Error,
                                    "a malformed -- keel: directive", false, Check};

} // namespace keel::lint
