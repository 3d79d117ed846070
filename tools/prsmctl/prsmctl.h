/* SPDX-License-Identifier: GPL-2.0-or-later */
/* prsmctl's pieces shared between its files. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

/* The control socket of the mount path is in (into sock, size bytes) and the mount root's
 * path (PATH_MAX bytes) into root when not NULL; -1 with a message on stderr. */
int find_socket_root(const char *path, char *sock, size_t size, char *root);
/* One request, its reply (a new reference) or NULL with a message on stderr. */
json_t *call(const char *sock, json_t *req);

/* prsmctl prefetch [--check|--evict] PATH...: mode "fetch", "check" or "evict". Returns the
 * exit status. */
int prsmctl_prefetch(char *sock, size_t sock_size, int n, char **paths, bool json,
                     const char *mode);
