/*
 * client/lib/sql_stream_check.cpp
 *   PrepareStreamedScript (sql_script.hpp): the preflight of a streamed file,
 *   before anything runs (issue 12: "refuse before anything runs ... when a
 *   file does not parse"), in bounded memory:
 *   - SqlStream cuts the file into statements (sql_stream.hpp);
 *   - a statement PlainInsertCheck accepts is valid (sql_fast_check.hpp);
 *     every other one goes into a batch of about 1 MiB that libpg_query's
 *     parser checks (pg_query_split_with_parser: a raw parse without building
 *     an output tree), and that must find the same statements;
 *   - statements that may be transaction control or refuse a transaction
 *     block (by their first words: BEGIN, COMMIT, CREATE INDEX, VACUUM, ...)
 *     are parsed alone (pg_query_parse_protobuf) for their node, and the
 *     rules of PrepareScript apply to it.
 *   Errors are PrepareScript's, with the same lines, and the same one wins
 *   when a file has several: the first syntax error or COPY data without
 *   "\." (whichever comes first), then the first statement refused in a
 *   transaction block, then the first transaction control.
 */
#include "lib/sql_fast_check.hpp"
#include "lib/sql_script.hpp"
#include "lib/sql_stream.hpp"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include <optional>

namespace keel::client {

namespace {

/* kParseBatchBytes: how much SQL libpg_query checks per call (1 MiB). */
constexpr size_t kParseBatchBytes = size_t(1) << 20;

/* Node is what keel needs to know of one statement's parse tree. */
struct Node {
    bool known = false; /* parsed on its own as one statement */
    bool transaction = false;
    PgQuery__TransactionStmtKind txn_kind =
        PG_QUERY__TRANSACTION_STMT_KIND__TRANSACTION_STMT_KIND_UNDEFINED;
    bool txn_options = false;
    std::string refused; /* NotInTransactionBlock's name, or "" */
    bool copy_from_stdin = false;
    bool copy = false;
};

/* Candidate: by its first words, st may be a statement whose node matters. */
bool Candidate(const StreamStatement &st) {
    const std::string &w = st.words[0];
    if (w == "begin" || w == "start" || w == "commit" || w == "end" || w == "rollback" ||
        w == "abort" || w == "prepare" || w == "copy" || w == "reindex" || w == "vacuum")
        return true;
    if (w == "alter")
        return st.words[1] == "system";
    if (w == "create" || w == "drop")
        for (size_t k = 1; k < 4; ++k)
            if (st.words[k] == "index" || st.words[k] == "database" || st.words[k] == "tablespace")
                return true;
    return false;
}

bool HasConcurrently(size_t n, PgQuery__Node **params) {
    for (size_t i = 0; i < n; ++i)
        if (params[i]->node_case == PG_QUERY__NODE__NODE_DEF_ELEM && params[i]->def_elem->defname &&
            std::string(params[i]->def_elem->defname) == "concurrently")
            return true;
    return false;
}

/* Classify parses text alone; the same rules as sql_script.cpp's NotInTransactionBlock. */
Node Classify(const std::string &text) {
    Node node;
    PgQueryProtobufParseResult result = pg_query_parse_protobuf(text.c_str());
    PgQuery__ParseResult *tree = nullptr;
    if (!result.error)
        tree = pg_query__parse_result__unpack(
            nullptr, result.parse_tree.len,
            reinterpret_cast<const uint8_t *>(result.parse_tree.data));
    if (tree && tree->n_stmts == 1 && tree->stmts[0]->stmt) {
        const PgQuery__Node *n = tree->stmts[0]->stmt;
        node.known = true;
        switch (n->node_case) {
        case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
            node.transaction = true;
            node.txn_kind = n->transaction_stmt->kind;
            node.txn_options = n->transaction_stmt->n_options > 0 || n->transaction_stmt->chain;
            break;
        case PG_QUERY__NODE__NODE_INDEX_STMT:
            if (n->index_stmt->concurrent)
                node.refused = "CREATE INDEX CONCURRENTLY";
            break;
        case PG_QUERY__NODE__NODE_DROP_STMT:
            if (n->drop_stmt->concurrent)
                node.refused = "DROP INDEX CONCURRENTLY";
            break;
        case PG_QUERY__NODE__NODE_REINDEX_STMT:
            if (HasConcurrently(n->reindex_stmt->n_params, n->reindex_stmt->params))
                node.refused = "REINDEX CONCURRENTLY";
            break;
        case PG_QUERY__NODE__NODE_VACUUM_STMT:
            if (n->vacuum_stmt->is_vacuumcmd)
                node.refused = "VACUUM";
            break;
        case PG_QUERY__NODE__NODE_CREATEDB_STMT:
            node.refused = "CREATE DATABASE";
            break;
        case PG_QUERY__NODE__NODE_DROPDB_STMT:
            node.refused = "DROP DATABASE";
            break;
        case PG_QUERY__NODE__NODE_CREATE_TABLE_SPACE_STMT:
            node.refused = "CREATE TABLESPACE";
            break;
        case PG_QUERY__NODE__NODE_DROP_TABLE_SPACE_STMT:
            node.refused = "DROP TABLESPACE";
            break;
        case PG_QUERY__NODE__NODE_ALTER_SYSTEM_STMT:
            node.refused = "ALTER SYSTEM";
            break;
        case PG_QUERY__NODE__NODE_COPY_STMT: {
            const PgQuery__CopyStmt *copy = n->copy_stmt;
            node.copy = true;
            node.copy_from_stdin =
                copy->is_from && !copy->is_program && !(copy->filename && *copy->filename);
            break;
        }
        default:
            break;
        }
    }
    if (tree)
        pg_query__parse_result__free_unpacked(tree, nullptr);
    pg_query_free_protobuf_parse_result(result);
    return node;
}

bool AllowedInside(PgQuery__TransactionStmtKind kind) {
    return kind == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_SAVEPOINT ||
           kind == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_RELEASE ||
           kind == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_TO;
}

/* ParseBatch is statements libpg_query checks together. */
class ParseBatch {
  public:
    explicit ParseBatch(const std::string &file_name) : file_name_(file_name) {}

