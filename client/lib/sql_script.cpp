/*
 * client/lib/sql_script.cpp
 *   See sql_script.hpp. Uses pg_query_parse()'s JSON parse tree (libpg_query
 *   15-4.0): stmts[i].stmt_location / stmt_len are byte offsets (omitted when
 *   0, stmt_len 0 meaning "to the end"); error cursorpos counts characters.
 */
#include "lib/sql_script.hpp"

#include <nlohmann/json.hpp>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <memory>
#include <string_view>

namespace keel::client {

namespace {

/* ParseResult frees a PgQueryParseResult whatever happens. */
struct ParseResult {
    PgQueryParseResult result;
    explicit ParseResult(const std::string &sql) : result(pg_query_parse(sql.c_str())) {}
    ~ParseResult() { pg_query_free_parse_result(result); }
    ParseResult(const ParseResult &) = delete;
    ParseResult &operator=(const ParseResult &) = delete;
};

bool HasTrueFlag(const nlohmann::json &node, const char *field) {
    auto it = node.find(field);
    return it != node.end() && it->is_boolean() && it->get<bool>();
}

/* HasDefElem reports whether a list of DefElem has one named name (e.g. "concurrently"). */
bool HasDefElem(const nlohmann::json &node, const char *list, const char *name) {
    auto it = node.find(list);
    if (it == node.end() || !it->is_array())
        return false;
    for (const auto &item : *it) {
        auto def = item.find("DefElem");
        if (def != item.end() && def->value("defname", "") == name)
            return true;
    }
    return false;
}

/* NotInTransactionBlock names a statement PostgreSQL refuses in a transaction block, or "". */
std::string NotInTransactionBlock(const std::string &node, const nlohmann::json &body) {
    if (node == "IndexStmt" && HasTrueFlag(body, "concurrent"))
        return "CREATE INDEX CONCURRENTLY";
    if (node == "DropStmt" && HasTrueFlag(body, "concurrent"))
        return "DROP INDEX CONCURRENTLY";
    if (node == "ReindexStmt" && HasDefElem(body, "params", "concurrently"))
        return "REINDEX CONCURRENTLY";
    if (node == "VacuumStmt")
        return HasTrueFlag(body, "is_vacuumcmd") ? "VACUUM" : "";
    if (node == "CreatedbStmt")
        return "CREATE DATABASE";
    if (node == "DropdbStmt")
        return "DROP DATABASE";
    if (node == "CreateTableSpaceStmt")
        return "CREATE TABLESPACE";
    if (node == "DropTableSpaceStmt")
        return "DROP TABLESPACE";
    if (node == "AlterSystemStmt")
        return "ALTER SYSTEM";
    return "";
}

} // namespace

FileError SyntaxError(const std::string &file_name, size_t line, const char *message) {
    return FileError(file_name, line,
                     std::string(message ? message : "syntax error") +
                         " (keel parses files with PostgreSQL 15's grammar; psql "
                         "meta-commands such as \\d are not SQL)");
}

FileError NotInTransactionError(const std::string &file_name, size_t line,
                                const std::string &what) {
    return FileError(file_name, line,
                     what + " cannot run inside a transaction block; put it in a file of its own "
                            "that starts with -- keel:no-transaction");
}

FileError TransactionControlError(const std::string &file_name, size_t line,
                                  const std::string &statement_text) {
    std::string what = FirstTokenOffset(statement_text, 0) < statement_text.size()
                           ? statement_text.substr(FirstTokenOffset(statement_text, 0))
                           : statement_text;
    for (char &c : what)
        if (c == '\n' || c == '\r' || c == '\t')
            c = ' ';
    if (what.size() > 40)
        what = what.substr(0, 40) + "...";
    return FileError(file_name, line,
                     "transaction control \"" + what +
                         "\" inside a migration; keel runs each migration in one transaction (a "
                         "file may only wrap itself whole in BEGIN; ... COMMIT;), or use -- "
                         "keel:no-transaction");
}

FileError CopyWithoutEndError(const std::string &file_name, size_t line) {
    return FileError(file_name, line, "COPY ... FROM STDIN has no \\. line ending its data");
}

Script PrepareFile(const MigrationFile &file) {
    if (file.streamed)
        return PrepareStreamedScript(file);
    return PrepareScript(file.contents, file.file_name, !file.directives.no_transaction);
}

size_t LineAt(std::string_view text, size_t offset) {
    size_t line = 1;
    if (offset > text.size())
        offset = text.size();
    for (size_t i = 0; i < offset; ++i) {
        if (text[i] == '\n')
            ++line;
        else if (text[i] == '\r' && !(i + 1 < text.size() && text[i + 1] == '\n'))
            ++line;
    }
    return line;
}

size_t CharPositionToOffset(std::string_view text, long position) {
    size_t offset = 0;
    for (long chars = 1; chars < position && offset < text.size(); ++chars) {
        unsigned char c = static_cast<unsigned char>(text[offset]);
        size_t width = c < 0x80           ? 1
                       : (c >> 5) == 0x6  ? 2
                       : (c >> 4) == 0xe  ? 3
                       : (c >> 3) == 0x1e ? 4
                                          : 1;
        offset += width;
    }
    return offset > text.size() ? text.size() : offset;
}

size_t FirstTokenOffset(std::string_view text, size_t from) {
    size_t i = from;
    while (i < text.size()) {
        char c = text[i];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            ++i;
        } else if (c == '-' && i + 1 < text.size() && text[i + 1] == '-') {
            while (i < text.size() && text[i] != '\n' && text[i] != '\r')
                ++i;
        } else if (c == '/' && i + 1 < text.size() && text[i + 1] == '*') {
            /* SQL block comments nest. */
            int depth = 0;
            while (i < text.size()) {
                if (text[i] == '/' && i + 1 < text.size() && text[i + 1] == '*') {
                    ++depth;
                    i += 2;
                } else if (text[i] == '*' && i + 1 < text.size() && text[i + 1] == '/') {
                    i += 2;
                    if (--depth == 0)
                        break;
                } else {
                    ++i;
                }
            }
        } else {
            break;
        }
    }
    return i;
}

