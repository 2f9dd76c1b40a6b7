/*
 * extension/migrations/migration_lock.cpp
 *   keel's migration lock, 0.2.0: a session-level advisory lock that no
 *   other role can squat.
 *
 *   0.1.0's lock (history.cpp) is the fixed advisory key ('keel', 1), which
 *   any role can take with pg_try_advisory_lock(1801807212, 1) and hold
 *   forever, blocking every runner (issue 12: "An ordinary role must not be
 *   able to block every runner by taking the same advisory lock key"). 0.2.0
 *   keeps the key's second half in keel.migration_lock_state, readable only
 *   by keel's owner, with the session that holds it (pid and backend start).
 *   A runner that finds the key held by a session that is not the recorded
 *   holder knows it is a squatter (or a stale holder from an older keel):
 *   it moves to a new random key, takes that, and warns, naming the
 *   squatter. Choosing and taking the new key happens under the state row's
 *   lock, so two runners never both take a lock. The key is visible in
 *   pg_locks while held, but a squatter who takes it after the runner is
 *   gone is detected the same way.
 *
 *   The SQL functions are SECURITY DEFINER (search_path pinned), revoked
 *   from PUBLIC, and granted to the roles that run migrations.
 *   Plain C style as in history.cpp: no C++ object with a destructor lives in
 *   a frame that may ereport().
 */
extern "C" {
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "common/pg_prng.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

#include "pg/error.hpp"
#include "pg/writable.hpp"

#define KEEL_LOCK_KEY1 0x6B65656C /* 'keel', as 0.1.0 */
#define KEEL_ERRCODE(code) errcode(keel::SqlState(code))

extern "C" {
PGDLLEXPORT Datum keel_migration_lock_v2(PG_FUNCTION_ARGS);
PGDLLEXPORT Datum keel_migration_unlock_v2(PG_FUNCTION_ARGS);
PG_FUNCTION_INFO_V1(keel_migration_lock_v2);
PG_FUNCTION_INFO_V1(keel_migration_unlock_v2);
}

/* The key this session holds (valid when held_key_valid), for unlock. */
static uint32 held_key;
static bool held_key_valid = false;

static void LockTagFor(LOCKTAG *tag, uint32 key) {
    SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, (uint32)KEEL_LOCK_KEY1, key, 2);
}

/* Holder describes who holds advisory key ('keel', key): pid, role, application, backend start. */
typedef struct Holder {
    bool found;
    int pid;
    char *role;
    char *application;
    TimestampTz backend_start;
    bool has_start;
} Holder;

static Holder FindHolder(uint32 key) {
    Holder h = {false, 0, NULL, NULL, 0, false};
    Oid argtypes[3] = {OIDOID, OIDOID, OIDOID};
    Datum values[3] = {ObjectIdGetDatum(MyDatabaseId), ObjectIdGetDatum((Oid)KEEL_LOCK_KEY1),
                       ObjectIdGetDatum((Oid)key)};
    const char *query =
        "SELECT l.pid, a.usename::pg_catalog.text, a.application_name, a.backend_start "
        "FROM pg_catalog.pg_locks l LEFT JOIN pg_catalog.pg_stat_activity a "
        "  ON a.pid OPERATOR(pg_catalog.=) l.pid "
        "WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory' AND l.granted "
        "  AND l.database OPERATOR(pg_catalog.=) $1 AND l.classid OPERATOR(pg_catalog.=) $2 "
        "  AND l.objid OPERATOR(pg_catalog.=) $3 AND l.objsubid OPERATOR(pg_catalog.=) 2 "
        "  AND l.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid() "
        "ORDER BY l.pid LIMIT 1";
    if (SPI_execute_with_args(query, 3, argtypes, values, NULL, true, 1) != SPI_OK_SELECT)
        elog(ERROR, "keel: cannot read pg_locks");
    if (SPI_processed == 1) {
        bool isnull;
        HeapTuple tup = SPI_tuptable->vals[0];
        TupleDesc desc = SPI_tuptable->tupdesc;
        h.found = true;
        h.pid = DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
        h.role = SPI_getvalue(tup, desc, 2);
        h.application = SPI_getvalue(tup, desc, 3);
        Datum start = SPI_getbinval(tup, desc, 4, &isnull);
        h.has_start = !isnull;
        if (!isnull)
            h.backend_start = DatumGetTimestampTz(start);
    }
    return h;
}

