/*
 * extension/pg/boundary.cpp
 *   Out-of-line halves of InvokeCpp() and PgCall(); see boundary.hpp.
 */
#include "pg/boundary.hpp"

#include <string>

namespace keel {

/* keel::SqlState() must encode exactly as PostgreSQL's MAKE_SQLSTATE(). */
static_assert(kInvalidParameterValue == ERRCODE_INVALID_PARAMETER_VALUE, "SqlState encoding");
static_assert(kNumericValueOutOfRange == ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE, "SqlState encoding");
static_assert(kNullValueNotAllowed == ERRCODE_NULL_VALUE_NOT_ALLOWED, "SqlState encoding");
static_assert(kInternalError == ERRCODE_INTERNAL_ERROR, "SqlState encoding");
static_assert(kBlockedDdl == MAKE_SQLSTATE('K', 'L', '0', '0', '1'), "SqlState encoding");

/*
 * RaiseCopiedError raises ERROR with the given SQLSTATE and palloc'd texts.
 * Called only after every C++ destructor of the failed call has run.
 */
void RaiseCopiedError(int sqlstate, char *message, char *detail, char *hint) {
    ereport(ERROR, (errcode(sqlstate), errmsg_internal("%s", message),
                    detail ? errdetail_internal("%s", detail) : 0, hint ? errhint("%s", hint) : 0));
    pg_unreachable();
}

/*
 * ThrowCurrentPgError copies the error PostgreSQL is handling (inside
 * PG_CATCH, error context still set), clears PostgreSQL's error state and
 * throws it as keel::Error. The transaction stays in need of an abort, so the
 * caller must end in an ERROR (InvokeCpp does) unless it rolls back a
 * subtransaction itself.
 */
void ThrowCurrentPgError(MemoryContext caller_context) {
    MemoryContextSwitchTo(caller_context);
    ErrorData *edata = CopyErrorData();
    FlushErrorState();
    int sqlstate = edata->sqlerrcode;
    std::string message = edata->message ? edata->message : "";
    std::string detail = edata->detail ? edata->detail : "";
    std::string hint = edata->hint ? edata->hint : "";
    FreeErrorData(edata);
    throw Error(sqlstate, std::move(message), std::move(detail), std::move(hint));
}

} // namespace keel
