/*
 * extension/guard/verdict.cpp
 *   What happens to a destructive command: refused with KL001 (and audited
 *   from a background worker), let through with a WARNING (keel.guard =
 *   warn), or let through under the break-glass (audited as overridden).
 */
#include "pg/error.hpp"

extern "C" {
#include "postgres.h"
#include "lib/stringinfo.h"
}

#include "guard/guard_internal.hpp"

namespace keel {

/* Most objects named in a DETAIL; the rest are counted. */
static const int kMaxDetailObjects = 20;

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

/*
 * GuardVerdict: see guard_internal.hpp. The rule comes from seed 000
 * ("No destructive operations in production migrations", "Additive-only")
 * and DESIGN.md (KL001, break-glass lasting one transaction).
 */
void GuardVerdict(const char *tag, List *objects, bool at_start) {
    if (objects == NIL || guard_mode == GUARD_OFF || RunningKeelScript())
        return;

    if (BreakGlassActive()) {
        /* Recorded once, at sql_drop, with exactly what was dropped. */
        if (!at_start) {
            AuditRecord rec = MakeAuditRecord("overridden", tag, objects, BreakGlassReason());
            InsertAuditRow(&rec);
        }
        return;
    }

    char *described = DescribeObjects(objects);
    if (guard_mode == GUARD_WARN) {
        if (!at_start) {
            ereport(WARNING, (errcode(ERRCODE_WARNING),
                              errmsg("destructive DDL allowed by keel.guard = warn: %s", tag),
                              errdetail("It destroys %s.", described),
                              errhint("Set keel.guard to enforce to refuse destructive DDL.")));
            AuditRecord rec = MakeAuditRecord("warned", tag, objects, nullptr);
            InsertAuditRow(&rec);
        }
        return;
    }

    AuditRecord rec = MakeAuditRecord("blocked", tag, objects, nullptr);
    AuditDetached(&rec);
    ereport(ERROR,
            (errcode(kBlockedDdl), errmsg("destructive DDL refused: %s", tag),
             errdetail("It would destroy %s.", described),
             errhint("If this is intended, run SELECT keel.allow_destructive('<reason>') in the "
                     "same transaction first; it lasts until the transaction ends.")));
}

} // namespace keel
