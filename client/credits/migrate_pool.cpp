/*
 * client/credits/migrate_pool.cpp
 *   keel credits migrate-pool: moves a unified total_credits column into
 *   per-type allocations by plan (seed 003 step 3), one batch per
 *   transaction through keel.migrate_unified_pool(), with progress (rows
 *   done / total, rate, ETA). Interrupted, it resumes where the last
 *   committed batch stopped: the progress row commits with each batch, so no
 *   account is allocated twice. See commands.hpp.
 */
#include "lib/commands.hpp"
#include "lib/server_role.hpp"

#include <chrono>
#include <cstdio>
#include <string>

namespace keel::client {

namespace {

std::string Rate(double rows_per_second) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.0f rows/s", rows_per_second);
    return buf;
}

std::string Eta(double seconds) {
    long s = long(seconds + 0.5);
    char buf[64];
    if (s < 60)
        std::snprintf(buf, sizeof buf, "%ld s", s);
    else
        std::snprintf(buf, sizeof buf, "%ld min %02ld s", s / 60, s % 60);
    return buf;
}

} // namespace

void MigratePool(const Connection &conn, const PoolOptions &options, std::ostream &out) {
    RequireWritable(conn, "credits migrate-pool");
    if (options.table.empty())
        throw CommandError("credits migrate-pool: --table is required");
    if (options.batch < 1 || options.batch > 100000)
        throw CommandError("credits migrate-pool: --batch must be between 1 and 100000");
    std::string name = options.name.empty() ? options.table : options.name;
    std::string batch = std::to_string(options.batch);
    auto t0 = std::chrono::steady_clock::now();
    auto last_print = t0 - std::chrono::seconds(10);
    long long first_done = -1;
    while (true) {
        Result res = conn.ExecParams(
            "SELECT rows_done, rows_total, finished FROM keel.migrate_unified_pool($1, "
            "$2::regclass, $3, $4, $5, $6::integer)",
            {name, options.table, options.id_column, options.plan_column, options.total_column,
             batch});
        long long done = std::stoll(PQgetvalue(res.get(), 0, 0));
        long long total = std::stoll(PQgetvalue(res.get(), 0, 1));
        bool finished = std::string(PQgetvalue(res.get(), 0, 2)) == "t";
        if (first_done < 0) {
            first_done = done - (finished ? 0 : std::min<long long>(done, options.batch));
            if (done > options.batch && !finished && !options.quiet)
                out << "resuming pool migration \"" << name << "\" after " << done - options.batch
                    << " rows\n";
        }
        auto now = std::chrono::steady_clock::now();
        double elapsed = std::chrono::duration<double>(now - t0).count();
        double rate = elapsed > 0 ? (done - first_done) / elapsed : 0;
        if (!options.quiet && (finished || now - last_print >= std::chrono::seconds(1))) {
            last_print = now;
            int pct = total > 0 ? int(100.0 * done / total) : 100;
            out << "pool migration \"" << name << "\": " << done << " / " << total << " rows ("
                << pct << "%), " << Rate(rate);
            if (!finished && rate > 0)
                out << ", ETA " << Eta((total - done) / rate);
            out << "\n" << std::flush;
        }
        if (finished) {
            out << "pool migration \"" << name << "\" finished: " << done
                << " accounts allocated by plan\n";
            return;
        }
    }
}

} // namespace keel::client
