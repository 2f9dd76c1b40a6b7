/*
 * client/lib/sql_fast_check.hpp
 *   A fast, conservative syntax check for the statement that fills large
 *   data files: INSERT INTO name [(columns)] VALUES (literals), ... as
 *   pg_dump --inserts / --column-inserts writes it. libpg_query 15-4.0 as
 *   packaged parses about 8 MB/s of such statements (measured: 100-150 ms per
 *   MiB), so validating a 212 MB file with it alone would take longer than
 *   psql takes to run it (issue 12: within 1.2x of psql -f). A statement
 *   this check accepts is certainly valid PostgreSQL 15 syntax and certainly
 *   no transaction control; anything else (a keyword it does not know,
 *   a cast, a function call, ON CONFLICT, a comment inside ...) is "not
 *   sure" and goes to libpg_query. A differential unit test holds it to that
 *   (tests/unit/sql_stream_test.cpp).
 */
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>

namespace keel::client {

/*
 * PlainInsertCheck recognises plain INSERT ... VALUES statements (see the
 * file comment). Names are checked against PostgreSQL's keyword list through
 * libpg_query's scanner (pg_query_scan), once per distinct name (cached, at
 * most 4096 names; beyond, names not cached are "not sure").
 */
class PlainInsertCheck {
  public:
    /*
     * SurelyValid returns true only when text (one statement, without its
     * ';', maybe with leading white space and -- comments) is
     *   INSERT INTO name[.name] [( name, ... )] VALUES row [, row ...]
     *   row:   ( value [, value ...] )
     *   value: [+|-]number | 'string' | E'string' (simple escapes only)
     *          | NULL | TRUE | FALSE | DEFAULT
     *   name:  an identifier that is no keyword, an unreserved or column-name
     *          keyword (ColId in gram.y), or a "quoted identifier"
     * with white space or -- comments between tokens. false means "not sure".
     */
    bool SurelyValid(std::string_view text);

  private:
    /* ColIdWord: word (unquoted, as written) may be a ColId; asks pg_query_scan once. */
    bool ColIdWord(std::string_view word);
    std::unordered_map<std::string, bool> col_id_;
};

} // namespace keel::client
