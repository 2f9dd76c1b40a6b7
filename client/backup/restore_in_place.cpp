/*
 * client/backup/restore_in_place.cpp
 *   keel restore ID --replace DATABASE: put a backup back into the database
 *   it is connected to, in one transaction, with the guard on.
 *
 *   How (issue 12: "restore ... into the same ... database, verifying the
 *   checksum first"; pg_restore, never hand-written SQL):
 *     1. the archive's SHA-256 must match its manifest, DATABASE must name
 *        the connected database, the role must be a superuser, keel must be
 *        installed, the archive must hold no large objects; keel's migration
 *        lock is taken (so no keel migrate runs meanwhile);
 *     2. pg_restore renders the archive as SQL (-f -), without the keel
 *        extension, its schema and everything in schemas keel and keel_trash
 *        (-L list, -N keel -N keel_trash), then a second pg_restore renders
 *        only keel.migration_history's and keel.migration_steps' rows (-a -n
 *        keel -t migration_history -t migration_steps);
 *     3. keel streams, into one psql session, one transaction:
 *          BEGIN; SET lock_timeout; SELECT keel.allow_destructive(reason);
 *          SET LOCAL keel.trash = off;
 *          keep the failed attempts of keel.migration_history aside;
 *          DROP EXTENSION every extension but keel and plpgsql; DROP SCHEMA
 *          every user schema CASCADE; DROP PUBLICATION every publication;
 *          CREATE SCHEMA public as PostgreSQL 15 makes it;
 *          DELETE FROM keel.migration_history;
 *          <the rendered archive>; <its keel.migration_history rows>;
 *          re-insert the failed attempts the backup does not hold; COMMIT;
 *        psql runs with ON_ERROR_STOP, so any error ends the session before
 *        COMMIT and PostgreSQL rolls everything back. keel closes psql's
 *        input only after both pg_restore runs succeeded; when one fails it
 *        kills psql first, and if keel itself dies psql reads end of input
 *        inside the open transaction and exits: no COMMIT is ever sent for a
 *        partial restore.
 *   Why the break-glass and not keel.guard = off: the guard stays on; the
 *   drops are audited in keel.guard_audit as break_glass + overridden with
 *   the reason "keel restore <id> ..." (docs/guard.md, "The break-glass"),
 *   also when keel is not preloaded (SET keel.guard is audited only when it
 *   is); and the one transaction makes a failed restore change nothing.
 *   What is kept as it is, not rewound: the keel extension (guard, its audit,
 *   credits and ledger — both append-only), grants on keel's objects, and the
 *   recycle bin (keel.dropped_objects, schema keel_trash).
 */
#include "backup/archive.hpp"
#include "lib/commands.hpp"
#include "lib/redact.hpp"
#include "lib/server_role.hpp"
#include "migrate/runner.hpp"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>

namespace fs = std::filesystem;

