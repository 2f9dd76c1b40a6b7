/*
 * client/lib/sql_fast_check.cpp
 *   See sql_fast_check.hpp. The token rules are PostgreSQL 15's scanner
 *   (src/backend/parser/scan.l: identifiers, numeric literals with the
 *   PG 15 "trailing junk" check, standard and E'' strings), the grammar is
 *   gram.y's InsertStmt / insert_target / values_clause, narrowed.
 */
#include "lib/sql_fast_check.hpp"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

namespace keel::client {

namespace {

bool IsIdentStart(unsigned char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c >= 0x80;
}

bool IsIdentCont(unsigned char c) {
    return IsIdentStart(c) || (c >= '0' && c <= '9') || c == '$';
}

bool IsDigit(unsigned char c) {
    return c >= '0' && c <= '9';
}

/* Cursor walks one statement's text. */
struct Cursor {
    std::string_view s;
    size_t i = 0;

    bool End() const { return i >= s.size(); }
    unsigned char At(size_t k = 0) const {
        return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0;
    }

    /* Space skips white space and -- comments; false on a block comment (not sure). */
    bool Space() {
        while (i < s.size()) {
            char c = s[i];
            if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
                ++i;
            } else if (c == '-' && At(1) == '-') {
                while (i < s.size() && s[i] != '\n' && s[i] != '\r')
                    ++i;
            } else if (c == '/' && At(1) == '*') {
                return false;
            } else {
                break;
            }
        }
        return true;
    }

    /* Word reads an unquoted identifier or keyword (may be empty). */
    std::string_view Word() {
        size_t b = i;
        if (i < s.size() && IsIdentStart(At()))
            while (i < s.size() && IsIdentCont(At()))
                ++i;
        return s.substr(b, i - b);
    }

    /* Keyword: the next token is exactly word (ASCII, any case). */
    bool Keyword(const char *word) {
        size_t save = i;
        std::string_view w = Word();
        size_t n = 0;
        for (; word[n]; ++n)
            if (n >= w.size() || (w[n] | 0x20) != word[n]) {
                i = save;
                return false;
            }
        if (n != w.size()) {
            i = save;
            return false;
        }
        return true;
    }

    bool Char(char c) {
        if (At() != static_cast<unsigned char>(c) || End())
            return false;
        ++i;
        return true;
    }

    /* QuotedIdentifier reads "..." ("" doubled), not empty. */
    bool QuotedIdentifier() {
        if (!Char('"'))
            return false;
        size_t length = 0;
        while (i < s.size()) {
            if (s[i] == '"') {
                if (At(1) == '"') {
                    i += 2;
                    ++length;
                    continue;
                }
                ++i;
                return length > 0;
            }
            ++i;
            ++length;
        }
        return false;
    }

    /* String reads '...' ('' doubled; backslash is an ordinary character). */
    bool String() {
        if (!Char('\''))
            return false;
        while (i < s.size()) {
            if (s[i] == '\'') {
                if (At(1) == '\'') {
                    i += 2;
                    continue;
                }
                ++i;
                return true;
            }
            ++i;
        }
        return false;
    }

    /* EscapeString reads E'...' with only \\ \' \" \b \f \n \r \t escapes. */
    bool EscapeString() {
        if (!((At() == 'e' || At() == 'E') && At(1) == '\''))
            return false;
        i += 2;
        while (i < s.size()) {
            char c = s[i];
            if (c == '\'') {
                if (At(1) == '\'') {
                    i += 2;
                    continue;
                }
                ++i;
                return true;
            }
            if (c == '\\') {
                unsigned char e = At(1);
                if (e != '\\' && e != '\'' && e != '"' && e != 'b' && e != 'f' && e != 'n' &&
                    e != 'r' && e != 't')
                    return false;
                i += 2;
                continue;
            }
            ++i;
        }
        return false;
    }

