/*
 * client/lint/rules/guard_tamper.cpp — guard-tamper (guard rule; docs/rules/guard-tamper.md)
 *   Flags what would switch keel's guard off: DROP EXTENSION keel, ALTER or
 *   DROP of keel's event triggers (keel_guard_*), CREATE OR REPLACE / ALTER
 *   of a function in schema keel, ALTER EXTENSION keel ADD/DROP, renaming
 *   schema keel, and enabling or disabling triggers of keel's tables.
 */
#include "lint/rules/guard_rule.hpp"

namespace keel::lint {

static const char *kHelp = "keel's own objects are changed only by ALTER EXTENSION keel UPDATE "
                           "(docs/rules/guard-tamper.md).";

static bool KeelName(const std::string &s) {
    return s == "keel" || s.rfind("keel.", 0) == 0;
}

static void Check(const Rule &self, const Stmt &stmt, Context &, Emitter &out) {
    const PgQuery__Node *n = stmt.node;
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_DROP_STMT:
        for (const ObjectRef &o : DropTargets(n->drop_stmt))
            if ((o.kind == "extension" && o.key == "keel") ||
                (o.kind == "event trigger" && o.key.rfind("keel_", 0) == 0) ||
                (o.kind == "function" && o.key.rfind("keel.", 0) == 0))
                out.Report(self, stmt, "DROP " + o.kind + " " + o.key + " removes keel's guard",
                           kHelp);
        break;
    case PG_QUERY__NODE__NODE_ALTER_EVENT_TRIG_STMT:
        if (n->alter_event_trig_stmt->trigname &&
            std::string(n->alter_event_trig_stmt->trigname).rfind("keel_", 0) == 0)
            out.Report(self, stmt,
                       "ALTER EVENT TRIGGER " + std::string(n->alter_event_trig_stmt->trigname) +
                           " changes keel's guard",
                       kHelp);
        break;
    case PG_QUERY__NODE__NODE_CREATE_FUNCTION_STMT: {
        const auto *f = n->create_function_stmt;
        std::string name = QualifiedName(f->n_funcname, f->funcname);
        if (f->replace && name.rfind("keel.", 0) == 0)
            out.Report(self, stmt, "CREATE OR REPLACE FUNCTION " + name + " replaces keel's code",
                       kHelp);
        break;
    }
    case PG_QUERY__NODE__NODE_ALTER_EXTENSION_CONTENTS_STMT:
        if (n->alter_extension_contents_stmt->extname &&
            std::string(n->alter_extension_contents_stmt->extname) == "keel")
            out.Report(self, stmt, "ALTER EXTENSION keel ADD/DROP changes what keel protects",
                       kHelp);
        break;
    case PG_QUERY__NODE__NODE_RENAME_STMT:
        if (n->rename_stmt->rename_type == PG_QUERY__OBJECT_TYPE__OBJECT_SCHEMA &&
            n->rename_stmt->subname && std::string(n->rename_stmt->subname) == "keel")
            out.Report(self, stmt, "renaming schema keel breaks keel", kHelp);
        break;
    case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
        ForEachCmd(stmt, [&](const PgQuery__AlterTableStmt *s, const PgQuery__AlterTableCmd *cmd) {
            bool trig = cmd->subtype >= PG_QUERY__ALTER_TABLE_TYPE__AT_EnableTrig &&
                        cmd->subtype <= PG_QUERY__ALTER_TABLE_TYPE__AT_DisableTrigUser;
            if (trig && s->relation && Has(s->relation->schemaname) &&
                KeelName(s->relation->schemaname))
                out.Report(self, stmt,
                           "changing the triggers of " + KeyOf(s->relation) +
                               " switches off keel's append-only protection",
                           kHelp);
        });
        break;
    default:
        break;
    }
}

extern const Rule kGuardTamper = GuardRule(keel::kRuleGuardTamper, Check);

} // namespace keel::lint
