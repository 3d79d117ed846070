/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * prsmctl's pieces: the command table's entry type, the options every command accepts, and
 * the calls to the daemon. Each command is a function in commands.c.
 */
#pragma once

#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

struct ctl {
        char sock[PATH_MAX]; /* the control socket: -s, or found from a path in the mount */
        bool json;           /* --json */
        bool help;           /* -h anywhere */
        bool is_tty;         /* stdout is a terminal: tables */
        bool is_stderr_tty;  /* stderr is a terminal: progress */
        int timeout_ms;      /* --timeout: the reply's deadline; 0 = none, -1 = the command's
                                default (30 s; publish: none) */
};

/* A command: argv[0] is its name; returns the exit status (0, 1 failed, 2 usage). */
typedef int (*ctl_run_fn)(struct ctl *ctl, int argc, char **argv);

struct ctl_command {
        const char *name;
        const char *args; /* the usage line after the name */
        const char *help; /* what it does, one sentence */
        ctl_run_fn run;
};

const struct ctl_command *ctl_command_find(const char *name);
/* Prints the command's usage line on stderr; returns 2. */
int ctl_usage(const char *name);

/* getopt_long over a command's argv with the common options (-s, --json, --timeout, -h)
 * added to opts (NULL-terminated, may be NULL). Returns an option's value, CTL_OPERAND with
 * the operand in optarg, '?' after printing what is wrong, or -1 at the end. optind = 0
 * before the first call. */
#define CTL_OPERAND 1
int ctl_getopt(struct ctl *ctl, int argc, char **argv, const struct option *opts);

/* Finds the socket from a path in the mount unless -s gave it; -1 after printing why (no
 * mount there). ctl_find_root also returns the mount root's path (PATH_MAX bytes). */
int ctl_find(struct ctl *ctl, const char *path);
int ctl_find_root(struct ctl *ctl, const char *path, char *root);

/* Called about once a second while a call waits (publish's progress). */
typedef void (*ctl_tick_fn)(struct ctl *ctl, void *userdata);
/* Sends req and returns the reply (new reference), or NULL after printing why. timeout_ms 0:
 * wait as long as the daemon takes. no_wait: return an empty object once sent. */
json_t *ctl_call_opts(struct ctl *ctl, json_t *req, int timeout_ms, ctl_tick_fn tick, void *tick_ud,
                      bool no_wait);
/* The same with ctl->timeout_ms and no ticks. */
json_t *ctl_call(struct ctl *ctl, json_t *req);
/* Takes req; returns a reply whose "ok" is true, else NULL after printing the daemon's
 * reason. */
json_t *ctl_request(struct ctl *ctl, json_t *req);
/* The same with its own timeout (0: none). */
json_t *ctl_request_timeout(struct ctl *ctl, json_t *req, int timeout_ms);
void ctl_print_json(json_t *j);
/* JSON output: --json, or stdout is not a terminal (scripts read it); publish alone prints
 * its CID there (its own rule). */
bool ctl_is_json(const struct ctl *ctl);

int ctl_cmd_status(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_uploads(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_stats(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_cache(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_ls(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_pin(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_unpin(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_publish(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_link(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_check(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_reload(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_fsck(struct ctl *ctl, int argc, char **argv);
int ctl_cmd_prefetch(struct ctl *ctl, int argc, char **argv);

/* For prefetch.c: the control socket of the mount path is in (into sock, size bytes) and the
 * mount root's path (PATH_MAX bytes) into root when not NULL; -1 with a message on stderr. */
int find_socket_root(const char *path, char *sock, size_t size, char *root);
/* One request (borrowed), its reply (a new reference) or NULL with a message on stderr; no
 * client-side timeout (prefetch polls its job). */
json_t *call(const char *sock, json_t *req);

/* prsmctl prefetch [--check|--evict] PATH...: mode "fetch", "check" or "evict". Returns the
 * exit status. */
int prsmctl_prefetch(char *sock, size_t sock_size, int n, char **paths, bool json,
                     const char *mode);
