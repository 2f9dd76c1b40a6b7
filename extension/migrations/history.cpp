/*
 * extension/migrations/history.cpp
 *   Migration bookkeeping in the server: the session-level migration lock and
 *   the functions that read and write keel.migration_history (DESIGN.md,
 *   "Contract", Migrations; sql/keel--0.1.0.sql, region "migrations").
 *
 *   This file only talks to PostgreSQL (SPI, the lock manager), so it is
 *   written in plain C style: palloc'd memory and StringInfo, no C++ object
 *   with a destructor lives in any frame that may ereport().
 *
 *   SQL API (every function raises 22004 for a NULL argument, 22023 for a
 *   malformed one):
 *     keel.migration_lock() -> void                                    KL004
 *     keel.migration_unlock() -> boolean
 *     keel.migration_start(version, name, checksum) -> timestamptz     KL005
 *     keel.migration_applied(version, name, checksum, started_at) -> bigint       KL005
 *     keel.migration_failed(version, name, checksum, started_at, error) -> bigint KL005
 *     keel.migration_superseded(version, name, checksum, superseded_by) -> bigint KL005
 *   0.2.0 adds migration_reverted (keel down), token checksums, and the
 *   revision of each row (how many reverts came before it): a version is
 *   "done" when it has an applied, baselined or superseded row at its
 *   current revision. The _v2 symbols are 0.2.0's; 0.1.0's stay for its SQL.
 *
 *   Privileges: the writing functions are revoked from PUBLIC; a role that runs
 *   migrations is granted EXECUTE on them. They capture the caller's
 *   GetUserId() as applied_by, then insert as the owner of
 *   keel.migration_history (SetUserIdAndSecContext with a pg_catalog-only
 *   search_path), so the caller needs no privilege on the table itself.
 */
