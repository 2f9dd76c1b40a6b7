/*
 * client/lib/token_checksum.cpp
 *   See token_checksum.hpp.
 */
#include "lib/token_checksum.hpp"

#include "lib/checksum.hpp"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

namespace keel::client {

std::optional<std::string> TokenChecksum(std::string_view contents, const Directives &directives) {
    std::string text = NormalizeLineEndings(contents);
    std::string stream = "keel-tokens-1\n";
    stream += directives.no_transaction ? "no-transaction\n" : "";
    for (const auto &v : directives.supersedes)
        stream += "supersedes " + v + "\n";
    if (directives.allow_destructive_reason)
        stream += "allow-destructive " + *directives.allow_destructive_reason + "\n";
    stream += '\0';

    PgQueryScanResult scan = pg_query_scan(text.c_str());
    if (scan.error != nullptr) {
        pg_query_free_scan_result(scan);
        return std::nullopt;
    }
    PgQuery__ScanResult *result = pg_query__scan_result__unpack(
        nullptr, scan.pbuf.len, reinterpret_cast<const uint8_t *>(scan.pbuf.data));
    pg_query_free_scan_result(scan);
    if (result == nullptr)
        return std::nullopt;
    bool ok = true;
    for (size_t i = 0; i < result->n_tokens; ++i) {
        const PgQuery__ScanToken *t = result->tokens[i];
        if (t->token == PG_QUERY__TOKEN__SQL_COMMENT || t->token == PG_QUERY__TOKEN__C_COMMENT)
            continue;
        if (t->start < 0 || t->end < t->start || static_cast<size_t>(t->end) > text.size()) {
            ok = false;
            break;
        }
        /* each token's text, then a NUL: "a b" and "ab" differ. Keywords and
         * unquoted identifiers are case-folded as PostgreSQL folds them. */
        std::string token = text.substr(t->start, t->end - t->start);
        bool fold = t->keyword_kind != PG_QUERY__KEYWORD_KIND__NO_KEYWORD ||
                    (t->token == PG_QUERY__TOKEN__IDENT && !token.empty() && token[0] != '"');
        if (fold)
            for (char &c : token)
                if (c >= 'A' && c <= 'Z')
                    c = static_cast<char>(c - 'A' + 'a');
        stream += token;
        stream += '\0';
    }
    pg_query__scan_result__free_unpacked(result, nullptr);
    if (!ok)
        return std::nullopt;
    return Sha256Hex(stream);
}

} // namespace keel::client