    /* Number reads [+-]digits[.digits][e[+-]digits] with nothing word-like after it. */
    bool Number() {
        size_t save = i;
        if (At() == '+' || At() == '-')
            ++i;
        size_t digits = 0;
        while (IsDigit(At())) {
            ++i;
            ++digits;
        }
        if (At() == '.') {
            ++i;
            while (IsDigit(At())) {
                ++i;
                ++digits;
            }
        }
        if (digits == 0) {
            i = save;
            return false;
        }
        if (At() == 'e' || At() == 'E') {
            ++i;
            if (At() == '+' || At() == '-')
                ++i;
            if (!IsDigit(At()))
                return false;
            while (IsDigit(At()))
                ++i;
        }
        /* PostgreSQL 15: "trailing junk after numeric literal" */
        return !(IsIdentCont(At()) || At() == '.');
    }
};

} // namespace

bool PlainInsertCheck::ColIdWord(std::string_view word) {
    std::string key(word);
    for (char &c : key)
        if (c >= 'A' && c <= 'Z')
            c = char(c - 'A' + 'a');
    auto it = col_id_.find(key);
    if (it != col_id_.end())
        return it->second;
    if (col_id_.size() >= 4096)
        return false;
    bool ok = false;
    PgQueryScanResult scan = pg_query_scan(key.c_str());
    if (!scan.error) {
        PgQuery__ScanResult *tokens = pg_query__scan_result__unpack(
            nullptr, scan.pbuf.len, reinterpret_cast<const uint8_t *>(scan.pbuf.data));
        if (tokens && tokens->n_tokens == 1 && tokens->tokens[0]->start == 0 &&
            size_t(tokens->tokens[0]->end) == key.size()) {
            PgQuery__ScanToken *t = tokens->tokens[0];
            ok = (t->token == PG_QUERY__TOKEN__IDENT &&
                  t->keyword_kind == PG_QUERY__KEYWORD_KIND__NO_KEYWORD) ||
                 t->keyword_kind == PG_QUERY__KEYWORD_KIND__UNRESERVED_KEYWORD ||
                 t->keyword_kind == PG_QUERY__KEYWORD_KIND__COL_NAME_KEYWORD;
        }
        if (tokens)
            pg_query__scan_result__free_unpacked(tokens, nullptr);
    }
    pg_query_free_scan_result(scan);
    col_id_.emplace(std::move(key), ok);
    return ok;
}

bool PlainInsertCheck::SurelyValid(std::string_view text) {
    Cursor c{text};
    auto name = [&]() {
        if (c.At() == '"')
            return c.QuotedIdentifier();
        std::string_view w = c.Word();
        return !w.empty() && ColIdWord(w);
    };
    auto value = [&]() {
        unsigned char ch = c.At();
        if (ch == '\'')
            return c.String();
        if ((ch == 'e' || ch == 'E') && c.At(1) == '\'')
            return c.EscapeString();
        if (IsDigit(ch) || ch == '.' || ch == '+' || ch == '-')
            return c.Number();
        return c.Keyword("null") || c.Keyword("true") || c.Keyword("false") || c.Keyword("default");
    };
    if (!c.Space() || !c.Keyword("insert") || !c.Space() || !c.Keyword("into") || !c.Space() ||
        !name())
        return false;
    if (c.Char('.') && !name())
        return false;
    if (!c.Space())
        return false;
    if (c.Char('(')) {
        do {
            if (!c.Space() || !name() || !c.Space())
                return false;
        } while (c.Char(','));
        if (!c.Char(')') || !c.Space())
            return false;
    }
    if (!c.Keyword("values"))
        return false;
    do {
        if (!c.Space() || !c.Char('('))
            return false;
        do {
            if (!c.Space() || !value() || !c.Space())
                return false;
        } while (c.Char(','));
        if (!c.Char(')') || !c.Space())
            return false;
    } while (c.Char(','));
    return c.End();
}

} // namespace keel::client
