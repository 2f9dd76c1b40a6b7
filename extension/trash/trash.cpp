/*
 * extension/trash/trash.cpp
 *   The recycle bin's GUCs (who may restore and purge: IsKeelAdmin, break_glass.cpp).
 *     keel.trash (bool, default on, PGC_SUSET): keep what the guard lets through.
 *     keel.trash_retention (integer seconds, default 7 days, PGC_SUSET):
 *       how long an entry is kept before keel.purge_dropped() may destroy it.
 */
extern "C" {
#include "postgres.h"
#include <climits>
#include "utils/guc.h"
}

#include "guard/guard_internal.hpp"
#include "trash/trash.hpp"

namespace keel {

bool trash_enabled = true;
int trash_retention_s = 7 * 24 * 3600;

void InitTrash() {
    DefineCustomBoolVariable(
        "keel.trash", gettext_noop("Whether keel keeps what its guard lets through in keel_trash."),
        gettext_noop("on: a dropped table (library preloaded), a dropped column and truncated rows "
                     "(library preloaded) can be restored with keel.restore_dropped()."),
        &trash_enabled, true, PGC_SUSET, 0, nullptr, nullptr, nullptr);
    DefineCustomIntVariable(
        "keel.trash_retention", gettext_noop("How long keel's recycle bin keeps an entry."),
        gettext_noop("keel.purge_dropped() destroys entries older than this."), &trash_retention_s,
        7 * 24 * 3600, 60, INT_MAX, PGC_SUSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
}

} // namespace keel
