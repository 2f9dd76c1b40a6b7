/*
 * client/lib/connection.cpp
 *   See connection.hpp.
 */
#include "lib/connection.hpp"
#include "lib/redact.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <exception>

namespace keel::client {

namespace {

std::string Field(const PGresult *res, int code) {
    const char *v = res ? PQresultErrorField(res, code) : nullptr;
    return v ? v : "";
}

std::string Flatten(std::string s) {
    while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
        s.pop_back();
    for (char &c : s)
        if (c == '\n' || c == '\r' || c == '\t')
            c = ' ';
    return s;
}

} // namespace

std::string ServerError::OneLine() const {
    std::string out = Flatten(message);
    if (!sqlstate.empty())
        out += " (SQLSTATE " + sqlstate + ")";
    /* DETAIL and HINT are sentences: end each part with one period. */
    auto append = [&out](const char *label, const std::string &text) {
        out += (!out.empty() && out.back() == '.') ? " " : ". ";
        out += label;
        out += Flatten(text);
    };
    if (!detail.empty())
        append("DETAIL: ", detail);
    if (!hint.empty())
        append("HINT: ", hint);
    return out;
}

ServerError ResultError(PGconn *conn, const PGresult *res) {
    std::string message = Field(res, PG_DIAG_MESSAGE_PRIMARY);
    if (message.empty()) {
        message = res ? PQresultErrorMessage(res) : "";
        if (message.empty())
            message = PQerrorMessage(conn);
        message = Flatten(message);
        if (message.empty())
            message = "unknown libpq error";
    }
    std::string position = Field(res, PG_DIAG_STATEMENT_POSITION);
    return ServerError(Field(res, PG_DIAG_SQLSTATE), message, Field(res, PG_DIAG_MESSAGE_DETAIL),
                       Field(res, PG_DIAG_MESSAGE_HINT),
                       position.empty() ? 0 : std::strtol(position.c_str(), nullptr, 10),
                       Field(res, PG_DIAG_CONTEXT));
}

std::string ResolveConninfo(const std::string &db_option) {
    if (!db_option.empty())
        return db_option;
    const char *url = std::getenv("DATABASE_URL");
    if (url && *url)
        return url;
    return "";
}

Connection Connection::Open(const std::string &db_option) {
    std::string conninfo = ResolveConninfo(db_option);
    const char *keywords[] = {"dbname", "fallback_application_name", "client_encoding", nullptr};
    const char *values[] = {conninfo.empty() ? nullptr : conninfo.c_str(), "keel", "UTF8", nullptr};
    PGconn *raw = PQconnectdbParams(keywords, values, 1);
    if (raw == nullptr)
        throw std::runtime_error("cannot connect: out of memory");
    Connection conn(raw);
    if (PQstatus(raw) != CONNECTION_OK)
        throw std::runtime_error("cannot connect to the database: " +
                                 RedactSecrets(Flatten(PQerrorMessage(raw)), conninfo));
    return conn;
}

Result Connection::Exec(const std::string &sql) const {
    Result res(PQexec(get(), sql.c_str()), &PQclear);
    ExecStatusType status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && status != PGRES_EMPTY_QUERY)
        throw ResultError(get(), res.get());
    return res;
}

Result Connection::ExecParams(const std::string &sql,
                              const std::vector<std::optional<std::string>> &params) const {
    std::vector<const char *> values;
    values.reserve(params.size());
    for (const auto &p : params)
        values.push_back(p ? p->c_str() : nullptr);
    Result res(PQexecParams(get(), sql.c_str(), static_cast<int>(values.size()), nullptr,
                            values.data(), nullptr, nullptr, 0),
               &PQclear);
    ExecStatusType status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK)
        throw ResultError(get(), res.get());
    return res;
}

std::string Connection::Prepared(const std::string &sql) const {
    auto found = prepared_.find(sql);
    if (found != prepared_.end())
        return found->second;
    /* a name no migration is likely to PREPARE itself */
    std::string name = "keel_client_stmt_" + std::to_string(prepared_.size() + 1);
    Result res(PQprepare(get(), name.c_str(), sql.c_str(), 0, nullptr), &PQclear);
    if (!res || PQresultStatus(res.get()) != PGRES_COMMAND_OK)
        throw ResultError(get(), res.get());
    prepared_.emplace(sql, name);
    return name;
}

void Connection::CopyIn(const std::string &sql, const std::string &data) const {
    /* in pieces of 1 MB: libpq buffers what it cannot send yet */
    const size_t piece = 1 << 20;
    size_t off = 0;
    CopyIn(sql, [&](std::string &out) {
        size_t n = std::min(piece, data.size() - off);
        out.assign(data, off, n);
        off += n;
        return off < data.size();
    });
}

void Connection::CopyIn(const std::string &sql,
                        const std::function<bool(std::string &)> &next_piece) const {
    Result start(PQexec(get(), sql.c_str()), &PQclear);
    if (!start || PQresultStatus(start.get()) != PGRES_COPY_IN)
        throw ResultError(get(), start.get());
    bool ok = true, more = true;
    std::exception_ptr failure;
    std::string buf;
    while (ok && more) {
        buf.clear();
        try {
            more = next_piece(buf);
        } catch (...) {
            failure = std::current_exception();
            break;
        }
        if (!buf.empty())
            ok = PQputCopyData(get(), buf.data(), static_cast<int>(buf.size())) == 1;
    }
    const char *why = failure ? "keel stopped reading the COPY data"
                      : ok    ? nullptr
                              : "keel could not send the COPY data";
    if (PQputCopyEnd(get(), why) != 1)
        throw ResultError(get(), nullptr);
    Result last(nullptr, &PQclear);
    while (PGresult *r = PQgetResult(get()))
        last.reset(r);
    if (failure)
        std::rethrow_exception(failure);
    if (!last || PQresultStatus(last.get()) != PGRES_COMMAND_OK)
        throw ResultError(get(), last.get());
}

std::string Connection::Scalar(const std::string &sql,
                               const std::vector<std::optional<std::string>> &params) const {
    Result res = ExecParams(sql, params);
    if (PQntuples(res.get()) < 1 || PQnfields(res.get()) < 1)
        throw std::runtime_error("no row from: " + sql);
    return PQgetvalue(res.get(), 0, 0);
}

std::string Connection::Target() const {
    const char *host = PQhost(get());
    std::string h = host ? host : "";
    return "host=" + (h.empty() ? std::string("(default)") : h) + " port=" + PQport(get()) +
           " dbname=" + PQdb(get()) + " user=" + PQuser(get());
}

} // namespace keel::client
