/*
 * extension/guard/spi_util.hpp
 *   Pinning search_path while keel's own SPI queries run inside a user's
 *   statement, so no object in the user's schemas can shadow pg_catalog.
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "utils/guc.h"
}

namespace keel {

/* PinSearchPath sets search_path = pg_catalog, pg_temp in a new GUC nest level; returns the level. */
inline int PinSearchPath() {
    int level = NewGUCNestLevel();
    (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_SAVE, true, 0, false);
    return level;
}

/* UnpinSearchPath restores search_path as it was before PinSearchPath(level). */
inline void UnpinSearchPath(int level) { AtEOXact_GUC(true, level); }

} // namespace keel
