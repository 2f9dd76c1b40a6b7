/*
 * client/lib/token_checksum.hpp
 *   The token checksum of a migration file: what keel compares when a file's
 *   checksum no longer matches the recorded one, to tell an edit of only
 *   comments and whitespace (cosmetic, Flyway's most common checksum
 *   complaint) from a real change (issue 12).
 */
#pragma once

#include "lib/migration_file.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace keel::client {

/*
 * TokenChecksum returns the SHA-256 (64 lowercase hex digits) of contents'
 * token stream from libpg_query's scanner (pg_query_scan, PostgreSQL 15's
 * own lexer), with comments (SQL_COMMENT, C_COMMENT) and whitespace left
 * out, and with the file's keel directives (directives, which live in
 * comments but change how the file runs) hashed first. Every other token is
 * hashed as written, so a changed constant (VALUES (1) -> (2), DEFAULT 0 ->
 * 100), identifier, keyword or string literal changes it; unlike
 * pg_query_fingerprint, which ignores constants. Line endings are
 * normalised first. Returns nullopt when the scanner cannot read the file
 * (an unterminated literal, COPY data, ...): no cosmetic verdict then.
 */
std::optional<std::string> TokenChecksum(std::string_view contents, const Directives &directives);

} // namespace keel::client
