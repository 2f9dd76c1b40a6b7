/*
 * client/lib/commands.hpp
 *   The keel subcommands, testable without the CLI: install, migrate, status, trash.
 *   Each writes its report to `out` and signals failure by throwing
 *   CommandError, whose what() is the one line keel prints on stderr.
 *
 *   Writing commands (Install, Migrate, Down, TrashRestore) first refuse a standby
 *   or a read-only session (server_role.hpp RequireWritable), before anything
 *   runs; reading commands (Status, TrashList) work there and say so.
 *
 *   Exit codes (main.cpp): 0 success; 1 CommandError or connection/server
 *   error; 2 command-line usage error; 3 keel status found checksum
 *   mismatches or file problems.
 */
#pragma once

#include "lib/connection.hpp"
#include "lib/progress.hpp"

#include <filesystem>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace keel::client {

/* CommandError: the command failed; what() is one line for stderr. */
class CommandError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

/*
 * Install creates the keel extension, or updates it (ALTER EXTENSION keel
 * UPDATE) when an older version is installed, or does nothing when the
 * default version is installed; prints what it did and the version.
 * Throws CommandError when keel is not available on the server.
 */
void Install(const Connection &conn, std::ostream &out);

/*
 * GrantCredits grants each role in roles EXECUTE on the credit functions an
 * application needs (get_available_credits, consume_credits,
 * consume_specific_credits, consume_credits_batch, hold_credits, settle_hold,
 * release_hold) and, with admin, also allocate_plan_credits, verify_credits,
 * grant_credits, expire_grants, refund_credits, refund_credits_by_key,
 * expire_holds and migrate_unified_pool; prints one line per role. The roles must exist (keel never
 * creates cluster-wide roles): CommandError otherwise.
 */
void GrantCredits(const Connection &conn, const std::vector<std::string> &roles, bool admin,
                  std::ostream &out);

/*
 * GrantMigrations grants each role in roles EXECUTE on every function keel
 * migrate, rehearse, baseline, repair and down call: the migration lock, and
 * the writers of keel.migration_history and keel.migration_steps (those the
 * installed keel has); prints one line per role. The roles must exist
 * (CommandError otherwise). Without it an ordinary role can neither take the
 * migration lock nor record anything (0.2.0 grants none of them to PUBLIC).
 */
void GrantMigrations(const Connection &conn, const std::vector<std::string> &roles,
                     std::ostream &out);

/* MigrateSummary counts what keel migrate did. */
struct MigrateSummary {
    int applied = 0;
    int superseded = 0;
};

/*
 * Migrate applies the pending migrations of dir under keel's migration lock:
 *   1. the folder must have no problems (bad names, a migration-like name
 *      that does not end in .sql, duplicates, directives, a file that is
 *      not valid UTF-8 or holds a NUL byte); an applied
 *      migration's file must not be missing; no pending file may be older
 *      than the newest applied one unless allow_out_of_order;
 *   2. keel.migration_lock(), retried for options.lock_wait_seconds (KL004 ->
 *      CommandError naming the holder); --target drops pending files after it;
 *   3. every applied version's file must still have its recorded checksum,
 *      else nothing is applied;
 *   4. every pending file must parse (libpg_query), obey the transaction
 *      rules of PrepareScript and hold a statement (RequireStatements), else
 *      nothing is applied;
 *   5. each pending file in version order: keel.migration_start(), then
 *      BEGIN; [keel.allow_destructive(reason);] [keel.migration_superseded()
 *      for its keel:supersedes]; its statements; keel.migration_applied();
 *      COMMIT — or, with keel:no-transaction, its statements one by one in
 *      autocommit followed by keel.migration_applied();
 *   6. on the first failure: ROLLBACK, keel.migration_failed() with the
 *      error, and CommandError "file:line: message (SQLSTATE) DETAIL HINT";
 *      earlier migrations stay applied;
 *   7. keel.migration_unlock().
 * Prints one line per applied or superseded migration, with its duration.
 */