static char *DescribeHolder(const Holder *h) {
    StringInfoData buf;
    initStringInfo(&buf);
    appendStringInfo(&buf, "process %d", h->pid);
    if (h->role != NULL)
        appendStringInfo(&buf, " (role \"%s\"%s%s%s)", h->role,
                         h->application != NULL && h->application[0] != '\0' ? ", application \""
                                                                             : "",
                         h->application != NULL ? h->application : "",
                         h->application != NULL && h->application[0] != '\0' ? "\"" : "");
    return buf.data;
}

/* Take tries advisory key key for this session without waiting. */
static bool Take(uint32 key) {
    LOCKTAG tag;
    LockTagFor(&tag, key);
    return LockAcquire(&tag, ExclusiveLock, true, true) != LOCKACQUIRE_NOT_AVAIL;
}

/*
 * HoldForTransaction: inside a transaction block, also hold key until the
 * transaction ends. pg_advisory_unlock_all() (and DISCARD ALL, which calls
 * it) releases session-level advisory locks only, so a migration file that
 * runs it cannot let another runner in before its transaction ends. The
 * caller holds key at session level already, so this never waits.
 */
static void HoldForTransaction(uint32 key) {
    if (!IsTransactionBlock())
        return;
    LOCKTAG tag;
    LockTagFor(&tag, key);
    if (LockAcquire(&tag, ExclusiveLock, false, true) == LOCKACQUIRE_NOT_AVAIL)
        elog(ERROR, "keel: cannot hold the migration lock for the transaction");
}

/* RecordHolder stores key and this session as the holder (caller SPI-connected). */
static void RecordHolder(uint32 key) {
    Oid argtypes[3] = {INT4OID, INT4OID, TIMESTAMPTZOID};
    Datum values[3] = {Int32GetDatum((int32)key), Int32GetDatum(MyProcPid),
                       TimestampTzGetDatum(MyStartTimestamp)};
    if (SPI_execute_with_args(
            "UPDATE keel.migration_lock_state SET lock_key = $1, holder_pid = $2, "
            "holder_started = $3, since = pg_catalog.clock_timestamp()",
            3, argtypes, values, NULL, false, 0) != SPI_OK_UPDATE ||
        SPI_processed != 1)
        elog(ERROR, "keel: cannot update keel.migration_lock_state");
    held_key = key;
    held_key_valid = true;
}

/*
 * keel.migration_lock() -> void, 0.2.0
 *   Takes keel's session-level migration lock of the current database without
 *   waiting (a runner retries; nothing ever queues behind it, so a CREATE
 *   INDEX CONCURRENTLY cannot deadlock on it). Idempotent in a session. A
 *   session holding the key that is not keel's recorded holder is a squatter:
 *   keel moves to a new key, takes it, and raises a WARNING naming it.
 *   Inside a transaction block it also holds the key until the transaction
 *   ends (HoldForTransaction), so no statement of that transaction can
 *   release it; called again after a statement released the session lock,
 *   it takes the lock again with a WARNING, or raises KL004 when another
 *   runner took it in between (keel migrate calls it at each file's start
 *   and after each statement of a keel:no-transaction file).
 *   Errors: KL004 when another runner holds it (DETAIL: pid, role,
 *   application and since when); 25006 on a standby or in a read-only
 *   transaction (the state row is written). Rule: seeds 001/003 (one
 *   operator at a time); issue 12 (squatting).
 */
