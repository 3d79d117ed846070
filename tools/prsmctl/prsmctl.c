/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * prsmctl: talks to a running prsmfs through its control socket. The socket is found from any
 * path inside the mount (the mount root's user.prsm.control xattr) or given with -s.
 *
 * Commands are one table (`commands` below): a name, a usage line, a one-line summary and a
 * function that gets the command's own argv (argv[0] = its name) and returns the exit status.
 * Adding a command is one entry and its function; `prsmctl help` and `prsmctl help CMD` come
 * from the table. Options common to all commands (-s, --json, --timeout) are accepted before
 * the command and among its own options (ctl_getopt).
 *
 * Exit status: 0 done, 1 failed (the reason on stderr, in words), 2 bad usage.
 *
 * Output: words and tables on a terminal; JSON with --json or when stdout is not a terminal
 * (scripts and the tests read it), except publish, which prints the root CID alone unless
 * --json (the CID is what a script wants).
 */
#include "prsmctl.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "prsmfs/parse.h"

#include "prov.h"

#define MAX_REPLY          (64 * 1024 * 1024) /* an exported provenance log */
#define DEFAULT_TIMEOUT_MS 30000

/* ---- finding and calling the daemon ---- */

/* Walks up from path to the root of its mount and reads the socket path there; the root's
 * path goes to root (PATH_MAX bytes) when asked. */
int ctl_find_root(struct ctl *ctl, const char *path, char *root)
{
        char cur[PATH_MAX], parent[PATH_MAX + 4];
        struct stat st, pst;
        ssize_t n;

        if (!realpath(path, cur)) {
                fprintf(stderr, "prsmctl: %s: %s\n", path, strerror(errno));
                return -1;
        }
        for (;;) {
                if (stat(cur, &st) < 0) {
                        fprintf(stderr, "prsmctl: %s: %s\n", cur, strerror(errno));
                        return -1;
                }
                if (!S_ISDIR(st.st_mode)) { /* a file: its directory (cur is absolute) */
                        char *slash = strrchr(cur, '/');

                        *(slash == cur ? slash + 1 : slash) = '\0';
                        continue;
                }
                (void)snprintf(parent, sizeof(parent), "%s/..", cur);
                if (strcmp(cur, "/") == 0 || stat(parent, &pst) < 0 || pst.st_dev != st.st_dev)
                        break;
                if (!realpath(parent, cur))
                        return -1;
        }
        if (!ctl->sock[0]) {
                n = getxattr(cur, "user.prsm.control", ctl->sock, sizeof(ctl->sock) - 1);
                if (n < 0) {
                        fprintf(stderr,
                                "prsmctl: no prsmfs mount found at %s (give a path inside a "
                                "prsmfs mount, or -s SOCKET)\n",
                                path);
                        return -1;
                }
                ctl->sock[n] = '\0';
        }
        if (root)
                memcpy(root, cur, strlen(cur) + 1);
        return 0;
}

int ctl_find(struct ctl *ctl, const char *path)
{
        if (ctl->sock[0])
                return 0;
        return ctl_find_root(ctl, path, NULL);
}

/*
 * Connects to the socket at path, whatever its length: sun_path holds 108 bytes, so a longer
 * path is reached through an O_PATH descriptor of its directory ("/proc/self/fd/N/name"), as
 * the daemon binds it. Returns the fd or -errno.
 */
static int connect_path(const char *path)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        const char *slash = strrchr(path, '/');
        int fd, dir_fd = -1, r = 0;

        if (strlen(path) < sizeof(sa.sun_path))
                memcpy(sa.sun_path, path, strlen(path) + 1);
        else {
                char *dir = strndup(path, (size_t)(slash - path));

                if (!dir)
                        return -ENOMEM;
                dir_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
                free(dir);
                if (dir_fd < 0)
                        return -errno;
                if ((size_t)snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s",
                                     dir_fd, slash + 1) >= sizeof(sa.sun_path)) {
                        close(dir_fd);
                        return -ENAMETOOLONG;
                }
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
                r = -errno;
        if (dir_fd >= 0)
                close(dir_fd);
        if (r < 0) {
                if (fd >= 0)
                        close(fd);
                return r;
        }
        return fd;
}

