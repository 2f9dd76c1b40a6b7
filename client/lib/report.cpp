/*
 * client/lib/report.cpp
 *   See report.hpp.
 */
#include "lib/report.hpp"

#include "lib/token_checksum.hpp"

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
    /* a 0.1.0 history has no reason, token_checksum or revision column: ask the catalog once
     * (to_jsonb(h) of every row instead was 170 of 175 ms on 10,000 rows) */
    bool v2 = conn.Scalar("SELECT count(*) FROM pg_catalog.pg_attribute WHERE attrelid "
                          "OPERATOR(pg_catalog.=) 'keel.migration_history'::pg_catalog.regclass "
                          "AND attname OPERATOR(pg_catalog.=) ANY (ARRAY['reason', "
                          "'token_checksum', 'revision']) AND NOT attisdropped") == "3";
    Result res = conn.Exec(
        "SELECT id, version::text, name, checksum, status, applied_by::text, "
        "       to_char(started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
        "       to_char(finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
        "       (extract(epoch FROM execution_time) * 1000)::float8, error, "
        "       superseded_by::text, " +
        std::string(v2 ? "reason, token_checksum, revision " : "NULL::text, NULL::text, 0 ") +
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
        row.token_checksum = Opt(res.get(), i, 12);
        row.revision = std::atoi(PQgetvalue(res.get(), i, 13));
        rows.push_back(std::move(row));
    }
    return rows;
}

