/*
 * extension/pg/error.hpp
 *   keel::Error, the one C++ exception type of keel.so. It carries what an
 *   ereport() needs (SQLSTATE, message, DETAIL, HINT) so nothing is lost when
 *   an error crosses the C++ <-> PostgreSQL boundary in either direction.
 *
 * Pure C++: safe to include from files that never see postgres.h.
 */
#pragma once

#include <stdexcept>
#include <string>

namespace keel {

/*
 * SqlState encodes a five-character SQLSTATE exactly as PostgreSQL's
 * MAKE_SQLSTATE() does (src/include/utils/elog.h), so C++-only code can name
 * codes such as "KL001" without including postgres.h.
 */
constexpr int SqlState(const char (&code)[6]) {
    return ((code[0] - '0') & 0x3F) + (((code[1] - '0') & 0x3F) << 6) +
           (((code[2] - '0') & 0x3F) << 12) + (((code[3] - '0') & 0x3F) << 18) +
           (((code[4] - '0') & 0x3F) << 24);
}

/* keel's own SQLSTATEs (class KL). Documented in README.md. */
constexpr int kBlockedDdl = SqlState("KL001");          /* destructive DDL refused by the guard */
constexpr int kInsufficientCredits = SqlState("KL002"); /* consumption would overdraw */
constexpr int kIdempotencyConflict = SqlState("KL003"); /* key reused with other arguments */
constexpr int kMigrationLockHeld = SqlState("KL004");   /* another runner holds the lock */
constexpr int kMigrationConflict = SqlState("KL005");   /* history disagrees with the request */
constexpr int kRefundTooLarge = SqlState("KL006"); /* refund above what a consumption has left (PL/pgSQL) */

/* PostgreSQL SQLSTATEs keel raises from C++-only code (errcodes.txt). */
constexpr int kInvalidParameterValue = SqlState("22023");
constexpr int kNumericValueOutOfRange = SqlState("22003");
constexpr int kNullValueNotAllowed = SqlState("22004");
constexpr int kInternalError = SqlState("XX000");

/*
 * Error is thrown by keel's C++ code and by PgCall() when PostgreSQL raised an
 * error. InvokeCpp() turns it back into an ereport(ERROR) with the same
 * SQLSTATE, message, DETAIL and HINT.
 */
class Error : public std::runtime_error {
  public:
    Error(int sqlstate, std::string message, std::string detail = {}, std::string hint = {})
        : std::runtime_error(std::move(message)), sqlstate_(sqlstate), detail_(std::move(detail)),
          hint_(std::move(hint)) {}

    int sqlstate() const noexcept { return sqlstate_; }
    const std::string &detail() const noexcept { return detail_; }
    const std::string &hint() const noexcept { return hint_; }

  private:
    int sqlstate_;
    std::string detail_;
    std::string hint_;
};

} // namespace keel
