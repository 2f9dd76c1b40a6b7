/*
 * extension/migrations/history_row_check.cpp
 *   keel.migration_history_row_ok(version, name, checksum, status, error,
 *     error_line, started_at, finished_at, superseded_by, sqlstate, reason,
 *     token_checksum, revision) -> boolean, 0.2.0: the one CHECK of
 *   keel.migration_history (constraint migration_history_row_check).
 *
 *   It holds exactly what the thirteen SQL CHECKs of 0.1.0 and early 0.2.0
 *   held, each passing on NULL as a CHECK does:
 *     version     a whole number >= 0 (not NaN, no fraction)
 *     name        not empty
 *     checksum, token_checksum   64 lowercase hexadecimal digits
 *     status      applied, failed, superseded, baselined, repaired, reverted
 *     error       present exactly for failed rows
 *     reason      present exactly for repaired rows
 *     name and checksum present, except for superseded and repaired rows
 *     superseded_by   present exactly for superseded rows; a whole number
 *                 >= 0 other than version
 *     error_line > 0, finished_at >= started_at, revision >= 0
 *     sqlstate    five characters of 0-9 and A-Z
 *   Why C: PostgreSQL reads every CHECK's expression back from its stored
 *   node string at each INSERT statement; the thirteen were 11 kB of node
 *   text and three regular expressions per history row, most of what
 *   keel.migration_applied cost (issue 12: tiny migrations within 1.2x of
 *   psql). Plain C style.
 */
extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
}

#include <cstring>

namespace {

/* WholeNumber: a finite numeric with no fraction, >= 0 (its text is digits only). */
bool WholeNumber(Datum n, char **text_out) {
    if (numeric_is_nan(DatumGetNumeric(n)) || numeric_is_inf(DatumGetNumeric(n)))
        return false;
    char *text = DatumGetCString(DirectFunctionCall1(numeric_out, n));
    *text_out = text;
    if (*text == '\0')
        return false;
    for (const char *p = text; *p; p++)
        if (*p < '0' || *p > '9')
            return false;
    return true;
}

bool Is(text *t, const char *s) {
    size_t len = strlen(s);
    return VARSIZE_ANY_EXHDR(t) == len && memcmp(VARDATA_ANY(t), s, len) == 0;
}

/* Chars: t has exactly n characters, each in [lo1-hi1] or [lo2-hi2]. */
bool Chars(text *t, size_t n, char lo1, char hi1, char lo2, char hi2) {
    if (VARSIZE_ANY_EXHDR(t) != n)
        return false;
    const char *p = VARDATA_ANY(t);
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= lo1 && p[i] <= hi1) || (p[i] >= lo2 && p[i] <= hi2)))
            return false;
    return true;
}

} // namespace

extern "C" {

PG_FUNCTION_INFO_V1(keel_migration_history_row_ok);
PGDLLEXPORT Datum keel_migration_history_row_ok(PG_FUNCTION_ARGS);
Datum keel_migration_history_row_ok(PG_FUNCTION_ARGS) {
    enum {
        kVersion,
        kName,
        kChecksum,
        kStatus,
        kError,
        kErrorLine,
        kStartedAt,
        kFinishedAt,
        kSupersededBy,
        kSqlstate,
        kReason,
        kTokenChecksum,
        kRevision
    };
#define HAS(a) (!PG_ARGISNULL(a))
#define TXT(a) PG_GETARG_TEXT_PP(a)
    char *version = NULL;
    if (HAS(kVersion) && !WholeNumber(PG_GETARG_DATUM(kVersion), &version))
        PG_RETURN_BOOL(false);
    if (HAS(kName) && VARSIZE_ANY_EXHDR(TXT(kName)) == 0)
        PG_RETURN_BOOL(false);
    if (HAS(kChecksum) && !Chars(TXT(kChecksum), 64, '0', '9', 'a', 'f'))
        PG_RETURN_BOOL(false);
    if (HAS(kTokenChecksum) && !Chars(TXT(kTokenChecksum), 64, '0', '9', 'a', 'f'))
        PG_RETURN_BOOL(false);
    if (HAS(kSqlstate) && !Chars(TXT(kSqlstate), 5, '0', '9', 'A', 'Z'))
        PG_RETURN_BOOL(false);
    if (HAS(kErrorLine) && PG_GETARG_INT32(kErrorLine) <= 0)
        PG_RETURN_BOOL(false);
    if (HAS(kRevision) && PG_GETARG_INT32(kRevision) < 0)
        PG_RETURN_BOOL(false);
    if (HAS(kStartedAt) && HAS(kFinishedAt) &&
        PG_GETARG_TIMESTAMPTZ(kFinishedAt) < PG_GETARG_TIMESTAMPTZ(kStartedAt))
        PG_RETURN_BOOL(false);
    char *superseded_by = NULL;
    if (HAS(kSupersededBy) && (!WholeNumber(PG_GETARG_DATUM(kSupersededBy), &superseded_by) ||
                               (version != NULL && strcmp(superseded_by, version) == 0)))
        PG_RETURN_BOOL(false);
    if (!HAS(kStatus))
        PG_RETURN_BOOL(true); /* the column is NOT NULL; the rest depends on it */
    text *status = TXT(kStatus);
    bool failed = Is(status, "failed"), superseded = Is(status, "superseded"),
         repaired = Is(status, "repaired");
    if (!(failed || superseded || repaired || Is(status, "applied") || Is(status, "baselined") ||
          Is(status, "reverted")))
        PG_RETURN_BOOL(false);
    if (failed != HAS(kError) || repaired != HAS(kReason) || superseded != HAS(kSupersededBy))
        PG_RETURN_BOOL(false);
    if (!superseded && !repaired && !(HAS(kName) && HAS(kChecksum)))
        PG_RETURN_BOOL(false);
#undef HAS
#undef TXT
    PG_RETURN_BOOL(true);
}

} // extern "C"
