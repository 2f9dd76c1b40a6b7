/*
 * tests/integration/keel_process.hpp
 *   Running the built `keel` client (KEEL_BINARY) from integration tests:
 *   to completion (RunKeelCli) or in the background (SpawnKeel, then
 *   WaitKeel or SIGKILL), each run with its own output files so several can
 *   run at once; a scratch migrations folder (MigrationsDir); polling the
 *   server (WaitFor). Used by tests/integration/migrate_failure_test.cpp.
 */
#pragma once

#include "test_db.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char **environ;

namespace keel_test {

/* CliRun is one finished keel process: exit code (-1 when killed by a signal), stdout, stderr. */
struct CliRun {
    int exit_code = -1;
    int signal = 0; /* the signal that ended it, 0 when it exited */
    std::string out;
    std::string err;
};

/* SlurpFile returns the bytes of path ("" when it cannot be read). */
inline std::string SlurpFile(const std::filesystem::path &path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream buf;
    buf << in.rdbuf();
    return buf.str();
}

/*
 * KeelProcess is a keel client started in the background with argv
 * KEEL_BINARY --db <db> <args...>, stdout and stderr in files of its own.
 * extra_env entries ("NAME=value") are added to the environment. The
 * destructor SIGKILLs and reaps the process if it still runs, and removes
 * its files.
 */
class KeelProcess {
  public:
    KeelProcess(const std::string &db, const std::vector<std::string> &args,
                const std::vector<std::string> &extra_env = {}) {
        static std::atomic<int> counter{0};
        base_ = std::filesystem::temp_directory_path() /
                ("keel_it_proc_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        std::vector<std::string> argv_s = {KEEL_BINARY, "--db", db};
        argv_s.insert(argv_s.end(), args.begin(), args.end());
        std::vector<char *> argv;
        for (auto &a : argv_s)
            argv.push_back(a.data());
        argv.push_back(nullptr);
        std::vector<std::string> env_s;
        for (char **e = environ; *e; ++e)
            env_s.emplace_back(*e);
        env_s.insert(env_s.end(), extra_env.begin(), extra_env.end());
        std::vector<char *> envp;
        for (auto &e : env_s)
            envp.push_back(e.data());
        envp.push_back(nullptr);

        posix_spawn_file_actions_t actions;
        posix_spawn_file_actions_init(&actions);
        std::string out = base_.string() + ".out", err = base_.string() + ".err";
        posix_spawn_file_actions_addopen(&actions, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                         0600);
        posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                         0600);
        int rc = posix_spawn(&pid_, KEEL_BINARY, &actions, nullptr, argv.data(), envp.data());
        posix_spawn_file_actions_destroy(&actions);
        if (rc != 0)
            throw std::runtime_error(std::string("posix_spawn keel: ") + std::strerror(rc));
    }
    ~KeelProcess() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            int status;
            ::waitpid(pid_, &status, 0);
        }
        std::filesystem::remove(base_.string() + ".out");
        std::filesystem::remove(base_.string() + ".err");
    }
    KeelProcess(const KeelProcess &) = delete;
    KeelProcess &operator=(const KeelProcess &) = delete;

    pid_t pid() const { return pid_; }

    /* Kill sends sig (SIGKILL, ...) to the process; Wait then reaps it. */
    void Kill(int sig) const { ::kill(pid_, sig); }

    /* Wait reaps the process (blocking) and returns its exit code, signal and output. */
    CliRun Wait() {
        CliRun run;
        int status = 0;
        if (pid_ > 0 && ::waitpid(pid_, &status, 0) == pid_) {
            if (WIFEXITED(status))
                run.exit_code = WEXITSTATUS(status);
            else if (WIFSIGNALED(status))
                run.signal = WTERMSIG(status);
        }
        pid_ = -1;
        run.out = SlurpFile(base_.string() + ".out");
        run.err = SlurpFile(base_.string() + ".err");
        return run;
    }

  private:
    pid_t pid_ = -1;
    std::filesystem::path base_;
};

/* RunKeelCli runs keel --db <db> <args...> to completion (no shell involved). */
inline CliRun RunKeelCli(const std::string &db, const std::vector<std::string> &args,
                         const std::vector<std::string> &extra_env = {}) {
    KeelProcess p(db, args, extra_env);
    return p.Wait();
}

/*
 * WaitFor polls ready() every 50 ms until it returns true or timeout passes;
 * returns whether it became true.
 */
inline bool WaitFor(const std::function<bool()> &ready, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (ready())
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return ready();
}

/* MigrationsDir is a scratch migrations folder, removed with the object. */
struct MigrationsDir {
    std::filesystem::path path;
    explicit MigrationsDir(const std::string &name) {
        path = std::filesystem::temp_directory_path() /
               ("keel_it_mf_" + name + "_" + std::to_string(::getpid()));
        std::filesystem::remove_all(path);
        std::filesystem::create_directories(path);
    }
    ~MigrationsDir() { std::filesystem::remove_all(path); }
    MigrationsDir(const MigrationsDir &) = delete;
    MigrationsDir &operator=(const MigrationsDir &) = delete;
    /* Write writes file (bytes as given, binary) into the folder. */
    void Write(const std::string &file, const std::string &contents) const {
        std::ofstream(path / file, std::ios::binary) << contents;
    }
    std::string str() const { return path.string(); }
};

} // namespace keel_test
