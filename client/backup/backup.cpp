/*
 * client/backup/backup.cpp
 *   keel backup, keel backups, keel restore: pg_dump archives (custom
 *   format) in a folder, each with a JSON manifest beside it:
 *     database, server_version, taken_at (UTC), size_bytes, sha256 of the
 *     archive, history_version (the newest applied migration when it was
 *     taken), host, port, user (never the password), tool.
 *   restore --into verifies the SHA-256 first, then runs pg_restore into a
 *   new database, which keel creates; nothing existing is dropped.
 *   restore --replace (in place) is in restore_in_place.cpp.
 *   pg_dump and pg_restore are the server's major version's, from
 *   /usr/lib/postgresql/<major>/bin when present, else the PATH. The
 *   password travels in PGPASSWORD, never on a command line (a process
 *   list shows argv). Rule: seeds 001/003 "back up first" (pg_dump); issue 12.
 */
#include "backup/archive.hpp"
#include "lib/commands.hpp"
#include "lib/redact.hpp"
#include "lib/server_role.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>

namespace fs = std::filesystem;

namespace keel::client {

namespace {

std::string UtcNow(const char *format) {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, format, &tm);
    return buf;
}

} // namespace

std::string Backup(const Connection &conn, const fs::path &dir, std::ostream &out) {
    fs::create_directories(dir);
    std::string db = PQdb(conn.get());
    std::string history = "none";
    if (conn.Scalar("SELECT pg_catalog.to_regclass('keel.migration_history') IS NOT NULL") == "t")
        history = conn.Scalar("SELECT coalesce(max(version)::text, 'none') FROM "
                              "keel.migration_history WHERE status IN ('applied', 'baselined')");
    std::string id = db + "-" + UtcNow("%Y%m%dT%H%M%SZ");
    for (int n = 2; fs::exists(dir / (id + ".dump")); ++n)
        id = db + "-" + UtcNow("%Y%m%dT%H%M%SZ") + "-" + std::to_string(n);
    fs::path archive = dir / (id + ".dump");
    std::string password;
    std::string conninfo = ChildConninfo(conn, "", &password);
    std::string err;
    auto t0 = std::chrono::steady_clock::now();
    int rc = RunTool({ToolPath(conn, "pg_dump"), "--format=custom", "--file=" + archive.string(),
                      "--dbname=" + conninfo},
                     password, &err);
    if (rc != 0) {
        fs::remove(archive);
        throw CommandError("backup: pg_dump failed (exit " + std::to_string(rc) +
                           "): " + OneLine(RedactSecrets(err, conninfo)) + "; no backup taken");
    }
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    nlohmann::json manifest = {{"id", id},
                               {"database", db},
                               {"server_version", PQparameterStatus(conn.get(), "server_version")},
                               {"taken_at", UtcNow("%Y-%m-%dT%H:%M:%SZ")},
                               {"size_bytes", fs::file_size(archive)},
                               {"sha256", FileSha256(archive)},
                               {"history_version", history},
                               {"host", PQhost(conn.get()) ? PQhost(conn.get()) : ""},
                               {"port", PQport(conn.get())},
                               {"user", PQuser(conn.get())},
                               {"format", "pg_dump custom"},
                               {"tool", "keel 0.2.0"}};
    std::ofstream(dir / (id + ".json")) << manifest.dump(2) << "\n";
    char took[32];
    std::snprintf(took, sizeof took, "%.1f s", secs);
    out << "backup " << id << ": " << manifest["size_bytes"].get<uintmax_t>() << " bytes in "
        << took << ", sha256 " << manifest["sha256"].get<std::string>().substr(0, 16)
        << "..., migrations up to " << history << " (" << archive.string() << ")\n";
    return id;
}

void Backups(const fs::path &dir, bool json, std::ostream &out) {
    std::vector<nlohmann::json> list;
    if (fs::is_directory(dir))
        for (const auto &e : fs::directory_iterator(dir))
            if (e.path().extension() == ".json") {
                nlohmann::json m = ReadManifest(e.path());
                fs::path archive = e.path();
                archive.replace_extension(".dump");
                m["archive_present"] = fs::exists(archive);
                list.push_back(m);
            }
    std::sort(list.begin(), list.end(), [](const nlohmann::json &a, const nlohmann::json &b) {
        return a.value("taken_at", "") < b.value("taken_at", "");
    });
    if (json) {
        out << nlohmann::json{{"dir", dir.string()}, {"backups", list}}.dump(2) << "\n";
        return;
    }
    if (list.empty()) {
        out << "no backups in " << dir.string() << "\n";
        return;
    }
    for (const auto &m : list)
        out << m.value("id", "?") << "  " << m.value("taken_at", "?") << "  "
            << m.value("database", "?") << "  " << m.value("size_bytes", 0)
            << " bytes  migrations up to " << m.value("history_version", "?") << "  sha256 "
            << m.value("sha256", "").substr(0, 16)
            << (m.value("archive_present", false) ? "" : "  (archive missing)") << "\n";
}

void Restore(const Connection &conn, const fs::path &dir, const std::string &id,
             const std::string &into, std::ostream &out) {
    RequireWritable(conn, "restore");
    VerifiedBackup backup = VerifyBackup(dir, id);
    if (into.empty())
        throw CommandError("restore: pass --into NEW_DATABASE (a new database), or --replace "
                           "DATABASE to replace the contents of the current one");
    if (conn.Scalar("SELECT count(*) FROM pg_catalog.pg_database WHERE datname = $1", {into}) !=
        "0")
        throw CommandError("restore: database \"" + into +
                           "\" already exists; --into needs a new name (to replace the current "
                           "database's contents: --replace DATABASE)");
    conn.Exec("CREATE DATABASE " + conn.Scalar("SELECT pg_catalog.quote_ident($1)", {into}) +
              " TEMPLATE template0");
    std::string password;
    std::string conninfo = ChildConninfo(conn, into, &password);
    std::string err;
    int rc = RunTool({ToolPath(conn, "pg_restore"), "--exit-on-error", "--no-owner",
                      "--dbname=" + conninfo, backup.archive.string()},
                     password, &err);
    if (rc != 0)
        throw CommandError("restore: pg_restore into \"" + into + "\" failed (exit " +
                           std::to_string(rc) + "): " + OneLine(RedactSecrets(err, conninfo)) +
                           "; the new database is left as it got, for inspection");
    out << "restored " << BackupDescription(backup) << " into new database \"" << into
        << "\"; sha256 verified\n";
}

} // namespace keel::client
