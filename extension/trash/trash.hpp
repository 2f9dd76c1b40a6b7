/*
 * extension/trash/trash.hpp
 *   keel's recycle bin (issue 8): what the guard lets through is kept in
 *   schema keel_trash for keel.trash_retention, and keel.restore_dropped()
 *   puts it back.
 *     - DROP TABLE (library preloaded): the table is moved into keel_trash in
 *       O(1), with its rows, indexes, constraints, triggers, owner and grants;
 *       what CASCADE would drop (dependent views, foreign keys pointing at it)
 *       is recorded and dropped, and re-created on restore.
 *     - ALTER TABLE ... DROP COLUMN (both modes): the column's values are
 *       copied, keyed by the primary key or replica identity, first.
 *     - TRUNCATE (library preloaded): the rows are copied first.
 *   PostgreSQL-facing, plain C style.
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "nodes/parsenodes.h"
#include "tcop/cmdtag.h"
}

namespace keel {

extern bool trash_enabled;    /* keel.trash */
extern int trash_retention_s; /* keel.trash_retention, seconds */

/* InitTrash defines keel.trash and keel.trash_retention. */
void InitTrash();

/*
 * TrashDropTable is called by the utility hook for a DROP TABLE that the
 * guard lets through. When every table it names can be kept it audits the
 * statement, moves them into keel_trash, sets qc and returns true: the DROP
 * must not run. Returns false to let PostgreSQL run the DROP as usual (a
 * missing table, a temporary one, one created in this transaction, a
 * partitioned table or partition, or dependents without CASCADE).
 */
bool TrashDropTable(DropStmt *stmt, QueryCompletion *qc);

/* TrashColumn copies a column's values before ALTER TABLE ... DROP COLUMN; 55000 without a key. */
void TrashColumn(Oid relid, const char *column);

/* TrashRows copies a table's rows before TRUNCATE. */
void TrashRows(Oid relid);

} // namespace keel
