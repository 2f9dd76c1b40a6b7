/*
 * client/lint/format.cpp
 *   keel lint's output formats (docs/lint.md, "Output"):
 *     text    file:line:col: level rule: message, then "  help: ..." (colour on a terminal)
 *     json    {"version": 1, "files", "statements", "errors", "warnings", "findings": [...]}
 *     github  ::error file=...,line=...,col=...,title=rule::message (workflow annotations)
 *     gcc     file:line:col: error: message [rule]
 *     sarif   SARIF 2.1.0, one run, one result per finding
 */
#include "lint/lint.hpp"

#include <nlohmann/json.hpp>

namespace keel::lint {

bool ParseFormat(const std::string &text, Format *format) {
    static const std::pair<const char *, Format> kFormats[] = {{"text", Format::Text},
                                                               {"json", Format::Json},
                                                               {"github", Format::Github},
                                                               {"gcc", Format::Gcc},
                                                               {"sarif", Format::Sarif}};
    for (const auto &[name, f] : kFormats)
        if (text == name) {
            *format = f;
            return true;
        }
    return false;
}

namespace {

/* GithubEscape escapes workflow-command data and properties (%, CR, LF; and , : in properties). */
std::string GithubEscape(const std::string &s, bool property) {
    std::string out;
    for (char c : s) {
        if (c == '%')
            out += "%25";
        else if (c == '\r')
            out += "%0D";
        else if (c == '\n')
            out += "%0A";
        else if (property && c == ':')
            out += "%3A";
        else if (property && c == ',')
            out += "%2C";
        else
            out += c;
    }
    return out;
}

void WriteText(const Report &report, bool colour, std::ostream &out) {
    const char *bold = colour ? "\033[1m" : "", *reset = colour ? "\033[0m" : "";
    for (const Finding &f : report.findings) {
        const char *tint = !colour ? "" : f.level == Level::Error ? "\033[31m" : "\033[33m";
        out << bold << f.file << ":" << f.line << ":" << f.column << ":" << reset << " " << tint
            << LevelName(f.level) << reset << " " << bold << f.rule << reset << ": " << f.message
            << "\n";
        if (!f.help.empty())
            out << "  help: " << f.help << "\n";
    }
    out << report.files << " file(s), " << report.statements << " statement(s): " << report.errors()
        << " error(s), " << report.warnings() << " warning(s)\n";
}

void WriteJson(const Report &report, std::ostream &out) {
    nlohmann::json findings = nlohmann::json::array();
    for (const Finding &f : report.findings)
        findings.push_back({{"file", f.file},
                            {"line", f.line},
                            {"column", f.column},
                            {"level", LevelName(f.level)},
                            {"rule", f.rule},
                            {"message", f.message},
                            {"help", f.help}});
    nlohmann::json doc = {{"version", 1},
                          {"files", report.files},
                          {"statements", report.statements},
                          {"errors", report.errors()},
                          {"warnings", report.warnings()},
                          {"findings", findings}};
    out << doc.dump(2) << "\n";
}

void WriteGithub(const Report &report, std::ostream &out) {
    for (const Finding &f : report.findings)
        out << "::" << (f.level == Level::Error ? "error" : "warning")
            << " file=" << GithubEscape(f.file, true) << ",line=" << f.line << ",col=" << f.column
            << ",title=" << GithubEscape(f.rule, true)
            << "::" << GithubEscape(f.message + (f.help.empty() ? "" : ". " + f.help), false)
            << "\n";
}

void WriteGcc(const Report &report, std::ostream &out) {
    for (const Finding &f : report.findings)
        out << f.file << ":" << f.line << ":" << f.column << ": "
            << (f.level == Level::Error ? "error" : "warning") << ": " << f.message << " ["
            << f.rule << "]\n";
}

void WriteSarif(const Report &report, std::ostream &out) {
    nlohmann::json rules = nlohmann::json::array();
    std::map<std::string, size_t> index;
    for (const RuleDescription &r : ListRules()) {
        index[r.name] = rules.size();
        rules.push_back({{"id", r.name},
                         {"shortDescription", {{"text", r.summary}}},
                         {"helpUri", "docs/" + std::string(r.guard ? "rules/" : "lint.md#") +
                                         r.name + (r.guard ? ".md" : "")},
                         {"defaultConfiguration",
                          {{"level", r.level == Level::Error     ? "error"
                                     : r.level == Level::Warning ? "warning"
                                                                 : "none"}}}});
    }
    nlohmann::json results = nlohmann::json::array();
    for (const Finding &f : report.findings)
        results.push_back(
            {{"ruleId", f.rule},
             {"ruleIndex", index.count(f.rule) ? index[f.rule] : 0},
             {"level", f.level == Level::Error ? "error" : "warning"},
             {"message", {{"text", f.message + (f.help.empty() ? "" : ". " + f.help)}}},
             {"locations",
              {{{"physicalLocation",
                 {{"artifactLocation", {{"uri", f.file}}},
                  {"region", {{"startLine", f.line}, {"startColumn", f.column}}}}}}}}});
    nlohmann::json doc = {
        {"$schema", "https://json.schemastore.org/sarif-2.1.0.json"},
        {"version", "2.1.0"},
        {"runs",
         {{{"tool",
            {{"driver",
              {{"name", "keel lint"}, {"informationUri", "docs/lint.md"}, {"rules", rules}}}}},
           {"results", results}}}}};
    out << doc.dump(2) << "\n";
}

} // namespace

void WriteReport(const Report &report, Format format, bool colour, std::ostream &out) {
    switch (format) {
    case Format::Text:
        WriteText(report, colour, out);
        break;
    case Format::Json:
        WriteJson(report, out);
        break;
    case Format::Github:
        WriteGithub(report, out);
        break;
    case Format::Gcc:
        WriteGcc(report, out);
        break;
    case Format::Sarif:
        WriteSarif(report, out);
        break;
    }
}

} // namespace keel::lint