extern "C" {
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

#include "pg/error.hpp"
#include "pg/spi_plan.hpp"
#include "pg/writable.hpp"
#include "guard/rules.hpp"

/*
 * The migration lock is the two-key advisory lock ('keel', 1) of the current
 * database, the same lock pg_try_advisory_lock(1801807212, 1) takes, so it
 * shows in pg_locks as locktype 'advisory', classid 1801807212, objid 1,
 * objsubid 2.
 */
#define KEEL_LOCK_KEY1 0x6B65656C /* 'keel' */
#define KEEL_LOCK_KEY2 1          /* migrations */

#define KEEL_ERRCODE(code) errcode(keel::SqlState(code))

extern "C" {
PGDLLEXPORT Datum keel_migration_lock(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum keel_migration_unlock(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum keel_migration_start(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum keel_migration_applied(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum keel_migration_failed(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum keel_migration_superseded(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum keel_migration_superseded_v2(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum keel_migration_failed_v2(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum keel_migration_baselined(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum keel_migration_repaired(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum keel_migration_start_v2(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum keel_migration_applied_v2(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum keel_migration_reverted(PG_FUNCTION_ARGS);

PG_FUNCTION_INFO_V1(keel_migration_lock);
PG_FUNCTION_INFO_V1(keel_migration_unlock);
PG_FUNCTION_INFO_V1(keel_migration_start);
PG_FUNCTION_INFO_V1(keel_migration_applied);
PG_FUNCTION_INFO_V1(keel_migration_failed);
PG_FUNCTION_INFO_V1(keel_migration_superseded);
PG_FUNCTION_INFO_V1(keel_migration_superseded_v2);
PG_FUNCTION_INFO_V1(keel_migration_failed_v2);
PG_FUNCTION_INFO_V1(keel_migration_baselined);
PG_FUNCTION_INFO_V1(keel_migration_repaired);
PG_FUNCTION_INFO_V1(keel_migration_start_v2);
PG_FUNCTION_INFO_V1(keel_migration_applied_v2);
PG_FUNCTION_INFO_V1(keel_migration_reverted);
}

/* MigrationLockTag fills tag with keel's migration lock of this database. */
static void MigrationLockTag(LOCKTAG *tag) {
    SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32)KEEL_LOCK_KEY1, (uint32)KEEL_LOCK_KEY2, 2);
}

/*
 * LockHolderDescription returns a palloc'd sentence naming the session(s)
 * holding the migration lock, read from pg_locks and pg_stat_activity, or a
 * generic sentence when the holder has already gone.
 */
static char *LockHolderDescription(void) {
    StringInfoData buf;
    Oid argtypes[3] = {OIDOID, OIDOID, OIDOID};
    Datum values[3] = {ObjectIdGetDatum(MyDatabaseId), ObjectIdGetDatum((Oid)KEEL_LOCK_KEY1),
                       ObjectIdGetDatum((Oid)KEEL_LOCK_KEY2)};
    const char *query =
        "SELECT l.pid, a.usename::pg_catalog.text, a.application_name "
        "FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a "
        "  ON a.pid OPERATOR(pg_catalog.=) l.pid "
        "WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory' AND l.granted "
        "  AND l.database OPERATOR(pg_catalog.=) $1 AND l.classid OPERATOR(pg_catalog.=) $2 "
        "  AND l.objid OPERATOR(pg_catalog.=) $3 AND l.objsubid OPERATOR(pg_catalog.=) 2 "
        "  AND l.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid() "
        "ORDER BY l.pid LIMIT 1";

    initStringInfo(&buf);
    SPI_connect();
    if (SPI_execute_with_args(query, 3, argtypes, values, NULL, true, 1) == SPI_OK_SELECT &&
        SPI_processed == 1) {
        char *pid = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
        char *role = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
        char *app = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
        /* buf was allocated before SPI_connect; repalloc keeps its context. */
        appendStringInfo(&buf, "Process %s", pid);
        if (role != NULL)
            appendStringInfo(&buf, " (role \"%s\"", role);
        if (role != NULL && app != NULL && app[0] != '\0')
            appendStringInfo(&buf, ", application \"%s\"", app);
        if (role != NULL)
            appendStringInfoChar(&buf, ')');
        appendStringInfo(&buf, " holds the keel migration lock of database \"%s\".",
                         get_database_name(MyDatabaseId));
    } else {
        appendStringInfo(&buf,
                         "Another session held the keel migration lock of database \"%s\" and "
                         "may just have released it.",
                         get_database_name(MyDatabaseId));
    }
    SPI_finish();
    return buf.data;
}

/*
 * keel.migration_lock() -> void
 *   Takes keel's session-level migration lock of the current database without
 *   waiting. Idempotent: a session that already holds it keeps one hold, so
 *   one keel.migration_unlock() releases it. The lock ends with the session.
 *   Errors: KL004 when another session holds it (DETAIL names the holder's
 *   pid, role and application from pg_locks/pg_stat_activity).
 *   Rule: seeds 001/003 run migrations by hand, one operator at a time; keel
 *   makes "one runner at a time" a lock instead of a checklist item.
 */
Datum keel_migration_lock(PG_FUNCTION_ARGS) {
    LOCKTAG tag;

    MigrationLockTag(&tag);
    if (LockHeldByMe(&tag, ExclusiveLock))
        PG_RETURN_VOID();
    if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL) {
        char *holder = LockHolderDescription();
        ereport(ERROR, (KEEL_ERRCODE("KL004"),
                        errmsg("another keel migration runner holds the migration lock"),
                        errdetail_internal("%s", holder),
                        errhint("Wait for the other runner to finish, or end that session with "
                                "pg_terminate_backend() if it is stuck.")));
    }
    PG_RETURN_VOID();
}

/*
 * keel.migration_unlock() -> boolean
 *   Releases the migration lock taken by keel.migration_lock(). Returns true
 *   when this session held it, false (quietly) when it did not.
 */
Datum keel_migration_unlock(PG_FUNCTION_ARGS) {
    LOCKTAG tag;

    MigrationLockTag(&tag);
    if (!LockHeldByMe(&tag, ExclusiveLock))
        PG_RETURN_BOOL(false);
    PG_RETURN_BOOL(LockRelease(&tag, ExclusiveLock, true));
}

/*
 * ArgVersion returns argument argno, a migration version, as its canonical
 * decimal text (palloc'd). argname names it in errors.
 *   Errors: 22004 NULL; 22023 not a whole number >= 0 (negative, fractional,
 *   NaN, Infinity). Rule: DESIGN.md, version = leading digits of the file
 *   name compared as numbers.
 */
static char *ArgVersion(FunctionCallInfo fcinfo, int argno, const char *argname) {
    char *text;
    const char *p;

    if (PG_ARGISNULL(argno))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("migration %s must not be null", argname)));
    text = DatumGetCString(DirectFunctionCall1(numeric_out, PG_GETARG_DATUM(argno)));
    for (p = text; *p != '\0'; p++) {
        if (*p < '0' || *p > '9')
            ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                            errmsg("migration %s must be a whole number of at least 0", argname),
                            errdetail("The %s given was %s.", argname, text),
                            errhint("A version is the leading digits of the migration file "
                                    "name, such as 11 for 0011_safe_billing_models.sql.")));
    }
    return text;
}

static void CheckFileName(const char *name, const char *version);
static void RequireApplied(const char *version, const char *what, const char *hint);

/*
 * ArgName returns the migration name: 22004 NULL (unless nullable), 22023
 * empty or not version's file name (CheckFileName).
 */
static char *ArgName(FunctionCallInfo fcinfo, int argno, bool nullable, const char *version) {
    char *name;

    if (PG_ARGISNULL(argno)) {
        if (nullable)
            return NULL;
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("migration name must not be null")));
    }
    name = text_to_cstring(PG_GETARG_TEXT_PP(argno));
    if (name[0] == '\0')
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("migration name must not be empty")));
    CheckFileName(name, version);
    return name;
}

/*
 * CheckFileName raises 22023 unless name is a migration file name,
 * <digits>_<slug>.sql with no directory part, whose digits are version
 * (compared as numbers: 0011_x.sql is version 11). NULL name passes.
 * Rule: DESIGN.md, migration file names; issue 12 ("forged bookkeeping is
 * refused").
 */
static void CheckFileName(const char *name, const char *version) {
    if (name == NULL)
        return;
    size_t len = strlen(name);
    const char *p = name;
    while (*p >= '0' && *p <= '9')
        p++;
    const char *digits_end = p;
    const char *d = name;
    while (d + 1 < digits_end && *d == '0')
        d++;
    bool ok = digits_end > name && *p == '_' && p[1] != '\0' && len > 4 &&
              strcmp(name + len - 4, ".sql") == 0 && strchr(name, '/') == NULL &&
              strchr(name, '\\') == NULL && (size_t)(digits_end - d) == strlen(version) &&
              strncmp(d, version, digits_end - d) == 0;
    if (!ok)
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                 errmsg("\"%s\" is not the file name of migration %s", name, version),
                 errdetail("A migration file is named <digits>_<slug>.sql, with no directory, and "
                           "its leading digits are its version."),
                 errhint("Pass the file's own name, such as %s_add_users.sql.", version)));
}