static void connect_error(const char *sock, int r)
{
        if (r == -ECONNREFUSED || r == -ENOENT)
                fprintf(stderr,
                        "prsmctl: no prsmfs daemon answers at %s: it is not running (the mount "
                        "may be stale: fusermount3 -u it and mount again)\n",
                        sock);
        else if (r == -EACCES)
                fprintf(stderr,
                        "prsmctl: not allowed to use %s: the control socket is its owner's "
                        "(or control_group's) only\n",
                        sock);
        else
                fprintf(stderr, "prsmctl: cannot connect to the daemon at %s: %s\n", sock,
                        strerror(-r));
}

static int64_t now_ms(void)
{
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Writes all of text plus a newline (the request line). */
static int send_line(int fd, const char *text)
{
        size_t len = strlen(text), done = 0;

        while (done <= len) {
                ssize_t n = done < len ? send(fd, text + done, len - done, MSG_NOSIGNAL)
                                       : send(fd, "\n", 1, MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return -errno;
                done += (size_t)n;
        }
        return 0;
}

json_t *ctl_call_opts(struct ctl *ctl, json_t *req, int timeout_ms, ctl_tick_fn tick, void *tick_ud,
                      bool no_wait)
{
        struct timeval tv = { .tv_sec = 5 };
        char *text = NULL, *buf = NULL;
        const char *cmd = json_string_value(json_object_get(req, "cmd"));
        json_t *reply = NULL;
        int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
        size_t len = 0;
        int fd, r;

        fd = connect_path(ctl->sock);
        if (fd < 0) {
                connect_error(ctl->sock, fd);
                return NULL;
        }
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); /* best effort */
        text = json_dumps(req, JSON_COMPACT);
        buf = malloc(MAX_REPLY);
        if (!text || !buf) {
                fprintf(stderr, "prsmctl: out of memory\n");
                goto out;
        }
        r = send_line(fd, text);
        if (r < 0) {
                fprintf(stderr, "prsmctl: cannot send the request to %s: %s\n", ctl->sock,
                        strerror(-r));
                goto out;
        }
        if (no_wait) {
                reply = json_object(); /* the daemon carries on without us */
                goto out;
        }
        for (;;) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int wait_ms = tick ? 1000 : -1;
                ssize_t n;

                if (deadline) {
                        int64_t left = deadline - now_ms();

                        if (left <= 0) {
                                fprintf(stderr,
                                        "prsmctl: %s: no reply from the daemon within %d s "
                                        "(--timeout SEC waits longer)\n",
                                        cmd, timeout_ms / 1000);
                                goto out;
                        }
                        wait_ms = wait_ms < 0 || left < wait_ms ? (int)left : wait_ms;
                }
                r = poll(&p, 1, wait_ms);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r == 0) {
                        if (tick)
                                tick(ctl, tick_ud);
                        continue;
                }
                n = read(fd, buf + len, MAX_REPLY - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t)n;
                if (memchr(buf, '\n', len) || len == MAX_REPLY - 1)
                        break;
        }
        reply = json_loadb(buf, len, JSON_DISABLE_EOF_CHECK, NULL);
        if (!reply)
                fprintf(stderr,
                        "prsmctl: %s: the daemon at %s closed the connection without a reply "
                        "(see its log)\n",
                        cmd, ctl->sock);
out:
        close(fd);
        free(text);
        free(buf);
        return reply;
}

json_t *ctl_call(struct ctl *ctl, json_t *req)
{
        return ctl_call_opts(ctl, req, ctl->timeout_ms < 0 ? DEFAULT_TIMEOUT_MS : ctl->timeout_ms,
                             NULL, NULL, false);
}

json_t *ctl_request(struct ctl *ctl, json_t *req)
{
        return ctl_request_timeout(ctl, req,
                                   ctl->timeout_ms < 0 ? DEFAULT_TIMEOUT_MS : ctl->timeout_ms);
}

