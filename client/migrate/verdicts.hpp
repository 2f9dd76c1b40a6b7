/*
 * client/migrate/verdicts.hpp
 *   The guard's verdict on each statement of the pending files, from a
 *   static check: keel lint's engine (client/lint/) run over the pending
 *   files in order, its findings mapped onto the statements keel migrate
 *   would run, and the guard rules judged with the session's keel.guard and
 *   keel.guard_rules and the file's -- keel:allow-destructive directive.
 *   keel plan prints them; keel rehearse uses them for what a rehearsal
 *   cannot see at run time (issue 12: "the guard's verdict per statement
 *   from a static check"). Internal to client/migrate.
 */
#pragma once

#include "lib/connection.hpp"
#include "lib/migration_file.hpp"
#include "lib/sql_script.hpp"
#include "lint/lint.hpp"

#include <map>
#include <string>
#include <vector>

namespace keel::client {

/*
 * GuardSettings is what the server's guard would apply to this session:
 * keel.guard (enforce, warn, off) and keel.guard_rules ("rule=level, ...",
 * level error, warn or off; docs/guard.md, "Settings").
 */
struct GuardSettings {
    std::string mode = "enforce";
    std::map<std::string, std::string> rules;
    /* Level returns "error", "warn" or "off" for rule under mode and rules. */
    std::string Level(const std::string &rule) const;
};

/*
 * ReadGuardSettings reads keel.guard and keel.guard_rules with
 * current_setting(..., true) (read-only; works on a standby); an unset or
 * unknown value counts as the default (enforce, every rule at error).
 * Throws ServerError if the query fails.
 */
GuardSettings ReadGuardSettings(const Connection &conn);

/* ParseGuardRules parses a keel.guard_rules value "rule=level, rule=level"; bad items are skipped.
 */
std::map<std::string, std::string> ParseGuardRules(const std::string &value);

/* StatementVerdict is the static verdict on one statement keel migrate would run. */
struct StatementVerdict {
    size_t line = 1;                        /* 1-based line of its first token */
    std::string text;                       /* Abbreviated(statement) */
    std::string verdict = "ok";             /* "refused (drop-table)", "warning (...)", ... */
    std::vector<std::string> rules;         /* every rule behind the verdict */
    std::vector<std::string> refused;       /* guard rules the guard would refuse (level error) */
    std::vector<std::string> refused_later; /* of those, judged at COMMIT (not re-created) */
};

/* FileVerdicts are one file's statements (in Script order) and the findings on none of them. */
struct FileVerdicts {
    std::vector<StatementVerdict> statements;
    std::vector<lint::Finding> file_findings; /* directives, the wrapper's BEGIN/COMMIT, ... */
};

/*
 * StaticVerdicts lints files (the pending migrations, in the order keel
 * migrate runs them) as one sequence and returns, per file version, the
 * verdict on every statement of scripts[version] (a file missing from
 * scripts, one that did not parse, is linted for the sequence's context but
 * gets no statements). Guard rules are judged at their default lint level,
 * whatever lint_levels says: keel.toml changes only what lint reports, not
 * what the server refuses (docs/lint.md). A guard finding is "refused
 * (rule)" at guard level error, "warned by the guard (rule)" at warn,
 * "unguarded (rule)" at off, and "allowed by the break-glass (rule):
 * reason" when the file's -- keel:allow-destructive directive covers it; a
 * -- keel:allow comment does not bind the guard. A lint-only finding is
 * "warning (rule)" (the server does not refuse it), left out when a comment
 * waives it or lint_levels turns it off. Throws lint::UsageError for an
 * unknown rule in lint_levels.
 */
std::map<std::string, FileVerdicts>
StaticVerdicts(const std::vector<const MigrationFile *> &files,
               const std::map<std::string, Script> &scripts,
               const std::map<std::string, lint::Level> &lint_levels, const GuardSettings &guard);

/*
 * Abbreviated returns statement text from its first token, white space runs
 * collapsed to one space, cut to at most max_chars characters (UTF-8) with
 * "..." appended when cut.
 */
std::string Abbreviated(const std::string &text, size_t max_chars = 80);

} // namespace keel::client
