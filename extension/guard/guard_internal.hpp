/*
 * extension/guard/guard_internal.hpp
 *   Declarations shared by the guard's files. PostgreSQL-facing, plain C style:
 *   no C++ object with a destructor lives in a frame that may ereport().
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "nodes/pg_list.h"
}

namespace keel {

/* Values of the keel.guard GUC, ordered from weakest to strongest. */
enum GuardMode { GUARD_OFF = 0, GUARD_WARN = 1, GUARD_ENFORCE = 2 };

extern int guard_mode;         /* keel.guard */
extern char *guard_admin_role; /* keel.admin_role */

/* True while keel.allow_destructive() is in force for this transaction. */
bool BreakGlassActive();
/* Starts the break-glass for the current (sub)transaction, remembering its reason. */
void ActivateBreakGlass(const char *reason);
/* The reason given to keel.allow_destructive(), or NULL when not in force. */
const char *BreakGlassReason();

/*
 * RequireEventTrigger raises 39P01 (E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED)
 * unless fcinfo comes from the event trigger manager; function_name is the
 * SQL name shown in the message.
 */
void RequireEventTrigger(FunctionCallInfo fcinfo, const char *function_name);

/* True while CREATE/ALTER EXTENSION keel runs keel's own scripts. */
bool RunningKeelScript();

/*
 * AuditRecord is one row of keel.guard_audit. Strings may be NULL (SQL NULL);
 * objects holds nobjects descriptions such as "table public.organizations".
 */
struct AuditRecord {
    const char *action;
    const char *command_tag;
    const char *reason;
    const char *statement;
    const char *role_name;
    const char *session_role;
    int backend_pid;
    uint64 full_xid; /* 0 when the transaction has no xid yet */
    int nobjects;
    const char **objects;
};

/* MakeAuditRecord fills an AuditRecord for the current backend and statement. */
AuditRecord MakeAuditRecord(const char *action, const char *command_tag, List *objects,
                            const char *reason);

/*
 * InsertAuditRow inserts rec into keel.guard_audit inside the current
 * transaction, as the extension's owner (the invoker needs no privilege on
 * the table). Uses SPI; the caller must not be connected to SPI.
 */
void InsertAuditRow(const AuditRecord *rec);

/* KeelExtensionOwner returns the role owning extension keel; SPI must be connected. */
Oid KeelExtensionOwner();

/* LogAuditRecord writes rec to the server log (when it cannot reach the table). */
void LogAuditRecord(const AuditRecord *rec, const char *why);

/*
 * AuditDetached writes rec from a background worker in its own transaction,
 * so the row survives the ERROR that follows. Waits for the worker. When no
 * worker can be started it logs the record with LOG instead.
 */
void AuditDetached(const AuditRecord *rec);

/*
 * GuardVerdict decides about a destructive command.
 *   tag:      command tag, e.g. "DROP TABLE"
 *   objects:  List of char * object descriptions it would destroy (not empty)
 *   at_start: true from ddl_command_start (refuse only), false from sql_drop
 * Raises KL001 when refused; returns when the command may go on (keel.guard
 * = warn or off, or the break-glass is in force; each audited at sql_drop).
 */
void GuardVerdict(const char *tag, List *objects, bool at_start);

} // namespace keel
