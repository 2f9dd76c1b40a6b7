/*
 * client/lib/pipeline.hpp
 *   Several queries in libpq's pipeline mode (PostgreSQL docs, libpq
 *   "Pipeline Mode"): sent back to back and answered together, so a run of
 *   N small statements costs one round trip per chunk instead of N. keel
 *   migrate sends a transactional file this way (issue 12: "within 1.2x of
 *   one psql process on tiny migrations").
 */
#pragma once

#include "lib/connection.hpp"

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace keel::client {

/*
 * PipelineStep is one query (a single statement) with text parameters
 * (nullopt = NULL). prepared: run it as the connection's prepared statement
 * for sql (Connection::Prepared, prepared before the pipeline starts), for
 * a query the run sends again and again.
 */
struct PipelineStep {
    std::string sql;
    std::vector<std::optional<std::string>> params;
    bool prepared = false;
};

/*
 * PipelineError is the ServerError of step `step`; the steps after it did
 * not run. results holds the first column of each step's first row, as
 * RunPipeline returns them ("" for the failed step and those after it).
 */
class PipelineError : public ServerError {
  public:
    PipelineError(ServerError e, size_t step) : ServerError(std::move(e)), step(step) {}
    size_t step;
    std::vector<std::string> results;
};

/*
 * RunPipeline runs steps in order in pipeline mode, with a sync after every
 * chunk steps (so neither side's socket buffer can fill while the other
 * waits: libpq's warning about blocking-mode pipelines), and returns the
 * first column of each step's first row ("" when it returns no row). Steps
 * run in the connection's transaction: a sync commits only an implicit one,
 * so a pipeline that starts with BEGIN stays one transaction.
 * Throws PipelineError for the first step that failed (the rest of its
 * chunk is aborted by the server and later chunks are not sent), or
 * ServerError when libpq cannot send. The connection is out of pipeline
 * mode afterwards either way. on_chunk(begin, end), when given, is called
 * once steps [begin, end) are sent, before their results are awaited (the
 * server answers a chunk together, at its sync: keel migrate's progress
 * line shows the chunk's statements).
 */
std::vector<std::string> RunPipeline(const Connection &conn, const std::vector<PipelineStep> &steps,
                                     size_t chunk = 200,
                                     const std::function<void(size_t, size_t)> &on_chunk = {});

} // namespace keel::client
