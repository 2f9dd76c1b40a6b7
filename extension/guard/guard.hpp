/*
 * extension/guard/guard.hpp
 *   The guard: event triggers that refuse destructive DDL, the keel.guard and
 *   keel.admin_role GUCs, and the per-transaction break-glass.
 */
#pragma once

namespace keel {

/* InitGuard defines keel.guard and keel.admin_role and the transaction callbacks. */
void InitGuard();

} // namespace keel
