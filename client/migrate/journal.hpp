/*
 * client/migrate/journal.hpp
 *   The per-statement journal of a keel:no-transaction migration
 *   (keel.migration_steps, 0.2.0): each statement commits on its own, so
 *   after a failure, a lost connection or a killed client, keel migrate
 *   resumes at the first statement the journal does not show completed with
 *   the same text. And the invalid index that an interrupted CREATE INDEX
 *   CONCURRENTLY leaves behind (PostgreSQL docs, CREATE INDEX, "Building
 *   Indexes Concurrently": "the index is left as invalid") is found and
 *   rebuilt with REINDEX INDEX CONCURRENTLY when its statement is unchanged,
 *   or named with the way forward when it changed. Rule: issue 12.
 */
#pragma once

#include "lib/connection.hpp"
#include "lib/migration_file.hpp"
#include "lib/sql_script.hpp"

#include <optional>
#include <string>
#include <vector>

namespace keel::client {

/* ResumePoint: where a keel:no-transaction file goes on. */
struct ResumePoint {
    size_t completed = 0;        /* leading statements already done (skip them) */
    std::string attempt_started; /* the journaled attempt they belong to ("" = none) */
    bool interrupted = false;    /* an earlier attempt exists (failed or cut off) */
    std::optional<std::string> failed_statement; /* its recorded statement, if it failed */
};

/* StatementChecksums returns the SHA-256 of each statement's text, in order. */
std::vector<std::string> StatementChecksums(const Script &script);

/*
 * FindResumePoint reads the latest journaled attempt of file's version that
 * was not recorded applied, and returns how many leading statements it
 * completed with the same text (checksums). Also reports whether that
 * attempt exists and the statement its failure recorded. ServerError on a
 * server error.
 */
ResumePoint FindResumePoint(const Connection &conn, const MigrationFile &file,
                            const std::vector<std::string> &checksums);

/* JournalStep records statement step (1-based) as completed in attempt started. */
void JournalStep(const Connection &conn, const MigrationFile &file, const std::string &started,
                 size_t step, size_t line, const std::string &checksum);

/*
 * HealInvalidIndex: before statement stmt of a resumed attempt runs, when it
 * is CREATE [UNIQUE] INDEX CONCURRENTLY name and an invalid index of that
 * name exists (what the interrupted attempt left), rebuild it with REINDEX
 * INDEX CONCURRENTLY, which builds exactly its recorded definition without
 * blocking writes, and return a line saying so; the statement then counts
 * as done. When the statement's text differs from the one that failed
 * (failed_statement), the leftover has another definition: CommandError
 * naming the index and the way forward (drop it with the break-glass, then
 * rerun). nullopt when nothing needed doing.
 */
std::optional<std::string> HealInvalidIndex(const Connection &conn, const MigrationFile &file,
                                            const Statement &stmt, const ResumePoint &resume);

} // namespace keel::client
