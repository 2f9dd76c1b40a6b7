/*
 * client/lint/engine.cpp
 *   Runs every rule over every statement of every file, once: parses a file
 *   with pg_query_parse_protobuf() (PostgreSQL 15's grammar), walks its
 *   statements in order, lints the SQL that DO blocks and PL/pgSQL bodies run
 *   (pg_query_parse_plpgsql()), applies waivers, keeps the context (new
 *   tables, transactions, lock_timeout, derived objects waiting for their
 *   replacement) and turns syntax errors into findings.
 */
#include "lint/lint.hpp"
#include "lint/rule.hpp"
#include "lint/tree.hpp"

#include "lib/migration_file.hpp"
#include "lib/sql_script.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdio>
#include <atomic>
#include <thread>
#include <cstring>
#include <memory>
#include <regex>

namespace keel::lint {

size_t Report::errors() const {
    return std::count_if(findings.begin(), findings.end(), [](const Finding &f) {
        return f.level == Level::Error && f.waived_by.empty();
    });
}
size_t Report::warnings() const {
    return std::count_if(findings.begin(), findings.end(), [](const Finding &f) {
        return f.level == Level::Warning && f.waived_by.empty();
    });
}

static Level EffectiveLevel(const Rule &rule, const std::map<std::string, Level> &levels) {
    auto it = levels.find(rule.name);
    return it == levels.end() ? rule.level : it->second;
}

void Emitter::ReportAt(const Rule &rule, size_t line, size_t column, std::string message,
                       std::string help) {
    Level level = EffectiveLevel(rule, levels_);
    if (level == Level::Off)
        return;
    bool waived = GuardWaived(rule, ctx_);
    if (waived && !ctx_.keep_waived)
        return;
    out_->push_back(
        {ctx_.file, line, column, level, rule.name, std::move(message), std::move(help)});
    if (waived)
        out_->back().waived_by = "allow-destructive";
}

void Emitter::Report(const Rule &rule, const Stmt &stmt, std::string message, std::string help) {
    ReportAt(rule, stmt.line, stmt.column, std::move(message), std::move(help));
}

void Emitter::Pend(const Rule &rule, const Stmt &stmt, std::string kind, std::string key,
                   std::string message, std::string help) {
    ctx_.pending.push_back({&rule, std::move(kind), std::move(key), stmt.line, stmt.column,
                            std::move(message), std::move(help)});
}

namespace {

/* Position maps byte offsets of one text to 1-based lines and character columns. */
class Position {
  public:
    explicit Position(std::string_view text) : text_(text) {
        starts_.push_back(0);
        for (size_t i = 0; i < text.size(); i++)
            if (text[i] == '\n' ||
                (text[i] == '\r' && !(i + 1 < text.size() && text[i + 1] == '\n')))
                starts_.push_back(i + 1);
    }
    void At(size_t offset, size_t *line, size_t *column) const {
        offset = std::min(offset, text_.size());
        auto it = std::upper_bound(starts_.begin(), starts_.end(), offset);
        size_t index = size_t(it - starts_.begin()) - 1;
        *line = index + 1;
        size_t col = 1;
        for (size_t i = starts_[index]; i < offset; i++)
            if ((static_cast<unsigned char>(text_[i]) & 0xC0) != 0x80)
                col++;
        *column = col;
    }

