/*
 * client/lint/tree.hpp
 *   Reading libpg_query's protobuf parse tree (pg_query.pb-c.h): names of
 *   what a statement drops and creates, defaults, types. Shared by the
 *   engine (replacement tracking, new tables) and the rules.
 */
#pragma once

#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>

#include <string>
#include <vector>

namespace keel::lint {

/* ObjectRef is an object a statement names: its kind ("table", "view", ...) and key. */
struct ObjectRef {
    std::string kind;
    std::string key;
};

/* DropKind maps a DropStmt's remove_type to a kind, or "" for kinds lint does not track. */
std::string DropKind(PgQuery__ObjectType type);

/* DropTargets lists the objects a DropStmt names, with DropKind's kinds. */
std::vector<ObjectRef> DropTargets(const PgQuery__DropStmt *stmt);

/* CreatedObjects lists what a statement creates (CREATE TABLE / VIEW / ..., ADD CONSTRAINT). */
std::vector<ObjectRef> CreatedObjects(const PgQuery__Node *node);

/* KeyOf returns a RangeVar's key: "rel" when unqualified or in public, else "schema.rel". */
std::string KeyOf(const PgQuery__RangeVar *rv);

/* KeyOfNames returns the key of a qualified name list (String nodes), as KeyOf does. */
std::string KeyOfNames(size_t n, PgQuery__Node *const *names);

/* StringOf returns a String node's value, or "". */
std::string StringOf(const PgQuery__Node *node);

/* QualifiedName joins a list of String nodes with '.', as written. */
std::string QualifiedName(size_t n, PgQuery__Node *const *names);

} // namespace keel::lint