    size_t Bytes() const { return sql_.size(); }

    void Add(const StreamStatement &st) {
        pieces_.push_back({sql_.size(), st.start_line});
        sql_ += st.text;
        if (st.terminated)
            sql_ += ';';
    }

    /* Check parses the batch; returns its first syntax error, if any, and empties it. Throws
     * FileError when the parser finds other statements than the splitter did. */
    std::optional<FileError> Check() {
        std::optional<FileError> error;
        if (pieces_.empty())
            return error;
        PgQuerySplitResult split = pg_query_split_with_parser(sql_.c_str());
        if (split.error) {
            const PgQueryError *err = split.error;
            error = SyntaxError(file_name_, err->cursorpos > 0 ? LineOf(err->cursorpos) : 0,
                                err->message);
        } else {
            size_t n = size_t(split.n_stmts);
            size_t mismatch = pieces_.size();
            for (size_t i = 0; i < std::min(n, pieces_.size()) && mismatch == pieces_.size(); ++i)
                if (size_t(split.stmts[i]->stmt_location) != pieces_[i].begin)
                    mismatch = i;
            if (mismatch == pieces_.size() && n != pieces_.size())
                mismatch = std::min(n, pieces_.size() - 1);
            if (mismatch < pieces_.size()) {
                size_t line = pieces_[mismatch].start_line;
                pg_query_free_split_result(split);
                throw FileError(file_name_, line,
                                "keel's statement splitter and PostgreSQL's parser disagree on "
                                "where a statement ends near here; the file is not run (please "
                                "report it)");
            }
        }
        pg_query_free_split_result(split);
        sql_.clear();
        pieces_.clear();
        return error;
    }

