/*
 * client/backup/backup.cpp
 *   keel backup, keel backups, keel restore: pg_dump archives (custom
 *   format) in a folder, each with a JSON manifest beside it:
 *     database, server_version, taken_at (UTC), size_bytes, sha256 of the
 *     archive, history_version (the newest applied migration when it was
 *     taken), host, port, user (never the password), tool.
 *   restore verifies the SHA-256 first, then runs pg_restore into a new
 *   database (--into), which keel creates; nothing existing is dropped.
 *   pg_dump and pg_restore are the server's major version's, from
 *   /usr/lib/postgresql/<major>/bin when present, else the PATH. The
 *   password travels in PGPASSWORD, never on a command line (a process
 *   list shows argv). Rule: seeds 001/003 "back up first" (pg_dump); issue 12.
 */
#include "lib/checksum.hpp"
#include "lib/commands.hpp"
#include "lib/redact.hpp"
#include "lib/server_role.hpp"

#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace keel::client {

namespace {

/* Tool returns the path of pg_dump/pg_restore for the server's major version. */
std::string Tool(const Connection &conn, const std::string &name) {
    int major = PQserverVersion(conn.get()) / 10000;
    fs::path p = fs::path("/usr/lib/postgresql") / std::to_string(major) / "bin" / name;
    return fs::exists(p) ? p.string() : name;
}

/*
 * ChildConninfo rebuilds the connection libpq made (host, port, user,
 * dbname and the TLS options) without the password, for a child tool;
 * password gets the password, to pass in PGPASSWORD. dbname overrides the
 * database when not empty.
 */
std::string ChildConninfo(const Connection &conn, const std::string &dbname,
                          std::string *password) {
    PQconninfoOption *opts = PQconninfo(conn.get());
    std::string out;
    auto quote = [](const std::string &v) {
        std::string q = "'";
        for (char c : v)
            q += (c == '\'' || c == '\\') ? std::string("\\") + c : std::string(1, c);
        return q + "'";
    };
    for (PQconninfoOption *o = opts; o && o->keyword; ++o) {
        if (!o->val || !*o->val)
            continue;
        std::string key = o->keyword;
        if (key == "password") {
            *password = o->val;
            continue;
        }
        if (key == "dbname" && !dbname.empty())
            continue;
        if (key == "host" || key == "hostaddr" || key == "port" || key == "user" ||
            key == "dbname" || key.rfind("ssl", 0) == 0 || key == "gssencmode" ||
            key == "target_session_attrs" || key == "connect_timeout" || key == "options" ||
            key == "passfile" || key == "service")
            out += (out.empty() ? "" : " ") + key + "=" + quote(o->val);
    }
    PQconninfoFree(opts);
    if (!dbname.empty())
        out += " dbname=" + quote(dbname);
    return out;
}

/* Run executes argv with PGPASSWORD set when password is not empty; returns exit status and stderr.
 */
int Run(const std::vector<std::string> &argv, const std::string &password, std::string *err) {
    fs::path errfile =
        fs::temp_directory_path() / ("keel-tool-" + std::to_string(::getpid()) + ".err");
    pid_t pid = fork();
    if (pid < 0)
        throw CommandError("cannot start " + argv[0]);
    if (pid == 0) {
        FILE *f = std::freopen(errfile.c_str(), "w", stderr);
        (void)f;
        if (!password.empty())
            setenv("PGPASSWORD", password.c_str(), 1);
        std::vector<char *> args;
        for (const std::string &a : argv)
            args.push_back(const_cast<char *>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        std::fprintf(stderr, "cannot run %s\n", args[0]);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    std::ifstream in(errfile);
    std::stringstream buf;
    buf << in.rdbuf();
    *err = buf.str();
    fs::remove(errfile);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

std::string FileSha256(const fs::path &path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream buf;
    buf << in.rdbuf();
    return Sha256Hex(buf.str());
}

std::string UtcNow(const char *format) {
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, format, &tm);
    return buf;
}

nlohmann::json ReadManifest(const fs::path &path) {
    std::ifstream in(path);
    nlohmann::json j = nlohmann::json::parse(in, nullptr, false);
    if (j.is_discarded() || !j.is_object())
        throw CommandError(path.string() + ": not a keel backup manifest");
    return j;
}

std::string OneLine(std::string s) {
    for (char &c : s)
        if (c == '\n' || c == '\r')
            c = ' ';
    while (!s.empty() && s.back() == ' ')
        s.pop_back();
    return s;
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
    int rc = Run({Tool(conn, "pg_dump"), "--format=custom", "--file=" + archive.string(),
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
    if (id.find('/') != std::string::npos || id.empty())
        throw CommandError("restore: a backup id is a name from keel backups, not a path");
    fs::path manifest_path = dir / (id + ".json");
    fs::path archive = dir / (id + ".dump");
    if (!fs::exists(manifest_path))
        throw CommandError("restore: no backup \"" + id + "\" in " + dir.string() +
                           " (keel backups)");
    nlohmann::json m = ReadManifest(manifest_path);
    if (!fs::exists(archive))
        throw CommandError("restore: the archive " + archive.string() + " is missing");
    std::string sha = FileSha256(archive);
    if (sha != m.value("sha256", ""))
        throw CommandError("restore: " + archive.string() +
                           " does not match its manifest (sha256 " + sha.substr(0, 16) +
                           "..., recorded " + m.value("sha256", "").substr(0, 16) +
                           "...): it changed or is damaged; nothing restored");
    if (into.empty())
        throw CommandError("restore: pass --into NEW_DATABASE; keel restores into a new database "
                           "and drops nothing (rename it into place once you have checked it)");
    if (conn.Scalar("SELECT count(*) FROM pg_catalog.pg_database WHERE datname = $1", {into}) !=
        "0")
        throw CommandError("restore: database \"" + into +
                           "\" already exists; pick a new name (keel restore never overwrites)");
    conn.Exec("CREATE DATABASE " + conn.Scalar("SELECT pg_catalog.quote_ident($1)", {into}) +
              " TEMPLATE template0");
    std::string password;
    std::string conninfo = ChildConninfo(conn, into, &password);
    std::string err;
    int rc = Run({Tool(conn, "pg_restore"), "--exit-on-error", "--no-owner", "--dbname=" + conninfo,
                  archive.string()},
                 password, &err);
    if (rc != 0)
        throw CommandError("restore: pg_restore into \"" + into + "\" failed (exit " +
                           std::to_string(rc) + "): " + OneLine(RedactSecrets(err, conninfo)) +
                           "; the new database is left as it got, for inspection");
    out << "restored " << id << " (" << m.value("database", "?") << ", taken "
        << m.value("taken_at", "?") << ", migrations up to " << m.value("history_version", "?")
        << ") into new database \"" << into << "\"; sha256 verified\n";
}

} // namespace keel::client
