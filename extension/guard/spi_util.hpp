/*
 * extension/guard/spi_util.hpp
 *   Pinning search_path while keel's own SPI queries run inside a user's
 *   statement, so no object in the user's schemas can shadow pg_catalog.
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "executor/spi.h"
#include "utils/guc.h"
}

namespace keel {

/* PinSearchPath sets search_path = pg_catalog, pg_temp in a new GUC nest level; returns the level.
 */
inline int PinSearchPath() {
    int level = NewGUCNestLevel();
    (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
                            GUC_ACTION_SAVE, true, 0, false);
    return level;
}

/*
 * AppendSpiColumn appends column 1 of every row of SPI_tuptable, as text, to
 * list; list and strings are allocated in outer (which outlives SPI_finish).
 */
inline List *AppendSpiColumn(List *list, MemoryContext outer) {
    for (uint64 i = 0; i < SPI_processed; i++) {
        char *value = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
        MemoryContext spi = MemoryContextSwitchTo(outer);
        list = lappend(list, pstrdup(value ? value : ""));
        MemoryContextSwitchTo(spi);
    }
    return list;
}

/* UnpinSearchPath restores search_path as it was before PinSearchPath(level). */
inline void UnpinSearchPath(int level) {
    AtEOXact_GUC(true, level);
}

} // namespace keel
