/*
 * tests/unit/redact_test.cpp
 *   client/lib/redact.hpp: every password form of a connection string is
 *   found by structure and redacted (issue 12, "A password given in --db or
 *   DATABASE_URL never appears in any output").
 */
#include "lib/redact.hpp"

#include <gtest/gtest.h>

using keel::client::PasswordValues;
using keel::client::RedactConninfo;
using keel::client::RedactSecrets;

namespace {

bool Leaks(const std::string &text) {
    return text.find("s3cr3tpw") != std::string::npos ||
           text.find("s3cr%33tpw") != std::string::npos || text.find("s3cr") != std::string::npos;
}

/* What libpq prints for a malformed URI: the whole string, quoted. */
std::string LibpqUriError(const std::string &uri) {
    return "end of string reached when looking for matching \"]\" in IPv6 host address in URI: \"" +
           uri + "\"";
}

} // namespace

TEST(Redact, UriUserinfo) {
    std::string uri = "postgresql://alice:s3cr3tpw@[bad";
    EXPECT_EQ(RedactConninfo(uri), "postgresql://alice:********@[bad");
    EXPECT_FALSE(Leaks(RedactSecrets(LibpqUriError(uri), uri)));
}

TEST(Redact, UriPercentEncodedPasswordIsRedactedAsWrittenAndDecoded) {
    std::string uri = "postgresql://alice:s3cr%33tpw@[bad";
    std::vector<std::string> values = PasswordValues(uri);
    EXPECT_NE(std::find(values.begin(), values.end(), "s3cr%33tpw"), values.end());
    EXPECT_NE(std::find(values.begin(), values.end(), "s3cr3tpw"), values.end());
    EXPECT_FALSE(Leaks(RedactSecrets(LibpqUriError(uri), uri)));
    /* a message that shows the decoded password is redacted too */
    EXPECT_FALSE(Leaks(RedactSecrets("password s3cr3tpw rejected", uri)));
}

TEST(Redact, UriQueryParameter) {
    std::string uri = "postgresql://[bad/x?sslmode=disable&password=s3cr3tpw&application_name=x";
    EXPECT_EQ(RedactConninfo(uri),
              "postgresql://[bad/x?sslmode=disable&password=********&application_name=x");
    EXPECT_FALSE(Leaks(RedactSecrets(LibpqUriError(uri), uri)));
    std::string last = "postgresql://[bad/x?password=s3cr3tpw";
    EXPECT_FALSE(Leaks(RedactSecrets(LibpqUriError(last), last)));
}

TEST(Redact, UriPasswordWithAtSign) {
    std::string uri = "postgres://alice:s3cr@3tpw@db.example.com/app";
    EXPECT_EQ(RedactConninfo(uri), "postgres://alice:********@db.example.com/app");
}

TEST(Redact, KeywordForms) {
    for (const std::string &ci :
         {std::string("host=db password=s3cr3tpw port=5432"), std::string("password = s3cr3tpw"),
          std::string("host=db password='s3cr3tpw' user=alice"),
          std::string("host=db password='s3cr\\'3tpw' user=alice"),
          std::string("password=s3cr3tpw")}) {
        std::string redacted = RedactConninfo(ci);
        EXPECT_FALSE(Leaks(redacted)) << ci << " -> " << redacted;
        EXPECT_FALSE(Leaks(RedactSecrets("invalid connection option in \"" + ci + "\"", ci))) << ci;
    }
    EXPECT_EQ(RedactConninfo("host=db password='a b' user=x"), "host=db password=******** user=x");
}

TEST(Redact, NestedDbnameUri) {
    std::string ci = "dbname=postgresql://bob:s3cr3tpw@db/app connect_timeout=2";
    EXPECT_FALSE(Leaks(RedactConninfo(ci)));
    EXPECT_FALSE(Leaks(RedactSecrets(LibpqUriError("postgresql://bob:s3cr3tpw@db/app"), ci)));
}

TEST(Redact, NoPasswordLeavesTextAlone) {
    std::string ci = "host=db user=alice dbname=app";
    EXPECT_TRUE(PasswordValues(ci).empty());
    EXPECT_EQ(RedactSecrets("could not connect to host=db user=alice dbname=app", ci),
              "could not connect to host=db user=alice dbname=app");
    EXPECT_EQ(RedactConninfo("postgresql://alice@db/app"), "postgresql://alice@db/app");
}
