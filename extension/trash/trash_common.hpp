/*
 * extension/trash/trash_common.hpp
 *   Helpers of the recycle bin's files: running SQL as the extension's owner
 *   with search_path pinned and the guard stepping aside, and writing
 *   keel.dropped_objects entries.
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "executor/spi.h"
}

namespace keel {

/*
 * TrashBegin connects SPI, pins search_path and switches to the extension
 * owner (the guard steps aside for keel's own DDL); TrashEnd undoes it. An
 * ERROR between them is cleaned up by transaction abort.
 */
struct TrashSession {
    int guc_level;
    Oid save_user;
    int save_sec;
    const char *reason; /* the break-glass reason, read before the switch to the owner */
};
TrashSession TrashBegin();
void TrashEnd(const TrashSession &s);

/* TrashExec runs sql (no parameters) inside a TrashSession; elog(ERROR) naming it on failure. */
void TrashExec(const char *sql);

/* TrashScalar runs sql returning one text value (NULL allowed); the result is palloc'd in outer. */
char *TrashScalar(const char *sql, MemoryContext outer);

/*
 * TrashNewEntry inserts a keel.dropped_objects row (trash_name filled later)
 * and returns its id. details is a jsonb literal built by SQL.
 */
int64 TrashNewEntry(const TrashSession &s, const char *kind, const char *identity,
                    const char *details_sql);

/*
 * TrashFinishEntry records where entry id's data went (keel_trash.<trash>)
 * and its exact row count and size, once the copy is made.
 */
void TrashFinishEntry(int64 id, const char *trash);

/* QuoteLiteral returns s as an SQL string literal (palloc'd). */
char *QuoteLiteral(const char *s);

} // namespace keel
