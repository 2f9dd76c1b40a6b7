/*
 * client/lint/rule.hpp
 *   What a lint rule sees and how it reports. Each rule is one file under
 *   client/lint/rules/ defining a Rule; rules/registry.cpp lists them all.
 *   A rule looks at one statement at a time (Check) and, for rules that wait
 *   for a replacement, at the end of each transaction (EndTransaction).
 */
#pragma once

#include "lint/lint.hpp"

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include <map>
#include <set>
#include <string>
#include <vector>

namespace keel::lint {

/* Stmt is one statement of a file, top level or run by a DO block / PL/pgSQL body. */
struct Stmt {
    const PgQuery__Node *node = nullptr;
    size_t line = 1,
           column = 1;   /* of its first token (a nested one: of its DO / CREATE FUNCTION) */
    bool nested = false; /* inside a DO block or a PL/pgSQL function body */
};

/* A derived object dropped and not yet re-created in the same transaction. */
struct PendingDrop {
    const struct Rule *rule;
    std::string kind, key;
    size_t line, column;
    std::string message, help;
    std::string waived_by; /* a -- keel:allow comment waived it (Options::keep_waived) */
};

/* Context is what is known at this point of the run. */
struct Context {
    std::string file;
    bool transactional = true;   /* the runner wraps the file in a transaction */
    bool explicit_begin = false; /* inside a BEGIN of the file's own */
    size_t begin_line = 0, begin_column = 0;
    bool lock_timeout_set = false;     /* SET lock_timeout seen in this file */
    bool destructive_allowed = false;  /* -- keel:allow-destructive "reason" */
    bool keep_waived = false;          /* Options::keep_waived */
    std::set<std::string> new_tables;  /* created earlier in this file or folder */
    std::set<std::string> new_objects; /* kind + ":" + name, created earlier in this file */
    std::set<std::string>
        not_null_checks; /* "table.column" with a validated CHECK (col IS NOT NULL) */
    std::map<std::string, std::string>
        unvalidated_checks; /* "table:constraint" -> "table.column" */
    std::vector<PendingDrop> pending;

    /* in_transaction: the statement runs inside a transaction block. */
    bool InTransaction() const { return transactional || explicit_begin; }
    /* IsNew: kind/key was created earlier in this file (tables: or earlier in the folder). */
    bool IsNew(const std::string &kind, const std::string &key) const {
        return (kind == "table" && new_tables.count(key)) || new_objects.count(kind + ":" + key);
    }
};

/* Emitter collects findings for the statement being checked. */
class Emitter {
  public:
    Emitter(Context &ctx, const std::map<std::string, Level> &levels, std::vector<Finding> *out)
        : ctx_(ctx), levels_(levels), out_(out) {}
    /* Report adds a finding of rule at stmt's position, at rule's effective level. */
    void Report(const struct Rule &rule, const Stmt &stmt, std::string message, std::string help);
    void ReportAt(const struct Rule &rule, size_t line, size_t column, std::string message,
                  std::string help);
    /* Pend records a derived object dropped here; it becomes a finding unless re-created. */
    void Pend(const struct Rule &rule, const Stmt &stmt, std::string kind, std::string key,
              std::string message, std::string help);

  private:
    Context &ctx_;
    const std::map<std::string, Level> &levels_;
    std::vector<Finding> *out_;
};

/* Rule is one check. name and level come from rule_list.def for guard rules. */
struct Rule {
    std::string name;
    Level level;
    std::string summary;
    bool guard;
    void (*check)(const Rule &self, const Stmt &stmt, Context &ctx, Emitter &out);
};

/* AllRules returns every rule, guard rules first, in a stable order (rules/registry.cpp). */
const std::vector<const Rule *> &AllRules();
/* FindRule returns the rule called name, or nullptr. */
const Rule *FindRule(const std::string &name);

/* ---- parse-tree helpers shared by the rules (tree.cpp; names and keys: tree.hpp) ---- */

/* Has: a protobuf string field is set (libpg_query leaves absent ones empty, not NULL). */
inline bool Has(const char *s) {
    return s && *s;
}

/* IsVolatileDefault reports whether expr calls a function known to be volatile (a table rewrite).
 */
bool IsVolatileDefault(const PgQuery__Node *expr);
/* ColumnDefault returns a ColumnDef's DEFAULT expression (raw_default or a DEFAULT constraint). */
const PgQuery__Node *ColumnDefault(const PgQuery__ColumnDef *col);
/* ColumnIsNotNull reports NOT NULL or PRIMARY KEY on a ColumnDef. */
bool ColumnIsNotNull(const PgQuery__ColumnDef *col);
/* IsSerialType reports serial, bigserial, smallserial (they add a nextval() default). */
bool IsSerialType(const PgQuery__TypeName *type);

/* Guard rules report at most the guard's level; the file directive allow-destructive waives them.
 */
bool GuardWaived(const Rule &rule, const Context &ctx);

} // namespace keel::lint
