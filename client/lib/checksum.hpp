/*
 * client/lib/checksum.hpp
 *   Checksums of migration files: SHA-256 (OpenSSL EVP) of the file with line
 *   endings normalised, so a file checked out with CRLF on one machine and LF
 *   on another has one checksum (DESIGN.md, "Contract", Migrations).
 */
#pragma once

#include <string>
#include <string_view>

namespace keel::client {

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
