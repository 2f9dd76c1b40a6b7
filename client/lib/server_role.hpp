/*
 * client/lib/server_role.hpp
 *   Where a keel command is connected: a primary that takes writes, a hot
 *   standby (pg_is_in_recovery()), or a read-only session
 *   (transaction_read_only, e.g. default_transaction_read_only = on).
 *
 *   Writing commands (install, migrate, trash restore, and every later one)
 *   call RequireWritable before anything runs; read commands (status, trash
 *   list) call Probe and say in their header when the server is a standby.
 *   Rule: issue 11, "Client: know where you are connected"; PostgreSQL docs,
 *   "Hot Standby" (27.4) and libpq "target_session_attrs" (34.1.2).
 */
#pragma once

#include "lib/connection.hpp"

#include <string>

namespace keel::client {

/* ServerRole: what one query (SELECT pg_is_in_recovery(), transaction_read_only) found. */
struct ServerRole {
    bool in_recovery = false; /* a hot standby */
    bool read_only = false;   /* transaction_read_only is on (always true on a standby) */

    bool writable() const { return !in_recovery && !read_only; }
    /* Label: "primary", "standby (in recovery, read-only)" or "read-only session". */
    std::string Label() const;
};

/* Probe asks the server; throws ServerError when the query fails. */
ServerRole Probe(const Connection &conn);

/*
 * HostPort names the server as "host:port" ("[/socket/dir]:port" for a Unix
 * socket), from the connection libpq actually made (never the password).
 */
std::string HostPort(const Connection &conn);

/*
 * RequireWritable throws CommandError, before the command does anything,
 * when the server is a standby or the session is read-only. The one line
 * names the command, the host and port, and hints: connect to the primary,
 * or add target_session_attrs=read-write to a multi-host conninfo.
 */
void RequireWritable(const Connection &conn, const std::string &command);

} // namespace keel::client
