/*
 * extension/guard/audit_spool.cpp
 *   The audit spool: how the row of a blocked statement survives the ERROR
 *   that rolls its transaction back, without needing a free background
 *   worker slot, a writable transaction or a connection. PostgreSQL has no
 *   autonomous transactions, so the row is first written to a file of its
 *   own, $PGDATA/pg_keel/audit/<database oid>/<spool id>, fsync'd and
 *   renamed into place (durable_rename) before the ERROR is raised. A flush
 *   later inserts spooled rows into keel.guard_audit (ON CONFLICT on
 *   spool_id, so a row is never inserted twice) and removes their files
 *   once that transaction has committed. A flush runs in the background
 *   worker started right after a refusal, before any other audit row is
 *   written, and in keel.guard_audit_flush().
 */
extern "C" {
#include "postgres.h"
#include <sys/stat.h>
#include <unistd.h>
#include "access/xact.h"
#include "miscadmin.h"
#include "storage/fd.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
}

#include "guard/guard_internal.hpp"

#include <initializer_list>

namespace keel {

static const char *kSpoolRoot = "pg_keel/audit";
static uint32 spool_counter = 0;
static List *files_to_remove = NIL; /* in TopMemoryContext, removed at commit */
static bool callback_registered = false;

static char *SpoolDir(Oid database) {
    return psprintf("%s/%u", kSpoolRoot, database);
}

static void EnsureDir(const char *path) {
    if (MakePGDirectory(path) < 0 && errno != EEXIST)
        ereport(ERROR,
                (errcode_for_file_access(), errmsg("could not create directory \"%s\": %m", path)));
}

/* Serialisation: each string is a flag byte ('n' NULL, 's' value) then the text and a NUL. */
static void PutString(StringInfo buf, const char *s) {
    appendStringInfoChar(buf, s ? 's' : 'n');
    if (s)
        appendBinaryStringInfo(buf, s, strlen(s) + 1);
}

static const char *GetString(const char **p, const char *end) {
    if (*p >= end)
        return nullptr;
    char flag = *(*p)++;
    if (flag != 's')
        return nullptr;
    const char *s = *p;
    const char *nul = (const char *)memchr(s, '\0', end - s);
    if (nul == nullptr) {
        *p = end;
        return nullptr;
    }
    *p = nul + 1;
    return pstrdup(s);
}

static void PutInt(StringInfo buf, int64 v) {
    appendStringInfo(buf, "%lld", (long long)v);
    appendStringInfoChar(buf, '\0');
}

static int64 GetInt(const char **p, const char *end) {
    const char *nul = (const char *)memchr(*p, '\0', end - *p);
    if (nul == nullptr) {
        *p = end;
        return 0;
    }
    int64 v = strtoll(*p, nullptr, 10);
    *p = nul + 1;
    return v;
}

static const char *const kMagic = "keel-audit-1";

char *SpoolAuditRecord(const AuditRecord *rec) {
    char *dir = SpoolDir(MyDatabaseId);
    EnsureDir("pg_keel");
    EnsureDir(kSpoolRoot);
    EnsureDir(dir);
    char *id = psprintf("%020lld-%010d-%010u", (long long)GetCurrentTimestamp(), MyProcPid,
                        ++spool_counter);

    StringInfoData buf;
    initStringInfo(&buf);
    PutString(&buf, kMagic);
    for (const char *s : {rec->action, rec->command_tag, rec->reason, rec->statement,
                          rec->role_name, rec->session_role, rec->rule, rec->database_name,
                          rec->application_name, rec->client_addr})
        PutString(&buf, s);
    PutInt(&buf, rec->backend_pid);
    PutInt(&buf, (int64)rec->full_xid);
    PutInt(&buf, (int64)rec->lsn);
    PutInt(&buf, rec->occurred_at);
    PutInt(&buf, rec->nobjects);
    for (int i = 0; i < rec->nobjects; i++)
        PutString(&buf, rec->objects[i]);

    char *tmp = psprintf("%s/%s.tmp", dir, id);
    char *path = psprintf("%s/%s", dir, id);
    int fd = OpenTransientFile(tmp, O_WRONLY | O_CREAT | O_EXCL | PG_BINARY);
    if (fd < 0)
        return nullptr;
    bool ok = write(fd, buf.data, buf.len) == buf.len && pg_fsync(fd) == 0;
    CloseTransientFile(fd);
    if (!ok || durable_rename(tmp, path, LOG) != 0) {
        unlink(tmp);
        return nullptr;
    }
    return id;
}

/* ReadSpooled parses one spool file into rec; false when it is not a complete record. */
static bool ReadSpooled(const char *path, const char *id, AuditRecord *rec) {
    int fd = OpenTransientFile(path, O_RDONLY | PG_BINARY);
    if (fd < 0)
        return false;
    StringInfoData buf;
    initStringInfo(&buf);
    char chunk[8192];
    ssize_t n;
    while ((n = read(fd, chunk, sizeof chunk)) > 0)
        appendBinaryStringInfo(&buf, chunk, n);
    CloseTransientFile(fd);
    const char *p = buf.data, *end = buf.data + buf.len;
    const char *magic = GetString(&p, end);
    if (magic == nullptr || strcmp(magic, kMagic) != 0)
        return false;
    memset(rec, 0, sizeof *rec);
    const char **fields[] = {&rec->action,     &rec->command_tag,   &rec->reason,
                             &rec->statement,  &rec->role_name,     &rec->session_role,
                             &rec->rule,       &rec->database_name, &rec->application_name,
                             &rec->client_addr};
    for (const char **f : fields)
        *f = GetString(&p, end);
    rec->backend_pid = (int)GetInt(&p, end);
    rec->full_xid = (uint64)GetInt(&p, end);
    rec->lsn = (XLogRecPtr)GetInt(&p, end);
    rec->occurred_at = GetInt(&p, end);
    rec->nobjects = (int)GetInt(&p, end);
    if (rec->nobjects < 0 || rec->nobjects > 100000)
        return false;
    rec->objects = (const char **)palloc0(sizeof(char *) * (rec->nobjects + 1));
    for (int i = 0; i < rec->nobjects; i++)
        rec->objects[i] = GetString(&p, end);
    rec->spool_id = pstrdup(id);
    return rec->action != nullptr && rec->role_name != nullptr && rec->session_role != nullptr &&
           p == end;
}

/* RemoveFlushed unlinks the files whose rows committed (or forgets them on abort). */
static void SpoolXactCallback(XactEvent event, void *arg) {
    if (files_to_remove == NIL)
        return;
    if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT) {
        ListCell *lc;
        foreach (lc, files_to_remove)
            (void)unlink((const char *)lfirst(lc));
    } else if (event != XACT_EVENT_ABORT && event != XACT_EVENT_PARALLEL_ABORT) {
        return;
    }
    list_free_deep(files_to_remove);
    files_to_remove = NIL;
}