/*
 * ArgChecksum returns the checksum argument: 64 lowercase hexadecimal digits,
 * the SHA-256 of the file with line endings normalised (DESIGN.md).
 *   Errors: 22004 NULL (unless nullable); 22023 anything else.
 */
static char *ArgChecksum(FunctionCallInfo fcinfo, int argno, bool nullable) {
    char *checksum;
    size_t len;
    size_t i;

    if (PG_ARGISNULL(argno)) {
        if (nullable)
            return NULL;
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("migration checksum must not be null")));
    }
    checksum = text_to_cstring(PG_GETARG_TEXT_PP(argno));
    len = strlen(checksum);
    for (i = 0; i < len; i++) {
        char c = checksum[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            break;
    }
    if (len != 64 || i != len)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("migration checksum must be 64 lowercase hexadecimal digits"),
                        errdetail("The checksum given has %zu characters%s.", len,
                                  i != len ? " and contains a character outside 0-9a-f" : ""),
                        errhint("Pass the SHA-256 of the file with line endings normalised to LF, "
                                "as keel computes it.")));
    return checksum;
}

/*
 * ArgStartedAt returns the started_at argument, the value keel.migration_start
 * returned. Errors: 22004 NULL; 22023 infinite or later than now
 * (clock_timestamp()), since a migration finishes after it starts.
 */
static TimestampTz ArgStartedAt(FunctionCallInfo fcinfo, int argno) {
    TimestampTz started_at;

    if (PG_ARGISNULL(argno))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("migration started_at must not be null")));
    started_at = PG_GETARG_TIMESTAMPTZ(argno);
    if (TIMESTAMP_NOT_FINITE(started_at) || started_at > GetCurrentTimestamp())
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("migration started_at must be a finite time no later than now"),
                        errhint("Pass the value keel.migration_start() returned.")));
    return started_at;
}

/*
 * CheckNotDone raises KL005 when version already has an applied or
 * superseded row. checksum (may be NULL) is the one the caller brings; the
 * DETAIL names the recorded one. Caller is SPI-connected.
 *   Rule: at most one applied-or-superseded row per version; a version is
 *   never applied twice and a superseded version is never applied (seed 000).
 */
/*
 * kCurrentRevision is, in SQL, the revision a new row of version $1 gets: how
 * many times the version was reverted (keel down) before. 0.2.0 only.
 */
#define KEEL_CURRENT_REVISION                                                                      \
    "(SELECT pg_catalog.count(*)::integer FROM keel.migration_history r "                          \
    " WHERE r.version OPERATOR(pg_catalog.=) $1::pg_catalog.numeric "                              \
    "   AND r.status OPERATOR(pg_catalog.=) 'reverted')"

