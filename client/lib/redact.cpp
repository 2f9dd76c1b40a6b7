/*
 * client/lib/redact.cpp
 *   See redact.hpp.
 */
#include "lib/redact.hpp"

#include <algorithm>
#include <cctype>

namespace keel::client {

namespace {

constexpr const char *kMask = "********";

bool IsUri(const std::string &s) {
    return s.rfind("postgresql://", 0) == 0 || s.rfind("postgres://", 0) == 0;
}

std::string PercentDecode(const std::string &s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '%' && i + 2 < s.size() &&
            std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
            std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
            out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

/* A span [begin, end) of conninfo holding a password value as written. */
struct Span {
    size_t begin, end;
};

void UriSpans(const std::string &s, size_t offset, std::vector<Span> *spans);
void KeywordSpans(const std::string &s, size_t offset, std::vector<Span> *spans);

void AllSpans(const std::string &s, size_t offset, std::vector<Span> *spans) {
    if (IsUri(s))
        UriSpans(s, offset, spans);
    else
        KeywordSpans(s, offset, spans);
}

void UriSpans(const std::string &s, size_t offset, std::vector<Span> *spans) {
    size_t start = s.find("://") + 3;
    size_t query = s.find('?', start);
    size_t auth_end = query == std::string::npos ? s.size() : query;
    /* userinfo ends at the last '@' before the query: user:password@host */
    size_t at = s.rfind('@', auth_end == 0 ? 0 : auth_end - 1);
    if (at != std::string::npos && at >= start) {
        size_t colon = s.find(':', start);
        if (colon != std::string::npos && colon < at)
            spans->push_back({offset + colon + 1, offset + at});
    }
    if (query == std::string::npos)
        return;
    size_t p = query + 1;
    while (p <= s.size()) {
        size_t amp = s.find('&', p);
        size_t end = amp == std::string::npos ? s.size() : amp;
        std::string pair = s.substr(p, end - p);
        size_t eq = pair.find('=');
        if (eq != std::string::npos) {
            std::string key = PercentDecode(pair.substr(0, eq));
            if (key == "password")
                spans->push_back({offset + p + eq + 1, offset + end});
            else if (key == "dbname") {
                std::string value = PercentDecode(pair.substr(eq + 1));
                if (IsUri(value) || value.find('=') != std::string::npos) {
                    /* nested, and percent-encoded: redact the decoded spans by value */
                    std::vector<Span> inner;
                    AllSpans(value, 0, &inner);
                    if (!inner.empty())
                        spans->push_back({offset + p + eq + 1, offset + end});
                }
            }
        }
        if (amp == std::string::npos)
            break;
        p = amp + 1;
    }
}

void KeywordSpans(const std::string &s, size_t offset, std::vector<Span> *spans) {
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])))
            ++i;
        size_t key_begin = i;
        while (i < s.size() && s[i] != '=' && !std::isspace(static_cast<unsigned char>(s[i])))
            ++i;
        std::string key = s.substr(key_begin, i - key_begin);
        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])))
            ++i;
        if (i >= s.size() || s[i] != '=') {
            /* not key=value: skip the word */
            while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i])))
                ++i;
            continue;
        }
        ++i; /* '=' */
        while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i])))
            ++i;
        size_t value_begin = i, value_end;
        std::string value;
        if (i < s.size() && s[i] == '\'') {
            ++i;
            while (i < s.size() && s[i] != '\'') {
                if (s[i] == '\\' && i + 1 < s.size())
                    ++i;
                value += s[i++];
            }
            if (i < s.size())
                ++i; /* closing quote */
            value_end = i;
        } else {
            while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) {
                if (s[i] == '\\' && i + 1 < s.size())
                    ++i;
                value += s[i++];
            }
            value_end = i;
        }
        if (key == "password")
            spans->push_back({offset + value_begin, offset + value_end});
        else if (key == "dbname" && (IsUri(value) || value.find('=') != std::string::npos)) {
            std::vector<Span> inner;
            AllSpans(value, 0, &inner);
            if (!inner.empty())
                spans->push_back({offset + value_begin, offset + value_end});
        }
    }
}

/* Decoded spellings of one raw value: unquoted, unescaped, percent-decoded. */
void Spellings(const std::string &raw, std::vector<std::string> *out) {
    std::string v = raw;
    out->push_back(v);
    if (v.size() >= 2 && v.front() == '\'' && v.back() == '\'')
        v = v.substr(1, v.size() - 2);
    std::string unescaped;
    for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '\\' && i + 1 < v.size())
            ++i;
        unescaped += v[i];
    }
    out->push_back(v);
    out->push_back(unescaped);
    out->push_back(PercentDecode(v));
    out->push_back(PercentDecode(unescaped));
}

void ReplaceAll(std::string *text, const std::string &from, const std::string &to) {
    if (from.empty())
        return;
    size_t pos = 0;
    while ((pos = text->find(from, pos)) != std::string::npos) {
        text->replace(pos, from.size(), to);
        pos += to.size();
    }
}

} // namespace

std::vector<std::string> PasswordValues(const std::string &conninfo) {
    std::vector<Span> spans;
    AllSpans(conninfo, 0, &spans);
    std::vector<std::string> values;
    for (const Span &sp : spans) {
        std::string raw = conninfo.substr(sp.begin, sp.end - sp.begin);
        Spellings(raw, &values);
        /* a nested connection string (dbname=...): its own passwords too */
        std::string decoded = PercentDecode(raw);
        if (decoded.size() >= 2 && decoded.front() == '\'' && decoded.back() == '\'')
            decoded = decoded.substr(1, decoded.size() - 2);
        if (IsUri(decoded) || decoded.find('=') != std::string::npos)
            for (const std::string &v : PasswordValues(decoded))
                values.push_back(v);
    }
    values.erase(std::remove_if(values.begin(), values.end(),
                                [](const std::string &v) { return v.empty(); }),
                 values.end());
    std::sort(values.begin(), values.end(),
              [](const std::string &a, const std::string &b) { return a.size() > b.size(); });
    values.erase(std::unique(values.begin(), values.end()), values.end());
    return values;
}

std::string RedactConninfo(const std::string &conninfo) {
    std::vector<Span> spans;
    AllSpans(conninfo, 0, &spans);
    std::sort(spans.begin(), spans.end(),
              [](const Span &a, const Span &b) { return a.begin > b.begin; });
    std::string out = conninfo;
    for (const Span &sp : spans)
        out.replace(sp.begin, sp.end - sp.begin, kMask);
    return out;
}

std::string RedactSecrets(const std::string &text, const std::string &conninfo) {
    std::vector<std::string> values = PasswordValues(conninfo);
    if (values.empty())
        return text;
    std::string out = text;
    ReplaceAll(&out, conninfo, RedactConninfo(conninfo));
    for (const std::string &v : values)
        ReplaceAll(&out, v, kMask);
    return out;
}

} // namespace keel::client
