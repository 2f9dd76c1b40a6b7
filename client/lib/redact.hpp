/*
 * client/lib/redact.hpp
 *   Passwords never leave the client. libpq quotes a malformed URI whole in
 *   its error message ("... in URI: \"postgresql://alice:secret@[bad\""), so
 *   every text keel prints that could carry the connection string goes
 *   through RedactSecrets first.
 *
 *   Redaction is by structure, not by searching for one spelling of the
 *   password: the connection string is parsed the way libpq reads it
 *   (libpq docs 34.1.1, "Connection Strings": keyword/value pairs with
 *   single-quoted values and backslash escapes; URIs with userinfo
 *   user:password@ and query parameters, percent-encoded), every password
 *   value is found in every form it can take (as written, percent-decoded,
 *   unquoted), and each of them, plus the whole connection string, is
 *   replaced wherever it appears.
 */
#pragma once

#include <string>
#include <vector>

namespace keel::client {

/*
 * PasswordValues returns every spelling of every password in conninfo:
 * the raw text as written and its decoded form (URI percent-decoding,
 * keyword-form unquoting), for the URI userinfo, the URI query parameter
 * password=, the keyword password=, and a URI or conninfo nested in
 * dbname=. Works on malformed input too (nothing here needs it to parse).
 */
std::vector<std::string> PasswordValues(const std::string &conninfo);

/* RedactConninfo is conninfo with every password value replaced by "********". */
std::string RedactConninfo(const std::string &conninfo);

/*
 * RedactSecrets returns text with the whole conninfo (when it holds a
 * password) replaced by RedactConninfo(conninfo), and every password
 * spelling of PasswordValues(conninfo) replaced by "********".
 */
std::string RedactSecrets(const std::string &text, const std::string &conninfo);

} // namespace keel::client
