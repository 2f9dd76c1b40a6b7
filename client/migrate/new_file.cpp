/*
 * client/migrate/new_file.cpp
 *   keel new SLUG --dir DIR: creates the next migration file,
 *   <version>_<slug>.sql. The version keeps the folder's style: when its
 *   files are numbered with N digits (0001_...), the next number padded to N;
 *   when they are timestamps (14 digits or more) or the folder is empty, the
 *   UTC time as YYYYMMDDHHMMSS. It never overwrites, and never numbers below
 *   the newest file. The slug is lower-case letters, digits and _. With
 *   --down it also creates <version>_<slug>.down.sql, which keel down runs.
 *   Rule: DESIGN.md, migration file names; issue 12.
 */
#include "lib/commands.hpp"
#include "lib/migration_file.hpp"

#include <ctime>
#include <fstream>
#include <vector>

namespace keel::client {

std::string NewMigration(const std::filesystem::path &dir, const std::string &slug,
                         std::ostream &out, bool down) {
    bool ok = !slug.empty();
    for (char c : slug)
        ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_');
    if (!ok)
        throw CommandError("new: the slug must be lower-case letters, digits and _, such as "
                           "add_users_email (not \"" +
                           slug + "\")");
    std::filesystem::create_directories(dir);
    std::string newest, newest_digits;
    for (const auto &e : std::filesystem::directory_iterator(dir)) {
        std::string name = e.path().filename().string();
        size_t n = 0;
        while (n < name.size() && name[n] >= '0' && name[n] <= '9')
            ++n;
        if (n == 0 || n >= name.size() || name[n] != '_' || e.path().extension() != ".sql")
            continue;
        std::string version = CanonicalVersion(name.substr(0, n));
        if (newest.empty() || CompareVersions(version, newest) > 0) {
            newest = version;
            newest_digits = name.substr(0, n);
        }
    }
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char stamp[32];
    std::strftime(stamp, sizeof stamp, "%Y%m%d%H%M%S", &tm);
    std::string digits;
    if (newest.empty() || newest_digits.size() >= 14) {
        digits = stamp;
        if (!newest.empty() && CompareVersions(CanonicalVersion(digits), newest) <= 0)
            throw CommandError("new: the newest file's timestamp " + newest_digits +
                               " is not before now; wait a second or check the clock");
    } else {
        std::string next = std::to_string(std::stoull(newest) + 1);
        digits =
            std::string(next.size() < newest_digits.size() ? newest_digits.size() - next.size() : 0,
                        '0') +
            next;
    }
    std::filesystem::path file = dir / (digits + "_" + slug + ".sql");
    std::filesystem::path down_file = dir / (digits + "_" + slug + ".down.sql");
    for (const auto &f : down ? std::vector<std::filesystem::path>{file, down_file}
                              : std::vector<std::filesystem::path>{file})
        if (std::filesystem::exists(f))
            throw CommandError("new: " + f.string() + " already exists");
    auto write = [&](const std::filesystem::path &path, const std::string &text) {
        std::ofstream stream(path);
        stream << text;
        stream.close();
        if (!stream)
            throw CommandError("new: cannot write " + path.string());
        out << "created " << path.string() << "\n";
    };
    write(file, "-- " + digits + "_" + slug +
                    ".sql\n"
                    "-- Directives (leading comments): -- keel:no-transaction, "
                    "-- keel:supersedes <version>, -- keel:allow-destructive \"reason\"\n\n");
    if (down)
        write(down_file, "-- " + digits + "_" + slug + ".down.sql: undoes " + digits + "_" + slug +
                             ".sql; keel down runs it\n"
                             "-- Directives (leading comments): -- keel:no-transaction, "
                             "-- keel:allow-destructive \"reason\" (a DROP needs it)\n\n");
    return file.string();
}

} // namespace keel::client