size_t Report::RealMismatches() const {
    return std::count_if(mismatches.begin(), mismatches.end(),
                         [](const Mismatch &m) { return !m.cosmetic; });
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

    /* keel down: rows up to a version's latest reverted row no longer count */
    std::map<std::string, long long> reverted_at;
    std::map<std::string, const HistoryRow *> last_revert;
    for (const auto &row : rows)
        if (row.status == "reverted") {
            reverted_at[row.version] = row.id;
            last_revert[row.version] = &row;
        }
    auto live = [&](const HistoryRow &row) {
        auto it = reverted_at.find(row.version);
        return it == reverted_at.end() || row.id > it->second;
    };

    std::map<std::string, const HistoryRow *> applied, superseded, last, repaired;
    for (const auto &row : rows) {
        if (!live(row))
            continue;
        if (row.status == "applied" || row.status == "baselined")
            applied[row.version] = &row;
        else if (row.status == "superseded")
            superseded[row.version] = &row;
        else if (row.status == "repaired")
            repaired[row.version] = &row; /* rows come in id order: the latest wins */
        if (row.status != "repaired")
            last[row.version] = &row;
    }

    for (const auto &[version, row] : last_revert)
        if (!applied.count(version))
            report.reverted.push_back(*row);
    report.applied.reserve(applied.size());
    for (const auto &row : rows) {
        if (!live(row))
            continue;
        if (row.status == "applied" || row.status == "baselined") {
            AppliedEntry entry{row, file_of(row.version), row.checksum, std::nullopt};
            std::optional<std::string> recorded_tokens = row.token_checksum;
            auto r = repaired.find(row.version);
            if (r != repaired.end()) {
                entry.repair = *r->second;
                entry.recorded_checksum = r->second->checksum;
                recorded_tokens = r->second->token_checksum;
            }
            if (entry.file && entry.recorded_checksum &&
                *entry.recorded_checksum != entry.file->checksum) {
                bool cosmetic = false;
                if (recorded_tokens && !entry.file->contents.empty()) {
                    auto now = TokenChecksum(entry.file->contents, entry.file->directives);
                    cosmetic = now && *now == *recorded_tokens;
                }
                report.mismatches.push_back({entry.file, *entry.recorded_checksum, cosmetic});
            }
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

void AddInterrupted(const Connection &conn, Report *report) {
    if (conn.Scalar("SELECT pg_catalog.to_regclass('keel.migration_steps') IS NOT NULL") != "t")
        return;
    Result res = conn.Exec(
        "SELECT DISTINCT ON (s.version) s.version::text, "
        "       to_char(s.started_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
        "       count(*) OVER w, last_value(s.line) OVER w "
        "FROM keel.migration_steps s "
        "WHERE NOT EXISTS (SELECT 1 FROM keel.migration_history h "
        "                  WHERE h.version OPERATOR(pg_catalog.=) s.version "
        "                    AND h.status OPERATOR(pg_catalog.=) ANY (ARRAY['applied', "
        "                        'reverted', 'baselined']) "
        "                    AND h.finished_at OPERATOR(pg_catalog.>=) s.started_at) "
        "WINDOW w AS (PARTITION BY s.version, s.started_at ORDER BY s.step "
        "             ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) "
        "ORDER BY s.version, s.started_at DESC");
    std::set<std::string> applied;
    for (const auto &a : report->applied)
        applied.insert(a.row.version);
    for (int i = 0; i < PQntuples(res.get()); ++i) {
        InterruptedAttempt a;
        a.version = PQgetvalue(res.get(), i, 0);
        if (applied.count(a.version))
            continue;
        a.started_at = PQgetvalue(res.get(), i, 1);
        a.steps_done = std::atoi(PQgetvalue(res.get(), i, 2));
        a.last_line = std::atoi(PQgetvalue(res.get(), i, 3));
        report->interrupted.push_back(a);
    }
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
        e["revision"] = a.row.revision;
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
                                              {"current", m.file->checksum},
                                              {"cosmetic", m.cosmetic}});
    out["interrupted"] = json::array();
    for (const auto &a : report.interrupted)
        out["interrupted"].push_back({{"version", a.version},
                                      {"started_at", a.started_at},
                                      {"statements_done", a.steps_done},
                                      {"last_line", a.last_line}});
    out["reverted"] = json::array();
    for (const auto &r : report.reverted)
        out["reverted"].push_back({{"version", r.version},
                                   {"name", OptJson(r.name)},
                                   {"checksum", OptJson(r.checksum)},
                                   {"reverted_by", r.applied_by},
                                   {"started_at", r.started_at},
                                   {"finished_at", r.finished_at},
                                   {"execution_ms", r.execution_ms},
                                   {"revision", r.revision}});
    out["problems"] = report.problems;
    out["summary"] = {{"applied", report.applied.size()},
                      {"pending", report.pending.size()},
                      {"failed", report.failed.size()},
                      {"superseded", report.superseded.size() + report.to_supersede.size()},
                      {"checksum_mismatches", report.RealMismatches()},
                      {"cosmetic_changes", report.mismatches.size() - report.RealMismatches()},
                      {"problems", report.problems.size()},
                      {"reverted", report.reverted.size()}};
    return out;
}

void PrintReport(std::ostream &out, const Report &report, const std::string &target,
                 const std::string &server_role) {
    /* one row per version line; the version and name columns are padded to their widest */
    struct Row {
        std::string kind, version, name, rest;
    };
    std::vector<Row> rows;
    std::map<std::string, const HistoryRow *> reverted;
    for (const auto &r : report.reverted)
        reverted[r.version] = &r;
    for (const auto &a : report.applied) {
        std::string rest =
            a.row.finished_at + "  by " + a.row.applied_by + "  " + FormatMs(a.row.execution_ms);
        if (a.row.revision > 0)
            rest += "  (revision " + std::to_string(a.row.revision) + ")";
        if (a.repair)
            rest += std::string("  (repaired") + (a.repair->checksum ? "" : " as gone") + ": " +
                    Flat(a.repair->reason.value_or("")) + ")";
        if (report.have_dir && !a.file)
            rest += "  (file not in folder)";
        rows.push_back({a.row.status == "baselined" ? "baselined" : "applied", a.row.version,
                        a.row.name.value_or("?"), rest});
    }
    for (const auto &s : report.superseded)
        rows.push_back({"superseded", s.version, s.name.value_or("(no file)"),
                        "by " + s.superseded_by.value_or("?")});
    for (const auto &t : report.to_supersede)
        rows.push_back({"superseded", t.version,
                        t.file ? t.file->file_name : std::string("(no file)"),
                        "by " + t.by->version + "  (to be recorded by keel migrate)"});
    for (const auto &f : report.failed)
        rows.push_back(
            {"failed", f.last_attempt.version, f.last_attempt.name.value_or("?"),
             f.last_attempt.finished_at + "  " + Flat(f.last_attempt.error.value_or(""))});
    std::set<std::string> pending;
    for (const auto *p : report.pending) {
        pending.insert(p->version);
        auto r = reverted.find(p->version);
        rows.push_back({"pending", p->version, p->file_name,
                        r == reverted.end() ? std::string()
                                            : "(reverted " + r->second->finished_at + " by " +
                                                  r->second->applied_by + ")"});
    }
    for (const auto &r : report.reverted)
        if (!pending.count(r.version))
            rows.push_back({"reverted", r.version, r.name.value_or("?"),
                            r.finished_at + "  by " + r.applied_by +
                                "  (not applied; keel migrate applies it again)"});
    for (const auto &a : report.interrupted) {
        auto file = std::find_if(report.pending.begin(), report.pending.end(),
                                 [&](const MigrationFile *f) { return f->version == a.version; });
        rows.push_back({"interrupted", a.version,
                        file == report.pending.end() ? std::string() : (*file)->file_name,
                        "attempt of " + a.started_at + " completed " +
                            std::to_string(a.steps_done) + " statement(s), the last at line " +
                            std::to_string(a.last_line) +
                            " (keel:no-transaction); keel migrate resumes after it"});
    }
    for (const auto &m : report.mismatches)
        if (m.cosmetic)
            rows.push_back({"COSMETIC", m.file->version, m.file->file_name,
                            "only comments or whitespace changed since it was applied (keel "
                            "repair --reason records it)"});
        else
            rows.push_back({"MISMATCH", m.file->version, m.file->file_name,
                            "recorded " + m.recorded + ", current " + m.file->checksum});
    size_t version_width = 0, name_width = 0;
    for (const auto &r : rows) {
        version_width = std::max(version_width, r.version.size());
        name_width = std::max(name_width, r.name.size());
    }
    auto pad = [](const std::string &s, size_t width) {
        return s + std::string(width > s.size() ? width - s.size() : 0, ' ');
    };
    out << "database: " << target << "  [" << server_role << "]\n";
    for (const auto &r : rows) {
        std::string line = pad(r.kind, 11) + " " + pad(r.version, version_width) + "  " +
                           pad(r.name, name_width) + "  " + r.rest;
        line.erase(line.find_last_not_of(' ') + 1);
        out << line << "\n";
    }
    for (const auto &p : report.problems)
        out << "PROBLEM     " << p << "\n";
    out << report.applied.size() << " applied, " << report.pending.size() << " pending, "
        << report.failed.size() << " failed, "
        << report.superseded.size() + report.to_supersede.size() << " superseded, "
        << report.RealMismatches() << " checksum mismatches";
    if (report.RealMismatches() != report.mismatches.size())
        out << ", " << report.mismatches.size() - report.RealMismatches() << " cosmetic changes";
    if (!report.problems.empty())
        out << ", " << report.problems.size() << " file problems";
    if (!report.reverted.empty())
        out << ", " << report.reverted.size() << " reverted";
    out << "\n";
}

} // namespace keel::client
