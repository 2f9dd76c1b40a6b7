/*
 * client/migrate/restore_on_failure.hpp
 *   keel migrate --backup --restore-on-failure: after a failed migration,
 *   decide whether this run committed anything and, if so, put the run's
 *   backup back in place (client/backup, RestoreInPlace). Internal to
 *   client/migrate. Rule: issue 12 ("when a migration fails after a backup,
 *   --restore-on-failure restores it": the seed's "automatic rollback").
 */
#pragma once

#include "lib/commands.hpp"
#include "lib/migration_file.hpp"
#include "lib/sql_script.hpp"

#include <filesystem>
#include <ostream>
#include <string>

namespace keel::client {

/* RunFacts: what a migrate run had done when it failed. */
struct RunFacts {
    int applied = 0;                            /* files of this run committed */
    int superseded = 0;                         /* superseded records committed */
    const MigrationFile *failed_file = nullptr; /* the file that failed (nullptr: none yet) */
    const Script *failed_script = nullptr;      /* its statements */
    std::string history_id_before = "0";        /* max(keel.migration_history.id) at the start */
};

/*
 * HistoryHighWater returns max(id) of keel.migration_history ("0" when empty),
 * read before the run applies anything, so the failed row of this run can be
 * told from older ones.
 */
std::string HistoryHighWater(const Connection &conn);

/*
 * RestoreOnFailure is called with the failure (what() of the CommandError)
 * of a run that took backup backup_id in backup_dir. Something was committed
 * when an earlier file or a superseded record of the run was, or when the
 * failed file is keel:no-transaction and its failed row (newer than
 * facts.history_id_before) names a statement after its first one (without
 * that row, or on keel 0.1.0 which records no statement, it counts as
 * committed). Then the backup is restored in place under the run's
 * migration lock and the returned message is the failure plus "; restored
 * backup ID ..."; when nothing was committed it is the failure plus "no
 * restore needed"; when the restore fails, the failure plus why and how to
 * restore by hand. Prints the restore's report to out.
 */
std::string RestoreOnFailure(const Connection &conn, const std::filesystem::path &backup_dir,
                             const std::string &backup_id, const std::string &failure,
                             const RunFacts &facts, std::ostream &out);

} // namespace keel::client
