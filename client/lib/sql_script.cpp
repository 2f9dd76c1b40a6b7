/*
 * client/lib/sql_script.cpp
 *   See sql_script.hpp. Uses pg_query_parse()'s JSON parse tree (libpg_query
 *   15-4.0): stmts[i].stmt_location / stmt_len are byte offsets (omitted when
 *   0, stmt_len 0 meaning "to the end"); error cursorpos counts characters.
 */
#include "lib/sql_script.hpp"

#include <nlohmann/json.hpp>
#include <pg_query.h>

#include <memory>

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

Script PrepareScript(const std::string &contents, const std::string &file_name,
                     bool transactional) {
    ParseResult parsed(contents);
    if (parsed.result.error) {
        const PgQueryError *err = parsed.result.error;
        size_t offset = CharPositionToOffset(contents, err->cursorpos);
        throw FileError(file_name, err->cursorpos > 0 ? LineAt(contents, offset) : 0,
                        std::string(err->message ? err->message : "syntax error") +
                            " (keel parses files with PostgreSQL 15's grammar; psql "
                            "meta-commands such as \\d are not SQL)");
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
        raw.stmt.line = LineAt(contents, FirstTokenOffset(contents, location));
        raw.stmt.text = contents.substr(location, length);
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
                throw FileError(file_name, raw.stmt.line,
                                refused +
                                    " cannot run inside a transaction block; put it in a file of "
                                    "its own that starts with -- keel:no-transaction");
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
            std::string what = FirstTokenOffset(raw.stmt.text, 0) < raw.stmt.text.size()
                                   ? raw.stmt.text.substr(FirstTokenOffset(raw.stmt.text, 0))
                                   : raw.stmt.text;
            for (char &c : what)
                if (c == '\n' || c == '\r' || c == '\t')
                    c = ' ';
            if (what.size() > 40)
                what = what.substr(0, 40) + "...";
            throw FileError(file_name, raw.stmt.line,
                            "transaction control \"" + what +
                                "\" inside a migration; keel runs each migration in one "
                                "transaction (a file may only wrap itself whole in BEGIN; ... "
                                "COMMIT;), or use -- keel:no-transaction");
        }
        script.statements.push_back(std::move(raw.stmt));
    }
    return script;
}

} // namespace keel::client