static void CheckNotDone(const char *version, const char *checksum, const char *action, bool v2) {
    Oid argtypes[1] = {TEXTOID};
    Datum values[1] = {CStringGetTextDatum(version)};
    const char *query = "SELECT status, name, checksum, superseded_by::pg_catalog.text "
                        "FROM keel.migration_history "
                        "WHERE version OPERATOR(pg_catalog.=) $1::pg_catalog.numeric "
                        "  AND status OPERATOR(pg_catalog.=) ANY (ARRAY['applied', 'superseded', "
                        "'baselined']) "
                        "ORDER BY id LIMIT 1";
    const char *query_v2 = "SELECT status, name, checksum, superseded_by::pg_catalog.text "
                           "FROM keel.migration_history "
                           "WHERE version OPERATOR(pg_catalog.=) $1::pg_catalog.numeric "
                           "  AND status OPERATOR(pg_catalog.=) ANY (ARRAY['applied', "
                           "'superseded', 'baselined']) "
                           "  AND revision OPERATOR(pg_catalog.=) " KEEL_CURRENT_REVISION " "
                           "ORDER BY id LIMIT 1";
    char *status;
    char *name;
    char *recorded;
    char *superseded_by;

    /* saved plans: a runner calls this twice per file (issue 12, tiny migrations) */
    static SPIPlanPtr plans[2];
    SPIPlanPtr plan = saved_plan(&plans[v2 ? 1 : 0], v2 ? query_v2 : query, 1, argtypes);
    if (run_plan(plan, values, NULL, true) != SPI_OK_SELECT)
        elog(ERROR, "keel: cannot read keel.migration_history");
    if (SPI_processed == 0)
        return;

    status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
    name = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
    recorded = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3);
    superseded_by = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);

    if (strcmp(status, "superseded") == 0)
        ereport(
            ERROR,
            (KEEL_ERRCODE("KL005"),
             errmsg("cannot %s migration %s: it was superseded by version %s", action, version,
                    superseded_by),
             errdetail("keel.migration_history records version %s%s%s%s as superseded by "
                       "version %s.",
                       version, name ? " (" : "", name ? name : "", name ? ")" : "", superseded_by),
             errhint("A superseded migration is never applied; remove its file or give the "
                     "change a new version.")));
    ereport(
        ERROR,
        (KEEL_ERRCODE("KL005"),
         errmsg("cannot %s migration %s: it is already %s", action, version, status),
         errdetail("keel.migration_history records version %s (%s) as %s with checksum "
                   "%s; this request has checksum %s.",
                   version, name ? name : "?", status, recorded ? recorded : "(none)",
                   checksum ? checksum : "(none)"),
         errhint("%s", strcmp(action, "supersede") == 0
                           ? "An applied migration stays applied; a keel:supersedes directive only "
                             "retires versions that were never applied."
                       : checksum != NULL && recorded != NULL && strcmp(checksum, recorded) != 0
                           ? "An applied migration must not change; put the change in a new "
                             "migration file with a higher version."
                           : "Nothing needs doing: this migration is already applied.")));
}

/*
 * InsertHistoryRow inserts one row into keel.migration_history as the owner
 * of that table and returns its id. applied_by is the role that called the
 * SQL function (GetUserId() captured before the switch). Caller is
 * SPI-connected. started_at NULL means "now"; error and superseded_by may be
 * NULL.
 */
/*
 * HistoryDetail: the 0.2.0 columns a row may carry (NULL: not given). Only
 * the 0.2.0 functions pass one, so 0.1.0's tables are never asked for them.
 */
typedef struct HistoryDetail {
    const char *sqlstate;
    int error_line; /* 0: not given */
    const char *error_statement;
    const char *reason;
    const char *token_checksum; /* SHA-256 of the file's token stream (cosmetic edits) */
} HistoryDetail;

