/*
 * client/lib/report.hpp
 *   keel.migration_history read back, and the state of every version once the
 *   history is set beside a migrations folder: applied (checksum matching or
 *   not), pending, failed, superseded, and the supersedes directives still to
 *   record. keel status prints it; keel migrate acts on it.
 */
#pragma once

#include "lib/connection.hpp"
#include "lib/migration_file.hpp"

#include <nlohmann/json.hpp>

#include <optional>
#include <ostream>
#include <string>
#include <vector>

namespace keel::client {

/* HistoryRow is one row of keel.migration_history (times in UTC, ISO 8601). */
struct HistoryRow {
    long long id = 0;
    std::string version; /* canonical digits */
    std::optional<std::string> name;
    std::optional<std::string> checksum;
    std::string status; /* applied | failed | superseded | baselined | repaired | reverted */
    std::string applied_by;
    std::string started_at;
    std::string finished_at;
    double execution_ms = 0;
    std::optional<std::string> error;
    std::optional<std::string> superseded_by;
    std::optional<std::string> reason;         /* 0.2.0: why a row was repaired */
    std::optional<std::string> token_checksum; /* 0.2.0: lib/token_checksum.hpp */
    int revision = 0; /* 0.2.0: reverts (keel down) of the version before this row */
};

/*
 * ReadHistory returns every history row in id order. Throws ServerError (for
 * instance 42P01 when keel is not installed) or std::runtime_error.
 */
std::vector<HistoryRow> ReadHistory(const Connection &conn);

/*
 * AppliedEntry: a version that is applied (or baselined). recorded_checksum
 * is what the folder is compared with: the latest repaired row's checksum
 * when there is one (nullopt: repaired as gone, the file may be absent),
 * else the applied row's.
 */
struct AppliedEntry {
    HistoryRow row;
    const MigrationFile *file = nullptr; /* nullptr: not in the folder (or no folder) */
    std::optional<std::string> recorded_checksum;
    /* the latest repaired row, if any: a copy, as the rows Analyze reads are often a
     * temporary (Analyze(&set, ReadHistory(conn))) that is gone before the report is printed */
    std::optional<HistoryRow> repair;
    bool missing() const { return file == nullptr && recorded_checksum.has_value(); }
};
struct FailedEntry {
    HistoryRow last_attempt;
    const MigrationFile *file = nullptr;
};
struct Mismatch {
    const MigrationFile *file = nullptr;
    std::string recorded;
    /* only comments or whitespace changed: the recorded token checksum equals
     * the file's (lib/token_checksum.hpp); keel migrate goes on, and says so */
    bool cosmetic = false;
};
/* SupersedeTask: version is retired by `by`'s keel:supersedes and not yet recorded. */
struct SupersedeTask {
    std::string version;
    const MigrationFile *file = nullptr; /* the superseded file, if present */
    const MigrationFile *by = nullptr;
    bool by_applied = false; /* `by` is already applied: record it on its own */
};

/*
 * InterruptedAttempt: a keel:no-transaction migration whose latest attempt
 * journaled steps (keel.migration_steps) but was not recorded applied: it
 * failed, or its client or connection died. keel migrate resumes it.
 */
struct InterruptedAttempt {
    std::string version;
    std::string started_at; /* UTC, ISO 8601 */
    int steps_done = 0;
    int last_line = 0; /* line of the last completed statement */
};

struct Report {
    bool have_dir = false;
    std::vector<AppliedEntry> applied;
    std::vector<const MigrationFile *> pending; /* version order; failed ones included */
    std::vector<FailedEntry> failed;            /* latest attempt failed, not applied */
    std::vector<HistoryRow> superseded;         /* recorded as superseded */
    std::vector<SupersedeTask> to_supersede;
    std::vector<Mismatch> mismatches; /* real and cosmetic */
    std::vector<HistoryRow> reverted; /* latest revert of a version now pending (keel down) */
    std::vector<InterruptedAttempt> interrupted; /* set by AddInterrupted */
    std::vector<std::string> problems;           /* from the folder */
    /* RealMismatches counts the mismatches that are not cosmetic. */
    size_t RealMismatches() const;
};

/*
 * Analyze sets history beside set (nullptr: history only). set must outlive
 * the report (entries point into it). Only rows after a version's latest
 * reverted row count (keel down made it pending again). Rules: a version with an applied row is
 * applied, and its file's checksum must equal the recorded one; a version with
 * a superseded row is superseded; a version named by the keel:supersedes of a
 * file that is not itself superseded, and not applied, is to be superseded
 * and never pending; every other file is pending.
 */
Report Analyze(const MigrationSet *set, const std::vector<HistoryRow> &rows);

/*
 * AddInterrupted reads keel.migration_steps (0.2.0; nothing on 0.1.0) into
 * report.interrupted: the latest journaled attempt of each version that is
 * not applied. ServerError on a server error.
 */
void AddInterrupted(const Connection &conn, Report *report);

/* ReportJson is the --json form of keel status (format in client/README or main.cpp). */
/* server_role is ServerRole::Label() ("primary", "standby (in recovery, read-only)", ...). */
nlohmann::json ReportJson(const Report &report, const std::string &target,
                          const std::string &server_role);

/*
 * PrintReport writes the human form of keel status: one line per version
 * (applied, baselined, superseded, failed, pending — "(reverted TIME by
 * ROLE)" when keel down made it pending —, reverted, interrupted, COSMETIC,
 * MISMATCH), the kind padded to 11 characters and the version and name
 * columns padded to their widest entry so the columns line up (issue 12:
 * "status aligns its columns"); then PROBLEM lines and a summary line.
 */
void PrintReport(std::ostream &out, const Report &report, const std::string &target,
                 const std::string &server_role);

} // namespace keel::client
