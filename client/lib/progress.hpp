/*
 * client/lib/progress.hpp
 *   A live status line on a terminal for long runs (issue 12: "progress on a
 *   terminal: file n of N, statement, elapsed time; plain lines when not a
 *   terminal, and --quiet"). keel migrate and keel down draw it on stderr:
 *
 *     [3/261] 0003_add_index.sql  statement 2 of 5, line 14: CREATE INDEX ...  12.4 s
 *
 *   A ticker thread redraws it every 200 ms, so the elapsed time moves while
 *   the client waits on a long statement. Ordinary output lines go through
 *   Print, which clears the status line first, so the two never mix. When
 *   disabled every call but Print is a no-op and Print writes the line as is.
 */
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>

namespace keel::client {

/* ProgressMode: --progress auto (on when stderr is a terminal and TERM is not
 * "dumb"), always, never. --quiet turns it off. */
enum class ProgressMode { Auto, Always, Never };

/* ParseProgressMode maps "auto"/"always"/"never"; throws CommandError otherwise. */
ProgressMode ParseProgressMode(const std::string &text);

class Progress {
  public:
    /* term is where the line is drawn (std::cerr), fd its descriptor (for isatty and
     * the terminal's width, TIOCGWINSZ; 80 columns when it has none). */
    Progress(ProgressMode mode, bool quiet, std::ostream &term, int fd);
    ~Progress(); /* stops the ticker and clears the line */
    Progress(const Progress &) = delete;
    Progress &operator=(const Progress &) = delete;

    bool enabled() const { return enabled_; }
    /* File: file n (1-based) of total starts; its clock starts now. */
    void File(size_t n, size_t total, const std::string &name);
    /* Statement: statements first..last (1-based; one when equal) of total are running,
     * from file line `line` (0: unknown); total 0 when not known (a streamed file); text
     * is the first statement's SQL (shortened on screen). */
    void Statement(size_t first, size_t last, size_t total, size_t line, const std::string &text);
    /* Print writes text (a whole line, with its newline) to out and flushes it, with the
     * status line cleared first and drawn again after. */
    void Print(std::ostream &out, const std::string &text);
    /* Clear removes the status line until the next File. */
    void Clear();

    /* Line is the status text for the given state, cut to width columns (for tests). */
    static std::string Line(size_t n, size_t total, const std::string &name, size_t first,
                            size_t last, size_t statements, size_t line, const std::string &text,
                            double statement_seconds, double file_seconds, size_t width);

  private:
    void DrawLocked();
    void ClearLocked();
    void Tick();

    bool enabled_ = false;
    std::ostream &term_;
    int fd_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    bool shown_ = false;  /* a status line is on the screen */
    bool active_ = false; /* a file is running */
    size_t n_ = 0, total_ = 0, first_ = 0, last_ = 0, statements_ = 0, line_ = 0;
    std::string name_, text_;
    std::chrono::steady_clock::time_point file_start_, statement_start_;
    std::thread ticker_;
};

} // namespace keel::client
