/*
 * extension/pg/spi_plan.hpp
 *   Saved SPI plans for the credit functions (credits.cpp, batch.cpp) and
 *   the migration bookkeeping (migrations/history.cpp):
 *   SPI_prepare + SPI_keepplan on first use, kept for the life of the
 *   backend. The plan cache re-plans them after DDL on the tables they read,
 *   so they survive DROP/CREATE EXTENSION too. PostgreSQL-facing, plain C
 *   style; include after postgres.h.
 */
#pragma once

extern "C" {
#include "postgres.h"
#include "executor/spi.h"
}

/* saved_plan returns *slot, preparing and keeping the plan on first use. */
static inline SPIPlanPtr saved_plan(SPIPlanPtr *slot, const char *sql, int nargs, Oid *argtypes) {
    if (*slot == NULL) {
        SPIPlanPtr plan = SPI_prepare(sql, nargs, argtypes);
        if (plan == NULL)
            elog(ERROR, "SPI_prepare failed for \"%s\": %s", sql,
                 SPI_result_code_string(SPI_result));
        if (SPI_keepplan(plan) != 0)
            elog(ERROR, "SPI_keepplan failed for \"%s\"", sql);
        *slot = plan;
    }
    return *slot;
}

/* run_plan executes a saved plan and returns SPI's result code (>= 0). */
static inline int run_plan(SPIPlanPtr plan, Datum *values, const char *nulls, bool read_only) {
    int rc = SPI_execute_plan(plan, values, nulls, read_only, 0);
    if (rc < 0)
        elog(ERROR, "SPI_execute_plan failed: %s", SPI_result_code_string(rc));
    return rc;
}
