/*
 * client/lib/migration_file.cpp
 *   See migration_file.hpp.
 */
#include "lib/migration_file.hpp"

#include "lib/checksum.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <thread>

namespace keel::client {

namespace {

bool IsDigit(char c) {
    return c >= '0' && c <= '9';
}

bool IsSlugChar(char c) {
    return IsDigit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-';
}

std::string_view Trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front())))
        s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back())))
        s.remove_suffix(1);
    return s;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
    return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

/* SplitLines splits on '\n', '\r\n' and lone '\r' (line numbers as editors count). */
std::vector<std::string_view> SplitLines(std::string_view text) {
    std::vector<std::string_view> lines;
    size_t start = 0;
    for (size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '\n' || text[i] == '\r') {
            lines.push_back(text.substr(start, i - start));
            if (text[i] == '\r' && i + 1 < text.size() && text[i + 1] == '\n')
                ++i;
            start = i + 1;
        }
    }
    if (start < text.size())
        lines.push_back(text.substr(start));
    return lines;
}

/* DirectiveBody returns what follows "keel:" on a "-- keel:" comment line, if it is one. */
std::optional<std::string_view> DirectiveBody(std::string_view line) {
    std::string_view s = Trim(line);
    if (s.substr(0, 2) != "--")
        return std::nullopt;
    s = Trim(s.substr(2));
    if (s.substr(0, 5) != "keel:")
        return std::nullopt;
    return s.substr(5);
}

/*
 * LooksLikeMigration: a name that does not end in ".sql" but is a migration
 * file name once what follows its ".sql" is cut, in any letter case
 * (0003_x.sql.bak, 0003_x.sql~, 0003_x.SQL): a copy or a misnamed file that
 * keel would otherwise skip in silence (issue 12, "a non-SQL file in the
 * folder"). README.md, notes.txt and the like are not.
 */
bool LooksLikeMigration(std::string_view name) {
    std::string lower(name);
    for (char &c : lower)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t at = lower.rfind(".sql");
    if (at == std::string::npos)
        return false;
    std::string cut = std::string(name.substr(0, at)) + ".sql";
    return ParseMigrationFileName(cut).has_value();
}

} // namespace

std::string CanonicalVersion(std::string_view digits) {
    size_t i = 0;
    while (i + 1 < digits.size() && digits[i] == '0')
        ++i;
    return std::string(digits.substr(i));
}

int CompareVersions(std::string_view a, std::string_view b) {
    if (a.size() != b.size())
        return a.size() < b.size() ? -1 : 1;
    int c = a.compare(b);
    return c < 0 ? -1 : (c > 0 ? 1 : 0);
}

std::optional<ParsedName> ParseMigrationFileName(std::string_view name) {
    ParsedName parsed;
    std::string_view stem;
    if (EndsWith(name, ".down.sql")) {
        parsed.down = true;
        stem = name.substr(0, name.size() - 9);
    } else if (EndsWith(name, ".sql")) {
        stem = name.substr(0, name.size() - 4);
    } else {
        return std::nullopt;
    }
    size_t i = 0;
    while (i < stem.size() && IsDigit(stem[i]))
        ++i;
    if (i == 0 || i >= stem.size() || stem[i] != '_' || i + 1 >= stem.size())
        return std::nullopt;
    std::string_view slug = stem.substr(i + 1);
    if (!std::all_of(slug.begin(), slug.end(), IsSlugChar))
        return std::nullopt;
    parsed.digits = std::string(stem.substr(0, i));
    parsed.version = CanonicalVersion(parsed.digits);
    parsed.slug = std::string(slug);
    return parsed;
}

