/*
 * client/lib/report.cpp
 *   See report.hpp.
 */
#include "lib/report.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>

namespace keel::client {

namespace {

std::optional<std::string> Opt(const PGresult *res, int row, int col) {
    if (PQgetisnull(res, row, col))
        return std::nullopt;
    return std::string(PQgetvalue(res, row, col));
}

nlohmann::json OptJson(const std::optional<std::string> &v) {
    return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

std::string Flat(std::string s) {
    for (char &c : s)
        if (c == '\n' || c == '\r')
            c = ' ';
    return s;
}

std::string FormatMs(double ms) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.1f ms", ms);
    return buf;
}

} // namespace

std::vector<HistoryRow> ReadHistory(const Connection &conn) {
    /* reason is read through to_jsonb(h) because a 0.1.0 history has no such column; only a
     * repaired row has a reason (the table's CHECK), and to_jsonb of every row is most of the
     * query's time on a long history (170 ms of 175 on 10,000 rows), so only those pay it. */
    Result res = conn.Exec(
        "SELECT id, version::text, name, checksum, status, applied_by::text, "
        "       to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
        "       to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
        "       (extract(epoch FROM execution_time) * 1000)::float8, error, "
        "       superseded_by::text, "
        "       CASE WHEN status = 'repaired' "
        "            THEN pg_catalog.to_jsonb(h) OPERATOR(pg_catalog.->>) 'reason' END "
        "FROM keel.migration_history h ORDER BY id");
    std::vector<HistoryRow> rows;
    rows.reserve(static_cast<size_t>(PQntuples(res.get())));
    for (int i = 0; i < PQntuples(res.get()); ++i) {
        HistoryRow row;
        row.id = std::atoll(PQgetvalue(res.get(), i, 0));
        row.version = PQgetvalue(res.get(), i, 1);
        row.name = Opt(res.get(), i, 2);
        row.checksum = Opt(res.get(), i, 3);
        row.status = PQgetvalue(res.get(), i, 4);
        row.applied_by = PQgetvalue(res.get(), i, 5);
        row.started_at = PQgetvalue(res.get(), i, 6);
        row.finished_at = PQgetvalue(res.get(), i, 7);
        row.execution_ms = std::atof(PQgetvalue(res.get(), i, 8));
        row.error = Opt(res.get(), i, 9);
        row.superseded_by = Opt(res.get(), i, 10);
        row.reason = Opt(res.get(), i, 11);
        rows.push_back(std::move(row));
    }
    return rows;
}

Report Analyze(const MigrationSet *set, const std::vector<HistoryRow> &rows) {
    Report report;
    std::map<std::string, const MigrationFile *> files;
    if (set) {
        report.have_dir = true;
        report.problems = set->problems;
        for (const auto &f : set->files)
            files[f.version] = &f;
    }
    auto file_of = [&](const std::string &v) -> const MigrationFile * {
        auto it = files.find(v);
        return it == files.end() ? nullptr : it->second;
    };

    std::map<std::string, const HistoryRow *> applied, superseded, last, repaired;
    for (const auto &row : rows) {
        if (row.status == "applied" || row.status == "baselined")
            applied[row.version] = &row;
        else if (row.status == "superseded")
            superseded[row.version] = &row;
        else if (row.status == "repaired")
            repaired[row.version] = &row; /* rows come in id order: the latest wins */
        if (row.status != "repaired")
            last[row.version] = &row;
    }

    report.applied.reserve(applied.size());
    for (const auto &row : rows) {
        if (row.status == "applied" || row.status == "baselined") {
            AppliedEntry entry{row, file_of(row.version), row.checksum, std::nullopt};
            auto r = repaired.find(row.version);
            if (r != repaired.end()) {
                entry.repair = *r->second;
                entry.recorded_checksum = r->second->checksum;
            }
            if (entry.file && entry.recorded_checksum &&
                *entry.recorded_checksum != entry.file->checksum)
                report.mismatches.push_back({entry.file, *entry.recorded_checksum});
            report.applied.push_back(std::move(entry));
        } else if (row.status == "superseded") {
            report.superseded.push_back(row);
        }
    }
    for (const auto &[version, row] : last) {
        if (row->status == "failed" && !applied.count(version) && !superseded.count(version))
            report.failed.push_back({*row, file_of(version)});
    }

    /* Directives: version -> the file whose keel:supersedes names it. */
    std::set<std::string> declared_superseded;
    if (set) {
        for (const auto &f : set->files)
            for (const auto &v : f.directives.supersedes)
                declared_superseded.insert(v);
        std::map<std::string, const MigrationFile *> by;
        for (const auto &f : set->files) {
            bool self_retired = superseded.count(f.version) ||
                                (declared_superseded.count(f.version) && !applied.count(f.version));
            if (self_retired)
                continue;
            for (const auto &v : f.directives.supersedes)
                if (!by.count(v))
                    by[v] = &f;
        }
        for (const auto &[v, s] : by) {
            if (applied.count(v) || superseded.count(v))
                continue;
            report.to_supersede.push_back({v, file_of(v), s, applied.count(s->version) > 0});
        }
        std::sort(report.to_supersede.begin(), report.to_supersede.end(),
                  [](const SupersedeTask &a, const SupersedeTask &b) {
                      return CompareVersions(a.version, b.version) < 0;
                  });
        std::set<std::string> retiring;
        for (const auto &t : report.to_supersede)
            retiring.insert(t.version);
        for (const auto &f : set->files) {
            if (applied.count(f.version) || superseded.count(f.version) ||
                retiring.count(f.version))
                continue;
            /* A file whose own retirement is declared by a retired file stays pending. */
            report.pending.push_back(&f);
        }
    }
    return report;
}

nlohmann::json ReportJson(const Report &report, const std::string &target,
                          const std::string &server_role) {
    using nlohmann::json;
    json out;
    out["database"] = target;
    out["server_role"] = server_role;
    out["standby"] = server_role.rfind("standby", 0) == 0;
    out["applied"] = json::array();
    for (const auto &a : report.applied) {
        json e = {{"version", a.row.version},
                  {"name", OptJson(a.row.name)},
                  {"checksum", OptJson(a.row.checksum)},
                  {"applied_by", a.row.applied_by},
                  {"started_at", a.row.started_at},
                  {"finished_at", a.row.finished_at},
                  {"execution_ms", a.row.execution_ms}};
        if (report.have_dir) {
            e["file_present"] = a.file != nullptr;
            e["checksum_matches"] =
                a.file ? json(a.recorded_checksum && *a.recorded_checksum == a.file->checksum)
                       : json(nullptr);
        }
        e["status"] = a.row.status;
        if (a.repair)
            e["repaired"] = {{"checksum", OptJson(a.repair->checksum)},
                             {"reason", OptJson(a.repair->reason)},
                             {"by", a.repair->applied_by},
                             {"at", a.repair->finished_at}};
        out["applied"].push_back(e);
    }
    out["pending"] = json::array();
    for (const auto *f : report.pending) {
        json e = {{"version", f->version},
                  {"name", f->file_name},
                  {"checksum", f->checksum},
                  {"no_transaction", f->directives.no_transaction},
                  {"supersedes", f->directives.supersedes}};
        e["allow_destructive"] = f->directives.allow_destructive_reason
                                     ? json(*f->directives.allow_destructive_reason)
                                     : json(nullptr);
        out["pending"].push_back(e);
    }
    out["failed"] = json::array();
    for (const auto &f : report.failed)
        out["failed"].push_back({{"version", f.last_attempt.version},
                                 {"name", OptJson(f.last_attempt.name)},
                                 {"checksum", OptJson(f.last_attempt.checksum)},
                                 {"attempted_by", f.last_attempt.applied_by},
                                 {"finished_at", f.last_attempt.finished_at},
                                 {"error", OptJson(f.last_attempt.error)},
                                 {"file_present", f.file != nullptr}});
    out["superseded"] = json::array();
    for (const auto &s : report.superseded)
        out["superseded"].push_back({{"version", s.version},
                                     {"name", OptJson(s.name)},
                                     {"superseded_by", OptJson(s.superseded_by)},
                                     {"recorded", true}});
    for (const auto &t : report.to_supersede)
        out["superseded"].push_back({{"version", t.version},
                                     {"name", t.file ? json(t.file->file_name) : json(nullptr)},
                                     {"superseded_by", t.by->version},
                                     {"recorded", false}});
    out["checksum_mismatches"] = json::array();
    for (const auto &m : report.mismatches)
        out["checksum_mismatches"].push_back({{"version", m.file->version},
                                              {"name", m.file->file_name},
                                              {"recorded", m.recorded},
                                              {"current", m.file->checksum}});
    out["problems"] = report.problems;
    out["summary"] = {{"applied", report.applied.size()},
                      {"pending", report.pending.size()},
                      {"failed", report.failed.size()},
                      {"superseded", report.superseded.size() + report.to_supersede.size()},
                      {"checksum_mismatches", report.mismatches.size()},
                      {"problems", report.problems.size()}};
    return out;
}

void PrintReport(std::ostream &out, const Report &report, const std::string &target,
                 const std::string &server_role) {
    out << "database: " << target << "  [" << server_role << "]\n";
    for (const auto &a : report.applied) {
        out << (a.row.status == "baselined" ? "baselined   " : "applied     ") << a.row.version
            << "  " << a.row.name.value_or("?") << "  " << a.row.finished_at << "  by "
            << a.row.applied_by << "  " << FormatMs(a.row.execution_ms);
        if (a.repair)
            out << "  (repaired" << (a.repair->checksum ? "" : " as gone") << ": "
                << Flat(a.repair->reason.value_or("")) << ")";
        if (report.have_dir && !a.file)
            out << "  (file not in folder)";
        out << "\n";
    }
    for (const auto &s : report.superseded)
        out << "superseded  " << s.version << "  " << s.name.value_or("(no file)") << "  by "
            << s.superseded_by.value_or("?") << "\n";
    for (const auto &t : report.to_supersede)
        out << "superseded  " << t.version << "  "
            << (t.file ? t.file->file_name : std::string("(no file)")) << "  by " << t.by->version
            << "  (to be recorded by keel migrate)\n";
    for (const auto &f : report.failed)
        out << "failed      " << f.last_attempt.version << "  " << f.last_attempt.name.value_or("?")
            << "  " << f.last_attempt.finished_at << "  " << Flat(f.last_attempt.error.value_or(""))
            << "\n";
    for (const auto *p : report.pending)
        out << "pending     " << p->version << "  " << p->file_name << "\n";
    for (const auto &m : report.mismatches)
        out << "MISMATCH    " << m.file->version << "  " << m.file->file_name << "  recorded "
            << m.recorded << ", current " << m.file->checksum << "\n";
    for (const auto &p : report.problems)
        out << "PROBLEM     " << p << "\n";
    out << report.applied.size() << " applied, " << report.pending.size() << " pending, "
        << report.failed.size() << " failed, "
        << report.superseded.size() + report.to_supersede.size() << " superseded, "
        << report.mismatches.size() << " checksum mismatches";
    if (!report.problems.empty())
        out << ", " << report.problems.size() << " file problems";
    out << "\n";
}

} // namespace keel::client