/* MigrateOptions: --allow-out-of-order, --target VERSION, --lock-wait SECONDS. */
struct MigrateOptions {
    bool allow_out_of_order = false;
    std::string target;         /* apply nothing after this version ("" for all) */
    int lock_wait_seconds = 60; /* how long to retry for the migration lock (Sqitch: 60 s) */
    /* --lock-timeout MS: SET lock_timeout for every statement (0: off); a
     * statement that times out is retried (a transactional file whole) up to
     * lock_retries times, backing off from 200 ms, so a migration waiting on a
     * busy table never queues every other query behind it. */
    int lock_timeout_ms = 0;
    int lock_retries = 3;
    bool quiet = false; /* --quiet: only failures and the summary line */
    /* --backup: a pg_dump backup into this folder first, when something is
     * pending ("" = none; see Backup) */
    std::string backup_dir;
    /* --dry-run: rehearse the pending files in one transaction, then roll it back */
    bool dry_run = false;
    /* --restore-on-failure (needs --backup): when a migration fails after this run committed
     * something (an earlier file, a superseded record, or statements of a keel:no-transaction
     * file), restore the run's backup in place (RestoreInPlace), then fail with the original
     * error plus "restored backup ID" */
    bool restore_on_failure = false;
    /* the rehearsal's report as JSON (keel rehearse --json) */
    bool json = false;
    /* --progress: the live status line on stderr (lib/progress.hpp) */
    ProgressMode progress = ProgressMode::Auto;
    /* the run's status line, set by Migrate for the files it applies (nullptr: none) */
    Progress *live = nullptr;
    /* the session's search_path and role when the run began, set again at the start of
     * every file (set by Migrate; restore_session false: not read) */
    bool restore_session = false;
    std::string session_search_path, session_role;
};

MigrateSummary Migrate(const Connection &conn, const std::filesystem::path &dir, std::ostream &out,
                       const MigrateOptions &options = {});

/* DownOptions: keel down --to VERSION | --steps N, --lock-wait, --lock-timeout, --quiet, --dry-run.
 */
struct DownOptions {
    std::string to; /* revert every applied version newer than this ("" = not given; "0" = all) */
    int steps = 0;  /* revert the N newest applied versions (0 = not given: 1, unless --to) */
    int lock_wait_seconds = 60; /* as MigrateOptions */
    int lock_timeout_ms = 0; /* as MigrateOptions: SET lock_timeout, retried lock_retries times */
    int lock_retries = 3;
    bool quiet = false;   /* only failures and the summary line */
    bool dry_run = false; /* check everything and print what would run; run nothing, no lock */
    ProgressMode progress = ProgressMode::Auto; /* --progress, as keel migrate's */
};

/* DownSummary counts what keel down did. */
struct DownSummary {
    int reverted = 0;
};

/*
 * Down reverts applied migrations of dir, newest version first, by running
 * their <version>_<slug>.down.sql files (client/migrate/down.cpp):
 *   which: the newest applied version (no --to, no --steps), the N newest
 *   (--steps N), or every applied version newer than --to VERSION (VERSION
 *   stays applied; --to 0 reverts all). Versions count in version order, as
 *   dbmate rollback and golang-migrate down do.
 *   1. the folder must have no problems (as Migrate);
 *   2. under keel.migration_lock() (as Migrate), every version to revert must
 *      have been applied by keel (not baselined), its file must be in dir with
 *      the recorded checksum (a cosmetic change is noted and allowed), and it
 *      must have a .down.sql that is valid UTF-8 without NUL bytes, has valid
 *      directives and parses under PrepareScript's transaction rules; else
 *      CommandError naming the files, and nothing runs;
 *   3. each down file in turn: BEGIN; [SET LOCAL lock_timeout;]
 *      [keel.allow_destructive(reason);] its statements (its own BEGIN/COMMIT
 *      wrapper dropped); keel.migration_reverted(version, down name, down
 *      checksum, started_at); COMMIT — or, with keel:no-transaction, its
 *      statements one by one in autocommit, then keel.migration_reverted().
 *      The guard judges every statement: a destructive one needs the file's
 *      -- keel:allow-destructive "reason" (else KL001);
 *   4. on the first failure: ROLLBACK, nothing recorded (the version stays
 *      applied; a failed down is not a failed migration), and CommandError
 *      "down file:line: message (SQLSTATE) DETAIL HINT"; versions reverted
 *      earlier in the run stay reverted.
 * A reverted version is pending again: keel migrate applies it as a new
 * revision. Prints one line per reverted migration, with its duration, and a
 * summary. Rule: issue 12 ("down [--to VERSION] runs .down.sql files in
 * reverse under the same lock and guard").
 */
