/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Control socket server. One thread polls the listening socket and an eventfd used to stop
 * it; each accepted connection is served by its own thread, at most CONTROL_MAX_CLIENTS at
 * once, so that a long request (a publish that pins a big tree) does not hold up `status`.
 * A client beyond the bound gets a "busy" error at once rather than a wait.
 *
 * Timeouts: a request line must arrive whole within CONTROL_IO_TIMEOUT_MS and be at most
 * CONTROL_MAX_LINE bytes; a reply that the client does not read within CONTROL_IO_TIMEOUT_MS
 * is dropped (SO_SNDTIMEO). A stuck client therefore holds one slot for seconds, never the
 * daemon. Handlers themselves are not timed out here: each bounds its own work.
 *
 * Long paths: sun_path holds 108 bytes, and a state_dir deep in a home directory or a test
 * tree exceeds it. The socket is bound, chmod-ed and unlinked through an O_PATH descriptor
 * of its directory ("/proc/self/fd/N/control.sock" is short whatever the directory's path),
 * and prsmctl connects the same way.
 *
 * Permissions: the socket is made 0600 before listen() (no client can connect earlier, so
 * there is no window), or 0660 and owned by a configured group.
 */
#define LOG_MODULE "control"
#include "control.h"

#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "prsmfs/cleanup.h"
#include "prsmfs/log.h"

#define CONTROL_MAX_LINE      (64 * 1024)
#define CONTROL_IO_TIMEOUT_MS 5000
#define CONTROL_MAX_CLIENTS   8

struct control;

/* A connection's thread. used/fd/thread: c->lock; is_done is set by the thread itself. */
struct conn {
        struct control *c;
        pthread_t thread;
        int fd;
        bool used;
        bool is_done; /* the thread returned; the acceptor joins it */
};

struct control {
        int dir_fd; /* O_PATH: the socket's directory */
        char *name; /* the socket's name in it */
        char *path; /* as given, for messages */
        int listen_fd;
        int stop_fd; /* eventfd */
        pthread_t thread;
        bool started;
        const struct control_command *commands;
        size_t n_commands;
        void *userdata;
        pthread_mutex_t lock; /* conns, n_conns */
        struct conn conns[CONTROL_MAX_CLIENTS];
};

/* A sockaddr for dir_fd/name: "/proc/self/fd/N/name", which fits whatever the directory's
 * path; -ENAMETOOLONG only for a name that does not fit itself. */
static int fd_sockaddr(int dir_fd, const char *name, struct sockaddr_un *ret)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dir_fd, name);

        if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        *ret = sa;
        return 0;
}

/* Reads one line (up to '\n') within CONTROL_IO_TIMEOUT_MS overall. */
static int read_line(int fd, char *buf, size_t size, size_t *ret_len)
{
        struct timespec start, now;
        size_t len = 0;

        clock_gettime(CLOCK_MONOTONIC, &start);
        while (len < size - 1) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                int64_t left_ms;
                ssize_t n;

                clock_gettime(CLOCK_MONOTONIC, &now);
                left_ms = CONTROL_IO_TIMEOUT_MS - ((int64_t)(now.tv_sec - start.tv_sec) * 1000 +
                                                   (now.tv_nsec - start.tv_nsec) / 1000000);
                if (left_ms <= 0 || poll(&p, 1, (int)left_ms) <= 0)
                        return -ETIMEDOUT;
                n = read(fd, buf + len, size - 1 - len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : -ECONNRESET;
                len += (size_t)n;
                if (memchr(buf, '\n', len)) {
                        buf[len] = '\0';
                        *ret_len = len;
                        return 0;
                }
        }
        return -E2BIG;
}

static void write_reply(int fd, json_t *reply)
{
        char *text = json_dumps(reply, JSON_COMPACT);
        size_t len, done = 0;

        if (!text)
                return;
        len = strlen(text);
        text[len] = '\n'; /* replaces the NUL; we write len + 1 bytes */
        while (done < len + 1) {
                /* SO_SNDTIMEO bounds each send: a client that stopped reading is dropped */
                ssize_t n = send(fd, text + done, len + 1 - done, MSG_NOSIGNAL);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break; /* the client went away: nothing to tell it */
                done += (size_t)n;
        }
        free(text);
}