namespace {

/* IsWordAt: text[i..] starts with word (ASCII, case-insensitive), bounded by non-identifier
 * characters. */
bool IsWordAt(const std::string &text, size_t i, const char *word) {
    size_t n = strlen(word);
    if (i + n > text.size())
        return false;
    for (size_t k = 0; k < n; ++k)
        if (std::tolower(static_cast<unsigned char>(text[i + k])) != word[k])
            return false;
    auto ident = [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '_' ||
               static_cast<unsigned char>(c) >= 0x80;
    };
    return (i == 0 || !ident(text[i - 1])) && (i + n == text.size() || !ident(text[i + n]));
}

/* CopyBlock: the inline data of one COPY ... FROM STDIN. */
struct CopyBlock {
    size_t statement_end; /* offset of the ';' that ends the COPY statement */
    size_t data_begin;    /* first byte of the data (the line after the statement) */
    size_t data_end;      /* first byte of the "\." line */
    size_t block_end;     /* first byte after the "\." line */
};

/*
 * LastIsCopyFromStdin parses segment (complete statements) and reports whether
 * its last statement is COPY ... FROM STDIN (is_from, no file, no PROGRAM).
 */
bool LastIsCopyFromStdin(const std::string &segment) {
    ParseResult parsed(segment);
    if (parsed.result.error)
        return false;
    nlohmann::json tree = nlohmann::json::parse(parsed.result.parse_tree);
    const auto &stmts = tree.value("stmts", nlohmann::json::array());
    if (stmts.empty())
        return false;
    const auto &stmt = stmts.back().at("stmt");
    if (stmt.begin().key() != "CopyStmt")
        return false;
    const auto &body = stmt.begin().value();
    return HasTrueFlag(body, "is_from") && !body.contains("filename") &&
           !HasTrueFlag(body, "is_program");
}

bool MaskRestrictLines(std::string &sql);

/*
 * FindCopyBlocks finds every COPY ... FROM STDIN of contents whose data
 * follows inline, verified by the parser (a "copy" in a string, a comment
 * or an identifier is not one), and checks each data block ends in "\.".
 */
std::vector<CopyBlock> FindCopyBlocks(const std::string &contents, const std::string &file_name) {
    std::vector<CopyBlock> blocks;
    size_t segment = 0; /* statements never span a data block: parse from the last one */
    for (size_t i = 0; i < contents.size(); ++i) {
        if (!IsWordAt(contents, i, "copy"))
            continue;
        size_t semi = contents.find(';', i);
        if (semi == std::string::npos)
            break;
        bool from_stdin = false;
        for (size_t k = i + 4; k < semi && !from_stdin; ++k)
            if (IsWordAt(contents, k, "from")) {
                size_t j = k + 4;
                while (j < semi && std::isspace(static_cast<unsigned char>(contents[j])))
                    ++j;
                from_stdin = IsWordAt(contents, j, "stdin");
            }
        if (!from_stdin)
            continue;
        std::string statements = contents.substr(segment, semi + 1 - segment);
        MaskRestrictLines(statements); /* a pg_dump file's "\restrict KEY" line before */
        if (!LastIsCopyFromStdin(statements))
            continue;
        size_t nl = contents.find('\n', semi);
        size_t data_begin = nl == std::string::npos ? contents.size() : nl + 1;
        size_t p = data_begin;
        size_t data_end = std::string::npos, block_end = 0;
        while (p < contents.size()) {
            size_t eol = contents.find('\n', p);
            size_t line_end = eol == std::string::npos ? contents.size() : eol;
            std::string_view line(contents.data() + p, line_end - p);
            if (!line.empty() && line.back() == '\r')
                line.remove_suffix(1);
            if (line == "\\.") {
                data_end = p;
                block_end = eol == std::string::npos ? contents.size() : eol + 1;
                break;
            }
            p = eol == std::string::npos ? contents.size() : eol + 1;
        }
        if (data_end == std::string::npos)
            throw CopyWithoutEndError(file_name, LineAt(contents, i));
        blocks.push_back({semi, data_begin, data_end, block_end});
        segment = block_end;
        i = block_end - 1;
    }
    return blocks;
}

/* Masked is contents with every block's data and "\." line blanked, line breaks kept. */
std::string Masked(const std::string &contents, const std::vector<CopyBlock> &blocks) {
    std::string masked = contents;
    for (const CopyBlock &b : blocks)
        for (size_t k = b.data_begin; k < b.block_end; ++k)
            if (masked[k] != '\n' && masked[k] != '\r')
                masked[k] = ' ';
    return masked;
}

/*
 * MaskRestrictLines blanks in sql (inline COPY data already blanked) every
 * line "\restrict KEY" or "\unrestrict KEY" that stands between
 * statements: the psql meta-commands pg_dump writes around a plain-format
 * dump since PostgreSQL 15.14 (CVE-2025-8714). For psql they forbid other
 * meta-commands in between, which keel never runs; they are not SQL. The
 * lines are found as text, blanked, and then checked with libpg_query's
 * scanner (the key itself may not scan: "33qRV8" is trailing junk after a
 * number): a line inside a string, a dollar-quoted body or a comment, or
 * in the middle of a statement, is put back, and the parser then reports a
 * backslash outside a string. true when it blanked one.
 */
bool MaskRestrictLines(std::string &sql) {
    if (sql.find("restrict ") == std::string::npos)
        return false;
    struct Line {
        size_t begin, end; /* the backslash, the end of the line (before any \r) */
    };
    std::vector<Line> lines;
    for (size_t p = 0; p < sql.size();) {
        size_t eol = sql.find('\n', p);
        if (eol == std::string::npos)
            eol = sql.size();
        size_t b = sql.find_first_not_of(" \t", p);
        for (const char *cmd : {"\\restrict ", "\\unrestrict "})
            if (b < eol && sql.compare(b, std::strlen(cmd), cmd) == 0) {
                size_t e = eol;
                if (e > b && sql[e - 1] == '\r')
                    --e;
                lines.push_back({b, e});
            }
        p = eol + 1;
    }
    if (lines.empty())
        return false;
    std::string blanked = sql;
    for (const Line &l : lines)
        std::fill(blanked.begin() + static_cast<long>(l.begin),
                  blanked.begin() + static_cast<long>(l.end), ' ');
    std::vector<bool> keep(lines.size(), true);
    PgQueryScanResult scan = pg_query_scan(blanked.c_str());
    PgQuery__ScanResult *result =
        scan.error != nullptr
            ? nullptr
            : pg_query__scan_result__unpack(nullptr, scan.pbuf.len,
                                            reinterpret_cast<const uint8_t *>(scan.pbuf.data));
    pg_query_free_scan_result(scan);
    if (result != nullptr) { /* else the parser reports the file's error: blank them all */
        size_t t = 0;
        bool between = true; /* the last token before the line ends a statement (or none) */
        for (size_t i = 0; i < lines.size(); ++i) {
            for (; t < result->n_tokens &&
                   static_cast<size_t>(result->tokens[t]->end) <= lines[i].begin;
                 ++t) {
                const PgQuery__ScanToken *tok = result->tokens[t];
                if (tok->token != PG_QUERY__TOKEN__SQL_COMMENT &&
                    tok->token != PG_QUERY__TOKEN__C_COMMENT)
                    between = tok->end - tok->start == 1 && sql[tok->start] == ';';
            }
            bool inside = t < result->n_tokens &&
                          static_cast<size_t>(result->tokens[t]->start) < lines[i].begin;
            keep[i] = !inside && between;
        }
        pg_query__scan_result__free_unpacked(result, nullptr);
    }
    bool masked = false;
    for (size_t i = 0; i < lines.size(); ++i)
        if (keep[i]) {
            std::fill(sql.begin() + static_cast<long>(lines[i].begin),
                      sql.begin() + static_cast<long>(lines[i].end), ' ');
            masked = true;
        }
    return masked;
}

} // namespace