void DirectiveReader::Line(std::string_view line) {
    const std::string &file_name = file_name_;
    const std::string &own_version = own_version_;
    Directives &d = d_;
    size_t line_no = ++line_no_;
    std::string_view trimmed = Trim(line);
    std::optional<std::string_view> body = DirectiveBody(line);
    if (leading_ && !trimmed.empty() && trimmed.substr(0, 2) != "--")
        leading_ = false;
    if (!body)
        return;
    /* "-- keel:allow <rule> \"reason\"" is a keel lint waiver, not a directive: it goes
     * before the statement it waives, anywhere in the file. */
    std::string_view head = body->substr(0, body->find_first_of(" \t"));
    if (head == "allow")
        return;
    if (!leading_)
        throw FileError(file_name, line_no,
                        "keel directive after the first statement; directives must be "
                        "leading comments, before any SQL");
    std::string_view rest = *body;
    size_t name_end = 0;
    while (name_end < rest.size() && !std::isspace(static_cast<unsigned char>(rest[name_end])))
        ++name_end;
    std::string name(rest.substr(0, name_end));
    std::string_view args = Trim(rest.substr(name_end));

    if (name == "no-transaction") {
        if (!args.empty())
            throw FileError(file_name, line_no,
                            "keel:no-transaction takes no argument, got \"" + std::string(args) +
                                "\"");
        if (d.no_transaction)
            throw FileError(file_name, line_no, "keel:no-transaction given twice");
        d.no_transaction = true;
    } else if (name == "supersedes") {
        if (args.empty())
            throw FileError(file_name, line_no,
                            "keel:supersedes needs a version, as in -- keel:supersedes 0004");
        std::string list(args);
        std::replace(list.begin(), list.end(), ',', ' ');
        std::istringstream words(list);
        std::string word;
        while (words >> word) {
            if (!std::all_of(word.begin(), word.end(), IsDigit))
                throw FileError(file_name, line_no,
                                "keel:supersedes expects versions made of digits, got \"" + word +
                                    "\"");
            std::string v = CanonicalVersion(word);
            if (v == own_version)
                throw FileError(file_name, line_no,
                                "a migration cannot supersede its own version " + v);
            if (std::find(d.supersedes.begin(), d.supersedes.end(), v) == d.supersedes.end())
                d.supersedes.push_back(v);
        }
    } else if (name == "allow-destructive") {
        if (d.allow_destructive_reason)
            throw FileError(file_name, line_no, "keel:allow-destructive given twice");
        if (args.size() < 2 || args.front() != '"' || args.back() != '"')
            throw FileError(file_name, line_no,
                            "keel:allow-destructive needs a reason in double quotes, as in "
                            "-- keel:allow-destructive \"drop the unused legacy table\"");
        std::string_view reason = args.substr(1, args.size() - 2);
        if (reason.find('"') != std::string_view::npos)
            throw FileError(file_name, line_no,
                            "keel:allow-destructive reason must be one quoted string");
        if (Trim(reason).empty())
            throw FileError(file_name, line_no, "keel:allow-destructive reason is empty");
        d.allow_destructive_reason = std::string(Trim(reason));
        d.allow_destructive_line = line_no;
    } else {
        throw FileError(file_name, line_no,
                        "unknown keel directive \"keel:" + name +
                            "\" (known: keel:no-transaction, keel:supersedes, "
                            "keel:allow-destructive)");
    }
}

Directives DirectiveReader::Finish() const {
    if (d_.no_transaction && d_.allow_destructive_reason)
        throw FileError(file_name_, d_.allow_destructive_line,
                        "keel:allow-destructive cannot be combined with keel:no-transaction: "
                        "the break-glass lasts one transaction");
    return d_;
}

Directives ParseDirectives(std::string_view contents, const std::string &file_name,
                           const std::string &own_version) {
    DirectiveReader reader(file_name, own_version);
    for (std::string_view line : SplitLines(contents))
        reader.Line(line);
    return reader.Finish();
}

std::string ReadFile(const std::filesystem::path &path) {
    /* open/read/close: an ifstream and an ostringstream per file cost more than the reading
     * itself on a folder of many small files */
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        throw std::runtime_error("cannot read " + path.string());
    std::string contents;
    char buf[65536];
    while (true) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            ::close(fd);
            throw std::runtime_error("cannot read " + path.string());
        }
        if (n == 0)
            break;
        contents.append(buf, static_cast<size_t>(n));
    }
    ::close(fd);
    return contents;
}