static json_t *error_reply(const char *msg)
{
        return json_pack("{s:b, s:s}", "ok", 0, "error", msg);
}

/* The message for a handler's error without its own: words, not a bare errno string. */
static json_t *errno_reply(const char *cmd, int r)
{
        const char *why;
        char msg[256];

        switch (r) {
        case -EINVAL:
                why = "bad or missing arguments";
                break;
        case -ENOENT:
                why = "no such file, directory or CID in the mount";
                break;
        case -EHOSTUNREACH:
                why = "no node reachable: every configured node failed or is down";
                break;
        case -ETIMEDOUT:
                why = "timed out waiting for the nodes";
                break;
        case -ECANCELED:
                why = "cancelled: the daemon is stopping";
                break;
        case -ENOMEM:
                why = "the daemon is out of memory";
                break;
        default:
                why = NULL;
        }
        if (why)
                (void)snprintf(msg, sizeof(msg), "%s: %s", cmd, why);
        else
                (void)snprintf(msg, sizeof(msg), "%s failed in the daemon: %s (see its log)", cmd,
                               strerror(-r));
        return error_reply(msg);
}

void control_serve_one(const struct control_command *commands, size_t n_commands, void *userdata,
                       int fd)
{
        _cleanup_free_ char *buf = malloc(CONTROL_MAX_LINE);
        json_t *req = NULL, *reply = NULL;
        json_error_t jerr;
        const char *cmd;
        size_t len = 0;
        int r;

        if (!buf)
                return;
        r = read_line(fd, buf, CONTROL_MAX_LINE, &len);
        if (r == -E2BIG)
                reply = error_reply("bad request: longer than 64 KiB");
        if (r < 0)
                goto out;
        req = json_loadb(buf, len, JSON_DISABLE_EOF_CHECK, &jerr);
        cmd = req ? json_string_value(json_object_get(req, "cmd")) : NULL;
        if (!cmd) {
                reply = error_reply("bad request: expected {\"cmd\": ...}");
                goto out;
        }
        for (size_t i = 0; i < n_commands; i++) {
                if (strcmp(commands[i].name, cmd) != 0)
                        continue;
                r = commands[i].handler(req, &reply, userdata);
                if (r < 0 && !reply)
                        reply = errno_reply(cmd, r);
                else if (r >= 0 && reply)
                        json_object_set_new(reply, "ok", json_true());
                goto out;
        }
        reply = error_reply("unknown command (an older daemon than this prsmctl?)");
out:
        if (reply)
                write_reply(fd, reply);
        json_decref(reply);
        json_decref(req);
}

static void *conn_thread(void *arg)
{
        struct conn *k = arg;
        struct control *c = k->c;

        control_serve_one(c->commands, c->n_commands, c->userdata, k->fd);
        pthread_mutex_lock(&c->lock);
        close(k->fd);
        k->fd = -1;
        k->is_done = true;
        pthread_mutex_unlock(&c->lock);
        return NULL;
}

/* Joins the connection threads that returned (all when is_all: at stop). */
static void reap(struct control *c, bool is_all)
{
        for (size_t i = 0; i < CONTROL_MAX_CLIENTS; i++) {
                struct conn *k = &c->conns[i];
                bool join;

                pthread_mutex_lock(&c->lock);
                join = k->used && (k->is_done || is_all);
                if (join && !k->is_done && k->fd >= 0)
                        (void)shutdown(k->fd, SHUT_RD); /* a client that sent nothing yet */
                pthread_mutex_unlock(&c->lock);
                if (!join)
                        continue;
                pthread_join(k->thread, NULL);
                pthread_mutex_lock(&c->lock);
                k->used = false;
                pthread_mutex_unlock(&c->lock);
        }
}

static void start_conn(struct control *c, int fd)
{
        struct timeval tv = { .tv_sec = CONTROL_IO_TIMEOUT_MS / 1000 };
        struct conn *k = NULL;

        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)); /* best effort */
        reap(c, false);
        pthread_mutex_lock(&c->lock);
        for (size_t i = 0; !k && i < CONTROL_MAX_CLIENTS; i++)
                if (!c->conns[i].used)
                        k = &c->conns[i];
        if (k)
                *k = (struct conn){ .c = c, .fd = fd, .used = true };
        pthread_mutex_unlock(&c->lock);
        if (k && pthread_create(&k->thread, NULL, conn_thread, k) == 0)
                return;
        if (k) {
                pthread_mutex_lock(&c->lock);
                k->used = false;
                pthread_mutex_unlock(&c->lock);
        }
        json_t *busy = error_reply("busy: the daemon serves its most control requests at once; "
                                   "try again");

        if (busy)
                write_reply(fd, busy);
        json_decref(busy);
        close(fd);
}

