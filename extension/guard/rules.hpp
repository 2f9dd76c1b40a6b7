/*
 * extension/guard/rules.hpp
 *   The guard's rules as C++ values: ids, stable names and default levels
 *   from rule_list.def, the parser of keel.guard_rules, and the check that a
 *   break-glass reason says something. Pure C++ (no postgres.h), linked into
 *   the unit tests and shared with `keel lint`.
 */
#pragma once

#include <cstddef>

namespace keel {

/* A rule's level: off lets it through silently (audited), warn with a WARNING, error refuses. */
enum class RuleLevel { Off = 0, Warn = 1, Error = 2 };

/* Rule ids, in the order of rule_list.def. */
enum RuleId {
#define KEEL_RULE(id, name, level, summary) kRule##id,
#include "guard/rule_list.def"
#undef KEEL_RULE
    kRuleCount
};

/* RuleName returns the stable kebab-case name of rule, e.g. "drop-table". */
const char *RuleName(int rule);
/* RuleSummary returns the one-line summary of rule from rule_list.def. */
const char *RuleSummary(int rule);
/* RuleDefaultLevel returns the level of rule when keel.guard_rules does not name it. */
RuleLevel RuleDefaultLevel(int rule);
/* RuleByName returns the id of the rule called name (len bytes), or -1. */
int RuleByName(const char *name, std::size_t len);
/* RuleLevelName returns "off", "warn" or "error". */
const char *RuleLevelName(RuleLevel level);

/*
 * ParseRuleLevels parses a keel.guard_rules value, a comma-separated list of
 * rule=level items (white space around names ignored; level error, warn or
 * off; an empty string sets nothing). levels (kRuleCount entries) receives
 * the defaults overridden by the list. On a bad item it returns false and
 * writes a message of at most error_size bytes to error (lower case, no
 * trailing period), e.g. "unknown rule \"drop-tabel\"".
 */
bool ParseRuleLevels(const char *text, RuleLevel *levels, char *error, std::size_t error_size);

/*
 * IsBlankReason reports whether utf8 (NUL-terminated UTF-8) says nothing:
 * empty, or only Unicode White_Space (U+0009-000D, U+0020, U+0085, U+00A0,
 * U+1680, U+2000-200A, U+2028, U+2029, U+202F, U+205F, U+3000) and
 * invisible format characters (U+180E, U+200B-200D, U+2060, U+FEFF).
 * Malformed UTF-8 bytes count as visible. (issue 5, "Blank reasons")
 */
bool IsBlankReason(const char *utf8);

} // namespace keel