json_t *ctl_request_timeout(struct ctl *ctl, json_t *req, int timeout_ms)
{
        json_t *reply = req ? ctl_call_opts(ctl, req, timeout_ms, NULL, NULL, false) : NULL;

        if (!req)
                fprintf(stderr, "prsmctl: out of memory\n");
        json_decref(req);
        if (reply && !json_is_true(json_object_get(reply, "ok"))) {
                const char *e = json_string_value(json_object_get(reply, "error"));

                fprintf(stderr, "prsmctl: %s\n", e ? e : "the daemon refused the request");
                json_decref(reply);
                reply = NULL;
        }
        return reply;
}

bool ctl_is_json(const struct ctl *ctl)
{
        return ctl->json || !ctl->is_tty;
}

void ctl_print_json(json_t *j)
{
        json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
        fputc('\n', stdout);
}

/* ---- for prefetch.c, written against the single-function prsmctl ---- */

int find_socket_root(const char *path, char *sock, size_t size, char *root)
{
        struct ctl ctl = { .timeout_ms = -1 };

        if (ctl_find_root(&ctl, path, root) < 0)
                return -1;
        if ((size_t)snprintf(sock, size, "%s", ctl.sock) >= size) {
                fprintf(stderr, "prsmctl: socket path too long\n");
                return -1;
        }
        return 0;
}

json_t *call(const char *sock, json_t *req)
{
        struct ctl ctl = { .timeout_ms = -1 };

        (void)snprintf(ctl.sock, sizeof(ctl.sock), "%s", sock); /* sock fits: from a ctl */
        return ctl_call_opts(&ctl, req, 0, NULL, NULL, false);
}

/* ---- for prov.c ---- */

json_t *prsmctl_call(const char *sock, json_t *req)
{
        return call(sock, req);
}

/* The socket (unless given) and the path from the mount root of path; a path that does not
 * exist (a deleted file has a history) needs its parent in the mount. With a socket given,
 * path is taken from the mount root as it is. */
int prsmctl_locate(const char *path, char *sock, size_t size, char *rel, size_t rel_size)
{
        char real[PATH_MAX], root[PATH_MAX], dir[PATH_MAX];
        const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;

        if (sock[0]) {
                (void)snprintf(rel, rel_size, "%s", path);
                return 0;
        }
        if (realpath(path, real)) { /* it exists: any file or directory */
                if (find_socket_root(real, sock, size, root) < 0)
                        return -1;
                (void)snprintf(rel, rel_size, "%s", real[strlen(root)] ? real + strlen(root) : "/");
                return 0;
        }
        (void)snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) + 1 : 1,
                       slash ? path : ".");
        if (!*name || !realpath(dir, real)) {
                fprintf(stderr, "prsmctl: %s: no such path in a mount\n", path);
                return -1;
        }
        if (find_socket_root(real, sock, size, root) < 0)
                return -1;
        (void)snprintf(rel, rel_size, "%s/%s", real + strlen(root), name);
        return 0;
}

/* "provenance [--export FILE [--gzip] | --verify FILE --pubkey KEY] [PATH]" and
 * "rewards [--since TIME] [PATH]": prov.c does the work. */
static int prov_command(struct ctl *ctl, int argc, char **argv, bool rewards)
{
        static const struct option opts[] = {
                { "export", required_argument, NULL, 'x' },
                { "verify", required_argument, NULL, 'v' },
                { "pubkey", required_argument, NULL, 'k' },
                { "gzip", no_argument, NULL, 'z' },
                { "since", required_argument, NULL, 'S' },
                { "publish", no_argument, NULL, 'P' },
                { 0 },
        };
        struct prov_opts pv = { 0 };
        const char *path = NULL;
        int c;

        optind = 0;
        while ((c = ctl_getopt(ctl, argc, argv, opts)) != -1) {
                if (c == 'x' && !rewards)
                        pv.export_file = optarg;
                else if (c == 'v' && !rewards)
                        pv.verify_file = optarg;
                else if (c == 'k' && !rewards)
                        pv.pubkey = optarg;
                else if (c == 'z' && !rewards)
                        pv.gzip = true;
                else if (c == 'P' && !rewards)
                        pv.publish = true;
                else if (c == 'S' && rewards)
                        pv.since = optarg;
                else if (c == CTL_OPERAND && !path)
                        path = optarg;
                else
                        return ctl_usage(argv[0]);
        }
        pv.json = ctl->json;
        return rewards ? prov_rewards(&pv, path ? path : ".", ctl->sock, sizeof(ctl->sock))
                       : prov_provenance(&pv, path ? path : ".", ctl->sock, sizeof(ctl->sock));
}

