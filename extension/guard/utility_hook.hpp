/*
 * extension/guard/utility_hook.hpp
 *   The guard's ProcessUtility_hook (utility_hook.cpp), for preloaded use.
 */
#pragma once

namespace keel {

/* InitGuardUtilityHook chains keel's ProcessUtility_hook in front of the current one. */
void InitGuardUtilityHook();

} // namespace keel
