/*
 * client/lib/checksum.cpp
 *   See checksum.hpp.
 */
#include "lib/checksum.hpp"

#include <openssl/evp.h>

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

std::string MigrationChecksum(std::string_view contents) {
    return Sha256Hex(NormalizeLineEndings(contents));
}

} // namespace keel::client
