/*
 * extension/keel.cpp
 *   Module entry point of keel.so: _PG_init registers the GUCs and hooks of
 *   each capability. keel.so works after a plain CREATE EXTENSION (its event
 *   triggers load it on first use); when it is preloaded
 *   (shared_preload_libraries or session_preload_libraries) it also installs
 *   the guard's ProcessUtility_hook, for what event triggers cannot see.
 */
extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
#include "utils/varlena.h"
}

#include "guard/guard.hpp"
#include "guard/utility_hook.hpp"
#include "trash/trash.hpp"

extern "C" {
PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

/* NamedIn reports whether the library list of GUC guc names keel ("keel", "$libdir/keel", ...). */
static bool NamedIn(const char *guc) {
    const char *value = GetConfigOption(guc, true, false);
    if (value == nullptr || *value == '\0')
        return false;
    char *copy = pstrdup(value);
    List *items = NIL;
    bool found = false;
    if (SplitDirectoriesString(copy, ',', &items)) {
        ListCell *lc;
        foreach (lc, items) {
            const char *item = (const char *)lfirst(lc);
            const char *base = strrchr(item, '/');
            base = base ? base + 1 : item;
            if (strcmp(base, "keel") == 0 || strcmp(base, "keel.so") == 0)
                found = true;
        }
    }
    return found;
}

/*
 * _PG_init runs once per backend when keel.so is loaded. It defines the
 * keel.* GUCs and reserves the prefix (PostgreSQL 15 MarkGUCPrefixReserved),
 * initialises each capability, and installs the utility hook only when
 * preloaded, so that what the guard covers in a session never depends on
 * whether an event trigger happened to load the library first.
 */
/*
 * keel.client_host and keel.tool_version: what keel's client says about
 * itself (the machine it runs on, "keel 0.2.0"), set by it for its session;
 * keel.migration_history records them on every row (column defaults), so the
 * history says where a migration came from. Any role may set them: they are
 * descriptions, not credentials.
 */
static char *client_host_setting = nullptr;
static char *tool_version_setting = nullptr;

void _PG_init(void) {
    keel::InitGuard();
    keel::InitTrash();
    DefineCustomStringVariable("keel.client_host",
                               "Host name of the machine keel's client runs on (recorded in "
                               "keel.migration_history).",
                               NULL, &client_host_setting, "", PGC_USERSET, 0, NULL, NULL, NULL);
    DefineCustomStringVariable("keel.tool_version",
                               "Name and version of the tool recording migrations (recorded in "
                               "keel.migration_history).",
                               NULL, &tool_version_setting, "", PGC_USERSET, 0, NULL, NULL, NULL);
    MarkGUCPrefixReserved("keel");
    if (process_shared_preload_libraries_in_progress || NamedIn("session_preload_libraries") ||
        NamedIn("local_preload_libraries"))
        keel::InitGuardUtilityHook();
}
