/*
 * extension/keel.cpp
 *   Module entry point of keel.so: _PG_init registers the GUCs and hooks of
 *   each capability. keel.so works after a plain CREATE EXTENSION (its event
 *   triggers load it on first use) and may also be preloaded.
 */
extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"
}

#include "guard/guard.hpp"

extern "C" {
PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);
}

/*
 * _PG_init runs once per backend when keel.so is loaded. It defines the
 * keel.* GUCs and reserves the prefix (PostgreSQL 15 MarkGUCPrefixReserved),
 * then initialises each capability.
 */
void _PG_init(void) {
    keel::InitGuard();
    MarkGUCPrefixReserved("keel");
}
