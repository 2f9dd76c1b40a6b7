/*
 * client/lib/sql_script.hpp
 *   A migration file cut into statements with libpg_query (PostgreSQL 15's
 *   own parser), so keel knows each statement's line, whether the file wraps
 *   itself in BEGIN; ... COMMIT; (seed 004's template does) and whether it
 *   contains transaction control that would break keel's one-transaction-
 *   per-migration rule.
 */
#pragma once

#include "lib/migration_file.hpp"

#include <string>
#include <string_view>
#include <vector>

namespace keel::client {

/* Statement is one top-level SQL statement of a file. */
struct Statement {
    size_t offset = 0;          /* byte offset of the statement text (may start with comments) */
    size_t length = 0;          /* bytes, without the terminating ';' */
    size_t line = 1;            /* 1-based line of its first token */
    std::string node;           /* parse node, e.g. "CreateStmt", "TransactionStmt" */
    std::string text;           /* contents.substr(offset, length) */
    bool has_copy_data = false; /* COPY ... FROM STDIN with its data inline, as pg_dump writes */
    std::string copy_data;      /* the data lines, each ending in \n, without the \. line */
};

/* Script is what keel executes for one migration file. */
struct Script {
    std::vector<Statement> statements; /* in order, wrapper removed; empty when streamed */
    bool unwrapped = false;            /* the file's own BEGIN/COMMIT was neutralised */
    /* streamed (MigrationFile::streamed): the statements stay on disk and are read again
     * when they run (sql_stream.hpp); these count them */
    bool streamed = false;
    size_t streamed_total = 0; /* statements in the file, its own BEGIN/COMMIT included */

    /* StatementCount is how many statements keel runs (the wrapper excluded). */
    size_t StatementCount() const {
        return streamed ? streamed_total - (unwrapped ? 2 : 0) : statements.size();
    }
};

/*
 * PrepareScript parses contents (file_name only names errors).
 * transactional: the file runs inside keel's transaction, so
 *   - a leading plain BEGIN / START TRANSACTION paired with a final COMMIT /
 *     END is the file's own wrapper: both are dropped (unwrapped = true);
 *   - any other BEGIN, COMMIT, ROLLBACK, PREPARE TRANSACTION, COMMIT/ROLLBACK
 *     PREPARED is a FileError naming its line (SAVEPOINT, RELEASE and
 *     ROLLBACK TO stay inside keel's transaction and are allowed);
 *   - statements PostgreSQL refuses inside a transaction block (CREATE/DROP
 *     INDEX CONCURRENTLY, REINDEX CONCURRENTLY, VACUUM, CREATE/DROP DATABASE,
 *     CREATE/DROP TABLESPACE, ALTER SYSTEM) are a FileError suggesting
 *     -- keel:no-transaction.
 * Without transactional every statement is kept as written.
 * A COPY ... FROM STDIN statement may be followed by its data, as pg_dump and
 * psql write it: the lines after the statement up to a line "\." are that
 * statement's copy_data (a missing "\." is a FileError naming the COPY).
 * Throws FileError "file:line: message" on a syntax error (psql
 * meta-commands such as \d included).
 */
Script PrepareScript(const std::string &contents, const std::string &file_name, bool transactional);

/*
 * MaskInlineCopyData returns contents with the inline data of every COPY ...
 * FROM STDIN (the lines after the statement up to and including its "\."
 * line, as pg_dump and psql write them) blanked to spaces, line breaks kept:
 * same length, every offset and line number unchanged, so the parser sees
 * only SQL. A "copy" in a string, comment or identifier is not a COPY (each
 * candidate is confirmed by the parser). Throws FileError naming the COPY's
 * line when its data has no "\." line. Used by PrepareScript and keel lint
 * (issue 12: COPY ... FROM stdin with inline data).
 */
std::string MaskInlineCopyData(const std::string &contents, const std::string &file_name);

/*
 * PrepareStreamedScript is PrepareScript for a streamed file (sql_stream_check.cpp): the same
 * rules and the same errors, with the file read from disk in chunks and validated by
 * libpg_query in batches of statements, in bounded memory. The file must still have
 * file.checksum (else a FileError: it changed on disk). Throws FileError,
 * std::runtime_error when the file cannot be read.
 */
Script PrepareStreamedScript(const MigrationFile &file);

/* PrepareFile is PrepareStreamedScript for a streamed file, else PrepareScript of its contents,
 * transactional unless it says -- keel:no-transaction. */
Script PrepareFile(const MigrationFile &file);

/* The errors PrepareScript raises, shared with PrepareStreamedScript so both say the same. */
FileError SyntaxError(const std::string &file_name, size_t line, const char *message);
FileError NotInTransactionError(const std::string &file_name, size_t line, const std::string &what);
FileError TransactionControlError(const std::string &file_name, size_t line,
                                  const std::string &statement_text);
FileError CopyWithoutEndError(const std::string &file_name, size_t line);

/* LineAt returns the 1-based line of byte offset in text (LF, CRLF and CR end lines). */
size_t LineAt(std::string_view text, size_t offset);

/*
 * CharPositionToOffset converts a 1-based character position within text
 * (as PostgreSQL reports PG_DIAG_STATEMENT_POSITION and libpg_query its
 * cursor, counting UTF-8 characters) to a byte offset, clamped to text.size().
 */
size_t CharPositionToOffset(std::string_view text, long position);

/* FirstTokenOffset returns the offset of the first byte after whitespace and comments. */
size_t FirstTokenOffset(std::string_view text, size_t from);

} // namespace keel::client
