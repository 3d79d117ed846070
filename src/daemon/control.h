/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket prsmctl talks to: a unix stream socket (0600, or 0660 for control_group)
 * in the state directory. One JSON request per line, one JSON reply per line:
 *   {"cmd": "status"}  ->  {"ok": true, ...}   |   {"ok": false, "error": "reason"}
 * Commands are a table of handlers; each runs on a connection's thread, never on a FUSE thread.
 */
#pragma once

#include <jansson.h>

#include "prsmfs/base.h"

/* Fills *reply (a new object) and returns 0, or returns -errno with a message in *reply. */
typedef int (*control_handler_fn)(json_t *request, json_t **reply, void *userdata);

struct control_command {
        const char *name;
        control_handler_fn handler;
};

struct control;

/*
 * Listens on path (replacing a stale socket; any length: bound through its directory's fd),
 * mode 0600, or 0660 owned by group when group is not NULL or "". Each connection is served by
 * its own thread (a bounded number at once), so handlers run concurrently and must be
 * thread-safe. commands must outlive the control.
 */
_wur_ int control_start(const char *path, const char *group, const struct control_command *commands,
                        size_t n_commands, void *userdata, struct control **ret);
/*
 * Serves one request on a connected socket fd: reads a line (at most 64 KiB, within 5 s),
 * parses it, runs the command's handler and writes its reply line; a line too long, not
 * JSON or naming no known command gets an error reply; a client gone before a whole line
 * gets none. Leaves fd open. What each connection's thread runs; the fuzz target's way in.
 */
void control_serve_one(const struct control_command *commands, size_t n_commands, void *userdata,
                       int fd);
/* Stops accepting, waits for the requests in progress, closes and removes the socket.
 * NULL-safe. */
void control_stop(struct control *c);
