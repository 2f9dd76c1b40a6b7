/*
 * extension/pg/writable.hpp
 *   The one check every mutating keel SQL function makes first: is this
 *   session allowed to write? On a hot standby (RecoveryInProgress()) or in a
 *   read-only transaction, PostgreSQL itself would fail later on keel's
 *   internal UPDATE or INSERT, with a CONTEXT line that shows keel's own
 *   statement. This check fails up front and names the function the caller
 *   called instead. PostgreSQL-facing, plain C style.
 *
 *   Rule: issue 11 ("on a standby, mutating functions fail with SQLSTATE
 *   25006 and a message that names the function"); PostgreSQL docs, "Hot
 *   Standby" 27.4.1 (what a standby refuses) and errcodes 25006
 *   read_only_sql_transaction.
 */
#pragma once

extern "C" {
#include "postgres.h"
}

namespace keel {

/*
 * RequireWritable raises 25006 when the server is in recovery ("cannot run
 * <function> on a standby", DETAIL and HINT say to connect to the primary)
 * or the transaction is read-only ("cannot run <function> in a read-only
 * transaction"). function is the SQL name, e.g. "keel.consume_credits()".
 * Returns normally otherwise; costs two flag reads once recovery has ended.
 */
void RequireWritable(const char *function);

} // namespace keel