Datum keel_migration_lock_v2(PG_FUNCTION_ARGS) {
    keel::RequireWritable("keel.migration_lock()");
    bool lost = false; /* held before, released since by something other than keel */
    if (held_key_valid) {
        LOCKTAG tag;
        LockTagFor(&tag, held_key);
        if (LockHeldByMe(&tag, ExclusiveLock)) {
            HoldForTransaction(held_key);
            PG_RETURN_VOID();
        }
        held_key_valid = false;
        lost = true;
    }
    SPI_connect();
    /* the row lock serialises runners for the few microseconds of this call */
    if (SPI_execute("SELECT lock_key, holder_pid, holder_started, since "
                    "FROM keel.migration_lock_state FOR UPDATE",
                    false, 0) != SPI_OK_SELECT ||
        SPI_processed != 1)
        elog(ERROR, "keel: keel.migration_lock_state must hold one row");
    bool isnull;
    HeapTuple tup = SPI_tuptable->vals[0];
    TupleDesc desc = SPI_tuptable->tupdesc;
    uint32 key = (uint32)DatumGetInt32(SPI_getbinval(tup, desc, 1, &isnull));
    Datum pid_datum = SPI_getbinval(tup, desc, 2, &isnull);
    int recorded_pid = isnull ? 0 : DatumGetInt32(pid_datum);
    Datum start_datum = SPI_getbinval(tup, desc, 3, &isnull);
    TimestampTz recorded_start = isnull ? 0 : DatumGetTimestampTz(start_datum);
    char *since = SPI_getvalue(tup, desc, 4);

    if (Take(key) || (!FindHolder(key).found && Take(key) /* its holder let go just now */)) {
        RecordHolder(key);
        HoldForTransaction(key);
        SPI_finish();
        if (lost)
            ereport(WARNING,
                    (errmsg("keel's migration lock had been released in this session"),
                     errdetail("A statement released it (DISCARD ALL, pg_advisory_unlock_all() "
                               "or pg_advisory_unlock()); keel took it again, as no other runner "
                               "had taken it."),
                     errhint("Leave keel's advisory lock alone in migrations: another runner "
                             "could have started in between.")));
        PG_RETURN_VOID();
    }
    Holder h = FindHolder(key);
    bool runner =
        h.found && h.pid == recorded_pid && h.has_start && h.backend_start == recorded_start;
    if (runner || !h.found) {
        char *who = h.found ? DescribeHolder(&h) : pstrdup("another session");
        char *db = get_database_name(MyDatabaseId);
        /* no SPI_finish: who, db and since live in SPI's memory, and the
         * error's abort ends the SPI connection */
        ereport(ERROR, (KEEL_ERRCODE("KL004"),
                        errmsg("another keel migration runner holds the migration lock"),
                        errdetail_internal("%s holds the keel migration lock of database \"%s\" "
                                           "since %s.",
                                           who, db, since != NULL ? since : "a moment ago"),
                        errhint("Wait for the other runner to finish, or end that session with "
                                "pg_terminate_backend() if it is stuck.")));
    }
    /* a squatter: the key is held by a session keel did not give it to */
    char *squatter = DescribeHolder(&h);
    uint32 fresh;
    do
        fresh = pg_prng_uint32(&pg_global_prng_state);
    while (fresh == key || fresh == 0 || fresh == 1);
    if (!Take(fresh))
        elog(ERROR, "keel: the new migration lock key is taken too");
    RecordHolder(fresh);
    HoldForTransaction(fresh);
    /* the WARNING first: squatter lives in SPI's memory */
    ereport(
        WARNING,
        (errmsg("the keel migration lock key was held by %s, which is not a keel runner", squatter),
         errdetail("keel moved its migration lock to a new key and took it; the other "
                   "session's advisory lock no longer blocks migrations."),
         errhint("Find out why that session takes keel's advisory lock; "
                 "pg_terminate_backend(%d) ends it.",
                 h.pid)));
    SPI_finish();
    PG_RETURN_VOID();
}

/*
 * keel.migration_unlock() -> boolean, 0.2.0
 *   Releases the lock keel.migration_lock() took in this session; true when
 *   this session held it, false (quietly) when it did not.
 */
Datum keel_migration_unlock_v2(PG_FUNCTION_ARGS) {
    if (!held_key_valid)
        PG_RETURN_BOOL(false);
    LOCKTAG tag;
    LockTagFor(&tag, held_key);
    held_key_valid = false;
    if (!LockHeldByMe(&tag, ExclusiveLock))
        PG_RETURN_BOOL(false);
    PG_RETURN_BOOL(LockRelease(&tag, ExclusiveLock, true));
}