size_t EncodingCheck::Scan(std::string_view s, bool final) {
    size_t i = 0;
    while (i < s.size()) {
        /* eight ASCII bytes at a time, none of them NUL or LF (the common case) */
        const std::uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
        while (i + 8 <= s.size()) {
            std::uint64_t w;
            std::memcpy(&w, s.data() + i, 8);
            std::uint64_t lf = w ^ (ones * '\n');
            if ((w & highs) || ((w - ones) & ~w & highs) || ((lf - ones) & ~lf & highs))
                break;
            i += 8;
        }
        if (i >= s.size())
            break;
        unsigned char c = static_cast<unsigned char>(s[i]);
        if (c == '\n') {
            ++line_;
            ++i;
            continue;
        }
        if (c >= 0x20 && c < 0x80) { /* the common case */
            ++i;
            continue;
        }
        if (c == 0) {
            problem_ = "line " + std::to_string(line_) +
                       " holds a NUL byte; PostgreSQL would stop reading the file there (is it "
                       "UTF-16 or binary?)";
            return s.size();
        }
        size_t len = c < 0x80             ? 1
                     : (c & 0xE0) == 0xC0 ? 2
                     : (c & 0xF0) == 0xE0 ? 3
                     : (c & 0xF8) == 0xF0 ? 4
                                          : 0;
        if (len != 0 && i + len > s.size() && !final)
            return i; /* the rest of this character is in the next piece */
        bool ok = len != 0 && i + len <= s.size() && !(len == 2 && c < 0xC2);
        for (size_t k = 1; ok && k < len; ++k)
            ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
        if (ok && len == 3) {
            unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
            ok = !(c == 0xE0 && c1 < 0xA0) && !(c == 0xED && c1 >= 0xA0); /* overlong, surrogates */
        }
        if (ok && len == 4) {
            unsigned char c1 = static_cast<unsigned char>(s[i + 1]);
            ok = c <= 0xF4 && !(c == 0xF0 && c1 < 0x90) && !(c == 0xF4 && c1 >= 0x90);
        }
        if (!ok) {
            problem_ = "line " + std::to_string(line_) + " is not valid UTF-8 (byte 0x" +
                       std::string(1, "0123456789abcdef"[c >> 4]) +
                       std::string(1, "0123456789abcdef"[c & 15]) + "); save the file as UTF-8";
            return s.size();
        }
        i += len;
    }
    return i;
}

void EncodingCheck::Update(std::string_view piece) {
    if (!problem_.empty())
        return;
    if (!carry_.empty()) {
        /* finish the split character from the first bytes of this piece */
        std::string head = carry_ + std::string(piece.substr(0, 3));
        size_t done = Scan(head, false);
        if (!problem_.empty())
            return;
        if (done < carry_.size() || (done == 0 && !head.empty())) {
            carry_ = head; /* still incomplete: a piece of one or two bytes */
            return;
        }
        piece.remove_prefix(done - carry_.size());
        carry_.clear();
    }
    size_t done = Scan(piece, false);
    if (problem_.empty())
        carry_ = std::string(piece.substr(done));
}

std::string EncodingCheck::Finish() {
    if (problem_.empty() && !carry_.empty())
        Scan(carry_, true);
    carry_.clear();
    return problem_;
}

std::string EncodingProblem(std::string_view contents) {
    EncodingCheck check;
    check.Update(contents);
    return check.Finish();
}

std::uintmax_t StreamThreshold() {
    const char *env = std::getenv("KEEL_STREAM_THRESHOLD");
    if (env && *env && std::all_of(env, env + std::strlen(env), IsDigit) && std::strlen(env) < 19)
        return std::strtoull(env, nullptr, 10);
    return kStreamThresholdBytes;
}

namespace {

/*
 * ScanLargeFile reads a file above the streaming threshold in 1 MiB chunks:
 * its checksum (of the bytes as on disk), its encoding and its directives
 * (every line goes through DirectiveReader, as ParseDirectives reads a whole
 * file), keeping no more than one chunk and one line. Throws FileError for
 * what the in-memory path throws, in the same order (encoding before
 * directives), std::runtime_error when the file cannot be read.
 */
void ScanLargeFile(MigrationFile &file) {
    std::ifstream in(file.path, std::ios::binary);
    if (!in)
        throw std::runtime_error("cannot read " + file.path.string());
    ChecksumStream sum;
    EncodingCheck encoding;
    DirectiveReader directives(file.file_name, file.version);
    std::optional<FileError> directive_error;
    /* a line longer than this is cut for the directive check (a directive is one short line) */
    const size_t max_line = 1 << 20;
    std::string line;
    bool after_cr = false, first = true;
    std::vector<char> chunk(1 << 20);
    std::uintmax_t size = 0;
    auto feed_line = [&]() {
        if (!directive_error)
            try {
                directives.Line(line);
            } catch (const FileError &e) {
                directive_error = e;
            }
        line.clear();
    };
    while (in) {
        in.read(chunk.data(), std::streamsize(chunk.size()));
        size_t n = size_t(in.gcount());
        if (n == 0)
            break;
        std::string_view piece(chunk.data(), n);
        size += n;
        /* a byte-order mark is not SQL, and not in the checksum: as the in-memory path */
        if (first && piece.substr(0, 3) == "\xEF\xBB\xBF")
            piece.remove_prefix(3);
        first = false;
        sum.Update(piece);
        encoding.Update(piece);
        if (directive_error)
            continue;
        size_t i = 0;
        if (after_cr && !piece.empty() && piece[0] == '\n')
            i = 1;
        after_cr = false;
        size_t start = i;
        for (; i < piece.size(); ++i) {
            char c = piece[i];
            if (c != '\n' && c != '\r')
                continue;
            if (line.empty() && !directives.Leading() &&
                !memmem(piece.data() + start, i - start, "keel:", 5)) {
                directives.SkipLine(); /* the common case: no directive can be on it */
            } else {
                if (line.size() < max_line)
                    line.append(piece.data() + start, std::min(i - start, max_line - line.size()));
                feed_line();
            }
            if (c == '\r') {
                if (i + 1 < piece.size() && piece[i + 1] == '\n')
                    ++i;
                else if (i + 1 == piece.size())
                    after_cr = true;
            }
            start = i + 1;
        }
        if (start < piece.size() && line.size() < max_line)
            line.append(piece.data() + start,
                        std::min(piece.size() - start, max_line - line.size()));
    }
    if (in.bad())
        throw std::runtime_error("cannot read " + file.path.string());
    if (!line.empty())
        feed_line();
    file.size = size;
    file.checksum = sum.Final();
    std::string bad = encoding.Finish();
    if (!bad.empty())
        throw FileError(file.file_name, 0, bad);
    if (directive_error)
        throw *directive_error;
    file.directives = directives.Finish();
}

} // namespace

