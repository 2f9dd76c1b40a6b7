/*
 * client/lint/rules/registry.cpp
 *   Every lint rule, guard rules first in rule_list.def's order. Adding a
 *   rule: one file under client/lint/rules/, one line here, one case folder
 *   under tests/lint/.
 */
#include "lint/rule.hpp"

namespace keel::lint {

extern const Rule kDropTable, kDropColumn, kDropSequence, kDropView, kDropMaterializedView,
    kDropFunction, kDropIndex, kDropConstraint, kDropTrigger, kDropType, kDropSchema,
    kDropExtension, kDropDatabase, kDropRole, kTruncate, kTableRewrite, kRenameTable, kRenameView,
    kRenameColumn, kRenameEnumValue, kGuardTamper;
extern const Rule kCreateIndexNonConcurrently, kAddConstraintWithoutNotValid,
    kSetNotNullWithoutCheck, kAddColumnNotNullWithoutDefault, kConcurrentlyInTransaction,
    kMissingLockTimeout, kDmlWithoutWhere, kUnclosedTransaction, kInvalidWaiver, kInvalidDirective,
    kSyntaxError;

const std::vector<const Rule *> &AllRules() {
    static const std::vector<const Rule *> rules = {&kDropTable,
                                                    &kDropColumn,
                                                    &kDropSequence,
                                                    &kDropView,
                                                    &kDropMaterializedView,
                                                    &kDropFunction,
                                                    &kDropIndex,
                                                    &kDropConstraint,
                                                    &kDropTrigger,
                                                    &kDropType,
                                                    &kDropSchema,
                                                    &kDropExtension,
                                                    &kDropDatabase,
                                                    &kDropRole,
                                                    &kTruncate,
                                                    &kTableRewrite,
                                                    &kRenameTable,
                                                    &kRenameView,
                                                    &kRenameColumn,
                                                    &kRenameEnumValue,
                                                    &kGuardTamper,
                                                    &kCreateIndexNonConcurrently,
                                                    &kAddConstraintWithoutNotValid,
                                                    &kSetNotNullWithoutCheck,
                                                    &kAddColumnNotNullWithoutDefault,
                                                    &kConcurrentlyInTransaction,
                                                    &kMissingLockTimeout,
                                                    &kDmlWithoutWhere,
                                                    &kUnclosedTransaction,
                                                    &kInvalidWaiver,
                                                    &kInvalidDirective,
                                                    &kSyntaxError};
    return rules;
}

const Rule *FindRule(const std::string &name) {
    for (const Rule *r : AllRules())
        if (r->name == name)
            return r;
    return nullptr;
}

} // namespace keel::lint
