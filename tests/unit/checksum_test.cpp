/*
 * tests/unit/checksum_test.cpp
 *   Migration checksums: SHA-256 (known vectors) of the file with CRLF and
 *   lone CR normalised to LF (DESIGN.md, "Contract", Migrations).
 */
#include "lib/checksum.hpp"

#include <gtest/gtest.h>

namespace kc = keel::client;

TEST(Checksum, Sha256KnownVectors) {
    EXPECT_EQ(kc::Sha256Hex(""),
              "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    EXPECT_EQ(kc::Sha256Hex("abc"),
              "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(kc::Sha256Hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
              "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

TEST(Checksum, IsLowercaseHexOf64) {
    std::string sum = kc::MigrationChecksum("CREATE TABLE t (id int);\n");
    ASSERT_EQ(sum.size(), 64u);
    for (char c : sum)
        EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << sum;
}

TEST(Checksum, NormalisesLineEndings) {
    EXPECT_EQ(kc::NormalizeLineEndings("a\r\nb\rc\nd"), "a\nb\nc\nd");
    EXPECT_EQ(kc::NormalizeLineEndings("\r\r\n\n"), "\n\n\n");
    EXPECT_EQ(kc::NormalizeLineEndings("no newline"), "no newline");
    EXPECT_EQ(kc::NormalizeLineEndings(""), "");
}

TEST(Checksum, CrlfEqualsLfEqualsCr) {
    std::string lf = "-- m\nCREATE TABLE t (id int);\nSELECT 1;\n";
    std::string crlf = "-- m\r\nCREATE TABLE t (id int);\r\nSELECT 1;\r\n";
    std::string cr = "-- m\rCREATE TABLE t (id int);\rSELECT 1;\r";
    std::string mixed = "-- m\r\nCREATE TABLE t (id int);\rSELECT 1;\n";
    EXPECT_EQ(kc::MigrationChecksum(lf), kc::MigrationChecksum(crlf));
    EXPECT_EQ(kc::MigrationChecksum(lf), kc::MigrationChecksum(cr));
    EXPECT_EQ(kc::MigrationChecksum(lf), kc::MigrationChecksum(mixed));
    EXPECT_EQ(kc::MigrationChecksum(lf), kc::Sha256Hex(lf));
}

TEST(Checksum, RealEditsChangeIt) {
    std::string base = "SELECT 1;\n";
    EXPECT_NE(kc::MigrationChecksum(base), kc::MigrationChecksum("SELECT 1; \n"));
    EXPECT_NE(kc::MigrationChecksum(base), kc::MigrationChecksum("SELECT 1;"));
    EXPECT_NE(kc::MigrationChecksum(base), kc::MigrationChecksum("SELECT 2;\n"));
    /* CRLF is one line ending, not two. */
    EXPECT_NE(kc::MigrationChecksum("a\r\nb"), kc::MigrationChecksum("a\n\nb"));
}
