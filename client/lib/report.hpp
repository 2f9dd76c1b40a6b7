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
    std::string status; /* applied | failed | superseded | baselined | repaired */
    std::string applied_by;
    std::string started_at;
    std::string finished_at;
    double execution_ms = 0;
    std::optional<std::string> error;
    std::optional<std::string> superseded_by;
    std::optional<std::string> reason; /* 0.2.0: why a row was repaired */
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
};
/* SupersedeTask: version is retired by `by`'s keel:supersedes and not yet recorded. */
struct SupersedeTask {
    std::string version;
    const MigrationFile *file = nullptr; /* the superseded file, if present */
    const MigrationFile *by = nullptr;
    bool by_applied = false; /* `by` is already applied: record it on its own */
};

struct Report {
    bool have_dir = false;
    std::vector<AppliedEntry> applied;
    std::vector<const MigrationFile *> pending; /* version order; failed ones included */
    std::vector<FailedEntry> failed;            /* latest attempt failed, not applied */
    std::vector<HistoryRow> superseded;         /* recorded as superseded */
    std::vector<SupersedeTask> to_supersede;
    std::vector<Mismatch> mismatches;
    std::vector<std::string> problems; /* from the folder */
};

/*
 * Analyze sets history beside set (nullptr: history only). set must outlive
 * the report (entries point into it); rows need not (entries copy them). Rules: a version with an
 * applied row is applied, and its file's checksum must equal the recorded one; a version with a
 * superseded row is superseded; a version named by the keel:supersedes of a file that is not itself
 * superseded, and not applied, is to be superseded and never pending; every other file is pending.
 */
Report Analyze(const MigrationSet *set, const std::vector<HistoryRow> &rows);

/* ReportJson is the --json form of keel status (format in client/README or main.cpp). */
/* server_role is ServerRole::Label() ("primary", "standby (in recovery, read-only)", ...). */
nlohmann::json ReportJson(const Report &report, const std::string &target,
                          const std::string &server_role);

/* PrintReport writes the human form of keel status. */
void PrintReport(std::ostream &out, const Report &report, const std::string &target,
                 const std::string &server_role);

} // namespace keel::client