DownSummary Down(const Connection &conn, const std::filesystem::path &dir, std::ostream &out,
                 const DownOptions &options = {});

/*
 * Status reports history (and dir when not empty) as text or JSON.
 * Returns false when the report shows checksum mismatches or file problems.
 */
bool Status(const Connection &conn, const std::filesystem::path &dir, bool json, std::ostream &out);

/*
 * TrashList prints keel.dropped_objects (id, kind, object, state kept |
 * expired | restored | purged, rows, who and why), as text or JSON
 * ({"entries": [...]}).
 */
void TrashList(const Connection &conn, bool json, std::ostream &out);

/*
 * TrashRestore runs keel.restore_dropped(id, new_name) and prints what it
 * restored. Throws CommandError for an id that is not a number; server
 * errors (42501, 42P07 with its HINT, ...) come through as ServerError.
 */
void TrashRestore(const Connection &conn, const std::string &id, const std::string &new_name,
                  bool json, std::ostream &out);

/*
 * Validate runs keel validate (client/check/validate.cpp): invalid indexes,
 * NOT VALID constraints, foreign-key orphans, CHECK violations of existing
 * rows and keel.verify_credits(), read-only; prints a report (text or JSON)
 * and returns false when it found a problem (main exits 3). A check the role
 * may not run is reported as skipped.
 */
bool Validate(const Connection &conn, bool json, std::ostream &out);

/*
 * Baseline records every file of dir up to version as baselined
 * (keel.migration_baselined, one transaction, under the migration lock), for
 * a database that existed before keel: they count as applied and never run.
 * CommandError when the history already has applied rows, no file is up to
 * version, or the folder has problems.
 */
void Baseline(const Connection &conn, const std::filesystem::path &dir, const std::string &version,
              std::ostream &out);

/*
 * Repair re-records, with reason (required), every applied file of dir whose
 * checksum changed and every applied file that is gone
 * (keel.migration_repaired, one transaction, under the migration lock), so
 * migrate goes on; prints each and "nothing to repair" when all match.
 */
void Repair(const Connection &conn, const std::filesystem::path &dir, const std::string &reason,
            std::ostream &out);

/*
 * Backup runs pg_dump (custom format, the server's major version) into dir
 * as <db>-<UTC time>.dump with a .json manifest (database, server version,
 * time, size, sha256, newest applied migration, host/port/user) and returns
 * the backup id. The password goes to pg_dump in PGPASSWORD, never argv.
 * CommandError when pg_dump fails (its message redacted); no file is left.
 */
std::string Backup(const Connection &conn, const std::filesystem::path &dir, std::ostream &out);

/* Backups lists the manifests of dir, oldest first, as text or JSON. */
void Backups(const std::filesystem::path &dir, bool json, std::ostream &out);

/*
 * Restore verifies backup id's archive against its manifest's sha256, creates
 * database into (which must not exist) and pg_restores into it. Nothing
 * existing is dropped. CommandError for an unknown id, a damaged archive, an
 * existing or missing --into, or a pg_restore failure.
 */
void Restore(const Connection &conn, const std::filesystem::path &dir, const std::string &id,
             const std::string &into, std::ostream &out);

/* RestoreInPlaceOptions: keel restore ID --replace DATABASE [--lock-timeout MS]. */
struct RestoreInPlaceOptions {
    /* --replace DATABASE: must be the connected database's name, typed out, so that a
     * wrong --db or a stray flag never replaces a database by accident */
    std::string confirm_database;
    int lock_timeout_ms = 10000;     /* SET LOCAL lock_timeout for the restore's transaction */
    bool take_migration_lock = true; /* false when the caller (migrate) already holds it */
    int lock_wait_seconds = 60;      /* how long to retry for keel's migration lock */
};