std::string MaskInlineCopyData(const std::string &contents, const std::string &file_name) {
    std::vector<CopyBlock> blocks = FindCopyBlocks(contents, file_name);
    std::string sql = blocks.empty() ? contents : Masked(contents, blocks);
    MaskRestrictLines(sql);
    return sql;
}

Script PrepareScript(const std::string &contents, const std::string &file_name,
                     bool transactional) {
    /* Inline COPY data is not SQL: parse with it blanked (lines kept, so
     * every offset and line number stays right), then hand it back. */
    std::vector<CopyBlock> blocks = FindCopyBlocks(contents, file_name);
    std::string masked = blocks.empty() ? contents : Masked(contents, blocks);
    const std::string *sql = &contents;
    if (MaskRestrictLines(masked) || !blocks.empty())
        sql = &masked;
    ParseResult parsed(*sql);
    if (parsed.result.error) {
        const PgQueryError *err = parsed.result.error;
        size_t offset = CharPositionToOffset(contents, err->cursorpos);
        throw SyntaxError(file_name, err->cursorpos > 0 ? LineAt(contents, offset) : 0,
                          err->message);
    }
    nlohmann::json tree = nlohmann::json::parse(parsed.result.parse_tree);

    Script script;
    struct Raw {
        Statement stmt;
        std::string txn_kind; /* TransactionStmt kind, "" otherwise */
        bool txn_options = false;
    };
    std::vector<Raw> raws;
    for (const auto &entry : tree.value("stmts", nlohmann::json::array())) {
        Raw raw;
        size_t location = entry.value("stmt_location", 0);
        size_t length = entry.value("stmt_len", 0);
        if (location > contents.size())
            location = contents.size();
        if (length == 0 || location + length > contents.size())
            length = contents.size() - location;
        raw.stmt.offset = location;
        raw.stmt.length = length;
        raw.stmt.line = LineAt(contents, FirstTokenOffset(*sql, location));
        raw.stmt.text = sql->substr(location, length);
        for (const CopyBlock &b : blocks)
            if (b.statement_end >= location && b.statement_end <= location + length) {
                raw.stmt.has_copy_data = true;
                raw.stmt.copy_data = contents.substr(b.data_begin, b.data_end - b.data_begin);
            }
        const auto &stmt = entry.at("stmt");
        raw.stmt.node = stmt.begin().key();
        const auto &body = stmt.begin().value();
        if (raw.stmt.node == "TransactionStmt") {
            raw.txn_kind = body.value("kind", "");
            raw.txn_options = body.contains("options") || HasTrueFlag(body, "chain");
        }
        if (transactional) {
            std::string refused = NotInTransactionBlock(raw.stmt.node, body);
            if (!refused.empty())
                throw NotInTransactionError(file_name, raw.stmt.line, refused);
        }
        raws.push_back(std::move(raw));
    }

    if (transactional && raws.size() >= 2) {
        const Raw &first = raws.front();
        const Raw &last = raws.back();
        bool opens =
            (first.txn_kind == "TRANS_STMT_BEGIN" || first.txn_kind == "TRANS_STMT_START") &&
            !first.txn_options;
        bool closes = last.txn_kind == "TRANS_STMT_COMMIT" && !last.txn_options;
        if (opens && closes) {
            raws.erase(raws.end() - 1);
            raws.erase(raws.begin());
            script.unwrapped = true;
        }
    }
    for (auto &raw : raws) {
        if (transactional && !raw.txn_kind.empty() && raw.txn_kind != "TRANS_STMT_SAVEPOINT" &&
            raw.txn_kind != "TRANS_STMT_RELEASE" && raw.txn_kind != "TRANS_STMT_ROLLBACK_TO") {
            throw TransactionControlError(file_name, raw.stmt.line, raw.stmt.text);
        }
        script.statements.push_back(std::move(raw.stmt));
    }
    return script;
}

} // namespace keel::client
