/*
 * tests/integration/keel_run.hpp
 *   Running the built client (KEEL_BINARY) from integration tests: RunKeel
 *   captures exit code, stdout and stderr; TempDir is a scratch migrations
 *   folder removed at the end.
 */
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace keel_test {

struct KeelRun {
    int exit_code;
    std::string out;
    std::string err;
};

inline std::string Slurp(const std::filesystem::path &path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream buf;
    buf << in.rdbuf();
    return buf.str();
}

/* ShellQuote quotes s for /bin/sh. */
inline std::string ShellQuote(const std::string &s) {
    std::string q = "'";
    for (char c : s)
        q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

/*
 * RunKeel runs KEEL_BINARY --db <db> <args> and captures exit code, stdout,
 * stderr; env ("" = none) is put before the command, e.g.
 * "KEEL_STREAM_THRESHOLD=4096".
 */
inline KeelRun RunKeel(const std::string &db, const std::string &args,
                       const std::string &env = "") {
    namespace fs = std::filesystem;
    fs::path base = fs::temp_directory_path() / ("keel_it_run_" + std::to_string(::getpid()));
    std::string cmd = (env.empty() ? "" : env + " ") + std::string(KEEL_BINARY) + " --db " +
                      ShellQuote(db) + " " + args + " >" + base.string() + ".out 2>" +
                      base.string() + ".err";
    int status = std::system(cmd.c_str());
    KeelRun run{WIFEXITED(status) ? WEXITSTATUS(status) : -1, Slurp(base.string() + ".out"),
                Slurp(base.string() + ".err")};
    fs::remove(base.string() + ".out");
    fs::remove(base.string() + ".err");
    return run;
}

/* TempDir is a scratch migrations folder, removed with the object. */
struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const std::string &name) {
        path = std::filesystem::temp_directory_path() /
               ("keel_it_" + name + "_" + std::to_string(::getpid()));
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~TempDir() { std::filesystem::remove_all(path); }
    void Write(const std::string &file, const std::string &contents) const {
        std::ofstream(path / file, std::ios::binary) << contents;
    }
    std::string Dir() const { return ShellQuote(path.string()); }
    /* CopyFrom copies dir's .sql files whose first four characters sort up to prefix_max. */
    void CopyFrom(const std::filesystem::path &dir, const std::string &prefix_max) const {
        for (const auto &e : std::filesystem::directory_iterator(dir)) {
            std::string name = e.path().filename().string();
            if (e.path().extension() == ".sql" && name.substr(0, 4) <= prefix_max)
                std::filesystem::copy_file(e.path(), path / name);
        }
    }
};

inline bool Contains(const std::string &haystack, const std::string &needle) {
    return haystack.find(needle) != std::string::npos;
}

} // namespace keel_test