static int cmd_provenance(struct ctl *ctl, int argc, char **argv)
{
        return prov_command(ctl, argc, argv, false);
}

static int cmd_rewards(struct ctl *ctl, int argc, char **argv)
{
        return prov_command(ctl, argc, argv, true);
}

/* "prefetch [--check|--evict] PATH...": prefetch.c does the work. */
int ctl_cmd_prefetch(struct ctl *ctl, int argc, char **argv)
{
        static const struct option opts[] = {
                { "check", no_argument, NULL, 'c' },
                { "evict", no_argument, NULL, 'e' },
                { 0 },
        };
        const char *mode = NULL;
        char **paths;
        int n = 0, c, ret;

        paths = calloc((size_t)argc + 1, sizeof(*paths));
        if (!paths) {
                fprintf(stderr, "prsmctl: out of memory\n");
                return 1;
        }
        optind = 0;
        while ((c = ctl_getopt(ctl, argc, argv, opts)) != -1) {
                if ((c == 'c' || c == 'e') && mode) {
                        fprintf(stderr, "prsmctl: --check and --evict: one of them\n");
                        free(paths);
                        return 2;
                }
                if (c == 'c' || c == 'e')
                        mode = c == 'c' ? "check" : "evict";
                else if (c == CTL_OPERAND)
                        paths[n++] = optarg;
                else {
                        free(paths);
                        return ctl_usage(argv[0]);
                }
        }
        ret = prsmctl_prefetch(ctl->sock, sizeof(ctl->sock), n, paths, ctl->json,
                               mode ? mode : "fetch");
        free(paths);
        return ret;
}

/* ---- options ---- */

enum {
        OPT_JSON = 1000,
        OPT_TIMEOUT,
        OPT_VERSION,
};

static const struct option common_opts[] = {
        { "socket", required_argument, NULL, 's' },
        { "json", no_argument, NULL, OPT_JSON },
        { "timeout", required_argument, NULL, OPT_TIMEOUT },
        { "help", no_argument, NULL, 'h' },
};

/* Handles a common option; 0 when c was one, 2 on a bad value, -1 when c is not common. */
static int common_opt(struct ctl *ctl, int c, const char *arg)
{
        uint64_t ms;

        switch (c) {
        case 's':
                if ((size_t)snprintf(ctl->sock, sizeof(ctl->sock), "%s", arg) >=
                    sizeof(ctl->sock)) {
                        fprintf(stderr, "prsmctl: -s: path too long\n");
                        return 2;
                }
                return 0;
        case OPT_JSON:
                ctl->json = true;
                return 0;
        case OPT_TIMEOUT:
                if (parse_duration_ms(arg, &ms) < 0 || ms > 86400 * 1000) {
                        fprintf(stderr, "prsmctl: --timeout: not a number of seconds: '%s'\n", arg);
                        return 2;
                }
                ctl->timeout_ms = (int)ms; /* 0: no timeout */
                return 0;
        case 'h':
                ctl->help = true;
                return 0;
        }
        return -1;
}

