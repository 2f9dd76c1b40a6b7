/*
 * client/lib/sql_stream.cpp
 *   See sql_stream.hpp. The rules are PostgreSQL 15's scanner
 *   (src/backend/parser/scan.l) for where tokens start and end, and psql's
 *   (src/fe_utils/psqlscan.l) for where a statement ends.
 */
#include "lib/sql_stream.hpp"

#include "lib/migration_file.hpp"

#include <cstring>
#include <fstream>

namespace keel::client {

namespace {

bool IsIdentStart(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

bool IsIdentCont(int c) {
    return IsIdentStart(c) || (c >= '0' && c <= '9') || c == '$';
}

/* dolq_start / dolq_cont of scan.l: a dollar-quote tag has no '$' and starts with no digit */
bool IsDolqStart(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

bool IsDolqCont(int c) {
    return IsDolqStart(c) || (c >= '0' && c <= '9');
}

bool IsDigit(int c) {
    return c >= '0' && c <= '9';
}

} // namespace

SqlStream::SqlStream(std::unique_ptr<std::istream> in, std::string file_name,
                     ChecksumStream *checksum, size_t chunk_bytes)
    : in_(std::move(in)), file_name_(std::move(file_name)), checksum_(checksum),
      chunk_bytes_(chunk_bytes ? chunk_bytes : 1) {}

SqlStream SqlStream::Open(const std::filesystem::path &path, const std::string &file_name,
                          ChecksumStream *checksum) {
    auto in = std::make_unique<std::ifstream>(path, std::ios::binary);
    if (!*in)
        throw std::runtime_error("cannot read " + path.string());
    return SqlStream(std::move(in), file_name, checksum);
}

bool SqlStream::Fill() {
    if (eof_)
        return false;
    if (start_ > 0) {
        buf_.erase(0, start_);
        pos_ -= start_;
        base_ += start_;
        start_ = 0;
    }
    if (buf_.size() > kMaxStatementBytes)
        throw FileError(file_name_, has_token_ ? first_line_ : line_,
                        "statement larger than " + std::to_string(kMaxStatementBytes >> 20) +
                            " MiB; keel holds no more of one statement in memory (split it, or "
                            "load the data with COPY ... FROM STDIN)");
    size_t old = buf_.size();
    buf_.resize(old + chunk_bytes_);
    in_->read(&buf_[old], std::streamsize(chunk_bytes_));
    size_t n = size_t(in_->gcount());
    buf_.resize(old + n);
    if (in_->bad())
        throw std::runtime_error("cannot read " + file_name_);
    if (n == 0) {
        eof_ = true;
        return false;
    }
    if (checksum_ && !first_read_)
        checksum_->Update(std::string_view(buf_.data() + old, n));
    if (first_read_) {
        /* the byte-order mark may itself be cut by a tiny chunk */
        while (buf_.size() < 3 && !eof_) {
            size_t have = buf_.size();
            buf_.resize(have + chunk_bytes_);
            in_->read(&buf_[have], std::streamsize(chunk_bytes_));
            size_t more = size_t(in_->gcount());
            buf_.resize(have + more);
            if (in_->bad())
                throw std::runtime_error("cannot read " + file_name_);
            if (more == 0)
                eof_ = true;
        }
        first_read_ = false;
        if (buf_.compare(0, 3, "\xEF\xBB\xBF") == 0)
            buf_.erase(0, 3); /* not SQL, and not in the checksum; offsets count from after it */
        if (checksum_)
            checksum_->Update(std::string_view(buf_.data(), buf_.size()));
    }
    return true;
}

int SqlStream::AtSlow(size_t k) {
    while (pos_ + k >= buf_.size())
        if (!Fill())
            return -1;
    return static_cast<unsigned char>(buf_[pos_ + k]);
}

void SqlStream::Newline() {
    if (buf_[pos_] == '\n' || At(1) != '\n')
        ++line_;
    ++pos_;
}

void SqlStream::Token(const std::string &word, bool identifier) {
    if (!has_token_) {
        has_token_ = true;
        first_line_ = line_;
    }
    if (token_count_ < 4)
        words_[token_count_] = word;
    ++token_count_;
    /* COPY ... FROM STDIN at the top level: inline data follows the statement */
    if (words_[0] == "copy") {
        if (paren_depth_ == 0 && after_from_ && word == "stdin")
            copy_from_stdin_ = true;
        after_from_ = paren_depth_ == 0 && word == "from";
    }
    if (!identifier)
        return;
    /* psqlscan.l: a ';' inside BEGIN ... END of CREATE [OR REPLACE] FUNCTION|PROCEDURE does not
     * end the statement (SQL-standard bodies, BEGIN ATOMIC ... END). Only a statement whose first
     * identifier is CREATE can be one, so the rest is skipped for all others. */
    if (identifier_count_ == 0)
        std::memset(identifiers_, 0, sizeof identifiers_);
    if (identifier_count_ < sizeof identifiers_ &&
        (identifier_count_ == 0 || identifiers_[0] == 'c') &&
        (word == "create" || word == "function" || word == "procedure" || word == "or" ||
         word == "replace"))
        identifiers_[identifier_count_] = word[0];
    ++identifier_count_;
    if (identifiers_[0] == 'c' &&
        (identifiers_[1] == 'f' || identifiers_[1] == 'p' ||
         (identifiers_[1] == 'o' && identifiers_[2] == 'r' &&
          (identifiers_[3] == 'f' || identifiers_[3] == 'p'))) &&
        paren_depth_ == 0) {
        if (word == "begin")
            ++begin_depth_;
        else if (word == "case") {
            if (begin_depth_ >= 1)
                ++begin_depth_;
        } else if (word == "end") {
            if (begin_depth_ > 0)
                --begin_depth_;
        }
    }
}

void SqlStream::SkipQuoted(char quote, bool backslash_escapes) {
    ++pos_; /* the opening quote */
    for (;;) {
        /* the plain characters of the string, straight from the buffer */
        const char *data = buf_.data();
        size_t n = buf_.size();
        while (pos_ < n) {
            char ch = data[pos_];
            if (ch == quote || ch == '\n' || ch == '\r' || (ch == '\\' && backslash_escapes))
                break;
            ++pos_;
        }
        int c = At(0);
        if (c < 0)
            return; /* unterminated: the parser says so */
        if (c == quote) {
            if (At(1) == quote) { /* doubled: part of the text */
                pos_ += 2;
                continue;
            }
            ++pos_;
            return;
        }
        if (c == '\\' && backslash_escapes) {
            ++pos_;
            int next = At(0);
            if (next == '\n' || next == '\r')
                Newline();
            else if (next >= 0)
                ++pos_;
            continue;
        }
        if (c == '\n' || c == '\r')
            Newline();
        else
            ++pos_;
    }
}

void SqlStream::SkipDollarQuoted(size_t delimiter_length) {
    std::string delimiter = buf_.substr(pos_, delimiter_length);
    pos_ += delimiter_length;
    for (;;) {
        int c = At(0);
        if (c < 0)
            return;
        if (c == '$') {
            size_t k = 1;
            while (k < delimiter_length && At(k) == static_cast<unsigned char>(delimiter[k]))
                ++k;
            if (k == delimiter_length) {
                pos_ += delimiter_length;
                return;
            }
            ++pos_;
        } else if (c == '\n' || c == '\r') {
            Newline();
        } else {
            ++pos_;
        }
    }
}

void SqlStream::SkipBlockComment() {
    size_t comment_line = line_;
    pos_ += 2;
    int depth = 1;
    for (;;) {
        int c = At(0);
        if (c < 0) {
            /* unterminated: handed to the parser as a statement, which rejects it */
            if (!has_token_) {
                has_token_ = true;
                first_line_ = comment_line;
            }
            return;
        }
        if (c == '/' && At(1) == '*') {
            ++depth;
            pos_ += 2;
        } else if (c == '*' && At(1) == '/') {
            pos_ += 2;
            if (--depth == 0)
                return;
        } else if (c == '\n' || c == '\r') {
            Newline();
        } else {
            ++pos_;
        }
    }
}

bool SqlStream::RestrictLineAt() {
    for (const char *name : {"restrict", "unrestrict"}) {
        size_t n = std::strlen(name), k = 0;
        while (k < n && At(1 + k) == name[k])
            ++k;
        int after = At(1 + n);
        if (k == n && (after == ' ' || after == '\t'))
            return true;
    }
    return false;
}

bool SqlStream::Next(StreamStatement &out) {
    if (copy_pending_) {
        std::string skipped;
        while (ReadCopyData(skipped))
            skipped.clear();
    }
    for (;;) {
        start_ = pos_;
        size_t start_line = line_;
        has_token_ = false;
        paren_depth_ = begin_depth_ = 0;
        identifier_count_ = token_count_ = 0;
        after_from_ = copy_from_stdin_ = false;
        for (auto &w : words_)
            w.clear();
        bool empty_statement = false;
        for (;;) {
            int c = At(0);
            if (c < 0) {
                if (!has_token_) {
                    start_ = pos_;
                    return false;
                }
                out.terminated = false;
                break;
            }
            if (c == ';' && paren_depth_ == 0 && begin_depth_ == 0) {
                if (!has_token_) {
                    ++pos_;
                    empty_statement = true;
                    break;
                }
                out.terminated = true;
                break;
            }
            switch (c) {
            case ' ':
            case '\t':
            case '\f':
            case '\v':
                ++pos_;
                break;
            case '\n':
            case '\r':
                Newline();
                break;
            case '-':
                if (At(1) == '-') {
                    while ((c = At(0)) >= 0 && c != '\n' && c != '\r')
                        ++pos_;
                } else {
                    Token("", false);
                    ++pos_;
                }
                break;
            case '/':
                if (At(1) == '*') {
                    SkipBlockComment();
                } else {
                    Token("", false);
                    ++pos_;
                }
                break;
            case '\'':
                Token("", false);
                SkipQuoted('\'', false);
                break;
            case '"':
                Token("", false);
                SkipQuoted('"', false);
                break;
            case '$': {
                Token("", false);
                if (IsDigit(At(1))) { /* $1: a parameter */
                    ++pos_;
                    while (IsDigit(At(0)))
                        ++pos_;
                    break;
                }
                size_t k = 1;
                if (IsDolqStart(At(1))) {
                    k = 2;
                    while (IsDolqCont(At(k)))
                        ++k;
                }
                if (At(k) == '$')
                    SkipDollarQuoted(k + 1);
                else
                    ++pos_;
                break;
            }
            case '\\':
                /* "\restrict KEY" / "\unrestrict KEY" between statements: psql
                 * meta-commands pg_dump writes around a plain dump, not SQL (see
                 * MaskRestrictLines in sql_script.cpp); the line is left out */
                if (!has_token_ && RestrictLineAt()) {
                    while ((c = At(0)) >= 0 && c != '\n')
                        ++pos_;
                    start_ = pos_;
                    break;
                }
                Token("", false);
                ++pos_;
                break;
            case '(':
                Token("", false);
                ++paren_depth_;
                ++pos_;
                break;
            case ')':
                Token("", false);
                if (paren_depth_ > 0)
                    --paren_depth_;
                ++pos_;
                break;
            default:
                if (IsIdentStart(c)) {
                    size_t length = 0;
                    while (IsIdentCont(At(0))) {
                        ++pos_;
                        ++length;
                    }
                    std::string word = buf_.substr(pos_ - length, length);
                    for (char &ch : word)
                        if (ch >= 'A' && ch <= 'Z')
                            ch = char(ch - 'A' + 'a');
                    if (word == "e" && At(0) == '\'') { /* E'...': backslash escapes */
                        Token("", false);
                        SkipQuoted('\'', true);
                    } else {
                        Token(word, true);
                    }
                } else if (IsDigit(c)) {
                    Token("", false);
                    while ((c = At(0)) >= 0 && (IsIdentCont(c) || c == '.') && c != '$')
                        ++pos_;
                } else {
                    Token("", false);
                    ++pos_;
                }
            }
        }
        if (empty_statement)
            continue;
        out.offset = base_ + start_;
        out.start_line = start_line;
        out.line = first_line_;
        out.text.assign(buf_, start_, pos_ - start_);
        out.copy_from_stdin = false;
        for (size_t i = 0; i < 4; ++i)
            out.words[i] = words_[i];
        if (out.terminated) {
            ++pos_; /* the ';' */
            if (copy_from_stdin_) {
                out.copy_from_stdin = true;
                copy_pending_ = true;
                copy_started_ = false;
                copy_line_ = first_line_;
            }
        } else if (copy_from_stdin_) {
            /* COPY ... FROM STDIN ending the file without ';' has no data either */
            throw FileError(file_name_, first_line_,
                            "COPY ... FROM STDIN has no \\. line ending its data");
        }
        start_ = pos_;
        return true;
    }
}

void SqlStream::StartCopyData() {
    /* the data starts on the line after the statement, as in the in-memory path */
    for (;;) {
        int c = At(0);
        if (c < 0)
            break;
        if (c == '\n') {
            Newline();
            break;
        }
        if (c == ' ' || c == '\t' || c == '\f' || c == '\v') {
            ++pos_;
        } else if (c == '\r') {
            Newline();
        } else if (c == '-' && At(1) == '-') {
            while ((c = At(0)) >= 0 && c != '\n')
                ++pos_;
        } else {
            throw FileError(file_name_, line_,
                            "only a -- comment may follow COPY ... FROM STDIN; on its line (its "
                            "data starts on the next line)");
        }
    }
    start_ = pos_;
}

bool SqlStream::ReadCopyData(std::string &data) {
    if (!copy_pending_)
        return false;
    if (!copy_started_) {
        StartCopyData();
        copy_started_ = true;
        mid_line_ = false;
    }
    size_t appended = 0;
    /* counts the lines of buf_[from, to) the way LineAt does (a CR before an LF is no line) */
    auto count_lines = [this](size_t from, size_t to) {
        for (size_t i = from; i < to; ++i)
            if (buf_[i] == '\n' ||
                (buf_[i] == '\r' && (i + 1 >= buf_.size() || buf_[i + 1] != '\n')))
                ++line_;
    };
    for (;;) {
        if (!mid_line_ && At(0) == '\\' && At(1) == '.') {
            int c2 = At(2);
            if (c2 < 0 || c2 == '\n' || (c2 == '\r' && (At(3) < 0 || At(3) == '\n'))) {
                pos_ += 2;
                if (c2 == '\r')
                    Newline();
                if (At(0) == '\n')
                    Newline();
                copy_pending_ = false;
                start_ = pos_;
                return false;
            }
        }
        const char *nl =
            static_cast<const char *>(std::memchr(buf_.data() + pos_, '\n', buf_.size() - pos_));
        if (nl) {
            size_t end = size_t(nl - buf_.data()) + 1;
            count_lines(pos_, end);
            data.append(buf_, pos_, end - pos_);
            appended += end - pos_;
            pos_ = start_ = end;
            mid_line_ = false;
            if (appended >= chunk_bytes_)
                return true;
            continue;
        }
        size_t avail = buf_.size() - pos_;
        if (avail > 4) {
            /* a long line: pass on all but its last byte (a CR there may precede an LF) */
            size_t take = avail - 1;
            count_lines(pos_, pos_ + take);
            data.append(buf_, pos_, take);
            appended += take;
            pos_ = start_ = pos_ + take;
            mid_line_ = true;
            if (appended >= chunk_bytes_)
                return true;
        }
        if (!Fill())
            throw FileError(file_name_, copy_line_,
                            "COPY ... FROM STDIN has no \\. line ending its data");
    }
}

} // namespace keel::client
