/*
 * client/migrate/verdicts.cpp
 *   See verdicts.hpp.
 */
#include "migrate/verdicts.hpp"

#include <algorithm>
#include <set>

namespace keel::client {

namespace {

/* OffsetOf returns the byte offset of a 1-based line and character column in text. */
size_t OffsetOf(const std::string &text, size_t line, size_t column) {
    size_t at = 0;
    for (size_t l = 1; l < line && at < text.size(); ++at)
        if (text[at] == '\n' ||
            (text[at] == '\r' && !(at + 1 < text.size() && text[at + 1] == '\n')))
            ++l;
    for (size_t c = 1; c < column && at < text.size(); ++c) {
        ++at;
        while (at < text.size() && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80)
            ++at;
    }
    return at;
}

std::string Trim(const std::string &s) {
    size_t b = s.find_first_not_of(" \t");
    if (b == std::string::npos)
        return "";
    return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

/* Joined is items joined by ", ". */
std::string Joined(const std::vector<std::string> &items) {
    std::string out;
    for (const auto &i : items)
        out += (out.empty() ? "" : ", ") + i;
    return out;
}

void AddOnce(std::vector<std::string> *list, const std::string &item) {
    if (std::find(list->begin(), list->end(), item) == list->end())
        list->push_back(item);
}

} // namespace

std::string GuardSettings::Level(const std::string &rule) const {
    if (mode == "off")
        return "off";
    std::string level = "error";
    auto it = rules.find(rule);
    if (it != rules.end())
        level = it->second;
    if (mode == "warn" && level == "error")
        level = "warn";
    return level;
}

std::map<std::string, std::string> ParseGuardRules(const std::string &value) {
    std::map<std::string, std::string> out;
    size_t at = 0;
    while (at <= value.size()) {
        size_t comma = value.find(',', at);
        std::string item =
            value.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
        size_t eq = item.find('=');
        if (eq != std::string::npos) {
            std::string rule = Trim(item.substr(0, eq)), level = Trim(item.substr(eq + 1));
            if (level == "warning")
                level = "warn";
            if (!rule.empty() && (level == "error" || level == "warn" || level == "off"))
                out[rule] = level;
        }
        if (comma == std::string::npos)
            break;
        at = comma + 1;
    }
    return out;
}

GuardSettings ReadGuardSettings(const Connection &conn) {
    Result res = conn.Exec("SELECT coalesce(pg_catalog.current_setting('keel.guard', true), ''), "
                           "coalesce(pg_catalog.current_setting('keel.guard_rules', true), '')");
    GuardSettings s;
    std::string mode = PQgetvalue(res.get(), 0, 0);
    if (mode == "warn" || mode == "off")
        s.mode = mode;
    s.rules = ParseGuardRules(PQgetvalue(res.get(), 0, 1));
    return s;
}

std::string Abbreviated(const std::string &text, size_t max_chars) {
    std::string out;
    size_t chars = 0;
    bool space = false;
    for (size_t i = FirstTokenOffset(text, 0); i < text.size(); ++i) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            space = !out.empty();
            continue;
        }
        bool starts_char = (c & 0xC0) != 0x80;
        if (starts_char && chars + (space ? 1 : 0) >= max_chars) {
            out += "...";
            return out;
        }
        if (space) {
            out += ' ';
            ++chars;
            space = false;
        }
        out += static_cast<char>(c);
        chars += starts_char;
    }
    return out;
}

std::map<std::string, FileVerdicts>
StaticVerdicts(const std::vector<const MigrationFile *> &files,
               const std::map<std::string, Script> &scripts,
               const std::map<std::string, lint::Level> &lint_levels, const GuardSettings &guard) {
    std::set<std::string> guard_rules;
    for (const auto &r : lint::ListRules())
        if (r.guard)
            guard_rules.insert(r.name);
    lint::Options options;
    options.keep_waived = true;
    for (const auto &[rule, level] : lint_levels)
        if (!guard_rules.count(rule))
            options.levels[rule] = level;
    std::vector<lint::Source> sources;
    for (const MigrationFile *f : files)
        sources.push_back({f->contents, f->file_name, f->version});
    lint::Report report = lint::LintSequence(sources, options);

    std::map<std::string, FileVerdicts> out;
    for (const MigrationFile *f : files) {
        FileVerdicts &fv = out[f->version];
        auto script = scripts.find(f->version);
        /* statement i covers its first token up to its ';' */
        std::vector<std::pair<size_t, size_t>> ranges;
        if (script != scripts.end())
            for (const Statement &stmt : script->second.statements) {
                StatementVerdict v;
                v.line = stmt.line;
                v.text = Abbreviated(stmt.text);
                fv.statements.push_back(v);
                ranges.push_back(
                    {FirstTokenOffset(f->contents, stmt.offset), stmt.offset + stmt.length + 1});
            }
        /* parts of each verdict, in this order */
        std::vector<std::vector<std::string>> refused(ranges.size()), warned(ranges.size()),
            unguarded(ranges.size()), allowed(ranges.size()), warnings(ranges.size());
        for (const lint::Finding &finding : report.findings) {
            if (finding.file != f->file_name)
                continue;
            size_t off = OffsetOf(f->contents, finding.line, finding.column);
            size_t i = 0;
            while (i < ranges.size() && !(ranges[i].first <= off && off < ranges[i].second))
                ++i;
            bool is_guard = guard_rules.count(finding.rule) > 0;
            if (!is_guard && !finding.waived_by.empty())
                continue;
            if (i == ranges.size()) {
                if (script != scripts.end())
                    fv.file_findings.push_back(finding);
                continue;
            }
            StatementVerdict &v = fv.statements[i];
            AddOnce(&v.rules, finding.rule);
            if (!is_guard) {
                AddOnce(&warnings[i], finding.rule);
            } else if (finding.waived_by == "allow-destructive") {
                AddOnce(&allowed[i], finding.rule);
            } else {
                std::string level = guard.Level(finding.rule);
                if (level == "error") {
                    AddOnce(&refused[i], finding.rule);
                    AddOnce(&v.refused, finding.rule);
                    if (finding.at_commit)
                        AddOnce(&v.refused_later, finding.rule);
                } else {
                    AddOnce(level == "warn" ? &warned[i] : &unguarded[i], finding.rule);
                }
            }
        }
        for (size_t i = 0; i < fv.statements.size(); ++i) {
            std::vector<std::string> parts;
            if (!refused[i].empty())
                parts.push_back("refused (" + Joined(refused[i]) + ")");
            if (!warned[i].empty())
                parts.push_back("warned by the guard (" + Joined(warned[i]) + ")");
            if (!unguarded[i].empty())
                parts.push_back("unguarded (" + Joined(unguarded[i]) + ")");
            if (!allowed[i].empty())
                parts.push_back("allowed by the break-glass (" + Joined(allowed[i]) +
                                "): " + f->directives.allow_destructive_reason.value_or(""));
            if (!warnings[i].empty())
                parts.push_back("warning (" + Joined(warnings[i]) + ")");
            if (!parts.empty()) {
                std::string verdict;
                for (const auto &p : parts)
                    verdict += (verdict.empty() ? "" : "; ") + p;
                fv.statements[i].verdict = verdict;
            }
        }
    }
    return out;
}

} // namespace keel::client