int ctl_getopt(struct ctl *ctl, int argc, char **argv, const struct option *opts)
{
        struct option all[64];
        size_t n = 0;
        int c;

        for (size_t i = 0; i < sizeof(common_opts) / sizeof(common_opts[0]); i++)
                all[n++] = common_opts[i];
        for (size_t i = 0; opts && opts[i].name && n < 63; i++)
                all[n++] = opts[i];
        all[n] = (struct option){ 0 };
        for (;;) {
                int r;

                /* a leading '-': options and operands in any order; ':' reports a missing
                 * argument as ':' */
                c = getopt_long(argc, argv, "-:s:h", all, NULL);
                if (c == -1 || c == 1)
                        return c == 1 ? CTL_OPERAND : -1;
                r = common_opt(ctl, c, optarg);
                if (r == 0)
                        continue;
                if (r == 2)
                        return '?';
                if (c == '?' || c == ':') {
                        if (c == ':')
                                fprintf(stderr, "prsmctl: %s: option %s needs a value\n", argv[0],
                                        argv[optind - 1]);
                        else
                                fprintf(stderr, "prsmctl: %s: unknown option '%s'\n", argv[0],
                                        argv[optind - 1]);
                        return '?';
                }
                return c;
        }
}

/* ---- the command table ---- */

static int cmd_help(struct ctl *ctl, int argc, char **argv);

static const struct ctl_command commands[] = {
        { "help", "[COMMAND]", "list the commands, or how to use one", cmd_help },
        { "status", "[--json] [PATH]",
          "the daemon: nodes and their states, cache, uploads (pending, running, failed), pins",
          ctl_cmd_status },
        { "uploads", "[--json] [retry [ID] | forget ID] [PATH]",
          "uploads not finished (pending, running, failed with the reason); retry: those "
          "waiting after a failure try again now (ID: one of them); forget: stop uploading ID "
          "for good (its file keeps its content on this machine until written again)",
          ctl_cmd_uploads },
        { "stats", "[--interval SEC] [--count N] [PATH]",
          "live rates sampled every second (reads, bytes, fetches, cache hits, uploads), like "
          "juicefs stats; --count N: N lines then exit",
          ctl_cmd_stats },
        { "cache", "stats|gc [--target SIZE]|verify [PATH]",
          "the block cache: its size and hit counts; gc: evict least recently used blocks "
          "down to SIZE (default: the configured max_cache_size); verify: hash every cached "
          "block again and drop the corrupt ones",
          ctl_cmd_cache },
        { "ls", "--cid PATH", "entries of a directory in the mount with their CIDs", ctl_cmd_ls },
        { "pin", "CID [PATH]", "pin CID on `replicas` nodes and keep it pinned until prsmctl unpin",
          ctl_cmd_pin },
        { "unpin", "CID [PATH]",
          "unpin a root that publish or pin pinned (in the background; it stays while files "
          "have it as their content)",
          ctl_cmd_unpin },
        { "publish",
          "[--json] [--no-wait] [--[no-]preserve-mode] [--[no-]preserve-mtime] "
          "[--include-private] [--ipns KEY [--create-key]] [PATH]",
          "pin the tree at PATH (default: all) as one DAG and print its root CID; the pin runs "
          "in the daemon, without a client-side timeout; progress on a terminal; --no-wait: "
          "return at once (the daemon logs the CID); --ipns KEY: then publish the root under "
          "the IPNS name of KEY, a key on one of the RPC nodes, and print /ipns/NAME on a "
          "second line (--create-key: make KEY, ed25519, on the healthiest node if none has "
          "it); a follow=/ipns/NAME mount elsewhere picks it up",
          ctl_cmd_publish },
        { "link", "[--creator ID] [--format auto|prsm|raw] CID PATH",
          "graft existing IPFS content at PATH in the mount (no download); --creator: whose "
          "content it is, for its provenance record and the ledger; --format: a PRSM shard "
          "manifest or JSON wrapper is shown as the file it describes (auto: when it is one, "
          "prsm: it must be, raw: never)",
          ctl_cmd_link },
        { "prefetch", "[--json] [--check|--evict] PATH...",
          "fetch every block of the files (and trees) into the disk cache, in the daemon, with "
          "progress; --check counts what is cached, --evict drops it",
          ctl_cmd_prefetch },
        { "check", "[PATH]", "the index's integrity check", ctl_cmd_check },
        { "provenance",
          "[--json] [--export FILE [--gzip] | --publish | --verify FILE --pubkey KEY] [PATH]",
          "the signed records of PATH, newest first, each verified (exit 1 naming a record "
          "that fails); --export: a signed document of the log (or PATH's records); "
          "--publish: that document added to IPFS as one object, its CID printed (with "
          "--export FILE too: the same bytes); --verify: check such a document with only the "
          "public key (docs/prsm.md)",
          cmd_provenance },
        { "rewards", "[--json] [--since TIME] [PATH]",
          "accesses and FTNS owed per creator (docs/prsm.md)", cmd_rewards },
        { "fsck", "[--repair] [PATH]",
          "the index's integrity, and its staged content against the staging directory: "
          "staging files nothing names (older than 10 min; --repair removes them) and "
          "uploads whose staging file is gone",
          ctl_cmd_fsck },
        { "reload", "[PATH]",
          "re-read the config file (as SIGHUP does): log_level applies at once; other keys "
          "that changed are named and apply at the next start",
          ctl_cmd_reload },
};