namespace keel::client {

namespace {

/* The schemas an in-place restore replaces: every schema but PostgreSQL's and keel's. */
constexpr const char *kUserSchemas =
    "n.nspname OPERATOR(pg_catalog.<>) ALL (ARRAY['keel', 'keel_trash', 'information_schema']) "
    "AND n.nspname OPERATOR(pg_catalog.!~) '^pg_'";
/* The extensions it drops and lets the archive re-create: every one but keel and plpgsql. */
constexpr const char *kOtherExtensions =
    "e.extname OPERATOR(pg_catalog.<>) ALL (ARRAY['keel', 'plpgsql'])";

std::string Slurp(const fs::path &path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    return buf.str();
}

/* ScratchDir is a private temporary folder (mkdtemp), removed with what it holds. */
struct ScratchDir {
    fs::path path;
    ScratchDir() {
        std::string pattern = (fs::temp_directory_path() / "keel-restore-XXXXXX").string();
        if (!mkdtemp(pattern.data()))
            throw CommandError("restore: cannot create a temporary folder");
        path = pattern;
    }
    ~ScratchDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
};

/*
 * FilterToc reads `pg_restore -l` output and returns it without the entries
 * of the keel extension itself and of schemas keel and keel_trash (the
 * entries inside those schemas go with -N). An entry line is
 * "<id>; <catalog oid> <object oid> <desc> <schema> <name> <owner>"
 * (pg_backup_archiver.c, PrintTOCSummary). Throws CommandError when the
 * archive holds large objects: pg_restore writes them in a transaction of
 * their own (BEGIN/COMMIT in its output), which would end the restore's one
 * transaction half-way.
 */
std::string FilterToc(const std::string &toc, int *skipped) {
    static const std::regex keel_entry(
        R"(^\d+; \d+ \d+ (EXTENSION - keel|COMMENT - EXTENSION keel|SCHEMA - (keel|keel_trash) \S*|(COMMENT|ACL|SECURITY LABEL) - SCHEMA (keel|keel_trash) \S*) *$)");
    static const std::regex blobs(R"(^\d+; \d+ \d+ (BLOBS|BLOB|LARGE OBJECT|BLOB METADATA) )");
    std::istringstream in(toc);
    std::string line, out;
    while (std::getline(in, line)) {
        if (std::regex_search(line, blobs))
            throw CommandError("restore: the backup holds large objects, which pg_restore "
                               "writes in a transaction of their own, so they cannot be restored "
                               "in place in one transaction; nothing restored (restore --into "
                               "NEW_DB instead)");
        if (std::regex_match(line, keel_entry)) {
            ++*skipped;
            continue;
        }
        out += line + "\n";
    }
    return out;
}

/* OtherSessions lists the other client sessions connected to this database, one per line. */
std::vector<std::string> OtherSessions(const Connection &conn) {
    Result res = conn.Exec(
        "SELECT a.pid::text, coalesce(a.usename::text, '?'), coalesce(a.application_name, ''), "
        "coalesce(a.state, '?'), coalesce(pg_catalog.to_char(a.backend_start AT TIME ZONE 'UTC', "
        "'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), '?') FROM pg_catalog.pg_stat_activity a "
        "WHERE a.datname OPERATOR(pg_catalog.=) pg_catalog.current_database() "
        "AND a.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid() "
        "AND a.backend_type OPERATOR(pg_catalog.=) 'client backend' ORDER BY a.backend_start");
    std::vector<std::string> out;
    for (int i = 0; i < PQntuples(res.get()); ++i) {
        std::string app = PQgetvalue(res.get(), i, 2);
        out.push_back(std::string("pid ") + PQgetvalue(res.get(), i, 0) + " (role " +
                      PQgetvalue(res.get(), i, 1) + (app.empty() ? "" : ", " + app) + ", " +
                      PQgetvalue(res.get(), i, 3) + ", since " + PQgetvalue(res.get(), i, 4) + ")");
    }
    return out;
}

std::string Join(const std::vector<std::string> &items, const std::string &sep) {
    std::string out;
    for (size_t i = 0; i < items.size(); ++i)
        out += (i ? sep : "") + items[i];
    return out;
}

/* WhatIsReplaced describes the user schemas (tables, size) and other extensions of the database. */
std::string WhatIsReplaced(const Connection &conn) {
    Result res = conn.Exec(
        std::string("SELECT n.nspname, pg_catalog.count(c.oid) FILTER (WHERE c.relkind "
                    "OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p']::\"char\"[]))::text, "
                    "coalesce(pg_catalog.sum(pg_catalog.pg_total_relation_size(c.oid)) FILTER "
                    "(WHERE c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'm']::\"char\"[])), "
                    "0)::bigint::text FROM pg_catalog.pg_namespace n LEFT JOIN pg_catalog.pg_class "
                    "c ON c.relnamespace OPERATOR(pg_catalog.=) n.oid WHERE ") +
        kUserSchemas + " GROUP BY n.nspname ORDER BY n.nspname");
    std::vector<std::string> schemas;
    long long bytes = 0;
    for (int i = 0; i < PQntuples(res.get()); ++i) {
        std::string tables = PQgetvalue(res.get(), i, 1);
        schemas.push_back(std::string(PQgetvalue(res.get(), i, 0)) + " (" + tables + " table" +
                          (tables == "1" ? "" : "s") + ")");
        bytes += std::stoll(PQgetvalue(res.get(), i, 2));
    }
    Result ext = conn.Exec(std::string("SELECT e.extname FROM pg_catalog.pg_extension e WHERE ") +
                           kOtherExtensions + " ORDER BY 1");
    std::vector<std::string> extensions;
    for (int i = 0; i < PQntuples(ext.get()); ++i)
        extensions.push_back(PQgetvalue(ext.get(), i, 0));
    std::string out = "schemas " + (schemas.empty() ? std::string("(none)") : Join(schemas, ", ")) +
                      ", " + std::to_string(bytes / 1024) + " kB of tables";
    if (!extensions.empty())
        out += "; extensions " + Join(extensions, ", ");
    return out;
}

/* Quoted is text as an SQL string literal (standard_conforming_strings on, as pg_restore sets). */
std::string Quoted(const Connection &conn, const std::string &text) {
    return conn.Scalar("SELECT pg_catalog.quote_literal($1)", {text});
}

/* Prelude opens the restore's transaction, lowers nothing but keel.trash, and clears the schemas.
 */
std::string Prelude(const Connection &conn, const std::string &reason, int lock_timeout_ms) {
    return "SET client_min_messages = warning;\n"
           "BEGIN;\n"
           "SET LOCAL lock_timeout = " +
           std::to_string(lock_timeout_ms) +
           ";\n"
           "SELECT keel.allow_destructive(" +
           Quoted(conn, reason) +
           ");\n"
           "SET LOCAL keel.trash = off;\n"
           "CREATE TEMPORARY TABLE keel_restore_failed ON COMMIT DROP AS\n"
           "    SELECT * FROM keel.migration_history h\n"
           "    WHERE h.status OPERATOR(pg_catalog.=) 'failed';\n"
           "DO $keel_restore$\n"
           "DECLARE r record;\n"
           "BEGIN\n"
           "    FOR r IN SELECT e.extname FROM pg_catalog.pg_extension e WHERE " +
           std::string(kOtherExtensions) +
           " LOOP\n"
           "        EXECUTE pg_catalog.format('DROP EXTENSION %I CASCADE', r.extname);\n"
           "    END LOOP;\n"
           "    FOR r IN SELECT n.nspname FROM pg_catalog.pg_namespace n WHERE " +
           kUserSchemas +
           " LOOP\n"
           "        EXECUTE pg_catalog.format('DROP SCHEMA %I CASCADE', r.nspname);\n"
           "    END LOOP;\n"
           "    FOR r IN SELECT p.pubname FROM pg_catalog.pg_publication p LOOP\n"
           "        EXECUTE pg_catalog.format('DROP PUBLICATION %I', r.pubname);\n"
           "    END LOOP;\n"
           "END\n"
           "$keel_restore$;\n"
           /* PostgreSQL 15's public schema; pg_dump writes only what differs from it */
           "CREATE SCHEMA public AUTHORIZATION pg_database_owner;\n"
           "GRANT USAGE ON SCHEMA public TO PUBLIC;\n"
           "COMMENT ON SCHEMA public IS 'standard public schema';\n"
           "DELETE FROM keel.migration_history;\n"
           /* the journal of keel:no-transaction files goes back to the backup's too: the
            * statements it shows done after the backup are undone by this restore */
           "DO $keel_restore$ BEGIN IF pg_catalog.to_regclass('keel.migration_steps') IS NOT NULL "
           "THEN DELETE FROM keel.migration_steps; END IF; END $keel_restore$;\n";
}

/*
 * Postlude re-inserts, with their own ids and times, the failed attempts that
 * the restored history does not hold (issue 12: "keep a failed attempt
 * recorded"), prints how many, and commits. The column list is read from the
 * catalog, so a backup of an older keel (fewer columns) restores too.
 */
std::string Postlude() {
    return "SELECT 'keel-restore-rerecorded ' OPERATOR(pg_catalog.||) pg_catalog.count(*)\n"
           "    FROM pg_temp.keel_restore_failed f WHERE NOT EXISTS (SELECT FROM "
           "keel.migration_history h\n"
           "    WHERE h.id OPERATOR(pg_catalog.=) f.id);\n"
           "DO $keel_restore$\n"
           "DECLARE cols text;\n"
           "BEGIN\n"
           "    SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY "
           "a.attnum) INTO cols\n"
           "      FROM pg_catalog.pg_attribute a\n"
           "     WHERE a.attrelid OPERATOR(pg_catalog.=) 'keel.migration_history'::pg_catalog."
           "regclass\n"
           "       AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped\n"
           "       AND a.attgenerated OPERATOR(pg_catalog.=) '';\n"
           "    EXECUTE pg_catalog.format('INSERT INTO keel.migration_history (%s) OVERRIDING "
           "SYSTEM VALUE '\n"
           "        'SELECT %s FROM pg_temp.keel_restore_failed f WHERE NOT EXISTS (SELECT FROM '\n"
           "        'keel.migration_history h WHERE h.id OPERATOR(pg_catalog.=) f.id) ORDER BY "
           "f.id', cols, cols);\n"
           "END\n"
           "$keel_restore$;\n"
           "COMMIT;\n";
}

/* WriteAll writes text to fd; false when the reader went away (EPIPE) or another error. */
bool WriteAll(int fd, const char *data, size_t size) {
    while (size > 0) {
        ssize_t n = ::write(fd, data, size);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        data += n;
        size -= static_cast<size_t>(n);
    }
    return true;
}

/* IgnoreSigpipe ignores SIGPIPE for its lifetime, so a psql that exits makes write() fail. */
struct IgnoreSigpipe {
    struct sigaction old {};
    IgnoreSigpipe() {
        struct sigaction ign {};
        ign.sa_handler = SIG_IGN;
        sigaction(SIGPIPE, &ign, &old);
    }
    ~IgnoreSigpipe() { sigaction(SIGPIPE, &old, nullptr); }
};

/* ErrorPart is stderr of a tool from its first ERROR/FATAL line on (else all of it), one line. */
std::string ErrorPart(const std::string &err) {
    size_t at = err.find("ERROR:");
    if (at == std::string::npos)
        at = err.find("FATAL:");
    if (at == std::string::npos)
        return OneLine(err);
    size_t line_start = err.rfind('\n', at);
    return OneLine(err.substr(line_start == std::string::npos ? 0 : line_start + 1));
}

/* StreamResult: how the pg_restore | psql stream ended. */
struct StreamResult {
    bool ok = false;
    std::string error; /* when !ok: which tool failed and its message (not redacted) */
    std::string psql_out;
};

/*
 * Stream runs psql on conninfo and feeds it prelude, the output of each
 * pg_restore in renders (in order), and postlude. psql's input is closed
 * only when every pg_restore exited 0; otherwise psql is killed first, so
 * its transaction never commits.
 */
StreamResult Stream(const Connection &conn, const std::string &conninfo,
                    const std::string &password, const std::string &prelude,
                    const std::vector<std::vector<std::string>> &renders,
                    const std::string &postlude, const ScratchDir &scratch) {
    IgnoreSigpipe sigpipe;
    StreamResult result;
    int to_psql[2];
    if (::pipe(to_psql) != 0)
        throw CommandError("restore: cannot create a pipe");
    fs::path psql_out = scratch.path / "psql.out", psql_err = scratch.path / "psql.err";
    int out_fd = ::open(psql_out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    pid_t psql = SpawnTool({ToolPath(conn, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-d", conninfo, "-f", "-"},
                           password, to_psql[0], out_fd, psql_err);
    ::close(to_psql[0]);
    if (out_fd >= 0)
        ::close(out_fd);
    bool fed = WriteAll(to_psql[1], prelude.data(), prelude.size());
    std::string render_error;
    for (size_t i = 0; fed && i < renders.size(); ++i) {
        int from[2];
        if (::pipe(from) != 0) {
            render_error = "cannot create a pipe";
            break;
        }
        fs::path err = scratch.path / ("pg_restore" + std::to_string(i) + ".err");
        pid_t render = SpawnTool(renders[i], password, -1, from[1], err);
        ::close(from[1]);
        char buf[1 << 16];
        for (;;) {
            ssize_t n = ::read(from[0], buf, sizeof buf);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                break;
            if (!WriteAll(to_psql[1], buf, static_cast<size_t>(n))) {
                fed = false;
                break;
            }
        }
        ::close(from[0]);
        if (!fed)
            ::kill(render, SIGKILL);
        int status = 0;
        waitpid(render, &status, 0);
        if (fed && ExitStatus(status) != 0) {
            render_error = "pg_restore failed (exit " + std::to_string(ExitStatus(status)) +
                           "): " + ErrorPart(Slurp(err));
            break;
        }
    }
    if (fed && render_error.empty())
        fed = WriteAll(to_psql[1], postlude.data(), postlude.size());
    if (!render_error.empty())
        ::kill(psql, SIGKILL); /* before its input ends: the open transaction rolls back */
    ::close(to_psql[1]);
    int status = 0;
    waitpid(psql, &status, 0);
    result.psql_out = Slurp(psql_out);
    if (!render_error.empty()) {
        result.error = render_error;
        return result;
    }
    if (ExitStatus(status) != 0 || !fed) {
        result.error = "psql failed (exit " + std::to_string(ExitStatus(status)) +
                       "): " + ErrorPart(Slurp(psql_err));
        return result;
    }
    result.ok = true;
    return result;
}

} // namespace

RestoreInPlaceResult RestoreInPlace(const Connection &conn, const fs::path &dir,
                                    const std::string &id, const RestoreInPlaceOptions &options,
                                    std::ostream &out) {
    RequireWritable(conn, "restore");
    std::string database = PQdb(conn.get());
    if (options.confirm_database != database)
        throw CommandError("restore: --replace names database \"" + options.confirm_database +
                           "\" but keel is connected to \"" + database +
                           "\"; nothing restored (--replace must name the database whose "
                           "contents are replaced)");
    VerifiedBackup backup = VerifyBackup(dir, id);
    if (conn.Scalar("SELECT pg_catalog.current_setting('is_superuser')") != "on")
        throw CommandError(
            "restore: --replace needs a superuser, and role \"" + std::string(PQuser(conn.get())) +
            "\" is not one: replacing a database in place drops and re-creates every schema "
            "under keel.allow_destructive, with keel.trash off, and rewrites "
            "keel.migration_history; nothing restored (restore --into NEW_DB needs only "
            "CREATEDB)");
    if (conn.Scalar("SELECT count(*) FROM pg_catalog.pg_extension WHERE extname = 'keel'") == "0")
        throw CommandError("restore: --replace needs the keel extension in \"" + database +
                           "\" (its break-glass keeps the guard on during the restore); nothing "
                           "restored (keel install, or restore --into NEW_DB)");
    std::optional<MigrationLock> lock;
    if (options.take_migration_lock)
        lock.emplace(conn, options.lock_wait_seconds);

    ScratchDir scratch;
    std::string password;
    std::string conninfo = ChildConninfo(conn, database, &password);
    std::string pg_restore = ToolPath(conn, "pg_restore");
    fs::path toc = scratch.path / "toc.list", filtered = scratch.path / "restore.list";
    std::string err;
    int rc = RunTool({pg_restore, "--list", "--file=" + toc.string(), backup.archive.string()},
                     password, &err);
    if (rc != 0)
        throw CommandError("restore: pg_restore --list failed (exit " + std::to_string(rc) +
                           "): " + OneLine(err) + "; nothing restored");
    int skipped = 0;
    std::ofstream(filtered) << FilterToc(Slurp(toc), &skipped);

    std::string history_now =
        conn.Scalar("SELECT coalesce(max(version)::text, 'none') FROM keel.migration_history "
                    "WHERE status IN ('applied', 'baselined')");
    out << "replacing the contents of database \"" << database << "\" (" << WhatIsReplaced(conn)
        << "; migrations up to " << history_now << ") with backup " << BackupDescription(backup)
        << "; kept as they are: the keel extension (guard, guard audit, credits), grants on "
           "keel's objects and the recycle bin\n";
    if (backup.manifest.value("database", "") != database)
        out << "note: backup " << id << " was taken of database \""
            << backup.manifest.value("database", "?") << "\", not \"" << database << "\"\n";
    std::vector<std::string> sessions = OtherSessions(conn);
    if (!sessions.empty())
        out << sessions.size() << " other session(s) connected to \"" << database
            << "\": " << Join(sessions, "; ")
            << "; they keep running; one holding a lock on a replaced table makes the restore "
               "wait up to "
            << options.lock_timeout_ms << " ms and then fail, changing nothing\n";
    out << std::flush;

    std::string reason = "keel restore " + id + " --replace " + database + ": backup of " +
                         backup.manifest.value("database", "?") + " taken " +
                         backup.manifest.value("taken_at", "?");
    std::vector<std::vector<std::string>> renders = {
        {pg_restore, "--use-list=" + filtered.string(), "--exclude-schema=keel",
         "--exclude-schema=keel_trash", "--file=-", backup.archive.string()},
        {pg_restore, "--data-only", "--schema=keel", "--table=migration_history",
         "--table=migration_steps", "--file=-", backup.archive.string()}};
    auto t0 = std::chrono::steady_clock::now();
    StreamResult streamed =
        Stream(conn, conninfo, password, Prelude(conn, reason, options.lock_timeout_ms), renders,
               Postlude(), scratch);
    if (!streamed.ok) {
        std::string msg = "restore of " + id + " into \"" + database +
                          "\" failed, nothing changed (one transaction, rolled back): " +
                          RedactSecrets(streamed.error, conninfo);
        if (streamed.error.find("lock timeout") != std::string::npos) {
            std::vector<std::string> now = OtherSessions(conn);
            msg +=
                "; other sessions: " + (now.empty() ? std::string("none now") : Join(now, "; ")) +
                " (stop them, or raise --lock-timeout)";
        }
        throw CommandError(msg);
    }
    RestoreInPlaceResult result;
    std::smatch m;
    static const std::regex rerecorded("keel-restore-rerecorded (\\d+)");
    if (std::regex_search(streamed.psql_out, m, rerecorded))
        result.failed_rerecorded = std::stoi(m[1].str());
    result.history_version =
        conn.Scalar("SELECT coalesce(max(version)::text, 'none') FROM keel.migration_history "
                    "WHERE status IN ('applied', 'baselined')");
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    char took[32];
    std::snprintf(took, sizeof took, "%.1f s", secs);
    out << "restored " << id << " into \"" << database << "\" in place in " << took
        << " (sha256 verified, one transaction): migrations now up to " << result.history_version
        << ", history as in the backup";
    if (result.failed_rerecorded > 0)
        out << " plus " << result.failed_rerecorded << " failed attempt(s) recorded after it, kept";
    out << "; audited in keel.guard_audit as break_glass \"" << reason << "\"\n";
    return result;
}

} // namespace keel::client
