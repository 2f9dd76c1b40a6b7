/*
 * extension/pg/boundary.hpp
 *   The one place where C++ exceptions and PostgreSQL errors meet.
 *
 *   Rule (DESIGN.md, "Rules of the house"): no C++ exception crosses into
 *   PostgreSQL, and no ereport() longjmp unwinds through a C++ frame that owns
 *   an object with a destructor.
 *
 *   - InvokeCpp(f, args...): call C++ code from a PostgreSQL entry point (a SQL
 *     function, a hook). A keel::Error becomes ereport(ERROR) with its SQLSTATE,
 *     DETAIL and HINT; any other std::exception becomes XX000. The error is
 *     raised only after the try block is left, so every destructor has run.
 *   - PgCall(f): call PostgreSQL from C++ code. An ereport(ERROR) inside f is
 *     caught, copied (SQLSTATE, message, DETAIL, HINT) and rethrown as
 *     keel::Error. f itself must not own C++ objects with destructors.
 *
 *   Code that only talks to PostgreSQL (SPI, the parse tree) is written in
 *   plain C style (palloc, StringInfo, List) and needs neither.
 *
 *   Include order in a mixed file: C++ headers, then postgres.h, then this.
 */
#pragma once

#include "pg/error.hpp"

#include <exception>
#include <type_traits>
#include <utility>

extern "C" {
#include "postgres.h"
#include "utils/elog.h"
#include "utils/memutils.h"
}

namespace keel {

/* RaiseCopiedError raises a palloc'd copy of a C++ error; never returns. */
pg_attribute_noreturn() void RaiseCopiedError(int sqlstate, char *message, char *detail,
                                              char *hint);

template <typename Func, typename... Args>
auto InvokeCpp(Func func, Args &&...args) -> decltype(func(std::forward<Args>(args)...)) {
    int sqlstate = kInternalError;
    char *message = nullptr;
    char *detail = nullptr;
    char *hint = nullptr;
    try {
        return func(std::forward<Args>(args)...);
    } catch (const Error &e) {
        sqlstate = e.sqlstate();
        message = pstrdup(e.what());
        detail = e.detail().empty() ? nullptr : pstrdup(e.detail().c_str());
        hint = e.hint().empty() ? nullptr : pstrdup(e.hint().c_str());
    } catch (const std::exception &e) {
        message = pstrdup(e.what());
    } catch (...) {
        message = pstrdup("unexpected C++ exception");
    }
    /* Out of the try scope: every C++ destructor has run. */
    RaiseCopiedError(sqlstate, message, detail, hint);
}

/* ThrowCurrentPgError turns the error being handled in a PG_CATCH into keel::Error. */
[[noreturn]] void ThrowCurrentPgError(MemoryContext caller_context);

template <typename Func>
void PgCall(Func func) {
    MemoryContext caller_context = CurrentMemoryContext;
    volatile bool failed = false;
    PG_TRY();
    { func(); }
    PG_CATCH();
    { failed = true; }
    PG_END_TRY();
    if (failed)
        ThrowCurrentPgError(caller_context);
}

} // namespace keel
