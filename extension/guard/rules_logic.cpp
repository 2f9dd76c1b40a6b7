/*
 * extension/guard/rules_logic.cpp
 *   Rule names, levels, the keel.guard_rules parser and the blank-reason
 *   check (see rules.hpp). Pure C++: no allocation, no exceptions.
 */
#include "guard/rules.hpp"

#include <cstdio>
#include <cstring>

namespace keel {

namespace {

struct RuleInfo {
    const char *name;
    RuleLevel level;
    const char *summary;
};

[[maybe_unused]] constexpr RuleLevel error = RuleLevel::Error;
[[maybe_unused]] constexpr RuleLevel warn = RuleLevel::Warn;
[[maybe_unused]] constexpr RuleLevel off = RuleLevel::Off;

const RuleInfo kRules[kRuleCount] = {
#define KEEL_RULE(id, name, level, summary) {name, level, summary},
#include "guard/rule_list.def"
#undef KEEL_RULE
};

bool IsSpace(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

/* Trim narrows [*b, *e) to exclude ASCII white space at both ends. */
void Trim(const char **b, const char **e) {
    while (*b < *e && IsSpace(**b))
        ++*b;
    while (*e > *b && IsSpace((*e)[-1]))
        --*e;
}

bool LevelByName(const char *b, std::size_t len, RuleLevel *out) {
    static const struct {
        const char *name;
        RuleLevel level;
    } kLevels[] = {{"error", RuleLevel::Error}, {"warn", RuleLevel::Warn}, {"off", RuleLevel::Off}};
    for (const auto &l : kLevels)
        if (std::strlen(l.name) == len && std::strncmp(l.name, b, len) == 0) {
            *out = l.level;
            return true;
        }
    return false;
}

/* Invisible: Unicode White_Space and the zero-width format characters. */
bool IsInvisible(unsigned cp) {
    if ((cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680)
        return true;
    if ((cp >= 0x2000 && cp <= 0x200D) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
        cp == 0x205F || cp == 0x2060 || cp == 0x3000 || cp == 0x180E || cp == 0xFEFF)
        return true;
    return false;
}

} // namespace

const char *RuleName(int rule) {
    return rule >= 0 && rule < kRuleCount ? kRules[rule].name : "unknown";
}

const char *RuleSummary(int rule) {
    return rule >= 0 && rule < kRuleCount ? kRules[rule].summary : "";
}

RuleLevel RuleDefaultLevel(int rule) {
    return rule >= 0 && rule < kRuleCount ? kRules[rule].level : RuleLevel::Error;
}

int RuleByName(const char *name, std::size_t len) {
    for (int i = 0; i < kRuleCount; i++)
        if (std::strlen(kRules[i].name) == len && std::strncmp(kRules[i].name, name, len) == 0)
            return i;
    return -1;
}

const char *RuleLevelName(RuleLevel level) {
    switch (level) {
    case RuleLevel::Off:
        return "off";
    case RuleLevel::Warn:
        return "warn";
    case RuleLevel::Error:
        break;
    }
    return "error";
}

bool ParseRuleLevels(const char *text, RuleLevel *levels, char *error, std::size_t error_size) {
    for (int i = 0; i < kRuleCount; i++)
        levels[i] = kRules[i].level;
    if (text == nullptr)
        return true;
    const char *p = text;
    while (true) {
        const char *end = std::strchr(p, ',');
        if (end == nullptr)
            end = p + std::strlen(p);
        const char *b = p, *e = end;
        Trim(&b, &e);
        if (b != e) {
            const char *eq = static_cast<const char *>(std::memchr(b, '=', e - b));
            if (eq == nullptr) {
                std::snprintf(error, error_size, "item \"%.*s\" is not rule=level", int(e - b), b);
                return false;
            }
            const char *nb = b, *ne = eq, *lb = eq + 1, *le = e;
            Trim(&nb, &ne);
            Trim(&lb, &le);
            int rule = RuleByName(nb, ne - nb);
            if (rule < 0) {
                std::snprintf(error, error_size, "unknown rule \"%.*s\"", int(ne - nb), nb);
                return false;
            }
            if (!LevelByName(lb, le - lb, &levels[rule])) {
                std::snprintf(error, error_size, "unknown level \"%.*s\" for rule \"%s\"",
                              int(le - lb), lb, kRules[rule].name);
                return false;
            }
        } else if (*end == ',') {
            std::snprintf(error, error_size, "empty item in the list");
            return false;
        }
        if (*end == '\0')
            return true;
        p = end + 1;
    }
}

bool IsBlankReason(const char *utf8) {
    const unsigned char *s = reinterpret_cast<const unsigned char *>(utf8);
    while (*s) {
        unsigned cp;
        int len;
        if (s[0] < 0x80) {
            cp = s[0];
            len = 1;
        } else if ((s[0] & 0xE0) == 0xC0 && (s[1] & 0xC0) == 0x80) {
            cp = ((s[0] & 0x1Fu) << 6) | (s[1] & 0x3Fu);
            len = 2;
        } else if ((s[0] & 0xF0) == 0xE0 && (s[1] & 0xC0) == 0x80 && (s[2] & 0xC0) == 0x80) {
            cp = ((s[0] & 0x0Fu) << 12) | ((s[1] & 0x3Fu) << 6) | (s[2] & 0x3Fu);
            len = 3;
        } else {
            return false; /* four-byte or malformed: visible */
        }
        if (!IsInvisible(cp))
            return false;
        s += len;
    }
    return true;
}

} // namespace keel
