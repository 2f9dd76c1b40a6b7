/*
 * tests/unit/cli_usage_test.cpp
 *   The command line's usage errors, no database needed: an unknown command
 *   or option is exit 2 with one line naming it; every command's --help
 *   lists its own options (issue 12).
 */
#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace {

/* Keel runs the built client with args; returns the exit code, output in *out. */
int Keel(const std::string &args, std::string *out) {
    std::string file =
        (std::filesystem::temp_directory_path() / ("keel_cli_out_" + std::to_string(::getpid())))
            .string();
    int status =
        std::system((std::string(KEEL_BINARY) + " " + args + " >" + file + " 2>&1").c_str());
    std::ifstream in(file);
    std::stringstream ss;
    ss << in.rdbuf();
    *out = ss.str();
    std::filesystem::remove(file);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

} // namespace

TEST(CliUsage, UnknownCommandIsExit2AndNamed) {
    std::string out;
    EXPECT_EQ(Keel("bogus", &out), 2);
    EXPECT_NE(out.find("unknown command \"bogus\""), std::string::npos) << out;
    EXPECT_EQ(Keel("--db dbname=x frobnicate --dir y", &out), 2);
    EXPECT_NE(out.find("unknown command \"frobnicate\""), std::string::npos) << out;
    EXPECT_EQ(Keel("status --bogus", &out), 2);
    EXPECT_NE(out.find("--bogus"), std::string::npos) << out;
}

TEST(CliUsage, EveryCommandsHelpListsItsOwnOptions) {
    const std::pair<const char *, const char *> cases[] = {{"migrate", "--lock-timeout"},
                                                           {"status", "--json"},
                                                           {"plan", "--dir"},
                                                           {"lint", "--list-rules"},
                                                           {"backup", "--backup-dir"},
                                                           {"restore", "--into"},
                                                           {"baseline", "--dir"},
                                                           {"repair", "--reason"},
                                                           {"verify", "--expect"},
                                                           {"validate", "--json"},
                                                           {"install", "--grant-migrations"},
                                                           {"new", "--dir"}};
    for (const auto &[command, option] : cases) {
        std::string out;
        EXPECT_EQ(Keel(std::string(command) + " --help", &out), 0) << command;
        EXPECT_NE(out.find(std::string("keel ") + command), std::string::npos) << command << out;
        EXPECT_NE(out.find(option), std::string::npos) << command << out;
    }
}
