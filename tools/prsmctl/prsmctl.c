/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * prsmctl: talks to a running prsmfs through its control socket. The socket is found from any
 * path inside the mount (the mount root's user.prsm.control xattr) or given with -s.
 *
 *   prsmctl [-s SOCKET] status [PATH]     what the daemon serves
 *   prsmctl [-s SOCKET] check [PATH]      index integrity check
 *   prsmctl [-s SOCKET] link CID PATH     graft existing IPFS content at PATH (no download)
 *   prsmctl [-s SOCKET] [--json] publish [--preserve-mode] [--preserve-mtime]
 *           [--include-private] [PATH]
 *                                         pin the tree at PATH (default: all) as one DAG and
 *                                         print its root CID; what was left out (FIFOs,
 *                                         sockets, device nodes; files and directories others
 *                                         may not read unless --include-private) is named on
 *                                         stderr, or in "skipped" with --json; it stays
 *                                         pinned until unpin
 *   prsmctl [-s SOCKET] [--json] prefetch [--check|--evict] PATH...
 *                                         fetch every block of the files (and trees) into the
 *                                         disk cache, in the daemon, with progress; --check
 *                                         counts what is cached, --evict drops it (prefetch.c)
 *   prsmctl [-s SOCKET] [--json] provenance PATH
 *                                         the signed records of PATH, newest first, each
 *                                         verified (exit 1 naming a record that fails)
 *   prsmctl [-s SOCKET] provenance --export FILE [--gzip] [PATH]
 *                                         a signed document of the log (or PATH's records)
 *   prsmctl provenance --verify FILE --pubkey KEY
 *                                         checks such a document with only the public key
 *   prsmctl [-s SOCKET] [--json] rewards [--since TIME] [PATH]
 *                                         accesses and FTNS owed per creator
 *   prsmctl [-s SOCKET] unpin CID [PATH]  unpin a root publish pinned (in the background;
 *                                         "still_referenced": files have it as their content,
 *                                         it stays pinned while they do); PATH: any path in
 *                                         the mount, to find it
 *
 * status, check, link and unpin print the daemon's JSON reply; publish prints the CID, or
 * the reply with --json. --no-preserve-mode/--no-preserve-mtime override the config's
 * publish_preserve_mode/publish_preserve_mtime.
 *
 * With -s, a link PATH is taken relative to the mount root; without, it is a path in the
 * mount whose parent directory exists.
 */
#include "prsmctl.h"

#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <jansson.h>

#include "prov.h"

#define MAX_REPLY (64 * 1024 * 1024) /* an exported provenance log */

/* Walks up from path to the root of its mount and reads the socket path there; the root's
 * path goes to root (PATH_MAX bytes) when asked. */
int find_socket_root(const char *path, char *sock, size_t size, char *root)
{
        char cur[PATH_MAX], parent[PATH_MAX + 4];
        struct stat st, pst;
        ssize_t n;

        if (!realpath(path, cur)) {
                fprintf(stderr, "prsmctl: %s: %m\n", path);
                return -1;
        }
        for (;;) {
                if (stat(cur, &st) < 0)
                        return -1;
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
        n = getxattr(cur, "user.prsm.control", sock, size - 1);
        if (n < 0) {
                fprintf(stderr, "prsmctl: %s is not inside a prsmfs mount (%m)\n", path);
                return -1;
        }
        sock[n] = '\0';
        if (root)
                memcpy(root, cur, strlen(cur) + 1);
        return 0;
}

static int find_socket(const char *path, char *sock, size_t size)
{
        return find_socket_root(path, sock, size, NULL);
}

/* "prsmctl link CID PATH": PATH's parent must be a directory in the mount; the daemon is sent
 * the path from the mount root. */
static json_t *link_request(const char *cid, const char *path, char *sock, size_t size)
{
        char dir[PATH_MAX], real[PATH_MAX], root[PATH_MAX], rel[2 * PATH_MAX];
        const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;

        if (sock[0])
                return json_pack("{s:s, s:s, s:s}", "cmd", "link", "cid", cid, "path", path);
        if (!*name) {
                fprintf(stderr, "prsmctl: link: %s names no entry\n", path);
                return NULL;
        }
        (void)snprintf(dir, sizeof(dir), "%.*s", slash ? (int)(slash - path) + 1 : 1,
                       slash ? path : ".");
        if (!realpath(dir, real)) {
                fprintf(stderr, "prsmctl: link: %s: %m\n", dir);
                return NULL;
        }
        if (find_socket_root(real, sock, size, root) < 0)
                return NULL;
        (void)snprintf(rel, sizeof(rel), "%s/%s", real + strlen(root), name);
        return json_pack("{s:s, s:s, s:s}", "cmd", "link", "cid", cid, "path", rel);
}

json_t *call(const char *sock, json_t *req)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char *text = NULL, *buf = NULL;
        json_t *reply = NULL;
        size_t len = 0;
        int fd = -1;

        if (strlen(sock) >= sizeof(sa.sun_path)) {
                fprintf(stderr, "prsmctl: socket path too long\n");
                return NULL;
        }
        memcpy(sa.sun_path, sock, strlen(sock) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                fprintf(stderr, "prsmctl: cannot connect to %s: %m\n", sock);
                goto out;
        }
        text = json_dumps(req, JSON_COMPACT);
        buf = malloc(MAX_REPLY);
        if (!text || !buf)
                goto out;
        if (dprintf(fd, "%s\n", text) < 0)
                goto out;
        for (;;) {
                ssize_t n = read(fd, buf + len, MAX_REPLY - 1 - len);

                if (n <= 0)
                        break;
                len += (size_t)n;
                if (memchr(buf, '\n', len) || len == MAX_REPLY - 1)
                        break;
        }
        reply = json_loadb(buf, len, JSON_DISABLE_EOF_CHECK, NULL);
        if (!reply)
                fprintf(stderr, "prsmctl: no valid reply from %s\n", sock);
out:
        if (fd >= 0)
                close(fd);
        free(text);
        free(buf);
        return reply;
}

json_t *prsmctl_call(const char *sock, json_t *req)
{
        return call(sock, req);
}

int prsmctl_locate(const char *path, char *sock, size_t size, char *rel, size_t rel_size)
{
        char real[PATH_MAX], root[PATH_MAX];
        json_t *req;
        const char *p;
        int r;

        if (!sock[0] && realpath(path, real)) { /* it exists: any file or directory */
                if (find_socket_root(real, sock, size, root) < 0)
                        return -1;
                (void)snprintf(rel, rel_size, "%s", real[strlen(root)] ? real + strlen(root) : "/");
                return 0;
        }
        req = link_request("x", path, sock, size);
        p = json_string_value(json_object_get(req, "path"));
        r = p ? 0 : -1;

        /* link's rules: the parent must exist in the mount (a deleted file has a history) */
        if (p)
                (void)snprintf(rel, rel_size, "%s", p);
        json_decref(req);
        return r;
}

/* Options of publish: -1 = not given (the daemon's config decides). */
struct publish_opts {
        int preserve_mode, preserve_mtime;
        bool include_private;
};

/* "prsmctl publish [PATH]": the path of an existing file or directory from the mount root. */
static json_t *publish_request(const char *path, const struct publish_opts *o, char *sock,
                               size_t size)
{
        char real[PATH_MAX], root[PATH_MAX];
        json_t *req;

        if (sock[0])
                req = json_pack("{s:s, s:s}", "cmd", "publish", "path", path);
        else if (!realpath(path, real)) {
                fprintf(stderr, "prsmctl: publish: %s: %m\n", path);
                return NULL;
        } else if (find_socket_root(real, sock, size, root) < 0)
                return NULL;
        else
                req = json_pack("{s:s, s:s}", "cmd", "publish", "path", real + strlen(root));
        if (req && o->preserve_mode >= 0)
                json_object_set_new(req, "preserve_mode", json_boolean(o->preserve_mode));
        if (req && o->preserve_mtime >= 0)
                json_object_set_new(req, "preserve_mtime", json_boolean(o->preserve_mtime));
        if (req && o->include_private)
                json_object_set_new(req, "include_private", json_true());
        return req;
}

/* What a reason token of a publish reply (fs_publish_skipped) names. */
static const char *kind_name(const char *reason)
{
        static const char *const names[][2] = {
                { "fifo", "a FIFO" },
                { "socket", "a socket" },
                { "char-device", "a character device" },
                { "block-device", "a block device" },
        };

        for (size_t i = 0; reason && i < sizeof(names) / sizeof(names[0]); i++)
                if (strcmp(reason, names[i][0]) == 0)
                        return names[i][1];
        return reason ? reason : "?";
}

/* The human form of a publish reply: the CID on stdout, what was left out on stderr. */
static void print_publish(json_t *reply)
{
        json_t *list = json_object_get(reply, "skipped"), *e;
        json_int_t total = json_integer_value(json_object_get(reply, "skipped_count"));
        bool any_private = false;
        size_t i;

        printf("%s\n", json_string_value(json_object_get(reply, "cid")));
        json_array_foreach(list, i, e)
        {
                const char *reason = json_string_value(json_object_get(e, "reason"));
                const char *mode = json_string_value(json_object_get(e, "mode"));
                const char *path = json_string_value(json_object_get(e, "path"));

                if (reason && strcmp(reason, "private") == 0) {
                        any_private = true;
                        fprintf(stderr, "prsmctl: publish: left out '%s': private (mode %s)\n",
                                path, mode);
                } else
                        fprintf(stderr, "prsmctl: publish: left out '%s': %s has no UnixFS form\n",
                                path, kind_name(reason));
        }
        if (total > (json_int_t)json_array_size(list))
                fprintf(stderr, "prsmctl: publish: and %lld more left out (see the daemon's log)\n",
                        (long long)(total - (json_int_t)json_array_size(list)));
        if (any_private)
                fprintf(stderr, "prsmctl: publish: private entries are not readable by others in "
                                "the mount; --include-private publishes them too\n");
}

static void usage(FILE *f)
{
        fprintf(f, "usage: prsmctl [-s SOCKET] status [PATH]\n"
                   "       prsmctl [-s SOCKET] check [PATH]\n"
                   "       prsmctl [-s SOCKET] link CID PATH\n"
                   "       prsmctl [-s SOCKET] [--json] publish [--[no-]preserve-mode]\n"
                   "               [--[no-]preserve-mtime] [--include-private] [PATH]\n"
                   "       prsmctl [-s SOCKET] [--json] prefetch [--check|--evict] PATH...\n"
                   "       prsmctl [-s SOCKET] unpin CID [PATH]\n"
                   "       prsmctl [-s SOCKET] link [--creator ID] CID PATH\n"
                   "       prsmctl [-s SOCKET] [--json] provenance PATH\n"
                   "       prsmctl [-s SOCKET] provenance --export FILE [--gzip] [PATH]\n"
                   "       prsmctl provenance --verify FILE --pubkey KEY\n"
                   "       prsmctl [-s SOCKET] [--json] rewards [--since TIME] [PATH]\n");
}

int main(int argc, char *argv[])
{
        enum {
                OPT_JSON = 256,
                OPT_PRESERVE_MODE,
                OPT_NO_PRESERVE_MODE,
                OPT_PRESERVE_MTIME,
                OPT_NO_PRESERVE_MTIME,
                OPT_INCLUDE_PRIVATE,
                OPT_CHECK,
                OPT_EVICT,
                OPT_EXPORT,
                OPT_VERIFY,
                OPT_PUBKEY,
                OPT_SINCE,
                OPT_GZIP,
                OPT_CREATOR,
        };
        static const struct option longopts[] = {
                { "socket", required_argument, NULL, 's' },
                { "json", no_argument, NULL, OPT_JSON },
                { "preserve-mode", no_argument, NULL, OPT_PRESERVE_MODE },
                { "no-preserve-mode", no_argument, NULL, OPT_NO_PRESERVE_MODE },
                { "preserve-mtime", no_argument, NULL, OPT_PRESERVE_MTIME },
                { "no-preserve-mtime", no_argument, NULL, OPT_NO_PRESERVE_MTIME },
                { "include-private", no_argument, NULL, OPT_INCLUDE_PRIVATE },
                { "check", no_argument, NULL, OPT_CHECK },
                { "evict", no_argument, NULL, OPT_EVICT },
                { "export", required_argument, NULL, OPT_EXPORT },
                { "verify", required_argument, NULL, OPT_VERIFY },
                { "pubkey", required_argument, NULL, OPT_PUBKEY },
                { "since", required_argument, NULL, OPT_SINCE },
                { "gzip", no_argument, NULL, OPT_GZIP },
                { "creator", required_argument, NULL, OPT_CREATOR },
                { "help", no_argument, NULL, 'h' },
                { 0 },
        };
        struct publish_opts po = { .preserve_mode = -1, .preserve_mtime = -1 };
        const char *prefetch_mode = NULL; /* --check, --evict */
        bool json = false, publish_opts = false;
        struct prov_opts pv = { 0 };
        const char *creator = NULL;
        char sock[PATH_MAX] = "";
        json_t *req, *reply;
        const char *cmd, *path;
        int c, ret = 1;

        while ((c = getopt_long(argc, argv, "s:h", longopts, NULL)) != -1) {
                publish_opts |= c >= OPT_PRESERVE_MODE && c <= OPT_INCLUDE_PRIVATE;
                switch (c) {
                case 's':
                        (void)snprintf(sock, sizeof(sock), "%s", optarg);
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case OPT_PRESERVE_MODE:
                case OPT_NO_PRESERVE_MODE:
                        po.preserve_mode = c == OPT_PRESERVE_MODE;
                        break;
                case OPT_PRESERVE_MTIME:
                case OPT_NO_PRESERVE_MTIME:
                        po.preserve_mtime = c == OPT_PRESERVE_MTIME;
                        break;
                case OPT_INCLUDE_PRIVATE:
                        po.include_private = true;
                        break;
                case OPT_CHECK:
                case OPT_EVICT:
                        if (prefetch_mode) {
                                fprintf(stderr, "prsmctl: --check and --evict: one of them\n");
                                return 2;
                        }
                        prefetch_mode = c == OPT_CHECK ? "check" : "evict";
                        break;
                case OPT_EXPORT:
                        pv.export_file = optarg;
                        break;
                case OPT_VERIFY:
                        pv.verify_file = optarg;
                        break;
                case OPT_PUBKEY:
                        pv.pubkey = optarg;
                        break;
                case OPT_SINCE:
                        pv.since = optarg;
                        break;
                case OPT_GZIP:
                        pv.gzip = true;
                        break;
                case OPT_CREATOR:
                        creator = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return 2;
        }
        cmd = argv[optind];
        path = optind + 1 < argc ? argv[optind + 1] : ".";
        if (publish_opts && strcmp(cmd, "publish") != 0) {
                fprintf(stderr, "prsmctl: --preserve-*, --include-private: publish only\n");
                usage(stderr);
                return 2;
        }
        if (prefetch_mode && strcmp(cmd, "prefetch") != 0) {
                fprintf(stderr, "prsmctl: --check, --evict: prefetch only\n");
                return 2;
        }
        if (strcmp(cmd, "prefetch") == 0)
                return prsmctl_prefetch(sock, sizeof(sock), argc - optind - 1, argv + optind + 1,
                                        json, prefetch_mode ? prefetch_mode : "fetch");
        pv.json = json;
        if (strcmp(cmd, "provenance") == 0)
                return prov_provenance(&pv, path, sock, sizeof(sock));
        if (strcmp(cmd, "rewards") == 0)
                return prov_rewards(&pv, path, sock, sizeof(sock));
        if (strcmp(cmd, "link") == 0) {
                if (argc - optind != 3) {
                        usage(stderr);
                        return 2;
                }
                req = link_request(argv[optind + 1], argv[optind + 2], sock, sizeof(sock));
                if (!req)
                        return 1;
                /* the content's creator, for its records and the ledger (docs/prsm.md) */
                if (creator)
                        json_object_set_new(req, "creator", json_string(creator));
        } else if (strcmp(cmd, "publish") == 0) {
                req = publish_request(path, &po, sock, sizeof(sock));
                if (!req)
                        return 1;
        } else if (strcmp(cmd, "unpin") == 0) {
                if (argc - optind != 2 && argc - optind != 3) {
                        usage(stderr);
                        return 2;
                }
                path = argc - optind == 3 ? argv[optind + 2] : ".";
                if (!sock[0] && find_socket(path, sock, sizeof(sock)) < 0)
                        return 1;
                req = json_pack("{s:s, s:s}", "cmd", "unpin", "cid", argv[optind + 1]);
        } else if (strcmp(cmd, "status") == 0 || strcmp(cmd, "check") == 0) {
                if (!sock[0] && find_socket(path, sock, sizeof(sock)) < 0)
                        return 1;
                req = json_pack("{s:s}", "cmd", cmd);
        } else {
                fprintf(stderr, "prsmctl: unknown command '%s'\n", cmd);
                usage(stderr);
                return 2;
        }
        reply = req ? call(sock, req) : NULL;
        if (reply) {
                if (json_is_true(json_object_get(reply, "ok"))) {
                        if (strcmp(cmd, "publish") == 0 && !json)
                                print_publish(reply);
                        else {
                                json_dumpf(reply, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
                                fputc('\n', stdout);
                        }
                        ret = 0;
                } else
                        fprintf(stderr, "prsmctl: %s: %s\n", cmd,
                                json_string_value(json_object_get(reply, "error")));
        }
        json_decref(req);
        json_decref(reply);
        return ret;
}
