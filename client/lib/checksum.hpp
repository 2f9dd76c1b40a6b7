/*
 * client/lib/checksum.hpp
 *   Checksums of migration files: SHA-256 (OpenSSL EVP) of the file with line
 *   endings normalised, so a file checked out with CRLF on one machine and LF
 *   on another has one checksum (DESIGN.md, "Contract", Migrations).
 */
#pragma once

#include <openssl/evp.h>

#include <memory>
#include <string>
#include <string_view>

namespace keel::client {

/*
 * ChecksumStream computes MigrationChecksum over a file given in pieces of
 * any size (keel reads files above the streaming threshold in 1 MiB chunks,
 * sql_stream.hpp): a CR at the end of one piece and an LF at the start of the
 * next count as one CRLF. Feeding the whole text at once is exactly
 * MigrationChecksum (which is built on it), so streamed and in-memory files
 * get byte-identical checksums. Throws std::runtime_error if OpenSSL fails.
 */
class ChecksumStream {
  public:
    ChecksumStream();
    /* Update adds the next bytes of the file, as on disk. */
    void Update(std::string_view piece);
    /* Final returns the 64 lowercase hex digits; the stream is then spent. */
    std::string Final();

  private:
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx_;
    bool after_cr_ = false; /* the last byte seen was a CR (already hashed as LF) */
};

/*
 * NormalizeLineEndings returns text with every CRLF and every lone CR
 * replaced by LF. Nothing else changes (no trailing-space or final-newline
 * games: those are real edits).
 */
std::string NormalizeLineEndings(std::string_view text);

/*
 * Sha256Hex returns the SHA-256 of data as 64 lowercase hexadecimal digits.
 * Throws std::runtime_error if OpenSSL fails (out of memory).
 */
std::string Sha256Hex(std::string_view data);

/*
 * MigrationChecksum is the checksum keel records for a migration file:
 * Sha256Hex(NormalizeLineEndings(contents)).
 */
std::string MigrationChecksum(std::string_view contents);

} // namespace keel::client
