/*
 * client/backup/archive.hpp
 *   What the backup command group (backup, backups, restore) shares: the
 *   PostgreSQL tools of the server's major version, the connection string a
 *   child tool gets (never the password: that goes in PGPASSWORD), running a
 *   tool, and reading a backup whose archive matches its manifest. Internal
 *   to client/backup. Rule: issue 12 ("pg_dump -Fc, pg_restore, never
 *   hand-written"; "verifying the checksum first").
 */
#pragma once

#include "lib/connection.hpp"

#include <nlohmann/json.hpp>
#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace keel::client {

/*
 * ToolPath returns /usr/lib/postgresql/<server major>/bin/<name> when it
 * exists, else name (found on the PATH): pg_dump and pg_restore must be the
 * server's major version or newer (PostgreSQL docs, pg_dump "Notes").
 */
std::string ToolPath(const Connection &conn, const std::string &name);

/*
 * ChildConninfo rebuilds the connection libpq made (host, port, user,
 * dbname, TLS, options, service) as a conninfo string without the password,
 * for a child tool; *password receives the password ("" when none), to pass
 * in PGPASSWORD. dbname overrides the database when not empty.
 */
std::string ChildConninfo(const Connection &conn, const std::string &dbname, std::string *password);

/*
 * RunTool runs argv to completion with PGPASSWORD set when password is not
 * empty; returns its exit status (128 when it did not exit normally) and puts
 * its stderr in *err. Throws CommandError when it cannot be started.
 */
int RunTool(const std::vector<std::string> &argv, const std::string &password, std::string *err);

/*
 * SpawnTool starts argv with stdin from in_fd and stdout to out_fd (-1: the
 * null device), stderr to the file err_path, PGPASSWORD set when password is
 * not empty and PGAPPNAME "keel restore"; returns its pid. The caller
 * closes its copies of the descriptors and waits for the pid. Throws
 * CommandError when fork fails.
 */
pid_t SpawnTool(const std::vector<std::string> &argv, const std::string &password, int in_fd,
                int out_fd, const std::filesystem::path &err_path);

/* ExitStatus turns a waitpid status into an exit code (128 + signal when killed). */
int ExitStatus(int wait_status);

/* FileSha256 is the SHA-256 (64 lowercase hex digits) of the file's bytes. */
std::string FileSha256(const std::filesystem::path &path);

/* ReadManifest parses a backup's JSON manifest; CommandError when it is not a JSON object. */
nlohmann::json ReadManifest(const std::filesystem::path &path);

/* OneLine is s with line breaks turned into spaces and trailing spaces dropped. */
std::string OneLine(std::string s);

/* VerifiedBackup: a backup whose archive matched its manifest's sha256. */
struct VerifiedBackup {
    std::string id;
    std::filesystem::path archive;
    nlohmann::json manifest;
};

/*
 * VerifyBackup finds backup id in dir (<id>.json and <id>.dump) and checks
 * the archive's SHA-256 against the manifest, before anything is touched.
 * CommandError "restore: ..." for an id that is a path or empty, an unknown
 * id, a missing archive, or an archive that does not match ("it changed or
 * is damaged; nothing restored").
 */
VerifiedBackup VerifyBackup(const std::filesystem::path &dir, const std::string &id);

/* BackupDescription is "<id> (<database>, taken <time>, migrations up to <version>)". */
std::string BackupDescription(const VerifiedBackup &backup);

} // namespace keel::client
