/*
 * client/lint/rules/drop_database.cpp — drop-database (guard rule; docs/rules/drop-database.md)
 *   DROP DATABASE removes a whole database at once; the guard refuses it when
 *   keel.so is preloaded.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static void Check(const Rule &self, const Stmt &stmt, Context &, Emitter &out) {
    if (Is(stmt, PG_QUERY__NODE__NODE_DROPDB_STMT))
        out.Report(self, stmt,
                   "DROP DATABASE " + std::string(stmt.node->dropdb_stmt->dbname) +
                       " destroys the whole database",
                   "Databases are not a migration's business: drop them by hand after a backup "
                   "(docs/rules/drop-database.md).");
}

extern const Rule kDropDatabase = GuardRule(keel::kRuleDropDatabase, Check);

} // namespace keel::lint
