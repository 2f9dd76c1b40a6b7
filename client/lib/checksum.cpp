/*
 * client/lib/checksum.cpp
 *   See checksum.hpp.
 */
#include "lib/checksum.hpp"

#include <openssl/evp.h>

#include <cstring>
#include <memory>
#include <stdexcept>

namespace keel::client {

std::string NormalizeLineEndings(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (c == '\r') {
            out.push_back('\n');
            if (i + 1 < text.size() && text[i + 1] == '\n')
                ++i;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::string Sha256Hex(std::string_view data) {
    /* Fetched once: EVP_sha256() in EVP_DigestInit_ex makes OpenSSL 3 look the algorithm up on
     * every call, most of the cost of a small file's digest (keel status over 10,000 files). */
    static EVP_MD *const fetched = EVP_MD_fetch(nullptr, "SHA256", nullptr);
    const EVP_MD *md = fetched ? fetched : EVP_sha256();
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1 ||
        EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
        EVP_DigestFinal_ex(ctx.get(), digest, &length) != 1)
        throw std::runtime_error("OpenSSL could not compute a SHA-256 digest");
    static const char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(length * 2);
    for (unsigned int i = 0; i < length; ++i) {
        out.push_back(hex[digest[i] >> 4]);
        out.push_back(hex[digest[i] & 0x0f]);
    }
    return out;
}

namespace {

std::string Hex(const unsigned char *digest, unsigned int length) {
    static const char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(length * 2);
    for (unsigned int i = 0; i < length; ++i) {
        out.push_back(hex[digest[i] >> 4]);
        out.push_back(hex[digest[i] & 0x0f]);
    }
    return out;
}

} // namespace

ChecksumStream::ChecksumStream() : ctx_(EVP_MD_CTX_new(), &EVP_MD_CTX_free) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1)
        throw std::runtime_error("OpenSSL could not start a SHA-256 digest");
}

void ChecksumStream::Update(std::string_view piece) {
    /* NormalizeLineEndings, with the CR of a CRLF split between pieces remembered; the runs
     * between CRs are hashed in place (most files have none) */
    auto hash = [this](const char *data, size_t n) {
        if (n && EVP_DigestUpdate(ctx_.get(), data, n) != 1)
            throw std::runtime_error("OpenSSL could not compute a SHA-256 digest");
    };
    size_t i = 0;
    if (after_cr_ && !piece.empty() && piece[0] == '\n')
        i = 1;
    while (i < piece.size()) {
        const void *cr = std::memchr(piece.data() + i, '\r', piece.size() - i);
        size_t end = cr ? size_t(static_cast<const char *>(cr) - piece.data()) : piece.size();
        hash(piece.data() + i, end - i);
        if (!cr)
            break;
        hash("\n", 1);
        i = end + 1;
        if (i < piece.size() && piece[i] == '\n')
            ++i;
    }
    if (!piece.empty())
        after_cr_ = piece.back() == '\r';
}

std::string ChecksumStream::Final() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), digest, &length) != 1)
        throw std::runtime_error("OpenSSL could not compute a SHA-256 digest");
    return Hex(digest, length);
}

std::string MigrationChecksum(std::string_view contents) {
    ChecksumStream sum;
    sum.Update(contents);
    return sum.Final();
}

} // namespace keel::client
