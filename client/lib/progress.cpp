/*
 * client/lib/progress.cpp
 *   See progress.hpp.
 */
#include "lib/progress.hpp"

#include "lib/commands.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace keel::client {

ProgressMode ParseProgressMode(const std::string &text) {
    if (text == "auto")
        return ProgressMode::Auto;
    if (text == "always")
        return ProgressMode::Always;
    if (text == "never")
        return ProgressMode::Never;
    throw CommandError("--progress must be auto, always or never, not \"" + text + "\"");
}

namespace {

/* Seconds formats an elapsed time: "0.4 s", "12.4 s", "3m05s", "1h02m". */
std::string Seconds(double s) {
    char buf[32];
    if (s < 60)
        std::snprintf(buf, sizeof buf, "%.1f s", s);
    else if (s < 3600)
        std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
    else
        std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, (int(s) % 3600) / 60);
    return buf;
}

/* OneLine collapses runs of whitespace in sql to one space, leading "--" comment lines left out
 * (a statement's text starts with the comments before it). */
std::string OneLine(const std::string &sql) {
    size_t from = 0;
    for (;;) {
        size_t b = sql.find_first_not_of(" \t\r\n", from);
        if (b == std::string::npos || sql.compare(b, 2, "--") != 0)
            break;
        size_t eol = sql.find('\n', b);
        if (eol == std::string::npos)
            return "";
        from = eol + 1;
    }
    std::string out;
    bool space = false;
    for (char c : sql.substr(from)) {
        if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
            space = !out.empty();
            continue;
        }
        if (space)
            out += ' ';
        space = false;
        out += c;
    }
    return out;
}

/* CutColumns cuts s to at most width characters (UTF-8 aware), ending in "..." when cut. */
std::string CutColumns(const std::string &s, size_t width) {
    size_t chars = 0;
    for (size_t i = 0; i < s.size(); ++i)
        if ((static_cast<unsigned char>(s[i]) & 0xC0) != 0x80)
            ++chars;
    if (chars <= width)
        return s;
    size_t keep = width > 3 ? width - 3 : 0;
    std::string out;
    size_t seen = 0;
    for (size_t i = 0; i < s.size(); ++i) {
        bool lead = (static_cast<unsigned char>(s[i]) & 0xC0) != 0x80;
        if (lead && seen++ == keep)
            break;
        out += s[i];
    }
    return out + std::string(width > 3 ? 3 : width, '.');
}

} // namespace

std::string Progress::Line(size_t n, size_t total, const std::string &name, size_t first,
                           size_t last, size_t statements, size_t line, const std::string &text,
                           double statement_seconds, double file_seconds, size_t width) {
    std::string head = "[" + std::to_string(n) + "/" + std::to_string(total) + "] " + name;
    std::string clock = Seconds(statement_seconds);
    if (first > 0 && file_seconds - statement_seconds >= 0.1)
        clock += " (file " + Seconds(file_seconds) + ")";
    std::string where;
    if (first > 0) {
        where = (last > first ? "statements " + std::to_string(first) + "-" + std::to_string(last)
                              : "statement " + std::to_string(first)) +
                (statements > 0 ? " of " + std::to_string(statements) : std::string());
        if (line > 0)
            where += ", line " + std::to_string(line);
    }
    std::string sql = OneLine(text);
    /* head and clock always show; the statement text gets what is left */
    std::string fixed = head + (where.empty() ? "" : "  " + where) + "  " + clock;
    if (fixed.size() + 4 > width)
        return CutColumns(head + "  " + clock, width);
    if (sql.empty())
        return fixed;
    size_t room = width - fixed.size() - 2; /* ": " */
    if (room < 8)
        return fixed;
    return head + "  " + where + ": " + CutColumns(sql, room) + "  " + clock;
}

Progress::Progress(ProgressMode mode, bool quiet, std::ostream &term, int fd)
    : term_(term), fd_(fd) {
    const char *term_env = std::getenv("TERM");
    bool terminal = isatty(fd) == 1 && !(term_env && std::strcmp(term_env, "dumb") == 0);
    enabled_ = !quiet && (mode == ProgressMode::Always || (mode == ProgressMode::Auto && terminal));
    if (enabled_)
        ticker_ = std::thread([this] { Tick(); });
}

Progress::~Progress() {
    if (!enabled_)
        return;
    {
        std::lock_guard<std::mutex> lock(mu_);
        stop_ = true;
        ClearLocked();
    }
    cv_.notify_all();
    ticker_.join();
}

void Progress::File(size_t n, size_t total, const std::string &name) {
    if (!enabled_)
        return;
    std::lock_guard<std::mutex> lock(mu_);
    n_ = n;
    total_ = total;
    name_ = name;
    first_ = last_ = statements_ = line_ = 0;
    text_.clear();
    file_start_ = statement_start_ = std::chrono::steady_clock::now();
    active_ = true;
    DrawLocked();
}

void Progress::Statement(size_t first, size_t last, size_t total, size_t line,
                         const std::string &text) {
    if (!enabled_)
        return;
    std::lock_guard<std::mutex> lock(mu_);
    first_ = first;
    last_ = last;
    statements_ = total;
    line_ = line;
    text_ = text.substr(0, 512);
    statement_start_ = std::chrono::steady_clock::now();
}

void Progress::Print(std::ostream &out, const std::string &text) {
    if (!enabled_) {
        out << text << std::flush;
        return;
    }
    std::lock_guard<std::mutex> lock(mu_);
    ClearLocked();
    term_.flush();
    out << text << std::flush;
    if (active_)
        DrawLocked();
}

void Progress::Clear() {
    if (!enabled_)
        return;
    std::lock_guard<std::mutex> lock(mu_);
    active_ = false;
    ClearLocked();
}

void Progress::DrawLocked() {
    struct winsize ws;
    size_t width = 80;
    if (ioctl(fd_, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        width = ws.ws_col;
    if (width > 1)
        --width; /* never the last column: some terminals wrap there */
    auto now = std::chrono::steady_clock::now();
    double st = std::chrono::duration<double>(now - statement_start_).count();
    double fs = std::chrono::duration<double>(now - file_start_).count();
    term_ << "\r"
          << Line(n_, total_, name_, first_, last_, statements_, line_, text_, st, fs, width)
          << "\033[K" << std::flush;
    shown_ = true;
}

void Progress::ClearLocked() {
    if (!shown_)
        return;
    term_ << "\r\033[K" << std::flush;
    shown_ = false;
}

void Progress::Tick() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stop_) {
        cv_.wait_for(lock, std::chrono::milliseconds(200));
        if (!stop_ && active_)
            DrawLocked();
    }
}

} // namespace keel::client