static int64 InsertHistoryRow(Oid caller, const char *version, const char *name,
                              const char *checksum, const char *status, TimestampTz *started_at,
                              const char *error, const char *superseded_by,
                              const HistoryDetail *detail) {
    Oid argtypes[13] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TEXTOID,
                        TEXTOID, TEXTOID, INT4OID, TEXTOID, TEXTOID, TEXTOID};
    Datum values[13];
    char nulls[13] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', 'n', 'n', 'n', 'n', 'n'};
    const char *query =
        detail == NULL
            ? "INSERT INTO keel.migration_history "
              "  (version, name, checksum, status, applied_by, started_at, finished_at, error, "
              "   superseded_by) "
              "VALUES ($1::pg_catalog.numeric, $2, $3, $4, $5::pg_catalog.name, "
              "        COALESCE($6, pg_catalog.clock_timestamp()), "
              "        pg_catalog.clock_timestamp(), $7, $8::pg_catalog.numeric) "
              "RETURNING id"
            : "INSERT INTO keel.migration_history "
              "  (version, name, checksum, status, applied_by, started_at, finished_at, error, "
              "   superseded_by, sqlstate, error_line, error_statement, reason, token_checksum, "
              "   revision) "
              "VALUES ($1::pg_catalog.numeric, $2, $3, $4, $5::pg_catalog.name, "
              "        COALESCE($6, pg_catalog.clock_timestamp()), "
              "        pg_catalog.clock_timestamp(), $7, $8::pg_catalog.numeric, $9, $10, $11, "
              "        $12, $13, " KEEL_CURRENT_REVISION ") "
              "RETURNING id";
    Oid table_owner;
    Oid namespace_id;
    Oid relid;
    HeapTuple tuple;
    Oid save_userid;
    int save_sec_context;
    int save_nestlevel;
    bool isnull;
    int64 id;
    int rc;

    namespace_id = get_namespace_oid("keel", false);
    relid = get_relname_relid("migration_history", namespace_id);
    if (!OidIsValid(relid))
        elog(ERROR, "keel: table keel.migration_history does not exist");
    tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
    if (!HeapTupleIsValid(tuple))
        elog(ERROR, "keel: cache lookup failed for relation %u", relid);
    table_owner = ((Form_pg_class)GETSTRUCT(tuple))->relowner;
    ReleaseSysCache(tuple);

    values[0] = CStringGetTextDatum(version);
    if (name != NULL)
        values[1] = CStringGetTextDatum(name);
    else
        nulls[1] = 'n';
    if (checksum != NULL)
        values[2] = CStringGetTextDatum(checksum);
    else
        nulls[2] = 'n';
    values[3] = CStringGetTextDatum(status);
    values[4] = CStringGetTextDatum(GetUserNameFromId(caller, false));
    if (started_at != NULL)
        values[5] = TimestampTzGetDatum(*started_at);
    else {
        values[5] = (Datum)0;
        nulls[5] = 'n';
    }
    if (error != NULL)
        values[6] = CStringGetTextDatum(error);
    else
        nulls[6] = 'n';
    if (superseded_by != NULL)
        values[7] = CStringGetTextDatum(superseded_by);
    else
        nulls[7] = 'n';
    if (detail != NULL) {
        if (detail->sqlstate != NULL) {
            values[8] = CStringGetTextDatum(detail->sqlstate);
            nulls[8] = ' ';
        }
        if (detail->error_line > 0) {
            values[9] = Int32GetDatum(detail->error_line);
            nulls[9] = ' ';
        }
        if (detail->error_statement != NULL) {
            values[10] = CStringGetTextDatum(detail->error_statement);
            nulls[10] = ' ';
        }
        if (detail->reason != NULL) {
            values[11] = CStringGetTextDatum(detail->reason);
            nulls[11] = ' ';
        }
        if (detail->token_checksum != NULL) {
            values[12] = CStringGetTextDatum(detail->token_checksum);
            nulls[12] = ' ';
        }
    }

    /*
     * Insert as the table owner with a safe search_path. On error the
     * transaction abort restores the user id and the GUC nest level.
     */
    GetUserIdAndSecContext(&save_userid, &save_sec_context);
    SetUserIdAndSecContext(table_owner, save_sec_context | SECURITY_LOCAL_USERID_CHANGE |
                                            SECURITY_RESTRICTED_OPERATION);
    save_nestlevel = NewGUCNestLevel();
    (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_SAVE, true, 0, false);

    static SPIPlanPtr plans[2];
    rc = run_plan(
        saved_plan(&plans[detail == NULL ? 0 : 1], query, detail == NULL ? 8 : 13, argtypes),
        values, nulls, false);
    if (rc != SPI_OK_INSERT_RETURNING || SPI_processed != 1)
        elog(ERROR, "keel: insert into keel.migration_history failed: %s",
             SPI_result_code_string(rc));
    id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));

    AtEOXact_GUC(false, save_nestlevel);
    SetUserIdAndSecContext(save_userid, save_sec_context);
    return id;
}

/*
 * keel.migration_start(version numeric, name text, checksum text) -> timestamptz
 *   Validates a migration about to run and returns clock_timestamp(), which
 *   the runner passes on as started_at. Writes nothing.
 *   Inputs: version a whole number >= 0; name the file name (non-empty);
 *   checksum 64 lowercase hex digits.
 *   Errors: 22004 NULL argument; 22023 malformed argument; KL005 when the
 *   version is already applied (DETAIL: recorded and requested checksum) or
 *   superseded.
 */
static Datum StartMigration(FunctionCallInfo fcinfo, bool v2) {
    keel::RequireWritable("keel.migration_start()");
    char *version = ArgVersion(fcinfo, 0, "version");
    char *name = ArgName(fcinfo, 1, false, version);
    char *checksum = ArgChecksum(fcinfo, 2, false);

    (void)name;
    SPI_connect();
    CheckNotDone(version, checksum, "start", v2);
    SPI_finish();
    PG_RETURN_TIMESTAMPTZ(GetCurrentTimestamp());
}

Datum keel_migration_start(PG_FUNCTION_ARGS) {
    return StartMigration(fcinfo, false);
}

/*
 * keel.migration_start, 0.2.0: as 0.1.0's, and a version reverted by keel
 * down (a 'reverted' row after its applied row) may start again.
 */
Datum keel_migration_start_v2(PG_FUNCTION_ARGS) {
    return StartMigration(fcinfo, true);
}

/*
 * keel.migration_applied(version numeric, name text, checksum text,
 *                        started_at timestamptz) -> bigint
 *   Records a migration as applied, finished now (clock_timestamp()), and
 *   returns the history id. Call it inside the migration's own transaction so
 *   the row commits or rolls back with the migration.
 *   Errors: 22004/22023 as keel.migration_start; KL005 already applied or
 *   superseded (a concurrent runner racing past the lock meets 23505 from the
 *   unique index instead); 42501 without EXECUTE on this function.
 */