static int CompareNames(const ListCell *a, const ListCell *b) {
    return strcmp((const char *)lfirst(a), (const char *)lfirst(b));
}

bool AuditSpoolPending() {
    char *dir = SpoolDir(MyDatabaseId);
    DIR *d = AllocateDir(dir);
    if (d == nullptr)
        return false;
    bool any = false;
    struct dirent *de;
    while (!any && (de = ReadDirExtended(d, dir, LOG)) != nullptr)
        any = de->d_name[0] != '.' && strstr(de->d_name, ".tmp") == nullptr;
    FreeDir(d);
    return any;
}

int64 FlushAuditSpool() {
    if (!callback_registered) {
        RegisterXactCallback(SpoolXactCallback, nullptr);
        callback_registered = true;
    }
    char *dir = SpoolDir(MyDatabaseId);
    DIR *d = AllocateDir(dir);
    if (d == nullptr)
        return 0;
    List *names = NIL;
    struct dirent *de;
    while ((de = ReadDirExtended(d, dir, LOG)) != nullptr)
        if (de->d_name[0] != '.' && strstr(de->d_name, ".tmp") == nullptr)
            names = lappend(names, pstrdup(de->d_name));
    FreeDir(d);
    if (names == NIL)
        return 0;
    list_sort(names, CompareNames); /* spool ids start with their time: oldest first */

    int n = list_length(names), nrecs = 0;
    AuditRecord *recs = (AuditRecord *)palloc0(sizeof(AuditRecord) * n);
    ListCell *lc;
    foreach (lc, names) {
        const char *name = (const char *)lfirst(lc);
        char *path = psprintf("%s/%s", dir, name);
        if (!ReadSpooled(path, name, &recs[nrecs])) {
            /* kept: only files whose rows are inserted are removed */
            ereport(WARNING, (errmsg("keel: skipping unreadable audit spool file \"%s\"", path),
                              errhint("Move it out of the way once its content is kept.")));
            continue;
        }
        nrecs++;
        MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
        files_to_remove = lappend(files_to_remove, pstrdup(path));
        MemoryContextSwitchTo(old);
    }
    return InsertAuditRows(recs, nrecs);
}

} // namespace keel
