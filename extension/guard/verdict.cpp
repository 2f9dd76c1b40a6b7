/*
 * extension/guard/verdict.cpp
 *   What happens to a command's findings, rule by rule: refused with KL001
 *   (with a durable 'blocked' audit row), let through with a WARNING (level
 *   warn), let through silently but audited (level off: 'unguarded'), or let
 *   through under the break-glass ('overridden').
 */
#include "pg/error.hpp"

extern "C" {
#include "postgres.h"
#include "lib/stringinfo.h"
}

#include "guard/guard_internal.hpp"

namespace keel {

/* Most objects named in a DETAIL; the rest are counted (the audit row keeps more). */
static const int kMaxDetailObjects = 20;

List *AddFinding(List *findings, int rule, const char *object) {
    Finding *f = (Finding *)palloc(sizeof(Finding));
    f->rule = rule;
    f->object = pstrdup(object);
    return lappend(findings, f);
}

/* DescribeObjects joins up to kMaxDetailObjects descriptions for a DETAIL. */
static char *DescribeObjects(List *objects) {
    StringInfoData buf;
    initStringInfo(&buf);
    int n = list_length(objects);
    int shown = n > kMaxDetailObjects ? kMaxDetailObjects : n;
    for (int i = 0; i < shown; i++) {
        if (i > 0)
            appendStringInfoString(&buf, (i == n - 1) ? " and " : ", ");
        appendStringInfoString(&buf, (const char *)list_nth(objects, i));
    }
    if (n > shown)
        appendStringInfo(&buf, " and %d more objects", n - shown);
    return buf.data;
}

/* Selection of the findings at one level: their objects and their distinct rule names. */
struct Selection {
    List *objects;
    char *rules; /* "drop-table, drop-column" */
};

/*
 * Select returns the findings at level (every finding when level is NULL),
 * with the collateral objects beside them, and their distinct rule names.
 * Collateral alone decides nothing: with no finding at level it selects nothing.
 */
static Selection Select(List *findings, const RuleLevel *level) {
    auto at = [level](const Finding *f) {
        return f->rule != kCollateral && (level == nullptr || RuleLevelNow(f->rule) == *level);
    };
    Selection sel = {NIL, nullptr};
    bool seen[kRuleCount] = {false};
    StringInfoData rules;
    initStringInfo(&rules);
    ListCell *lc;
    foreach (lc, findings)
        if (at((Finding *)lfirst(lc)))
            break;
    if (lc == nullptr)
        return {NIL, rules.data};
    foreach (lc, findings) {
        Finding *f = (Finding *)lfirst(lc);
        if (f->rule != kCollateral && !at(f))
            continue;
        sel.objects = lappend(sel.objects, f->object);
        if (f->rule != kCollateral && !seen[f->rule]) {
            seen[f->rule] = true;
            appendStringInfo(&rules, "%s%s", rules.len ? ", " : "", RuleName(f->rule));
        }
    }
    sel.rules = rules.data;
    return sel;
}

static Selection Select(List *findings, RuleLevel level) {
    return Select(findings, &level);
}

/*
 * GuardVerdict: see guard_internal.hpp. The rules come from seed 000
 * ("No destructive operations in production migrations", "Additive-only")
 * and DESIGN.md (KL001, break-glass lasting one transaction, per-rule
 * levels in keel.guard_rules).
 */
void GuardVerdict(const char *tag, List *findings, bool audit) {
    if (findings == NIL || RunningKeelScript())
        return;

    bool decides = false;
    ListCell *lc;
    foreach (lc, findings)
        decides = decides || ((Finding *)lfirst(lc))->rule != kCollateral;
    if (!decides)
        return;

    if (BreakGlassActive()) {
        if (audit) {
            Selection all = Select(findings, nullptr);
            AuditRecord rec =
                MakeAuditRecord("overridden", tag, all.rules, all.objects, BreakGlassReason());
            InsertAuditRow(&rec);
        }
        return;
    }

    Selection refused = Select(findings, RuleLevel::Error);
    if (refused.objects != NIL) {
        char *described = DescribeObjects(refused.objects);
        AuditRecord rec = MakeAuditRecord("blocked", tag, refused.rules, refused.objects, nullptr);
        AuditDetached(&rec);
        ereport(ERROR,
                (errcode(kBlockedDdl),
                 errmsg("destructive DDL refused: %s (rule %s)", tag, refused.rules),
                 errdetail("It would destroy or break %s.", described),
                 errhint("If this is intended, run SELECT keel.allow_destructive('<reason>') in "
                         "the same transaction first; it lasts until the transaction ends. A "
                         "command that cannot run in a transaction block needs a superuser's "
                         "SET keel.guard_rules = '<rule>=warn'. docs/rules/ gives the safe "
                         "alternative.")));
    }

    if (!audit)
        return;
    Selection warned = Select(findings, RuleLevel::Warn);
    if (warned.objects != NIL) {
        ereport(WARNING,
                (errcode(ERRCODE_WARNING),
                 errmsg("destructive DDL allowed at level warn: %s (rule %s)", tag, warned.rules),
                 errdetail("It destroys or breaks %s.", DescribeObjects(warned.objects)),
                 errhint("Set keel.guard to enforce and the rule to error in "
                         "keel.guard_rules to refuse it.")));
        AuditRecord rec = MakeAuditRecord("warned", tag, warned.rules, warned.objects, nullptr);
        InsertAuditRow(&rec);
    }
    Selection unguarded = Select(findings, RuleLevel::Off);
    if (unguarded.objects != NIL) {
        AuditRecord rec =
            MakeAuditRecord("unguarded", tag, unguarded.rules, unguarded.objects, nullptr);
        InsertAuditRow(&rec);
    }
}

} // namespace keel
