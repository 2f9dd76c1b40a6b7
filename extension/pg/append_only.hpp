/*
 * extension/pg/append_only.hpp
 *   The body of keel's append-only triggers (keel.credit_ledger,
 *   keel.guard_audit): BEFORE UPDATE OR DELETE (row) and BEFORE TRUNCATE
 *   (statement) triggers that refuse the change for every role.
 *   PostgreSQL-facing, plain C style.
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
}

namespace keel {

/*
 * RefuseAppendOnlyChange raises 42501 "<table> is append-only" with DETAIL
 * "<UPDATE|DELETE|TRUNCATE> of <rows> rows is refused for every role." and
 * hint; 39P01 when fcinfo is not a trigger call (function names the SQL
 * function). Never returns.
 */
pg_attribute_noreturn() void RefuseAppendOnlyChange(FunctionCallInfo fcinfo, const char *function,
                                                    const char *table, const char *rows,
                                                    const char *hint);

} // namespace keel