  private:
    std::string_view text_;
    std::vector<size_t> starts_;
};

/* Waiver is one -- keel:allow comment before a statement. */
struct Waiver {
    std::string rule;
    bool has_reason;
    size_t line, column;
};

/* Waivers reads the -- keel:allow lines of text[from, to). */
std::vector<Waiver> Waivers(std::string_view text, size_t from, size_t to, const Position &pos) {
    std::vector<Waiver> out;
    static const char kTag[] = "keel:allow";
    size_t at = from;
    while (at < to) {
        size_t dash = text.find("--", at);
        if (dash == std::string_view::npos || dash >= to)
            break;
        size_t eol = text.find_first_of("\r\n", dash);
        if (eol == std::string_view::npos || eol > to)
            eol = to;
        std::string_view comment = text.substr(dash + 2, eol - dash - 2);
        size_t b = comment.find_first_not_of(" \t");
        if (b != std::string_view::npos && comment.compare(b, sizeof kTag - 1, kTag) == 0 &&
            (comment.size() == b + sizeof kTag - 1 || comment[b + sizeof kTag - 1] == ' ' ||
             comment[b + sizeof kTag - 1] == '\t')) {
            std::string rest(comment.substr(b + sizeof kTag - 1));
            std::smatch m;
            static const std::regex kWaiver(R"re(^\s+([A-Za-z0-9_-]+)\s*(?:"([^"]*)")?\s*$)re");
            Waiver w{"", false, 0, 0};
            pos.At(dash, &w.line, &w.column);
            if (std::regex_match(rest, m, kWaiver)) {
                w.rule = m[1];
                std::string reason = m[2];
                w.has_reason = reason.find_first_not_of(" \t") != std::string::npos;
            }
            out.push_back(w);
        }
        at = eol;
    }
    return out;
}

/* LineStart returns the byte offset where 1-based line begins (LF, CRLF and CR end lines). */
size_t LineStart(std::string_view text, size_t line) {
    size_t at = 0;
    for (size_t l = 1; l < line && at < text.size(); ++at)
        if (text[at] == '\n' ||
            (text[at] == '\r' && !(at + 1 < text.size() && text[at + 1] == '\n')))
            ++l;
    return at;
}

/* Unpacked owns a protobuf parse result. */
struct Unpacked {
    PgQuery__ParseResult *tree = nullptr;
    ~Unpacked() {
        if (tree)
            pg_query__parse_result__free_unpacked(tree, nullptr);
    }
};

/* ParseOutcome: the tree, or the error's message and byte offset. */
struct Parsed {
    std::unique_ptr<Unpacked> unpacked;
    std::string error;
    size_t error_offset = 0;
};

Parsed Parse(const std::string &sql) {
    Parsed out;
    PgQueryProtobufParseResult result = pg_query_parse_protobuf(sql.c_str());
    if (result.error) {
        out.error = result.error->message ? result.error->message : "syntax error";
        out.error_offset = keel::client::CharPositionToOffset(sql, result.error->cursorpos);
    } else {
        out.unpacked = std::make_unique<Unpacked>();
        out.unpacked->tree = pg_query__parse_result__unpack(
            nullptr, result.parse_tree.len,
            reinterpret_cast<const uint8_t *>(result.parse_tree.data));
        if (!out.unpacked->tree)
            out.error = "the parse tree could not be read";
    }
    pg_query_free_protobuf_parse_result(result);
    return out;
}

/* DefElemString returns the string argument of the DefElem named name in a list. */
std::string DefElemString(size_t n, PgQuery__Node *const *items, const char *name) {
    for (size_t i = 0; i < n; i++) {
        const PgQuery__DefElem *d = items[i]->def_elem;
        if (items[i]->node_case != PG_QUERY__NODE__NODE_DEF_ELEM || !d->defname ||
            strcmp(d->defname, name) != 0 || !d->arg)
            continue;
        if (d->arg->node_case == PG_QUERY__NODE__NODE_STRING)
            return StringOf(d->arg);
        if (d->arg->node_case == PG_QUERY__NODE__NODE_LIST && d->arg->list->n_items > 0)
            return StringOf(d->arg->list->items[0]);
    }
    return "";
}

/* Literal returns the text of a single SQL string literal ('...' with '' doubled), or "". */
std::string Literal(const std::string &expr) {
    std::string s = expr;
    size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
    if (b == std::string::npos || s[b] != '\'' || s[e] != '\'' || e <= b)
        return "";
    std::string out;
    for (size_t i = b + 1; i < e; i++) {
        if (s[i] == '\'') {
            if (i + 1 < e && s[i + 1] == '\'') {
                out += '\'';
                i++;
                continue;
            }
            return ""; /* a concatenation or another expression: not a literal */
        }
        out += s[i];
    }
    return out;
}

/* CollectPlpgsqlSql walks pg_query_parse_plpgsql()'s JSON for the SQL a body runs. */
void CollectPlpgsqlSql(const nlohmann::json &j, std::vector<std::string> *out) {
    if (j.is_object()) {
        for (auto it = j.begin(); it != j.end(); ++it) {
            if (it.key() == "PLpgSQL_stmt_execsql") {
                const auto &q = (*it)["sqlstmt"]["PLpgSQL_expr"]["query"];
                if (q.is_string())
                    out->push_back(q.get<std::string>());
            } else if (it.key() == "PLpgSQL_stmt_dynexecute") {
                const auto &q = (*it)["query"]["PLpgSQL_expr"]["query"];
                if (q.is_string()) {
                    std::string lit = Literal(q.get<std::string>());
                    if (!lit.empty())
                        out->push_back(lit);
                }
            }
            CollectPlpgsqlSql(*it, out);
        }
    } else if (j.is_array()) {
        for (const auto &e : j)
            CollectPlpgsqlSql(e, out);
    }
}

/* BodySql returns the SQL statements a PL/pgSQL body runs (EXECUTE with literals included). */
std::vector<std::string> BodySql(const std::string &body) {
    std::vector<std::string> out;
    std::string tag = "keel_lint";
    while (body.find("$" + tag + "$") != std::string::npos)
        tag += "_";
    std::string fn = "CREATE FUNCTION keel_lint_body() RETURNS void LANGUAGE plpgsql AS $" + tag +
                     "$" + body + "$" + tag + "$";
    PgQueryPlpgsqlParseResult r = pg_query_parse_plpgsql(fn.c_str());
    if (!r.error && r.plpgsql_funcs) {
        nlohmann::json j = nlohmann::json::parse(r.plpgsql_funcs, nullptr, false);
        if (!j.is_discarded())
            CollectPlpgsqlSql(j, &out);
    }
    pg_query_free_plpgsql_parse_result(r);
    return out;
}

/* NestedSql returns the SQL a DO block or a function body would run, or nothing. */
std::vector<std::string> NestedSql(const PgQuery__Node *node) {
    if (node->node_case == PG_QUERY__NODE__NODE_DO_STMT) {
        const auto *d = node->do_stmt;
        std::string lang = DefElemString(d->n_args, d->args, "language");
        std::string body = DefElemString(d->n_args, d->args, "as");
        if (lang.empty() || lang == "plpgsql")
            return BodySql(body);
        return {};
    }
    if (node->node_case == PG_QUERY__NODE__NODE_CREATE_FUNCTION_STMT) {
        const auto *f = node->create_function_stmt;
        std::string lang = DefElemString(f->n_options, f->options, "language");
        std::string body = DefElemString(f->n_options, f->options, "as");
        if (lang == "plpgsql")
            return BodySql(body);
        if (lang == "sql" && !body.empty())
            return {body};
    }
    return {};
}

/* Engine lints the files of one run, sharing the context of new tables across them. */
class Engine {
  public:
    Engine(const std::map<std::string, Level> &levels, Report *report, bool keep_waived = false)
        : levels_(levels), report_(report), keep_waived_(keep_waived) {}

    /* LintFile lints one file; the inline data of COPY ... FROM STDIN is not SQL and is skipped
     * (blanked, so positions after it stay right), as keel migrate sends it as COPY data. */
    void LintFile(const std::string &contents, const std::string &file_name,
                  const std::string &version) {
        std::string sql;
        try {
            sql = keel::client::MaskInlineCopyData(contents, file_name);
        } catch (const keel::client::FileError &e) {
            Parsed unterminated;
            std::string message = e.what();
            std::string prefix = file_name + ":" + std::to_string(e.line()) + ": ";
            if (message.rfind(prefix, 0) == 0)
                message = message.substr(prefix.size());
            unterminated.error = message;
            unterminated.error_offset = LineStart(contents, e.line());
            LintParsed(contents, file_name, version, unterminated);
            return;
        }
        LintParsed(sql, file_name, version, Parse(sql));
    }

    /* LintParsed lints a file whose parse (Parse(contents)) was done beforehand, maybe on another
     * thread. */
    void LintParsed(const std::string &contents, const std::string &file_name,
                    const std::string &version, const Parsed &parsed) {
        report_->files++;
        Context ctx;
        ctx.file = file_name;
        ctx.new_tables = new_tables_;
        ctx.keep_waived = keep_waived_;
        Emitter out(ctx, levels_, &report_->findings);
        try {
            keel::client::Directives d =
                keel::client::ParseDirectives(contents, file_name, version);
            ctx.transactional = !d.no_transaction;
            ctx.destructive_allowed = d.allow_destructive_reason.has_value();
        } catch (const keel::client::FileError &e) {
            std::string message = e.what();
            std::string prefix = file_name + ":" + std::to_string(e.line()) + ": ";
            if (message.rfind(prefix, 0) == 0)
                message = message.substr(prefix.size());
            out.ReportAt(*FindRule("invalid-directive"), e.line() ? e.line() : 1, 1, message,
                         "Directives are leading comments: -- keel:no-transaction, -- "
                         "keel:supersedes <version>, -- keel:allow-destructive \"reason\".");
        }
        Position pos(contents);
        if (!parsed.error.empty()) {
            size_t line, column;
            pos.At(parsed.error_offset, &line, &column);
            out.ReportAt(*FindRule("syntax-error"), line, column, parsed.error,
                         "Fix the statement; PostgreSQL 15's parser rejects it (psql "
                         "meta-commands such as \\d are not SQL).");
            return;
        }
        const PgQuery__ParseResult *tree = parsed.unpacked->tree;
        size_t prev_end = 0;
        for (size_t i = 0; i < tree->n_stmts; i++) {
            const PgQuery__RawStmt *raw = tree->stmts[i];
            size_t start = size_t(raw->stmt_location);
            size_t len = raw->stmt_len ? size_t(raw->stmt_len) : contents.size() - start;
            size_t first = keel::client::FirstTokenOffset(contents, start);
            Stmt stmt;
            stmt.node = raw->stmt;
            pos.At(first, &stmt.line, &stmt.column);
            std::vector<Waiver> waivers = Waivers(contents, prev_end, first, pos);
            prev_end = start + len;
            report_->statements++;
            size_t before = report_->findings.size();
            CheckStatement(stmt, ctx, out);
            for (const std::string &sql : NestedSql(stmt.node))
                CheckNested(sql, stmt, ctx, out);
            ApplyWaivers(waivers, before, ctx, out);
            After(stmt, ctx, out);
        }
        if (ctx.explicit_begin)
            out.ReportAt(
                *FindRule("unclosed-transaction"), ctx.begin_line, ctx.begin_column,
                "BEGIN without COMMIT: the transaction is still open at the end of the file",
                "End the file with COMMIT, or leave transaction control to keel "
                "migrate, which runs each file in one transaction.");
        EndTransaction(ctx, out);
        for (const std::string &t : ctx.new_tables)
            new_tables_.insert(t);
    }

  private:
    void CheckStatement(const Stmt &stmt, Context &ctx, Emitter &out) {
        for (const Rule *rule : AllRules())
            rule->check(*rule, stmt, ctx, out);
    }

    /* CheckNested lints the SQL of a DO block or function body at the outer statement's place. */
    void CheckNested(const std::string &sql, const Stmt &outer, Context &ctx, Emitter &out) {
        if (depth_ > 4)
            return;
        Parsed parsed = Parse(sql);
        if (!parsed.error.empty() || !parsed.unpacked)
            return; /* PL/pgSQL expressions may hold placeholders; PostgreSQL checks them at run
                       time */
        depth_++;
        for (size_t i = 0; i < parsed.unpacked->tree->n_stmts; i++) {
            Stmt stmt = outer;
            stmt.node = parsed.unpacked->tree->stmts[i]->stmt;
            stmt.nested = true;
            CheckStatement(stmt, ctx, out);
            for (const std::string &inner : NestedSql(stmt.node))
                CheckNested(inner, stmt, ctx, out);
        }
        depth_--;
    }

    void ApplyWaivers(const std::vector<Waiver> &waivers, size_t before, Context &ctx,
                      Emitter &out) {
        std::vector<Finding> &all = report_->findings;
        for (const Waiver &w : waivers) {
            const Rule *rule = FindRule(w.rule);
            if (w.rule.empty() || rule == nullptr) {
                out.ReportAt(*FindRule("invalid-waiver"), w.line, w.column,
                             w.rule.empty() ? "malformed waiver"
                                            : "waiver names an unknown rule \"" + w.rule + "\"",
                             "Write -- keel:allow <rule-name> \"reason\" on the line before the "
                             "statement; keel lint --list-rules lists the names.");
                continue;
            }
            if (!w.has_reason) {
                out.ReportAt(*FindRule("invalid-waiver"), w.line, w.column,
                             "waiver of " + w.rule + " without a reason",
                             "Say why: -- keel:allow " + w.rule + " \"reason\".");
                continue;
            }
            if (ctx.keep_waived) {
                for (auto it = all.begin() + before; it != all.end(); ++it)
                    if (it->rule == w.rule && it->waived_by.empty())
                        it->waived_by = "comment";
                for (PendingDrop &p : ctx.pending)
                    if (p.rule->name == w.rule && p.line >= w.line && p.waived_by.empty())
                        p.waived_by = "comment";
                continue;
            }
            all.erase(std::remove_if(all.begin() + before, all.end(),
                                     [&](const Finding &f) { return f.rule == w.rule; }),
                      all.end());
            ctx.pending.erase(std::remove_if(ctx.pending.begin(), ctx.pending.end(),
                                             [&](const PendingDrop &p) {
                                                 return p.rule->name == w.rule && p.line >= w.line;
                                             }),
                              ctx.pending.end());
        }
    }

    /* After updates the context with what stmt created and how it ends transactions. */
    void After(const Stmt &stmt, Context &ctx, Emitter &out) {
        for (const ObjectRef &o : CreatedObjects(stmt.node)) {
            if (o.kind == "table")
                ctx.new_tables.insert(o.key);
            ctx.new_objects.insert(o.kind + ":" + o.key);
            ctx.pending.erase(std::remove_if(ctx.pending.begin(), ctx.pending.end(),
                                             [&](const PendingDrop &p) {
                                                 return p.kind == o.kind && p.key == o.key;
                                             }),
                              ctx.pending.end());
        }
        const PgQuery__Node *n = stmt.node;
        if (n->node_case == PG_QUERY__NODE__NODE_TRANSACTION_STMT) {
            switch (n->transaction_stmt->kind) {
            case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN:
            case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START:
                ctx.explicit_begin = true;
                ctx.begin_line = stmt.line;
                ctx.begin_column = stmt.column;
                break;
            case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT:
                ctx.explicit_begin = false;
                if (!ctx.transactional)
                    EndTransaction(ctx, out);
                break;
            case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK:
                ctx.explicit_begin = false;
                ctx.pending.clear();
                break;
            default:
                break;
            }
        } else if (n->node_case == PG_QUERY__NODE__NODE_VARIABLE_SET_STMT &&
                   n->variable_set_stmt->name &&
                   strcmp(n->variable_set_stmt->name, "lock_timeout") == 0) {
            ctx.lock_timeout_set = true;
        }
        if (!ctx.InTransaction())
            EndTransaction(ctx, out); /* autocommit: the statement was its own transaction */
    }

    /* EndTransaction: every derived object still waiting for its replacement is a finding. */
    void EndTransaction(Context &ctx, Emitter &out) {
        for (const PendingDrop &p : ctx.pending) {
            size_t before = report_->findings.size();
            out.ReportAt(*p.rule, p.line, p.column, p.message, p.help);
            for (size_t i = before; i < report_->findings.size(); ++i) {
                Finding &f = report_->findings[i];
                f.at_commit = true;
                if (f.waived_by.empty())
                    f.waived_by = p.waived_by;
            }
        }
        ctx.pending.clear();
    }

    const std::map<std::string, Level> &levels_;
    Report *report_;
    std::set<std::string> new_tables_;
    bool keep_waived_ = false;
    int depth_ = 0;
};

} // namespace

Report LintText(const std::string &contents, const std::string &file_name, const Options &options) {
    Report report;
    Engine engine(options.levels, &report, options.keep_waived);
    auto parsed =
        keel::client::ParseMigrationFileName(std::filesystem::path(file_name).filename().string());
    engine.LintFile(contents, file_name, parsed ? parsed->version : "");
    return report;
}

Report LintSequence(const std::vector<Source> &sources, const Options &options) {
    Report report;
    Engine engine(options.levels, &report, options.keep_waived);
    std::map<std::string, size_t> order;
    for (const Source &source : sources) {
        order.emplace(source.file_name, order.size());
        engine.LintFile(source.contents, source.file_name, source.version);
    }
    std::stable_sort(report.findings.begin(), report.findings.end(),
                     [&](const Finding &a, const Finding &b) {
                         size_t fa = order[a.file], fb = order[b.file];
                         if (fa != fb)
                             return fa < fb;
                         return a.line != b.line ? a.line < b.line : a.column < b.column;
                     });
    return report;
}

Report LintPaths(const std::vector<std::filesystem::path> &paths, const Options &options) {
    namespace fs = std::filesystem;
    Report report;
    for (const fs::path &path : paths) {
        std::error_code ec;
        if (!fs::exists(path, ec))
            throw UsageError("no such file or folder: " + path.string());
        std::map<std::string, Level> levels = options.levels;
        std::vector<std::pair<std::string, fs::path>> files; /* version, path */
        if (fs::is_directory(path)) {
            if (fs::exists(path / "keel.toml"))
                ReadKeelToml(path / "keel.toml", &levels);
            for (const auto &entry : fs::directory_iterator(path)) {
                std::string name = entry.path().filename().string();
                if (!entry.is_regular_file() || name.empty() || name[0] == '.' ||
                    entry.path().extension() != ".sql")
                    continue;
                auto parsed = keel::client::ParseMigrationFileName(name);
                files.push_back({parsed ? parsed->version : "", entry.path()});
            }
            std::sort(files.begin(), files.end(), [](const auto &a, const auto &b) {
                int c = keel::client::CompareVersions(a.first, b.first);
                if (a.first.empty() != b.first.empty())
                    return a.first.empty() < b.first.empty();
                return c != 0 ? c < 0 : a.second.filename() < b.second.filename();
            });
        } else {
            auto parsed = keel::client::ParseMigrationFileName(path.filename().string());
            files.push_back({parsed ? parsed->version : "", path});
        }
        Engine engine(levels, &report, options.keep_waived);
        Engine down_engine(
            levels, &report,
            options.keep_waived); /* .down.sql files undo; they are their own sequence */
        for (const auto &[version, file] : files) {
            /* keel lint reads and parses a file whole (its parse tree is several times the
             * file): a file keel migrate would stream is refused, not read by accident */
            std::error_code size_ec;
            std::uintmax_t size = fs::file_size(file, size_ec);
            if (!size_ec && size > keel::client::StreamThreshold()) {
                char mib[32];
                std::snprintf(mib, sizeof mib, "%.1f", double(size) / (1 << 20));
                throw std::runtime_error(
                    file.string() + ": " + mib + " MiB is more than keel lint reads (" +
                    std::to_string(keel::client::StreamThreshold() >> 20) +
                    " MiB; keel lint holds a file and its parse tree in memory); lint the "
                    "schema changes in a file of their own, keel migrate streams large data "
                    "files");
            }
            std::string contents = keel::client::ReadFile(file);
            bool down =
                file.filename().string().size() > 9 &&
                file.filename().string().rfind(".down.sql") == file.filename().string().size() - 9;
            (down ? down_engine : engine).LintFile(contents, file.string(), version);
        }
    }
    /* file order as linted, then position */
    std::map<std::string, size_t> order;
    for (const Finding &f : report.findings)
        order.emplace(f.file, order.size());
    std::stable_sort(report.findings.begin(), report.findings.end(),
                     [&](const Finding &a, const Finding &b) {
                         size_t fa = order[a.file], fb = order[b.file];
                         if (fa != fb)
                             return fa < fb;
                         return a.line != b.line ? a.line < b.line : a.column < b.column;
                     });
    return report;
}

} // namespace keel::lint
