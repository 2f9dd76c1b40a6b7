/*
 * extension/guard/guard_internal.hpp
 *   Declarations shared by the guard's files. PostgreSQL-facing, plain C style:
 *   no C++ object with a destructor lives in a frame that may ereport().
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "access/xlogdefs.h"
#include "catalog/objectaddress.h"
#include "fmgr.h"
#include "nodes/pg_list.h"
}

#include "guard/rules.hpp"

namespace keel {

/* Values of the keel.guard GUC, ordered from weakest to strongest. */
enum GuardMode { GUARD_OFF = 0, GUARD_WARN = 1, GUARD_ENFORCE = 2 };

extern int guard_mode;         /* keel.guard */
extern char *guard_admin_role; /* keel.admin_role */

/* RuleLevelNow is the level of rule now: keel.guard_rules capped by keel.guard. */
RuleLevel RuleLevelNow(int rule);

/*
 * True while keel.allow_destructive() is in force: same transaction, and the
 * same role and security context that activated it (a SECURITY DEFINER
 * function that calls it does not lend it to its caller).
 */
bool BreakGlassActive();
/* Starts the break-glass for the current (sub)transaction, remembering its reason. */
void ActivateBreakGlass(const char *reason);
/* The reason given to keel.allow_destructive(), or NULL when not in force. */
const char *BreakGlassReason();
/*
 * IsKeelAdmin: the current role is a superuser or a member of the role named
 * by keel.admin_role (who may break the glass, restore and purge).
 */
bool IsKeelAdmin();
/* WAL insert position when the break-glass was activated (InvalidXLogRecPtr when not). */
XLogRecPtr BreakGlassLsn();

/*
 * RequireEventTrigger raises 39P01 (E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED)
 * unless fcinfo comes from the event trigger manager; function_name is the
 * SQL name shown in the message.
 */
void RequireEventTrigger(FunctionCallInfo fcinfo, const char *function_name);

/*
 * True while CREATE/ALTER EXTENSION keel runs keel's own scripts, or while
 * keel itself runs DDL (internal_ddl_depth > 0: the recycle bin moving a
 * table into keel_trash); the guard stays out of keel's own work.
 */
bool RunningKeelScript();
extern int internal_ddl_depth;

/* ---- objects.cpp ---- */

/* DescribeObject returns "<object type> <identity>", as pg_identify_object() does. */
char *DescribeObject(const ObjectAddress *addr);
/* MayAlterObject: superuser or owner. When false the guard steps aside and PostgreSQL refuses. */
bool MayAlterObject(const ObjectAddress *addr);
/* IsSystemObject: created by initdb (OID below FirstNormalObjectId); PostgreSQL protects it. */
bool IsSystemObject(const ObjectAddress *addr);
/* IsTempObject: lives in a temporary schema (for triggers and constraints: their table). */
bool IsTempObject(const ObjectAddress *addr);
/*
 * CreatedInThisTransaction: every version of the object's catalog row (for a
 * column, its pg_attribute row) was written by the current transaction, so
 * dropping it loses nothing committed. Works before and after the drop.
 */
bool CreatedInThisTransaction(Oid classid, Oid objid, int32 subid);
/* KeelExtensionOid / KeelNamespace: extension keel and its schema, InvalidOid when absent. */
Oid KeelExtensionOid();
Oid KeelNamespace();
/* IsKeelObject: the object is extension keel or one of its members. */
bool IsKeelObject(Oid classid, Oid objid);

/* ---- findings and verdicts (verdict.cpp) ---- */

/*
 * Finding: one object a command would destroy or break, under one rule, or
 * under kCollateral: named in DETAIL and the audit beside the findings that
 * decide, never deciding itself (a view a refused DROP TABLE ... CASCADE
 * would take with it).
 */
static const int kCollateral = -1;
struct Finding {
    int rule;
    char *object; /* "<type> <identity>" */
};

/* AddFinding appends a Finding (copied into CurrentMemoryContext) to findings. */
List *AddFinding(List *findings, int rule, const char *object);

/*
 * GuardVerdict decides about a command's findings, rule by rule.
 *   tag:      command tag, e.g. "DROP TABLE"
 *   findings: List of Finding *
 *   audit:    true to audit what it lets through here (warned, overridden,
 *             unguarded); false at ddl_command_start of a drop, which is
 *             audited at sql_drop with exactly what was dropped
 * Raises KL001 when a finding's level is error and no break-glass is in
 * force (after writing a durable 'blocked' audit row); returns otherwise.
 */
void GuardVerdict(const char *tag, List *findings, bool audit);

/* ---- replacement tracking (replace.cpp) ---- */

/*
 * RememberDropped records a derived object dropped by the current command:
 * rule, the command tag, pg_event_trigger_dropped_objects()'s object_type,
 * object_identity, address_names and address_args (Lists of char *).
 */
void RememberDropped(int rule, const char *tag, const char *type, const char *identity, List *names,
                     List *args);
/* CheckReplacements (pre-commit): KL001 for each remembered object not re-created. */
void CheckReplacements();
/* ForgetReplacements drops what was remembered (transaction end), or only what subid remembered. */
void ForgetReplacements();
void ForgetSubxactReplacements(SubTransactionId subid, SubTransactionId parent, bool commit);

/* ---- audit (audit.cpp, audit_worker.cpp, audit_spool.cpp) ---- */

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
    const char *rule;
    const char *database_name;
    const char *application_name;
    const char *client_addr;
    const char *spool_id;
    int backend_pid;
    uint64 full_xid;   /* 0 when the transaction has no xid yet */
    XLogRecPtr lsn;    /* InvalidXLogRecPtr for none */
    int64 occurred_at; /* TimestampTz; 0 for clock_timestamp() at insert */
    int nobjects;
    const char **objects;
};

/* MakeAuditRecord fills an AuditRecord for the current backend and statement. */
AuditRecord MakeAuditRecord(const char *action, const char *command_tag, const char *rule,
                            List *objects, const char *reason);

/*
 * InsertAuditRow inserts rec into keel.guard_audit inside the current
 * transaction, as the extension's owner (the invoker needs no privilege on
 * the table). Uses SPI; the caller must not be connected to SPI.
 */
void InsertAuditRow(const AuditRecord *rec);
/* InsertAuditRows inserts nrecs rows (skipping spool ids already there); returns how many were new.
 */
int64 InsertAuditRows(const AuditRecord *recs, int nrecs);

/* KeelExtensionOwner returns the role owning extension keel; SPI must be connected. */
Oid KeelExtensionOwner();

/* LogAuditRecord writes rec to the server log, one parseable line (keel.guard_audit: {json}). */
void LogAuditRecord(const AuditRecord *rec, const char *why);

/*
 * AuditDetached makes rec durable although the current transaction is about
 * to abort: it is written to the audit spool (fsync'd, see audit_spool.cpp),
 * then a background worker moves the spool into keel.guard_audit. Without a
 * free worker slot the row stays in the spool (flushed later) and is also
 * logged.
 */
void AuditDetached(const AuditRecord *rec);

/* SpoolAuditRecord writes rec to the spool durably; returns its spool id (palloc'd) or NULL. */
char *SpoolAuditRecord(const AuditRecord *rec);
/*
 * FlushAuditSpool inserts the spooled rows of this database into
 * keel.guard_audit in the current transaction (skipping ids already there)
 * and removes their files once the transaction commits. Returns the number
 * inserted. SPI must not be connected.
 */
int64 FlushAuditSpool();
/* AuditSpoolPending reports whether this database has spooled rows (cheap). */
bool AuditSpoolPending();

} // namespace keel
