/*
 * client/backup/archive.cpp
 *   The pieces keel backup, backups and restore share (archive.hpp).
 */
#include "backup/archive.hpp"

#include "lib/checksum.hpp"
#include "lib/commands.hpp"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace keel::client {

std::string ToolPath(const Connection &conn, const std::string &name) {
    int major = PQserverVersion(conn.get()) / 10000;
    fs::path p = fs::path("/usr/lib/postgresql") / std::to_string(major) / "bin" / name;
    return fs::exists(p) ? p.string() : name;
}

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

pid_t SpawnTool(const std::vector<std::string> &argv, const std::string &password, int in_fd,
                int out_fd, const fs::path &err_path) {
    pid_t pid = fork();
    if (pid < 0)
        throw CommandError("cannot start " + argv[0]);
    if (pid == 0) {
        int null_fd = ::open("/dev/null", O_RDWR);
        ::dup2(in_fd >= 0 ? in_fd : null_fd, STDIN_FILENO);
        ::dup2(out_fd >= 0 ? out_fd : null_fd, STDOUT_FILENO);
        int err_fd = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (err_fd >= 0)
            ::dup2(err_fd, STDERR_FILENO);
        /* only the three standard descriptors reach the tool (no pipe end stays open in it) */
        for (int fd = 3; fd < 1024; ++fd)
            ::close(fd);
        if (!password.empty())
            setenv("PGPASSWORD", password.c_str(), 1);
        setenv("PGAPPNAME", "keel restore", 1);
        std::vector<char *> args;
        for (const std::string &a : argv)
            args.push_back(const_cast<char *>(a.c_str()));
        args.push_back(nullptr);
        execvp(args[0], args.data());
        std::fprintf(stderr, "cannot run %s\n", args[0]);
        _exit(127);
    }
    return pid;
}

int ExitStatus(int wait_status) {
    if (WIFEXITED(wait_status))
        return WEXITSTATUS(wait_status);
    return 128 + (WIFSIGNALED(wait_status) ? WTERMSIG(wait_status) : 0);
}

int RunTool(const std::vector<std::string> &argv, const std::string &password, std::string *err) {
    fs::path errfile =
        fs::temp_directory_path() / ("keel-tool-" + std::to_string(::getpid()) + ".err");
    pid_t pid = SpawnTool(argv, password, -1, -1, errfile);
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

VerifiedBackup VerifyBackup(const fs::path &dir, const std::string &id) {
    if (id.empty() || id.find('/') != std::string::npos || id == "." || id == "..")
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
    std::string recorded = m.value("sha256", "");
    if (sha != recorded)
        throw CommandError("restore: " + archive.string() +
                           " does not match its manifest (sha256 " + sha.substr(0, 16) +
                           "..., recorded " + recorded.substr(0, 16) +
                           "...): it changed or is damaged; nothing restored");
    return {id, archive, m};
}

std::string BackupDescription(const VerifiedBackup &backup) {
    const nlohmann::json &m = backup.manifest;
    return backup.id + " (" + m.value("database", "?") + ", taken " + m.value("taken_at", "?") +
           ", migrations up to " + m.value("history_version", "?") + ")";
}

} // namespace keel::client