Datum keel_migration_applied(PG_FUNCTION_ARGS) {
    keel::RequireWritable("keel.migration_applied()");
    Oid caller = GetUserId();
    char *version = ArgVersion(fcinfo, 0, "version");
    char *name = ArgName(fcinfo, 1, false, version);
    char *checksum = ArgChecksum(fcinfo, 2, false);
    TimestampTz started_at = ArgStartedAt(fcinfo, 3);
    int64 id;

    SPI_connect();
    CheckNotDone(version, checksum, "record as applied", false);
    id =
        InsertHistoryRow(caller, version, name, checksum, "applied", &started_at, NULL, NULL, NULL);
    SPI_finish();
    PG_RETURN_INT64(id);
}

/*
 * ArgTokenChecksum returns the optional token_checksum argument argno (NULL
 * when absent or NULL): 64 lowercase hex digits, the SHA-256 of the file's
 * token stream without comments and whitespace (keel's client computes it
 * with libpg_query's scanner), so a later edit of only comments or
 * whitespace is told apart from a real change. Errors: 22023 malformed.
 */
static char *ArgTokenChecksum(FunctionCallInfo fcinfo, int argno) {
    if (PG_NARGS() <= argno || PG_ARGISNULL(argno))
        return NULL;
    return ArgChecksum(fcinfo, argno, true);
}

/*
 * keel.migration_applied(version, name, checksum, started_at
 *                        [, token_checksum text]) -> bigint, 0.2.0: as
 *   0.1.0's, on the version's current revision (after a keel down the
 *   version may be applied again), with the token checksum when given.
 *   Errors: those of 0.1.0's; 22023 a malformed token_checksum.
 */
Datum keel_migration_applied_v2(PG_FUNCTION_ARGS) {
    keel::RequireWritable("keel.migration_applied()");
    Oid caller = GetUserId();
    char *version = ArgVersion(fcinfo, 0, "version");
    char *name = ArgName(fcinfo, 1, false, version);
    char *checksum = ArgChecksum(fcinfo, 2, false);
    TimestampTz started_at = ArgStartedAt(fcinfo, 3);
    HistoryDetail detail = {NULL, 0, NULL, NULL, ArgTokenChecksum(fcinfo, 4)};

    SPI_connect();
    CheckNotDone(version, checksum, "record as applied", true);
    int64 id = InsertHistoryRow(caller, version, name, checksum, "applied", &started_at, NULL, NULL,
                                &detail);
    SPI_finish();
    PG_RETURN_INT64(id);
}

/*
 * keel.migration_reverted(version numeric, name text, checksum text,
 *                         started_at timestamptz) -> bigint, 0.2.0: records
 *   that keel down ran the version's down file (name, its <version>_<slug>
 *   .down.sql, and checksum) and that the version is no longer applied; a
 *   later keel migrate applies it again as a new revision. Call it inside
 *   the down file's transaction. Returns the history id.
 *   Errors: 22004/22023 as keel.migration_applied; 22023 the version is not
 *   applied (or baselined) at its current revision. Rule: issue 12 (keel
 *   down), golang-migrate's and dbmate's down migrations.
 */
Datum keel_migration_reverted(PG_FUNCTION_ARGS) {
    keel::RequireWritable("keel.migration_reverted()");
    Oid caller = GetUserId();
    char *version = ArgVersion(fcinfo, 0, "version");
    char *name = ArgName(fcinfo, 1, false, version);
    char *checksum = ArgChecksum(fcinfo, 2, false);
    TimestampTz started_at = ArgStartedAt(fcinfo, 3);
    HistoryDetail detail = {NULL, 0, NULL, NULL, NULL};

    SPI_connect();
    RequireApplied(version, psprintf("cannot revert migration %s", version),
                   "Only an applied migration can be reverted; keel status lists them.");
    int64 id = InsertHistoryRow(caller, version, name, checksum, "reverted", &started_at, NULL,
                                NULL, &detail);
    SPI_finish();
    PG_RETURN_INT64(id);
}

/*
 * keel.migration_failed(version numeric, name text, checksum text,
 *                       started_at timestamptz, error text) -> bigint
 *   Records a failed attempt (after the migration's transaction was rolled
 *   back) with the server's error text, and returns the history id. Failed
 *   attempts may repeat; a later success adds an 'applied' row.
 *   Errors: 22004 NULL argument (error included); 22023 malformed argument or
 *   empty error; KL005 when the version is already applied or superseded.
 */
static Datum RecordFailure(FunctionCallInfo fcinfo, bool detailed);

Datum keel_migration_failed(PG_FUNCTION_ARGS) {
    return RecordFailure(fcinfo, false);
}

/*
 * keel.migration_superseded(version numeric, name text, checksum text,
 *                           superseded_by numeric) -> bigint
 *   Records that version, never applied, is retired by the migration
 *   superseded_by (its "-- keel:supersedes" directive), and returns the
 *   history id. name and checksum may be NULL when the superseded file is not
 *   present; when given they are validated. Call it in the superseding
 *   migration's transaction so both commit together.
 *   Errors: 22004 NULL version or superseded_by; 22023 malformed argument or
 *   a version superseding itself; KL005 when the version is already applied
 *   or superseded. Rule: seed 000 (superseded destructive migrations are
 *   never run).
 */
