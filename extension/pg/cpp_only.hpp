/*
 * extension/pg/cpp_only.hpp
 *   Include last in a file that must stay free of PostgreSQL headers: the
 *   build fails if postgres.h was pulled in, so C++ objects with destructors
 *   there can never meet an ereport() longjmp.
 */
#pragma once

#ifdef POSTGRES_H
#error "this file is C++-only and must not include postgres.h; use extension/pg/boundary.hpp"
#endif