/* RestoreInPlaceResult: what the restored database's history says. */
struct RestoreInPlaceResult {
    std::string history_version; /* newest applied or baselined version, or "none" */
    int failed_rerecorded = 0;   /* failed attempts newer than the backup, put back */
};

/*
 * RestoreInPlace (client/backup/restore_in_place.cpp) replaces the contents
 * of the connected database with backup id of dir, in one transaction, with
 * the guard on (keel.allow_destructive, audited with the backup's id):
 * every user schema and every extension but keel and plpgsql are dropped and
 * re-created from the archive by pg_restore; keel.migration_history becomes
 * the backup's, plus the failed attempts recorded since (with their own ids
 * and times); the keel extension, its guard audit, credits, grants on its
 * objects and the recycle bin are kept as they are. Prints what it replaces,
 * the other sessions connected, and the result.
 * CommandError, with nothing changed, when confirm_database is not the
 * connected database, the archive does not match its manifest, the role is
 * not a superuser, keel is not installed, the archive holds large objects,
 * a lock waits longer than lock_timeout_ms (naming the other sessions), or
 * pg_restore or any statement fails. Rule: issue 12 ("restore restores one
 * into the same or a new database, verifying the checksum first").
 */
RestoreInPlaceResult RestoreInPlace(const Connection &conn, const std::filesystem::path &dir,
                                    const std::string &id, const RestoreInPlaceOptions &options,
                                    std::ostream &out);

/*
 * Plan prints what keel migrate would do with dir, without the lock and
 * without writing: the pending files in order (transaction or not, number of
 * statements, directives), each statement (line, text abbreviated to 80
 * characters) with the guard's verdict from a static check (keel lint's
 * engine; see migrate/verdicts.hpp: "ok", "refused (rule)", "allowed by the
 * break-glass (rule): reason", "warning (rule)" for lint-only rules), the
 * versions to supersede, and every blocker migrate would refuse on
 * (checksum mismatch, missing applied file, out of order, a file that does
 * not parse). Text or JSON; returns false when there is a blocker or a
 * statement the guard would refuse (main exits 3). Works on a standby.
 * Rule: issue 12, "plan".
 */
bool Plan(const Connection &conn, const std::filesystem::path &dir, bool json, std::ostream &out);

/*
 * Verify (client/check/verify.cpp): with write_file, writes the live schema's
 * expectations (user tables: columns, indexes, constraints) as JSON and
 * returns true; else compares the database with expect_file and prints
 * every missing, unexpected or different table, column, index and
 * constraint (text or JSON); returns false on a difference (main exits 3).
 */
bool Verify(const Connection &conn, const std::string &expect_file, const std::string &write_file,
            bool json, std::ostream &out);

/*
 * NewMigration creates dir/<version>_<slug>.sql, the next version in the
 * folder's own style (zero-padded numbers, or a UTC timestamp), and, with
 * down, dir/<version>_<slug>.down.sql beside it (what keel down runs); returns
 * the migration's path. CommandError for a bad slug or an existing file
 * (nothing is created then).
 */
std::string NewMigration(const std::filesystem::path &dir, const std::string &slug,
                         std::ostream &out, bool down = false);

/* PoolOptions: keel credits migrate-pool. */
struct PoolOptions {
    std::string table;                          /* the user table with the unified pool */
    std::string name;                           /* progress name ("" = the table) */
    std::string id_column = "id";               /* uuid account ids */
    std::string plan_column = "plan_name";      /* text plan name */
    std::string total_column = "total_credits"; /* integer or bigint credits */
    int batch = 1000;                           /* rows per transaction */
    bool quiet = false;
};

/*
 * MigratePool calls keel.migrate_unified_pool() once per transaction until
 * it reports finished, printing progress (rows done / total, rate, ETA) at
 * most once a second and a final line. Resumes a run that was interrupted.
 * Throws CommandError on bad options or a standby; server errors (42501,
 * 22023, ...) come through as ServerError.
 */
void MigratePool(const Connection &conn, const PoolOptions &options, std::ostream &out);

} // namespace keel::client