static Datum RecordSupersede(FunctionCallInfo fcinfo, bool require_applied);

Datum keel_migration_superseded(PG_FUNCTION_ARGS) {
    return RecordSupersede(fcinfo, false);
}

/*
 * OptText returns text argument argno as a C string, NULL when NULL or
 * empty; at most max_bytes (longer is cut at a character boundary).
 */
static char *OptText(FunctionCallInfo fcinfo, int argno, int max_bytes) {
    if (PG_ARGISNULL(argno))
        return NULL;
    char *v = text_to_cstring(PG_GETARG_TEXT_PP(argno));
    if (v[0] == '\0')
        return NULL;
    int len = (int)strlen(v);
    if (len > max_bytes)
        v[pg_mbcliplen(v, len, max_bytes)] = '\0';
    return v;
}

/* RequireApplied raises 22023 unless version has an applied (or baselined) row. */
static void RequireApplied(const char *version, const char *what, const char *hint) {
    Oid argtypes[1] = {TEXTOID};
    Datum values[1] = {CStringGetTextDatum(version)};
    if (SPI_execute_with_args("SELECT 1 FROM keel.migration_history "
                              "WHERE version OPERATOR(pg_catalog.=) $1::pg_catalog.numeric "
                              "AND status OPERATOR(pg_catalog.=) ANY (ARRAY['applied', "
                              "'baselined']) "
                              "AND revision OPERATOR(pg_catalog.=) " KEEL_CURRENT_REVISION
                              " LIMIT 1",
                              1, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
        elog(ERROR, "keel: cannot read keel.migration_history");
    if (SPI_processed == 0)
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                 errmsg("%s: version %s is not applied", what, version), errhint("%s", hint)));
}

/*
 * keel.migration_superseded(version, name, checksum, superseded_by) -> bigint,
 * 0.2.0: as the 0.1.0 function, and superseded_by must be an applied (or
 * baselined) version, in this transaction or before: keel migrate records the
 * superseding migration as applied first, in the same transaction.
 *   Errors: those of 0.1.0; 22023 superseded_by is not applied.
 */
Datum keel_migration_superseded_v2(PG_FUNCTION_ARGS) {
    return RecordSupersede(fcinfo, true);
}

/*
 * RecordSupersede is keel.migration_superseded: 0.1.0's (require_applied
 * false) and 0.2.0's, which also wants superseded_by applied.
 */
static Datum RecordSupersede(FunctionCallInfo fcinfo, bool require_applied) {
    keel::RequireWritable("keel.migration_superseded()");
    Oid caller = GetUserId();
    char *version = ArgVersion(fcinfo, 0, "version");
    char *name = ArgName(fcinfo, 1, true, version);
    char *checksum = ArgChecksum(fcinfo, 2, true);
    char *superseded_by = ArgVersion(fcinfo, 3, "superseded_by");
    if (strcmp(version, superseded_by) == 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("migration %s cannot supersede itself", version)));
    SPI_connect();
    CheckNotDone(version, checksum, "supersede", require_applied);
    if (require_applied)
        RequireApplied(superseded_by, psprintf("cannot supersede migration %s", version),
                       "Record the superseding migration as applied first; keel migrate does "
                       "both in one transaction.");
    HistoryDetail detail = {NULL, 0, NULL, NULL, NULL};
    int64 id = InsertHistoryRow(caller, version, name, checksum, "superseded", NULL, NULL,
                                superseded_by, require_applied ? &detail : NULL);
    SPI_finish();
    PG_RETURN_INT64(id);
}

/*
 * keel.migration_failed(version, name, checksum, started_at, error, sqlstate
 * text, error_line integer, error_statement text) -> bigint, 0.2.0: a failed
 * attempt with where it failed: the SQLSTATE (five characters), the line of
 * the file (> 0) and the statement it reached (kept up to 8 kB). NULL for
 * what is unknown. Errors: those of the 5-argument form; 22023 a malformed
 * sqlstate or a line below 1.
 */
Datum keel_migration_failed_v2(PG_FUNCTION_ARGS) {
    return RecordFailure(fcinfo, true);
}
/* (0.2.0's 5-argument keel.migration_failed is bound to this symbol too: it
 * writes the 0.2.0 row, on the version's current revision.) */

/*
 * RecordFailure is keel.migration_failed: the 5-argument form, and with
 * detailed the 0.2.0 form whose arguments 5..7 are sqlstate, error_line and
 * error_statement.
 */
