/*
 * extension/guard/audit_worker.cpp
 *   The audit writer for blocked statements. A blocked statement's
 *   transaction aborts, and PostgreSQL has no autonomous transactions, so the
 *   row is handed through a dynamic shared memory segment to a dynamic
 *   background worker that inserts it in a transaction of its own. The
 *   blocked backend waits for the worker, then raises KL001.
 *   (PostgreSQL docs: "Background Worker Processes", bgworker.sgml.)
 */
extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/dsm.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
}

#include "guard/guard_internal.hpp"

extern "C" {
PGDLLEXPORT void keel_audit_worker_main(Datum main_arg);
}

namespace keel {

/* Number of fixed string fields serialised before the objects. */
static const int kFixedFields = 6;

/* Header of the shared memory segment; the strings follow it. */
struct AuditShared {
    Oid database;
    Oid owner;
    int backend_pid;
    uint64 full_xid;
    int nobjects;
    bool written; /* set by the worker once its transaction committed */
    Size data_len;
    char data[FLEXIBLE_ARRAY_MEMBER];
};

/* Each string is one flag byte ('n' NULL, 's' value) and, for values, a NUL-terminated text. */
static Size SerialisedLength(const char *s) {
    return 1 + (s ? strlen(s) + 1 : 0);
}

static char *Serialise(char *out, const char *s) {
    *out++ = s ? 's' : 'n';
    if (s) {
        Size len = strlen(s) + 1;
        memcpy(out, s, len);
        out += len;
    }
    return out;
}

static const char *Deserialise(const char **in) {
    const char *p = *in;
    if (*p++ == 'n') {
        *in = p;
        return nullptr;
    }
    const char *s = pstrdup(p);
    *in = p + strlen(p) + 1;
    return s;
}

void LogAuditRecord(const AuditRecord *rec, const char *why) {
    StringInfoData objects;
    initStringInfo(&objects);
    for (int i = 0; i < rec->nobjects; i++)
        appendStringInfo(&objects, "%s%s", i ? ", " : "", rec->objects[i]);
    ereport(LOG, (errmsg("keel.guard %s %s by role \"%s\"", rec->action,
                         rec->command_tag ? rec->command_tag : "", rec->role_name),
                  errdetail("Objects: %s. Reason: %s. The audit row was not written to "
                            "keel.guard_audit: %s.",
                            objects.data, rec->reason ? rec->reason : "none", why)));
}

void AuditDetached(const AuditRecord *rec) {
    const char *fixed[kFixedFields] = {rec->action,    rec->command_tag, rec->reason,
                                       rec->statement, rec->role_name,   rec->session_role};
    Size len = 0;
    for (int i = 0; i < kFixedFields; i++)
        len += SerialisedLength(fixed[i]);
    for (int i = 0; i < rec->nobjects; i++)
        len += SerialisedLength(rec->objects[i]);

    SPI_connect();
    Oid owner = KeelExtensionOwner();
    SPI_finish();

    dsm_segment *seg = dsm_create(offsetof(AuditShared, data) + len, 0);
    AuditShared *shared = (AuditShared *)dsm_segment_address(seg);
    shared->database = MyDatabaseId;
    shared->owner = owner;
    shared->backend_pid = rec->backend_pid;
    shared->full_xid = rec->full_xid;
    shared->nobjects = rec->nobjects;
    shared->written = false;
    shared->data_len = len;
    char *out = shared->data;
    for (int i = 0; i < kFixedFields; i++)
        out = Serialise(out, fixed[i]);
    for (int i = 0; i < rec->nobjects; i++)
        out = Serialise(out, rec->objects[i]);

    BackgroundWorker worker;
    memset(&worker, 0, sizeof(worker));
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = BGW_NEVER_RESTART;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "keel");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "keel_audit_worker_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "keel guard audit writer for PID %d", MyProcPid);
    snprintf(worker.bgw_type, BGW_MAXLEN, "keel guard audit writer");
    worker.bgw_main_arg = UInt32GetDatum(dsm_segment_handle(seg));
    worker.bgw_notify_pid = MyProcPid;

    BackgroundWorkerHandle *handle;
    if (!RegisterDynamicBackgroundWorker(&worker, &handle)) {
        LogAuditRecord(rec, "no background worker slot is free (max_worker_processes)");
    } else {
        BgwHandleStatus status = WaitForBackgroundWorkerShutdown(handle);
        if (status != BGWH_STOPPED || !shared->written)
            LogAuditRecord(rec, "the audit writer did not finish; see the server log");
    }
    dsm_detach(seg);
}

} // namespace keel

/*
 * keel_audit_worker_main is the background worker's entry point. main_arg is
 * the dsm handle of an AuditShared. It connects to the blocked backend's
 * database as the extension owner, inserts the row (lock_timeout 5s, so it
 * cannot wait forever on a lock the blocked backend holds) and exits.
 */
void keel_audit_worker_main(Datum main_arg) {
    using namespace keel;
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();

    CurrentResourceOwner = ResourceOwnerCreate(nullptr, "keel audit writer");
    dsm_segment *seg = dsm_attach(DatumGetUInt32(main_arg));
    if (seg == nullptr)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("keel audit writer could not map its shared memory segment")));
    dsm_pin_mapping(seg); /* outlives the transaction below */
    AuditShared *shared = (AuditShared *)dsm_segment_address(seg);

    MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
    const char *fixed[kFixedFields];
    const char *in = shared->data;
    for (int i = 0; i < kFixedFields; i++)
        fixed[i] = Deserialise(&in);
    const char **objects = (const char **)palloc0(sizeof(char *) * (shared->nobjects + 1));
    for (int i = 0; i < shared->nobjects; i++)
        objects[i] = Deserialise(&in);
    MemoryContextSwitchTo(old);

    AuditRecord rec;
    rec.action = fixed[0];
    rec.command_tag = fixed[1];
    rec.reason = fixed[2];
    rec.statement = fixed[3];
    rec.role_name = fixed[4];
    rec.session_role = fixed[5];
    rec.backend_pid = shared->backend_pid;
    rec.full_xid = shared->full_xid;
    rec.nobjects = shared->nobjects;
    rec.objects = objects;

    BackgroundWorkerInitializeConnectionByOid(shared->database, shared->owner, 0);
    SetConfigOption("lock_timeout", "5s", PGC_SUSET, PGC_S_OVERRIDE);
    SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);

    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, "keel: writing a keel.guard_audit row");
    InsertAuditRow(&rec);
    PopActiveSnapshot();
    CommitTransactionCommand();
    pgstat_report_activity(STATE_IDLE, nullptr);

    shared->written = true;
    dsm_detach(seg);
    proc_exit(0);
}
