/*
 * extension/guard/audit_worker.cpp
 *   Writing the audit row of a blocked statement. The row is spooled to disk
 *   first (audit_spool.cpp), so it is durable whatever happens next; then a
 *   dynamic background worker connects to the database as the extension
 *   owner and flushes the spool into keel.guard_audit in a transaction of
 *   its own (read-write even when the database defaults to read-only), and
 *   the blocked backend waits for it so the row is visible as soon as the
 *   ERROR is. Without a free worker slot (max_worker_processes, parallel
 *   query) the row stays spooled, is logged as a parseable line, and is
 *   flushed by the next audit write or keel.guard_audit_flush().
 *   (PostgreSQL docs: "Background Worker Processes", bgworker.sgml.)
 */
extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"
}

#include "guard/guard_internal.hpp"

extern "C" {
PGDLLEXPORT void keel_audit_worker_main(Datum main_arg);
}

namespace keel {

/* How often, and how long apart, a refusal retries for a worker slot. */
static const int kSlotAttempts = 20;
static const long kSlotRetryMs = 10;

/* StartFlushWorker starts the flush worker for this database; NULL when no slot is free. */
static BackgroundWorkerHandle *StartFlushWorker(Oid owner) {
    BackgroundWorker worker;
    memset(&worker, 0, sizeof(worker));
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = BGW_NEVER_RESTART;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "keel");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "keel_audit_worker_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "keel guard audit writer for PID %d", MyProcPid);
    snprintf(worker.bgw_type, BGW_MAXLEN, "keel guard audit writer");
    worker.bgw_main_arg = ObjectIdGetDatum(MyDatabaseId);
    memcpy(worker.bgw_extra, &owner, sizeof owner);
    worker.bgw_notify_pid = MyProcPid;
    int attempts = max_worker_processes > 0 ? kSlotAttempts : 0;
    for (int attempt = 0; attempt < attempts; attempt++) {
        BackgroundWorkerHandle *handle;
        if (RegisterDynamicBackgroundWorker(&worker, &handle))
            return handle;
        if (attempt + 1 == attempts)
            break;
        (void)WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, kSlotRetryMs,
                        PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
    }
    return nullptr;
}

void AuditDetached(const AuditRecord *rec) {
    if (!OidIsValid(KeelExtensionOid())) {
        LogAuditRecord(rec, "extension keel is not installed in this database");
        return;
    }
    AuditRecord spooled = *rec;
    spooled.spool_id = SpoolAuditRecord(rec);
    if (spooled.spool_id == nullptr) {
        LogAuditRecord(rec, "the audit spool could not be written");
        return;
    }
    if (RecoveryInProgress()) {
        LogAuditRecord(&spooled, "the server is a standby; the row stays in the audit spool");
        return;
    }
    SPI_connect();
    Oid owner = KeelExtensionOwner();
    SPI_finish();
    BackgroundWorkerHandle *handle = StartFlushWorker(owner);
    if (handle == nullptr) {
        LogAuditRecord(&spooled, "no background worker slot is free (max_worker_processes); the "
                                 "row stays in the audit spool until the next flush");
        return;
    }
    (void)WaitForBackgroundWorkerShutdown(handle);
}

} // namespace keel

/*
 * keel_audit_worker_main is the background worker's entry point. main_arg is
 * the database OID, bgw_extra the extension owner. It flushes that
 * database's audit spool (lock_timeout 5s, so it cannot wait forever on a
 * lock the blocked backend holds) and exits; on failure the rows stay spooled.
 */
void keel_audit_worker_main(Datum main_arg) {
    using namespace keel;
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    Oid owner;
    memcpy(&owner, MyBgworkerEntry->bgw_extra, sizeof owner);
    BackgroundWorkerInitializeConnectionByOid(DatumGetObjectId(main_arg), owner, 0);
    SetConfigOption("lock_timeout", "5s", PGC_SUSET, PGC_S_OVERRIDE);
    SetConfigOption("statement_timeout", "30s", PGC_SUSET, PGC_S_OVERRIDE);
    SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
    /* The blocked session waits for this commit: with synchronous_standby_names
     * set, "on" means the row is on the synchronous standby before the client
     * gets its error, so a failover cannot lose it (docs/high-availability.md). */
    SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);

    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, "keel: flushing the guard audit spool");
    (void)FlushAuditSpool();
    PopActiveSnapshot();
    CommitTransactionCommand();
    pgstat_report_activity(STATE_IDLE, nullptr);
    proc_exit(0);
}