static Datum RecordFailure(FunctionCallInfo fcinfo, bool detailed) {
    keel::RequireWritable("keel.migration_failed()");
    Oid caller = GetUserId();
    char *version = ArgVersion(fcinfo, 0, "version");
    char *name = ArgName(fcinfo, 1, false, version);
    char *checksum = ArgChecksum(fcinfo, 2, false);
    TimestampTz started_at = ArgStartedAt(fcinfo, 3);
    if (PG_ARGISNULL(4))
        ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                        errmsg("migration error must not be null"),
                        errhint("Pass the server's error message of the failed attempt.")));
    char *error = text_to_cstring(PG_GETARG_TEXT_PP(4));
    if (error[0] == '\0')
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("migration error must not be empty")));
    HistoryDetail detail = {NULL, 0, NULL, NULL, NULL};
    bool v2 = detailed;
    detailed = detailed && PG_NARGS() > 5;
    if (detailed) {
        detail.sqlstate = OptText(fcinfo, 5, 5);
        if (detail.sqlstate != NULL) {
            bool ok = strlen(detail.sqlstate) == 5;
            for (const char *p = detail.sqlstate; ok && *p; p++)
                ok = (*p >= '0' && *p <= '9') || (*p >= 'A' && *p <= 'Z');
            if (!ok)
                ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                                errmsg("sqlstate must be five digits or upper-case letters"),
                                errdetail("The sqlstate given was \"%s\".", detail.sqlstate)));
        }
        if (!PG_ARGISNULL(6)) {
            detail.error_line = PG_GETARG_INT32(6);
            if (detail.error_line < 1)
                ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                                errmsg("error_line must be 1 or more"),
                                errdetail("The line given was %d.", detail.error_line)));
        }
        detail.error_statement = OptText(fcinfo, 7, 8192);
    }
    SPI_connect();
    CheckNotDone(version, checksum, "record a failure of", v2);
    /* 0.1.0's function writes only 0.1.0's columns */
    int64 id = InsertHistoryRow(caller, version, name, checksum, "failed", &started_at, error, NULL,
                                v2 ? &detail : NULL);
    SPI_finish();
    PG_RETURN_INT64(id);
}

/*
 * keel.migration_baselined(version, name, checksum [, token_checksum]) -> bigint: records a
 * migration whose change the database already holds (it existed before
 * keel) as baselined: it counts as applied and is never run. keel baseline
 * VERSION records every file up to VERSION. Errors: 22004/22023 as
 * keel.migration_start (the name must be the file's); KL005 the version is
 * already applied, baselined or superseded. Rule: Flyway's baseline; issue 12.
 */
Datum keel_migration_baselined(PG_FUNCTION_ARGS) {
    keel::RequireWritable("keel.migration_baselined()");
    Oid caller = GetUserId();
    char *version = ArgVersion(fcinfo, 0, "version");
    char *name = ArgName(fcinfo, 1, false, version);
    char *checksum = ArgChecksum(fcinfo, 2, false);
    SPI_connect();
    CheckNotDone(version, checksum, "baseline", true);
    HistoryDetail detail = {NULL, 0, NULL, NULL, ArgTokenChecksum(fcinfo, 3)};
    int64 id =
        InsertHistoryRow(caller, version, name, checksum, "baselined", NULL, NULL, NULL, &detail);
    SPI_finish();
    PG_RETURN_INT64(id);
}

/*
 * keel.migration_repaired(version, name, checksum, reason [, token_checksum]) -> bigint: for an
 * applied (or baselined) version, records the file as it is now: its new
 * checksum, or NULL name and checksum when the file is gone. The latest
 * repaired row is what keel compares the folder with from then on; the
 * applied row stays. reason (required, not blank) says why. Errors: 22004
 * NULL version or reason; 22023 blank reason, malformed name or checksum,
 * name and checksum not both given or both NULL, version not applied.
 */
Datum keel_migration_repaired(PG_FUNCTION_ARGS) {
    keel::RequireWritable("keel.migration_repaired()");
    Oid caller = GetUserId();
    char *version = ArgVersion(fcinfo, 0, "version");
    char *name = ArgName(fcinfo, 1, true, version);
    char *checksum = ArgChecksum(fcinfo, 2, true);
    if ((name == NULL) != (checksum == NULL))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("migration name and checksum go together"),
                        errhint("Pass both for an edited file, or both NULL for a missing one.")));
    if (PG_ARGISNULL(3))
        ereport(ERROR,
                (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), errmsg("a repair needs a reason")));
    char *reason = text_to_cstring(PG_GETARG_TEXT_PP(3));
    if (keel::IsBlankReason(reason))
        ereport(ERROR,
                (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("a repair needs a reason"),
                 errhint("Say why the applied file changed or went away, for the history.")));
    SPI_connect();
    RequireApplied(version, psprintf("cannot repair migration %s", version),
                   "Only an applied migration can be repaired; a pending one just runs.");
    HistoryDetail detail = {NULL, 0, NULL, reason, ArgTokenChecksum(fcinfo, 4)};
    int64 id =
        InsertHistoryRow(caller, version, name, checksum, "repaired", NULL, NULL, NULL, &detail);
    SPI_finish();
    PG_RETURN_INT64(id);
}
