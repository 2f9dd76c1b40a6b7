/*
 * client/lint/tree.cpp
 *   See tree.hpp and the parse-tree helpers of rule.hpp.
 */
#include "lint/tree.hpp"
#include "lint/rule.hpp"

#include <cstring>

namespace keel::lint {

std::string StringOf(const PgQuery__Node *node) {
    if (node && node->node_case == PG_QUERY__NODE__NODE_STRING && node->string &&
        node->string->sval)
        return node->string->sval;
    return "";
}

static std::string Key(const std::string &schema, const std::string &name) {
    return schema.empty() || schema == "public" ? name : schema + "." + name;
}

std::string KeyOf(const PgQuery__RangeVar *rv) {
    if (!rv || !rv->relname)
        return "";
    return Key(rv->schemaname ? rv->schemaname : "", rv->relname);
}

std::string KeyOfNames(size_t n, PgQuery__Node *const *names) {
    if (n == 0)
        return "";
    std::string name = StringOf(names[n - 1]);
    std::string schema = n >= 2 ? StringOf(names[n - 2]) : "";
    return Key(schema, name);
}

std::string QualifiedName(size_t n, PgQuery__Node *const *names) {
    std::string out;
    for (size_t i = 0; i < n; i++)
        out += (i ? "." : "") + StringOf(names[i]);
    return out;
}

std::string DropKind(PgQuery__ObjectType type) {
    switch (type) {
    case PG_QUERY__OBJECT_TYPE__OBJECT_TABLE:
        return "table";
    case PG_QUERY__OBJECT_TYPE__OBJECT_SEQUENCE:
        return "sequence";
    case PG_QUERY__OBJECT_TYPE__OBJECT_VIEW:
        return "view";
    case PG_QUERY__OBJECT_TYPE__OBJECT_MATVIEW:
        return "materialized view";
    case PG_QUERY__OBJECT_TYPE__OBJECT_INDEX:
        return "index";
    case PG_QUERY__OBJECT_TYPE__OBJECT_FUNCTION:
    case PG_QUERY__OBJECT_TYPE__OBJECT_PROCEDURE:
    case PG_QUERY__OBJECT_TYPE__OBJECT_ROUTINE:
    case PG_QUERY__OBJECT_TYPE__OBJECT_AGGREGATE:
        return "function";
    case PG_QUERY__OBJECT_TYPE__OBJECT_TRIGGER:
        return "trigger";
    case PG_QUERY__OBJECT_TYPE__OBJECT_TYPE:
    case PG_QUERY__OBJECT_TYPE__OBJECT_DOMAIN:
        return "type";
    case PG_QUERY__OBJECT_TYPE__OBJECT_SCHEMA:
        return "schema";
    case PG_QUERY__OBJECT_TYPE__OBJECT_EXTENSION:
        return "extension";
    case PG_QUERY__OBJECT_TYPE__OBJECT_EVENT_TRIGGER:
        return "event trigger";
    default:
        return "";
    }
}

std::vector<ObjectRef> DropTargets(const PgQuery__DropStmt *stmt) {
    std::vector<ObjectRef> out;
    std::string kind = DropKind(stmt->remove_type);
    if (kind.empty())
        return out;
    for (size_t i = 0; i < stmt->n_objects; i++) {
        const PgQuery__Node *obj = stmt->objects[i];
        std::string key;
        switch (obj->node_case) {
        case PG_QUERY__NODE__NODE_LIST:
            if (kind == "trigger" && obj->list->n_items >= 2) {
                size_t n = obj->list->n_items;
                key = StringOf(obj->list->items[n - 1]) + " on " +
                      KeyOfNames(n - 1, obj->list->items);
            } else {
                key = KeyOfNames(obj->list->n_items, obj->list->items);
            }
            break;
        case PG_QUERY__NODE__NODE_OBJECT_WITH_ARGS:
            key = KeyOfNames(obj->object_with_args->n_objname, obj->object_with_args->objname);
            break;
        case PG_QUERY__NODE__NODE_TYPE_NAME:
            key = KeyOfNames(obj->type_name->n_names, obj->type_name->names);
            break;
        case PG_QUERY__NODE__NODE_STRING:
            key = StringOf(obj);
            break;
        default:
            break;
        }
        if (!key.empty())
            out.push_back({kind, key});
    }
    return out;
}

std::vector<ObjectRef> CreatedObjects(const PgQuery__Node *node) {
    std::vector<ObjectRef> out;
    if (!node)
        return out;
    switch (node->node_case) {
    case PG_QUERY__NODE__NODE_CREATE_STMT:
        out.push_back({"table", KeyOf(node->create_stmt->relation)});
        break;
    case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT: {
        const auto *s = node->create_table_as_stmt;
        if (s->into)
            out.push_back({s->objtype == PG_QUERY__OBJECT_TYPE__OBJECT_MATVIEW ? "materialized view"
                                                                               : "table",
                           KeyOf(s->into->rel)});
        break;
    }
    case PG_QUERY__NODE__NODE_VIEW_STMT:
        out.push_back({"view", KeyOf(node->view_stmt->view)});
        break;
    case PG_QUERY__NODE__NODE_CREATE_FUNCTION_STMT:
        out.push_back({"function", KeyOfNames(node->create_function_stmt->n_funcname,
                                              node->create_function_stmt->funcname)});
        break;
    case PG_QUERY__NODE__NODE_INDEX_STMT: {
        const auto *s = node->index_stmt;
        if (Has(s->idxname)) {
            std::string schema =
                s->relation && s->relation->schemaname ? s->relation->schemaname : "";
            out.push_back({"index", schema.empty() || schema == "public"
                                        ? std::string(s->idxname)
                                        : schema + "." + s->idxname});
        }
        break;
    }
    case PG_QUERY__NODE__NODE_CREATE_TRIG_STMT:
        out.push_back({"trigger", std::string(node->create_trig_stmt->trigname) + " on " +
                                      KeyOf(node->create_trig_stmt->relation)});
        break;
    case PG_QUERY__NODE__NODE_CREATE_ENUM_STMT:
        out.push_back({"type", KeyOfNames(node->create_enum_stmt->n_type_name,
                                          node->create_enum_stmt->type_name)});
        break;
    case PG_QUERY__NODE__NODE_COMPOSITE_TYPE_STMT:
        out.push_back({"type", KeyOf(node->composite_type_stmt->typevar)});
        break;
    case PG_QUERY__NODE__NODE_CREATE_DOMAIN_STMT:
        out.push_back({"type", KeyOfNames(node->create_domain_stmt->n_domainname,
                                          node->create_domain_stmt->domainname)});
        break;
    case PG_QUERY__NODE__NODE_DEFINE_STMT:
        if (node->define_stmt->kind == PG_QUERY__OBJECT_TYPE__OBJECT_TYPE)
            out.push_back(
                {"type", KeyOfNames(node->define_stmt->n_defnames, node->define_stmt->defnames)});
        else if (node->define_stmt->kind == PG_QUERY__OBJECT_TYPE__OBJECT_AGGREGATE)
            out.push_back({"function",
                           KeyOfNames(node->define_stmt->n_defnames, node->define_stmt->defnames)});
        break;
    case PG_QUERY__NODE__NODE_CREATE_SCHEMA_STMT:
        if (node->create_schema_stmt->schemaname)
            out.push_back({"schema", node->create_schema_stmt->schemaname});
        break;
    case PG_QUERY__NODE__NODE_CREATE_EXTENSION_STMT:
        out.push_back({"extension", node->create_extension_stmt->extname});
        break;
    case PG_QUERY__NODE__NODE_CREATE_SEQ_STMT:
        out.push_back({"sequence", KeyOf(node->create_seq_stmt->sequence)});
        break;
    case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT: {
        const auto *s = node->alter_table_stmt;
        for (size_t i = 0; i < s->n_cmds; i++) {
            const auto *cmd = s->cmds[i]->alter_table_cmd;
            if (cmd && cmd->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_AddConstraint && cmd->def &&
                cmd->def->node_case == PG_QUERY__NODE__NODE_CONSTRAINT &&
                Has(cmd->def->constraint->conname))
                out.push_back({"constraint", std::string(cmd->def->constraint->conname) + " on " +
                                                 KeyOf(s->relation)});
        }
        break;
    }
    default:
        break;
    }
    return out;
}

/* Functions whose result changes from row to row: a DEFAULT calling one rewrites the table. */
static const char *const kVolatile[] = {"random",           "gen_random_uuid",
                                        "uuid_generate_v1", "uuid_generate_v1mc",
                                        "uuid_generate_v4", "clock_timestamp",
                                        "timeofday",        "nextval",
                                        "txid_current",     "statement_timestamp",
                                        "setseed",          "gen_random_bytes",
                                        "random_normal",    nullptr};

bool IsVolatileDefault(const PgQuery__Node *expr) {
    if (!expr)
        return false;
    switch (expr->node_case) {
    case PG_QUERY__NODE__NODE_FUNC_CALL: {
        const auto *f = expr->func_call;
        std::string name = f->n_funcname ? StringOf(f->funcname[f->n_funcname - 1]) : "";
        for (const char *const *v = kVolatile; *v; v++)
            if (name == *v)
                return true;
        for (size_t i = 0; i < f->n_args; i++)
            if (IsVolatileDefault(f->args[i]))
                return true;
        return false;
    }
    case PG_QUERY__NODE__NODE_TYPE_CAST:
        return IsVolatileDefault(expr->type_cast->arg);
    case PG_QUERY__NODE__NODE_A_EXPR:
        return IsVolatileDefault(expr->a_expr->lexpr) || IsVolatileDefault(expr->a_expr->rexpr);
    case PG_QUERY__NODE__NODE_COALESCE_EXPR:
        for (size_t i = 0; i < expr->coalesce_expr->n_args; i++)
            if (IsVolatileDefault(expr->coalesce_expr->args[i]))
                return true;
        return false;
    default:
        return false;
    }
}

const PgQuery__Node *ColumnDefault(const PgQuery__ColumnDef *col) {
    if (col->raw_default)
        return col->raw_default;
    for (size_t i = 0; i < col->n_constraints; i++) {
        const auto *c = col->constraints[i]->constraint;
        if (c && c->contype == PG_QUERY__CONSTR_TYPE__CONSTR_DEFAULT)
            return c->raw_expr;
    }
    return nullptr;
}

bool ColumnIsNotNull(const PgQuery__ColumnDef *col) {
    if (col->is_not_null)
        return true;
    for (size_t i = 0; i < col->n_constraints; i++) {
        const auto *c = col->constraints[i]->constraint;
        if (c && (c->contype == PG_QUERY__CONSTR_TYPE__CONSTR_NOTNULL ||
                  c->contype == PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY))
            return true;
    }
    return false;
}

bool IsSerialType(const PgQuery__TypeName *type) {
    if (!type || type->n_names == 0)
        return false;
    std::string name = StringOf(type->names[type->n_names - 1]);
    return name == "serial" || name == "bigserial" || name == "smallserial" || name == "serial4" ||
           name == "serial8" || name == "serial2";
}

bool GuardWaived(const Rule &rule, const Context &ctx) {
    return rule.guard && ctx.destructive_allowed;
}

} // namespace keel::lint