MigrationSet LoadMigrationDir(const std::filesystem::path &dir) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec))
        throw std::runtime_error("migrations folder " + dir.string() +
                                 " does not exist or is not a folder");
    std::vector<std::filesystem::path> entries;
    /* a name of a migration that is not a file keel can read: a broken symbolic link (a
     * shared folder not mounted), a folder, a FIFO; a problem, never skipped in silence */
    std::vector<std::pair<std::string, std::string>> unreadable; /* name, what it is */
    for (const auto &entry : std::filesystem::directory_iterator(dir, ec)) {
        std::error_code kind_ec;
        if (entry.is_regular_file(kind_ec)) {
            entries.push_back(entry.path());
            continue;
        }
        std::string name = entry.path().filename().string();
        if (name.empty() || name[0] == '.' || !EndsWith(name, ".sql") ||
            !ParseMigrationFileName(name))
            continue;
        std::string what = entry.is_symlink(kind_ec) && !entry.exists(kind_ec)
                               ? "a broken symbolic link"
                           : entry.is_directory(kind_ec) ? "a folder"
                                                         : "not a regular file";
        unreadable.emplace_back(name, what);
    }
    if (ec)
        throw std::runtime_error("cannot list " + dir.string() + ": " + ec.message());
    /* one folder: ordering by file name is ordering by path, without path's per-component compare
     */
    std::vector<std::pair<std::string, std::filesystem::path>> named;
    named.reserve(entries.size());
    for (auto &path : entries)
        named.emplace_back(path.filename().string(), std::move(path));
    std::sort(named.begin(), named.end(),
              [](const auto &a, const auto &b) { return a.first < b.first; });

    MigrationSet set;
    std::sort(unreadable.begin(), unreadable.end());
    for (const auto &[name, what] : unreadable)
        set.problems.push_back(name + ": is " + what +
                               ", so keel cannot read it as a migration; make it a file or "
                               "move it out of the migrations folder");
    std::map<std::string, std::filesystem::path> downs; /* "<version>_<slug>" -> path */
    std::vector<std::pair<ParsedName, std::filesystem::path>> ups;
    for (const auto &[name, path] : named) {
        if (name.empty() || name[0] == '.')
            continue;
        if (!EndsWith(name, ".sql")) {
            if (LooksLikeMigration(name))
                set.problems.push_back(
                    name + ": looks like a migration but does not end in .sql, so keel would "
                           "never apply it; rename it to end in .sql, or move it out of the "
                           "migrations folder");
            continue;
        }
        std::optional<ParsedName> parsed = ParseMigrationFileName(name);
        if (!parsed) {
            set.problems.push_back(name +
                                   ": not a migration file name; expected <digits>_<slug>.sql "
                                   "(slug: letters, digits, _ and -), e.g. 0011_add_billing.sql");
            continue;
        }
        if (parsed->down)
            downs[parsed->digits + "_" + parsed->slug] = path;
        else
            ups.emplace_back(*parsed, path);
    }

    std::map<std::string, std::string> seen; /* canonical version -> file name */
    /* slots in name order: a file, or the problem it has (set.problems keeps that order) */
    struct Slot {
        MigrationFile file;
        std::string problem;
        bool ok = false;
    };
    std::vector<Slot> slots;
    slots.reserve(ups.size());
    for (auto &[parsed, path] : ups) {
        std::string name = path.filename().string();
        auto dup = seen.find(parsed.version);
        Slot slot;
        if (dup != seen.end()) {
            slot.problem =
                name + ": duplicate version " + parsed.version + " (also " + dup->second + ")";
            slots.push_back(std::move(slot));
            continue;
        }
        seen[parsed.version] = name;
        MigrationFile &file = slot.file;
        file.version = parsed.version;
        file.digits = parsed.digits;
        file.file_name = name;
        file.path = path;
        auto down = downs.find(parsed.digits + "_" + parsed.slug);
        if (down != downs.end()) {
            file.down_path = down->second;
            downs.erase(down);
        }
        slot.ok = true;
        slots.push_back(std::move(slot));
    }
    /* read, check and checksum each file; a folder of many files is split over two
     * threads (the work is open/read/close and SHA-256, no shared state) */
    auto load = [](Slot &slot) {
        if (!slot.ok)
            return;
        MigrationFile &file = slot.file;
        try {
            std::error_code size_ec;
            std::uintmax_t size = std::filesystem::file_size(file.path, size_ec);
            if (!size_ec && size > StreamThreshold()) {
                file.streamed = true;
                ScanLargeFile(file);
                return;
            }
            file.contents = ReadFile(file.path);
            file.size = file.contents.size();
            std::string bad = EncodingProblem(file.contents);
            if (!bad.empty())
                throw FileError(file.file_name, 0, bad);
            /* A UTF-8 byte-order mark is not SQL: PostgreSQL would read it as part of a token.
             * It goes before the checksum too, so an editor that adds or drops it does not
             * change the file (issue 12). */
            if (file.contents.compare(0, 3, "\xEF\xBB\xBF") == 0)
                file.contents.erase(0, 3);
            file.checksum = MigrationChecksum(file.contents);
            file.directives = ParseDirectives(file.contents, file.file_name, file.version);
        } catch (const std::exception &e) {
            slot.problem = e.what();
            slot.ok = false;
        }
    };
    if (slots.size() >= 512) {
        std::thread half([&] {
            for (size_t i = 0; i < slots.size(); i += 2)
                load(slots[i]);
        });
        for (size_t i = 1; i < slots.size(); i += 2)
            load(slots[i]);
        half.join();
    } else {
        for (auto &slot : slots)
            load(slot);
    }
    set.files.reserve(slots.size());
    for (auto &slot : slots)
        if (slot.ok)
            set.files.push_back(std::move(slot.file));
        else
            set.problems.push_back(std::move(slot.problem));
    for (const auto &[key, path] : downs)
        set.problems.push_back(path.filename().string() + ": down migration without " + key +
                               ".sql beside it");

    auto by_version = [](const MigrationFile &a, const MigrationFile &b) {
        return CompareVersions(a.version, b.version) < 0;
    };
    /* zero-padded names come in version order already; sorting them again moves every file */
    if (!std::is_sorted(set.files.begin(), set.files.end(), by_version))
        std::sort(set.files.begin(), set.files.end(), by_version);
    return set;
}

MigrationFile ReadDownFile(const MigrationFile &up) {
    if (!up.down_path)
        throw std::logic_error("ReadDownFile: " + up.file_name + " has no down file");
    MigrationFile down;
    down.version = up.version;
    down.digits = up.digits;
    down.path = *up.down_path;
    down.file_name = down.path.filename().string();
    down.contents = ReadFile(down.path);
    down.checksum = MigrationChecksum(down.contents);
    std::string bad = EncodingProblem(down.contents);
    if (!bad.empty())
        throw FileError(down.file_name, 0, bad);
    if (down.contents.compare(0, 3, "\xEF\xBB\xBF") == 0)
        down.contents.erase(0, 3);
    down.directives = ParseDirectives(down.contents, down.file_name, down.version);
    if (!down.directives.supersedes.empty())
        throw FileError(down.file_name, 0,
                        "keel:supersedes has no meaning in a down file (it undoes " + up.file_name +
                            " and retires nothing)");
    return down;
}

} // namespace keel::client
