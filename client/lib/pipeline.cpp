/*
 * client/lib/pipeline.cpp
 *   See pipeline.hpp.
 */
#include "lib/pipeline.hpp"

#include <algorithm>

namespace keel::client {

namespace {

/* ExitPipeline drains what is left and leaves pipeline mode (best effort). */
void ExitPipeline(PGconn *conn) {
    for (int guard = 0; guard < 1000000 && PQpipelineStatus(conn) != PQ_PIPELINE_OFF; ++guard) {
        if (PQexitPipelineMode(conn) == 1)
            return;
        PGresult *res = PQgetResult(conn);
        if (res == nullptr) {
            if (PQstatus(conn) != CONNECTION_OK)
                return;
            continue;
        }
        PQclear(res);
    }
}

} // namespace

std::vector<std::string> RunPipeline(const Connection &conn, const std::vector<PipelineStep> &steps,
                                     size_t chunk,
                                     const std::function<void(size_t, size_t)> &on_chunk) {
    PGconn *pg = conn.get();
    std::vector<std::string> firsts(steps.size());
    std::vector<std::string> names(steps.size());
    for (size_t i = 0; i < steps.size(); ++i)
        if (steps[i].prepared)
            names[i] = conn.Prepared(steps[i].sql); /* before pipeline mode: PQprepare waits */
    if (PQenterPipelineMode(pg) != 1)
        throw ResultError(pg, nullptr);
    chunk = std::max<size_t>(chunk, 1);
    for (size_t begin = 0; begin < steps.size(); begin += chunk) {
        size_t end = std::min(steps.size(), begin + chunk);
        for (size_t i = begin; i < end; ++i) {
            std::vector<const char *> values;
            for (const auto &p : steps[i].params)
                values.push_back(p ? p->c_str() : nullptr);
            int sent =
                steps[i].prepared
                    ? PQsendQueryPrepared(pg, names[i].c_str(), static_cast<int>(values.size()),
                                          values.data(), nullptr, nullptr, 0)
                    : PQsendQueryParams(pg, steps[i].sql.c_str(), static_cast<int>(values.size()),
                                        nullptr, values.data(), nullptr, nullptr, 0);
            if (sent != 1) {
                ServerError e = ResultError(pg, nullptr);
                ExitPipeline(pg);
                throw PipelineError(e, i);
            }
        }
        if (PQpipelineSync(pg) != 1) {
            ServerError e = ResultError(pg, nullptr);
            ExitPipeline(pg);
            throw PipelineError(e, begin);
        }
        if (on_chunk)
            on_chunk(begin, end);
        std::optional<PipelineError> failed;
        for (size_t i = begin; i < end; ++i) {
            /* each query: its result(s), then NULL */
            while (PGresult *res = PQgetResult(pg)) {
                ExecStatusType st = PQresultStatus(res);
                if (st == PGRES_TUPLES_OK && PQntuples(res) > 0 && PQnfields(res) > 0)
                    firsts[i] = PQgetvalue(res, 0, 0);
                else if (st == PGRES_FATAL_ERROR && !failed)
                    failed.emplace(ResultError(pg, res), i);
                PQclear(res);
            }
            if (PQstatus(pg) != CONNECTION_OK && !failed)
                failed.emplace(ResultError(pg, nullptr), i);
            if (PQstatus(pg) != CONNECTION_OK)
                break;
        }
        /* the sync's own result */
        if (PQstatus(pg) == CONNECTION_OK)
            while (PGresult *res = PQgetResult(pg)) {
                bool sync = PQresultStatus(res) == PGRES_PIPELINE_SYNC;
                PQclear(res);
                if (sync)
                    break;
            }
        if (failed) {
            ExitPipeline(pg);
            failed->results = std::move(firsts);
            throw *failed;
        }
    }
    ExitPipeline(pg);
    return firsts;
}

} // namespace keel::client
