/*
 * client/lint/lint.hpp
 *   keel lint: catches destructive and lock-heavy migrations at review time,
 *   with no database, using PostgreSQL 15's own parser (libpg_query). Every
 *   guard rule is reported under the guard's own name (extension/guard/
 *   rule_list.def), beside lint's lock and availability rules
 *   (client/lint/rules/, one file per rule). docs/lint.md documents the
 *   command, the configuration, the waivers and the output formats.
 */
#pragma once

#include <filesystem>
#include <map>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace keel::lint {

/* A rule's level. Findings at Error make keel lint exit 1. */
enum class Level { Off = 0, Warning = 1, Error = 2 };

/* LevelName returns "off", "warning" or "error". */
const char *LevelName(Level level);
/* ParseLevel accepts error, warning (or warn) and off; false otherwise. */
bool ParseLevel(const std::string &text, Level *level);

/* Finding is one problem at one place. line and column are 1-based (column in characters). */
struct Finding {
    std::string file;
    size_t line = 1;
    size_t column = 1;
    Level level = Level::Error;
    std::string rule;
    std::string message; /* lower case, no trailing period */
    std::string help;    /* the safe alternative, one sentence */
    /* Only with Options::keep_waived: "allow-destructive" (a guard rule the file's
     * -- keel:allow-destructive directive waives) or "comment" (a -- keel:allow
     * waiver); "" for a finding that stands. */
    std::string waived_by;
    bool at_commit = false; /* judged when the transaction ends (a dropped object not re-created) */
};

/* UsageError is a mistake in the command line or in keel.toml: exit code 2. */
class UsageError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/* Options of one run. levels overrides the defaults (keel.toml, then --rule). */
struct Options {
    std::map<std::string, Level> levels;
    /* keep waived findings, marked in Finding::waived_by, instead of dropping them (keel plan
     * shows what the break-glass lets through; the server's guard reads no comment waiver) */
    bool keep_waived = false;
};

/* Report is the result of one run. */
struct Report {
    size_t files = 0;
    size_t statements = 0;
    std::vector<Finding> findings; /* at level warning or error, in file then position order */
    size_t errors() const;         /* findings at Error, waived ones not counted */
    size_t warnings() const;       /* findings at Warning, waived ones not counted */
};

/*
 * LintPaths lints files and folders. A folder is read in version order
 * (<digits>_<slug>.sql, .down.sql files beside them linted apart), and a
 * table created in an earlier file counts as new in the later ones. A
 * keel.toml at a folder's root sets levels ([rules] name = "level");
 * options.levels wins over it. Throws UsageError for a missing path, an
 * unknown rule or level, or a bad keel.toml.
 */
Report LintPaths(const std::vector<std::filesystem::path> &paths, const Options &options);

/* LintText lints one file's contents as if read from file_name (for tests and fuzzing). */
Report LintText(const std::string &contents, const std::string &file_name, const Options &options);

/* Source is one file's contents, the name findings carry, and its canonical version. */
struct Source {
    std::string contents;
    std::string file_name;
    std::string version;
};

/*
 * LintSequence lints sources in the order given as one folder run: a table
 * created in an earlier source counts as new in the later ones (keel plan
 * passes the pending files, so a table an applied migration created is not
 * new). Findings keep the order of sources, then position.
 */
Report LintSequence(const std::vector<Source> &sources, const Options &options);

/*
 * ReadKeelToml reads keel.toml's [rules] table (rule = "level") into levels;
 * names already in levels win. Throws UsageError for bad TOML, an unknown
 * rule or an unknown level (config.cpp; docs/lint.md, "Configuration").
 */
void ReadKeelToml(const std::filesystem::path &file, std::map<std::string, Level> *levels);

/* Output formats. */
enum class Format { Text, Json, Github, Gcc, Sarif };
/* ParseFormat accepts text, json, github, gcc, sarif. */
bool ParseFormat(const std::string &text, Format *format);
/* WriteReport prints report in format; colour only for Text on a terminal. */
void WriteReport(const Report &report, Format format, bool colour, std::ostream &out);

/* RuleDescription is one rule as `keel lint --list-rules` prints it. */
struct RuleDescription {
    std::string name;
    Level level;
    std::string summary;
    bool guard; /* shared with the server's guard */
};
std::vector<RuleDescription> ListRules();

} // namespace keel::lint
