/*
 * client/lint/config.cpp
 *   keel.toml at a migrations folder's root (toml11):
 *     [rules]
 *     rename-column = "warning"
 *     missing-lock-timeout = "off"
 *   and the level names. An unknown rule or level is a UsageError (exit 2).
 */
#include "lint/lint.hpp"
#include "lint/rule.hpp"

#include <toml.hpp>

namespace keel::lint {

const char *LevelName(Level level) {
    switch (level) {
    case Level::Off:
        return "off";
    case Level::Warning:
        return "warning";
    case Level::Error:
        break;
    }
    return "error";
}

bool ParseLevel(const std::string &text, Level *level) {
    if (text == "error")
        *level = Level::Error;
    else if (text == "warning" || text == "warn")
        *level = Level::Warning;
    else if (text == "off")
        *level = Level::Off;
    else
        return false;
    return true;
}

void ReadKeelToml(const std::filesystem::path &file, std::map<std::string, Level> *levels) {
    toml::value config;
    try {
        config = toml::parse(file.string());
    } catch (const std::exception &e) {
        throw UsageError(file.string() + ": not valid TOML: " + e.what());
    }
    if (!config.is_table() || !config.contains("rules"))
        return;
    const toml::value &rules = config.at("rules");
    if (!rules.is_table())
        throw UsageError(file.string() + ": [rules] must be a table of rule = \"level\"");
    for (const auto &[name, value] : rules.as_table()) {
        if (FindRule(name) == nullptr)
            throw UsageError(file.string() + ": unknown rule \"" + name + "\"");
        Level level;
        if (!value.is_string() || !ParseLevel(value.as_string(), &level))
            throw UsageError(file.string() + ": rule \"" + name +
                             "\" needs a level: \"error\", \"warning\" or \"off\"");
        levels->emplace(name, level); /* --rule, already in levels, wins */
    }
}

std::vector<RuleDescription> ListRules() {
    std::vector<RuleDescription> out;
    for (const Rule *r : AllRules())
        out.push_back({r->name, r->level, r->summary, r->guard});
    return out;
}

} // namespace keel::lint
