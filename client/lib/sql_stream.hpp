/*
 * client/lib/sql_stream.hpp
 *   A migration file read from disk in chunks and cut into its top-level
 *   statements without holding it whole (issue 12: "a .sql file of 1 GB is
 *   streamed or refused clearly, never read whole into memory by accident").
 *   The cut follows PostgreSQL's lexical rules as psql's own splitter
 *   (src/fe_utils/psqlscan.l) applies them, with standard_conforming_strings
 *   on (PostgreSQL's default, and what libpg_query assumes for the in-memory
 *   path): a ';' ends a statement outside
 *     'strings' ('' doubled), E'strings' (backslash escapes), "identifiers",
 *     $tag$dollar quotes$tag$, -- comments, nested block comments,
 *     parentheses, and the BEGIN ... END body of CREATE [OR REPLACE]
 *     FUNCTION/PROCEDURE (psql's heuristic, for SQL-standard bodies).
 *   COPY ... FROM STDIN is followed by its data lines up to a line "\."
 *   (pg_dump's form), read separately with ReadCopyData.
 *   This is only the cut: whether each piece is valid SQL is decided by
 *   libpg_query (sql_stream_check.cpp) and the server.
 */
#pragma once

#include "lib/checksum.hpp"

#include <cstdint>
#include <filesystem>
#include <istream>
#include <memory>
#include <string>

namespace keel::client {

/* kStreamChunkBytes: what SqlStream reads from disk at a time (1 MiB). */
constexpr size_t kStreamChunkBytes = size_t(1) << 20;

/*
 * kMaxStatementBytes: one statement of a streamed file may not be larger
 * than this (256 MiB; the server's own limit for a query is 1 GB). It bounds
 * keel's memory on a file that is one endless statement or string.
 */
constexpr size_t kMaxStatementBytes = size_t(256) << 20;

/* StreamStatement is one top-level statement of a streamed file. */
struct StreamStatement {
    std::uint64_t offset = 0; /* byte offset of text in the file (after a byte-order mark) */
    size_t start_line = 1;    /* 1-based line of text's first byte */
    size_t line = 1;          /* 1-based line of its first token (as Statement::line) */
    std::string text;         /* from the end of the previous statement up to, without, its ';' */
    bool terminated = false;  /* it ended with ';' (the last may end with the file) */
    bool copy_from_stdin = false; /* COPY ... FROM STDIN: its data follows (ReadCopyData) */
    std::string words[4];         /* its first four tokens: words lower-case, other tokens "" */
};

/*
 * SqlStream yields the statements of a file in order. Lines are counted as
 * LineAt counts them (LF, CRLF and a lone CR each end a line), so lines match
 * the in-memory path's. A leading UTF-8 byte-order mark is skipped. Every
 * byte read, mark included, goes to checksum when one is given, so the caller
 * can check that what it read is what was checksummed.
 */
class SqlStream {
  public:
    /*
     * SqlStream reads in (owned); file_name names errors; chunk_bytes is the
     * read size (tests use tiny ones to cut tokens between chunks).
     */
    SqlStream(std::unique_ptr<std::istream> in, std::string file_name,
              ChecksumStream *checksum = nullptr, size_t chunk_bytes = kStreamChunkBytes);

    /* Open reads the file at path; throws std::runtime_error naming it if it cannot be opened. */
    static SqlStream Open(const std::filesystem::path &path, const std::string &file_name,
                          ChecksumStream *checksum = nullptr);

    /*
     * Next sets out to the next statement with at least one token (empty
     * statements ";;" and trailing comments are skipped) and returns true,
     * or returns false at the end of the file. The COPY data of a previous
     * statement not read with ReadCopyData is skipped. An unterminated
     * string, identifier, dollar quote or comment runs to the end of the file
     * and comes back as the last statement, for the parser to reject.
     * Throws FileError "file:line: ..." for a statement larger than
     * kMaxStatementBytes, for anything but a comment after COPY ... FROM
     * STDIN; on its line (its data starts on the next line), and for COPY
     * data without its "\." line; std::runtime_error for a read error.
     */
    bool Next(StreamStatement &out);

    /*
     * ReadCopyData appends to data the next piece (about chunk_bytes, whole
     * lines unless a line is longer) of the inline data of the COPY ... FROM
     * STDIN just returned by Next, each line as in the file with its "\n".
     * Returns false once the "\." line has been read (data may still have
     * grown). Throws FileError when the file ends before "\.".
     */
    bool ReadCopyData(std::string &data);

    SqlStream(SqlStream &&) = default;

  private:
    /* Fill reads the next chunk, keeping buf_ from start_; false at the end of the file. */
    bool Fill();
    /* At returns the byte k ahead of pos_ (reading more if needed), or -1 at the end. */
    int At(size_t k) {
        if (pos_ + k < buf_.size())
            return static_cast<unsigned char>(buf_[pos_ + k]);
        return AtSlow(k);
    }
    int AtSlow(size_t k);
    void Newline(); /* at pos_ is '\n' or '\r': count the line and step over the byte */
    void Token(const std::string &word, bool identifier);
    /* at pos_ is '\\': "\restrict " or "\unrestrict " follows (psql, pg_dump) */
    bool RestrictLineAt();
    void SkipQuoted(char quote, bool backslash_escapes);
    void SkipDollarQuoted(size_t delimiter_length);
    void SkipBlockComment();
    void CheckSize();
    void StartCopyData();

    std::unique_ptr<std::istream> in_;
    std::string file_name_;
    ChecksumStream *checksum_;
    size_t chunk_bytes_;
    std::string buf_;
    size_t start_ = 0;       /* buf_ index where the current statement's text starts */
    size_t pos_ = 0;         /* buf_ index being read */
    std::uint64_t base_ = 0; /* file offset (after a BOM) of buf_[0] */
    bool eof_ = false, first_read_ = true;
    size_t line_ = 1;

    /* the statement being read */
    bool has_token_ = false;
    size_t first_line_ = 1;
    int paren_depth_ = 0, begin_depth_ = 0;
    size_t identifier_count_ = 0, token_count_ = 0;
    char identifiers_[4] = {0, 0, 0, 0}; /* psql's CREATE [OR REPLACE] FUNCTION|PROCEDURE test */
    bool after_from_ = false, copy_from_stdin_ = false;
    std::string words_[4];

    /* COPY data */
    bool copy_pending_ = false, copy_started_ = false, mid_line_ = false;
    size_t copy_line_ = 0;
};

} // namespace keel::client
