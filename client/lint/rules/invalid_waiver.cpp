/*
 * client/lint/rules/invalid_waiver.cpp — invalid-waiver (lint rule)
 *   a -- keel:allow waiver without a reason, or naming an unknown rule. Nothing to check per
 * statement: the engine reports waivers that say nothing or name no rule (client/lint/engine.cpp).
 * Default level: error.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &, const Stmt &, Context &, Emitter &) {}

extern const Rule kInvalidWaiver{
    "invalid-waiver", Level::Error,
    "a -- keel:allow waiver without a reason, or naming an unknown rule", false, Check};

} // namespace keel::lint