static void *control_thread(void *arg)
{
        struct control *c = arg;

        for (;;) {
                struct pollfd p[2] = { { .fd = c->listen_fd, .events = POLLIN },
                                       { .fd = c->stop_fd, .events = POLLIN } };
                int fd;

                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (p[1].revents)
                        break;
                fd = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd >= 0)
                        start_conn(c, fd);
        }
        return NULL;
}

/* 0660 and the group's, or 0600; before listen(), so that no client connects earlier. */
static int set_owner(struct control *c, const char *group)
{
        char buf[4096];
        struct group gr, *g = NULL;
        int r;

        if (!group || !*group)
                return fchmodat(c->dir_fd, c->name, 0600, 0) < 0 ? -errno : 0;
        r = getgrnam_r(group, &gr, buf, sizeof(buf), &g);
        if (r != 0 || !g) {
                log_error("control_group '%s': %s", group, r ? strerror(r) : "no such group");
                return r ? -r : -ENOENT;
        }
        if (fchownat(c->dir_fd, c->name, (uid_t)-1, g->gr_gid, 0) < 0)
                return log_error_errno(-errno, "cannot give %s to group '%s'", c->path, group);
        return fchmodat(c->dir_fd, c->name, 0660, 0) < 0 ? -errno : 0;
}

int control_start(const char *path, const char *group, const struct control_command *commands,
                  size_t n_commands, void *userdata, struct control **ret)
{
        struct sockaddr_un sa;
        const char *slash = strrchr(path, '/');
        struct control *c;
        int r;

        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->listen_fd = c->stop_fd = c->dir_fd = -1;
        pthread_mutex_init(&c->lock, NULL);
        c->commands = commands;
        c->n_commands = n_commands;
        c->userdata = userdata;
        c->path = strdup(path);
        c->name = strdup(slash ? slash + 1 : path);
        if (!c->path || !c->name) {
                r = -ENOMEM;
                goto fail;
        }
        if (slash)
                c->path[slash == path ? 1 : slash - path] = '\0'; /* the directory, for now */
        c->dir_fd = open(slash ? c->path : ".", O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (slash)
                memcpy(c->path, path, strlen(path) + 1);
        if (c->dir_fd < 0) {
                r = -errno;
                goto fail;
        }
        r = fd_sockaddr(c->dir_fd, c->name, &sa);
        if (r < 0)
                goto fail;
        c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        c->stop_fd = eventfd(0, EFD_CLOEXEC);
        if (c->listen_fd < 0 || c->stop_fd < 0) {
                r = -errno;
                goto fail;
        }
        (void)unlinkat(c->dir_fd, c->name, 0); /* a socket left by a daemon that was killed */
        if (bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
                r = -errno;
                goto fail;
        }
        r = set_owner(c, group);
        if (r >= 0 && listen(c->listen_fd, 16) < 0)
                r = -errno;
        if (r < 0)
                goto fail;
        r = -pthread_create(&c->thread, NULL, control_thread, c);
        if (r < 0)
                goto fail;
        c->started = true;
        *ret = c;
        return 0;
fail:
        control_stop(c);
        return r;
}

void control_stop(struct control *c)
{
        uint64_t one = 1;

        if (!c)
                return;
        if (c->started) {
                if (write(c->stop_fd, &one, sizeof(one)) != sizeof(one))
                        log_warning("cannot wake the control thread, ignoring");
                pthread_join(c->thread, NULL);
                reap(c, true); /* requests in progress finish (each bounds its own work) */
        }
        if (c->listen_fd >= 0) {
                close(c->listen_fd);
                (void)unlinkat(c->dir_fd, c->name, 0); /* best effort */
        }
        if (c->stop_fd >= 0)
                close(c->stop_fd);
        if (c->dir_fd >= 0)
                close(c->dir_fd);
        pthread_mutex_destroy(&c->lock);
        free(c->path);
        free(c->name);
        free(c);
}