  private:
    /* LineOf maps a 1-based character position in sql_ to a line of the file. */
    size_t LineOf(int cursorpos) const {
        size_t offset = CharPositionToOffset(sql_, cursorpos);
        size_t k = pieces_.size() - 1;
        while (k > 0 && pieces_[k].begin > offset)
            --k;
        const Piece &p = pieces_[k];
        return p.start_line - 1 + LineAt(std::string_view(sql_).substr(p.begin), offset - p.begin);
    }

    struct Piece {
        size_t begin;      /* byte offset in sql_ */
        size_t start_line; /* file line of its first byte */
    };
    const std::string &file_name_;
    std::string sql_;
    std::vector<Piece> pieces_;
};

} // namespace

Script PrepareStreamedScript(const MigrationFile &file) {
    const std::string &name = file.file_name;
    bool transactional = !file.directives.no_transaction;
    ChecksumStream sum;
    SqlStream stream = SqlStream::Open(file.path, name, &sum);
    PlainInsertCheck fast;
    ParseBatch batch(name);

    std::optional<FileError> syntax_error, refused_error, txn_error;
    struct Seen {
        size_t line;
        std::string text;
    };
    std::optional<Seen> opener, last_commit; /* the wrapper's BEGIN, a COMMIT that is last so far */
    size_t index = 0;
    StreamStatement st;
    for (;;) {
        try {
            if (!stream.Next(st))
                break;
        } catch (const FileError &) {
            /* COPY data without its end (or a statement keel cannot hold): as in PrepareScript,
             * a syntax error before it wins (the parser then never saw a COPY there) */
            if (!syntax_error)
                syntax_error = batch.Check();
            if (syntax_error)
                throw *syntax_error;
            throw;
        }
        size_t i = index++;
        if (!syntax_error && !fast.SurelyValid(st.text)) {
            batch.Add(st);
            if (batch.Bytes() >= kParseBatchBytes)
                syntax_error = batch.Check();
        }
        if (syntax_error)
            continue; /* nothing found later can win over it but a COPY error */
        if (transactional && last_commit) { /* that COMMIT was not the last statement */
            if (!txn_error)
                txn_error = TransactionControlError(name, last_commit->line, last_commit->text);
            last_commit.reset();
        }
        if (!Candidate(st))
            continue;
        Node node = Classify(st.text);
        if (!node.known)
            continue; /* its syntax error comes from the batch */
        if (node.copy && node.copy_from_stdin != st.copy_from_stdin)
            throw FileError(name, st.line,
                            "keel cannot tell whether inline data follows this COPY; the file "
                            "is not run (please report it)");
        if (!transactional)
            continue;
        if (!node.refused.empty() && !refused_error)
            refused_error = NotInTransactionError(name, st.line, node.refused);
        if (!node.transaction || AllowedInside(node.txn_kind))
            continue;
        bool plain = !node.txn_options;
        if (i == 0 && plain &&
            (node.txn_kind == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN ||
             node.txn_kind == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START))
            opener = Seen{st.line, st.text};
        else if (i > 0 && plain &&
                 node.txn_kind == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT)
            last_commit = Seen{st.line, st.text};
        else if (!txn_error)
            txn_error = TransactionControlError(name, st.line, st.text);
    }
    if (!syntax_error)
        syntax_error = batch.Check();
    if (sum.Final() != file.checksum)
        throw FileError(name, 0,
                        "the file changed on disk while keel read it (its checksum is no longer " +
                            file.checksum.substr(0, 12) + "...); nothing applied, run again");
    if (syntax_error)
        throw *syntax_error;
    if (refused_error)
        throw *refused_error;

    Script script;
    script.streamed = true;
    script.streamed_total = index;
    if (transactional) {
        /* the file's own BEGIN ... COMMIT wrapper, as PrepareScript finds it */
        script.unwrapped = index >= 2 && opener && last_commit;
        if (!script.unwrapped) {
            if (opener) /* the first statement: before any other */
                throw TransactionControlError(name, opener->line, opener->text);
            if (!txn_error && last_commit)
                txn_error = TransactionControlError(name, last_commit->line, last_commit->text);
        }
        if (txn_error)
            throw *txn_error;
    }
    return script;
}

} // namespace keel::client
