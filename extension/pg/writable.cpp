/*
 * extension/pg/writable.cpp
 *   See writable.hpp.
 */
#include "pg/writable.hpp"

extern "C" {
#include "access/xact.h"
#include "access/xlog.h"
}

namespace keel {

void RequireWritable(const char *function) {
    if (RecoveryInProgress())
        ereport(ERROR,
                (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
                 errmsg("cannot run %s on a standby", function),
                 errdetail("The server is in recovery (a hot standby), and a standby accepts only "
                           "reads."),
                 errhint("Connect to the primary, or add target_session_attrs=read-write to a "
                         "multi-host connection string.")));
    if (XactReadOnly)
        ereport(ERROR, (errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
                        errmsg("cannot run %s in a read-only transaction", function),
                        errdetail("transaction_read_only is on for this transaction."),
                        errhint("Run it in a read-write transaction.")));
}

} // namespace keel
