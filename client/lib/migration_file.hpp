/*
 * client/lib/migration_file.hpp
 *   A folder of versioned migration files (DESIGN.md, "Contract"):
 *     <digits>_<slug>.sql        a migration; version = the leading digits,
 *                                compared as numbers of any length
 *     <digits>_<slug>.down.sql   optional, beside it: what undoes it, run
 *                                only by keel down (ReadDownFile)
 *   slug: letters, digits, '_' and '-'. Directives are leading comments:
 *     -- keel:no-transaction
 *     -- keel:supersedes <version>[, <version>...]
 *     -- keel:allow-destructive "reason"
 *   Everything here is pure C++ (no server) so it is unit-tested directly.
 */
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace keel::client {

/*
 * CanonicalVersion returns digits without leading zeros ("0011" -> "11",
 * "000" -> "0"). Precondition: digits is non-empty and all ASCII digits.
 */
std::string CanonicalVersion(std::string_view digits);

/*
 * CompareVersions orders two canonical versions as numbers without
 * converting them (no overflow): shorter is smaller, then digit by digit.
 * Returns <0, 0 or >0.
 */
int CompareVersions(std::string_view a, std::string_view b);

/* ParsedName is a migration file name taken apart. */
struct ParsedName {
    std::string digits;  /* as written, e.g. "0011" */
    std::string version; /* canonical, e.g. "11" */
    std::string slug;    /* e.g. "safe_billing_models" */
    bool down = false;   /* <digits>_<slug>.down.sql */
};

/*
 * ParseMigrationFileName parses a base file name. Returns nullopt when it
 * does not follow <digits>_<slug>.sql or <digits>_<slug>.down.sql.
 */
std::optional<ParsedName> ParseMigrationFileName(std::string_view name);

/* Directives are the keel: leading comments of one file. */
struct Directives {
    bool no_transaction = false;
    std::vector<std::string> supersedes; /* canonical versions */
    std::optional<std::string> allow_destructive_reason;
    size_t allow_destructive_line = 0; /* 1-based line of that directive */
};

/* FileError is a problem in one migration file, reported as "file:line: message". */
class FileError : public std::runtime_error {
  public:
    FileError(std::string file, size_t line, const std::string &message)
        : std::runtime_error(file + (line ? ":" + std::to_string(line) : std::string()) + ": " +
                             message),
          file_(std::move(file)), line_(line), message_(message) {}
    const std::string &file() const noexcept { return file_; }
    size_t line() const noexcept { return line_; }
    const std::string &message() const noexcept { return message_; } /* without file:line */

  private:
    std::string file_;
    size_t line_;
    std::string message_;
};

/*
 * ParseDirectives reads the directives of a file. Directives are comment
 * lines ("-- keel:...") before the first line that is neither blank nor a
 * "--" comment. Throws FileError (with the line) for an unknown directive, a
 * malformed one (missing or empty quoted reason, bad version, arguments where
 * none belong), a repeated no-transaction or allow-destructive, a file that
 * supersedes its own version (own_version, canonical), allow-destructive
 * combined with no-transaction (the break-glass lasts one transaction), and
 * for a "-- keel:" directive line after the first statement. keel lint's
 * waivers ("-- keel:allow <rule> \"reason\"") are not directives and are skipped.
 */
Directives ParseDirectives(std::string_view contents, const std::string &file_name,
                           const std::string &own_version);

/* MigrationFile is one migration read from disk. */
struct MigrationFile {
    std::string version;   /* canonical */
    std::string digits;    /* as written */
    std::string file_name; /* base name, recorded as the history name */
    std::filesystem::path path;
    std::optional<std::filesystem::path> down_path;
    std::string contents; /* as on disk, without a leading byte-order mark; empty when streamed */
    std::string checksum; /* MigrationChecksum of the file without a leading byte-order mark */
    Directives directives;
    std::uintmax_t size = 0; /* bytes on disk */
    /* streamed: the file is above StreamThreshold(), so keel never holds it whole: it was
     * checked in chunks and is split, validated and run from disk (sql_stream.hpp). */
    bool streamed = false;
};

/*
 * kStreamThresholdBytes: a migration file above this size (32 MiB) is
 * streamed instead of read whole (issue 12: a 212 MB file of INSERTs must run
 * in under 300 MB of client memory). Hand-written migrations are far below
 * it; pg_dump-style data files are above it. 32 MiB keeps the in-memory
 * path (its parse tree is about 8x the file) under a few hundred MB.
 */
constexpr std::uintmax_t kStreamThresholdBytes = std::uintmax_t(32) << 20;

/*
 * StreamThreshold returns kStreamThresholdBytes, or the byte count in the
 * environment variable KEEL_STREAM_THRESHOLD when it is set to digits (a
 * testing knob, so tests stream small files).
 */
std::uintmax_t StreamThreshold();

/*
 * MigrationSet is a folder read in version order, plus every problem found:
 * .sql files whose names do not follow the pattern, duplicate versions,
 * .down.sql files without their migration, directive errors. Files with
 * problems are left out of `files`.
 */
struct MigrationSet {
    std::vector<MigrationFile> files;
    std::vector<std::string> problems;
};

/*
 * LoadMigrationDir reads dir (not recursive). Hidden files and files not
 * ending in .sql (README.md, notes.txt) are ignored, except one that is a
 * migration file name up to a ".sql" in any case followed by more
 * (0003_x.sql.bak, 0003_x.SQL): that is a problem, since keel would never
 * apply it. A file that is not valid UTF-8 or holds a NUL byte is a problem.
 * A leading UTF-8 byte-order mark is dropped from contents before the
 * checksum, so a file with it has the checksum of the file without it (issue
 * 12). A file above StreamThreshold() is not kept: it is read in 1 MiB
 * chunks for its checksum, encoding and directives, and marked streamed
 * (contents stays empty). Throws std::runtime_error when dir cannot be read.
 */
MigrationSet LoadMigrationDir(const std::filesystem::path &dir);

/*
 * EncodingProblem returns "" when contents is valid UTF-8 without NUL bytes,
 * else one sentence naming the first bad line (a NUL byte would make
 * PostgreSQL stop reading there; the history would say the whole file ran).
 */
std::string EncodingProblem(std::string_view contents);

/*
 * ReadDownFile reads the .down.sql paired with up (up.down_path must be set)
 * as a MigrationFile of up's version: file_name is the down file's name (what
 * keel.migration_reverted records), checksum MigrationChecksum of the file as
 * it is, contents without a leading UTF-8 byte-order mark, and its
 * directives (keel:no-transaction and keel:allow-destructive mean what they
 * mean in any migration). Throws FileError naming the down file when it is not
 * valid UTF-8, holds a NUL byte, has a bad directive, or says keel:supersedes
 * (a down file retires nothing); std::runtime_error when it cannot be read.
 * Rule: issue 12 (keel down runs .down.sql files under the same guard).
 */
MigrationFile ReadDownFile(const MigrationFile &up);

/*
 * EncodingCheck is EncodingProblem over a file given in pieces of any size
 * (a character may be split between pieces). Update adds bytes; Finish
 * returns the problem sentence ("" when none), the same sentence
 * EncodingProblem gives for the whole text. After the first problem further
 * bytes are ignored.
 */
class EncodingCheck {
  public:
    void Update(std::string_view piece);
    std::string Finish();

  private:
    /* Scan checks s from its start; returns the bytes of whole characters checked. */
    size_t Scan(std::string_view s, bool final);
    size_t line_ = 1;
    std::string carry_; /* the first bytes of a character split between pieces */
    std::string problem_;
};

/*
 * DirectiveReader is ParseDirectives line by line, for a file keel does not
 * hold whole (sql_stream.hpp): Line takes each line in order, without its
 * terminator, and throws what ParseDirectives throws for it; Finish returns
 * the directives (and throws for a combination that is not allowed).
 * ParseDirectives is built on it.
 */
class DirectiveReader {
  public:
    DirectiveReader(std::string file_name, std::string own_version)
        : file_name_(std::move(file_name)), own_version_(std::move(own_version)) {}
    void Line(std::string_view line);
    Directives Finish() const;
    /* SkipLine counts a line without reading it: only for a line without "keel:" once
     * Leading() is false (it can be neither a directive nor the end of the leading comments). */
    void SkipLine() { ++line_no_; }
    /* Leading: no line so far held SQL (directives may still follow). */
    bool Leading() const { return leading_; }

  private:
    std::string file_name_, own_version_;
    Directives d_;
    bool leading_ = true;
    size_t line_no_ = 0;
};

/* ReadFile returns the bytes of path; throws std::runtime_error naming it. */
std::string ReadFile(const std::filesystem::path &path);

} // namespace keel::client