const struct ctl_command *ctl_command_find(const char *name)
{
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (strcmp(commands[i].name, name) == 0)
                        return &commands[i];
        return NULL;
}

int ctl_usage(const char *name)
{
        const struct ctl_command *c = ctl_command_find(name);

        if (c)
                fprintf(stderr, "usage: prsmctl [-s SOCKET] %s %s\n", c->name, c->args);
        return 2;
}

static void usage(FILE *f)
{
        fprintf(f, "usage: prsmctl [-s SOCKET] [--json] [--timeout SEC] COMMAND [ARGS]\n"
                   "       prsmctl help [COMMAND] | --version\n\n"
                   "PATH is any path inside the mount (default: the current directory); it "
                   "finds the daemon. -s SOCKET names its control socket instead.\n\n"
                   "commands:\n");
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].args);
}

static int cmd_help(struct ctl *ctl, int argc, char **argv)
{
        const struct ctl_command *c;

        (void)ctl;
        if (argc < 2) {
                usage(stdout);
                return 0;
        }
        c = ctl_command_find(argv[1]);
        if (!c) {
                fprintf(stderr, "prsmctl: unknown command '%s'\n", argv[1]);
                usage(stderr);
                return 2;
        }
        printf("usage: prsmctl [-s SOCKET] %s %s\n\n  %s\n", c->name, c->args, c->help);
        return 0;
}

int main(int argc, char *argv[])
{
        static const struct option global[] = {
                { "version", no_argument, NULL, OPT_VERSION },
                { "socket", required_argument, NULL, 's' },
                { "json", no_argument, NULL, OPT_JSON },
                { "timeout", required_argument, NULL, OPT_TIMEOUT },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        struct ctl ctl = { .timeout_ms = -1,
                           .is_tty = isatty(STDOUT_FILENO) == 1,
                           .is_stderr_tty = isatty(STDERR_FILENO) == 1 };
        const struct ctl_command *cmd;
        int c;

        /* '+': the global options stop at the command; its own come after it */
        while ((c = getopt_long(argc, argv, "+s:h", global, NULL)) != -1) {
                int r;

                if (c == OPT_VERSION) {
                        printf("prsmctl %s\n", PRSMFS_VERSION);
                        return 0;
                }
                r = common_opt(&ctl, c, optarg);
                if (r == 2 || r < 0) {
                        usage(stderr);
                        return 2;
                }
        }
        if (ctl.help && optind >= argc) {
                usage(stdout);
                return 0;
        }
        if (optind >= argc) {
                usage(stderr);
                return 2;
        }
        cmd = ctl_command_find(argv[optind]);
        if (!cmd) {
                fprintf(stderr, "prsmctl: unknown command '%s'\n", argv[optind]);
                usage(stderr);
                return 2;
        }
        for (int i = optind + 1; i < argc && strcmp(argv[i], "--") != 0; i++)
                ctl.help |= strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0;
        if (ctl.help) {
                char *hargv[] = { (char *)"help", argv[optind], NULL };

                return cmd_help(&ctl, 2, hargv);
        }
        argc -= optind;
        argv += optind;
        optind = 0; /* getopt starts afresh on the command's argv */
        return cmd->run(&ctl, argc, argv);
}
