/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Control socket server: one thread polls the listening socket and an eventfd used to stop
 * it; connections are served one at a time (requests are short; prsmctl is an admin tool).
 * A request line longer than CONTROL_MAX_LINE or slower than CONTROL_IO_TIMEOUT_MS is
 * dropped, so a stuck client cannot wedge the daemon.
 */
#define LOG_MODULE "control"
#include "control.h"

#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "prsmfs/cleanup.h"
#include "prsmfs/log.h"

#define CONTROL_MAX_LINE      (64 * 1024)
#define CONTROL_IO_TIMEOUT_MS 5000

struct control {
        char *path;
        int listen_fd;
        int stop_fd; /* eventfd */
        pthread_t thread;
        bool started;
        const struct control_command *commands;
        size_t n_commands;
        void *userdata;
};

static int read_line(int fd, char *buf, size_t size, size_t *ret_len)
{
        size_t len = 0;

        while (len < size - 1) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                ssize_t n;

                if (poll(&p, 1, CONTROL_IO_TIMEOUT_MS) <= 0)
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

static void serve(struct control *c, int fd)
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
        if (r < 0)
                return;
        req = json_loadb(buf, len, JSON_DISABLE_EOF_CHECK, &jerr);
        cmd = req ? json_string_value(json_object_get(req, "cmd")) : NULL;
        if (!cmd) {
                reply = error_reply("bad request: expected {\"cmd\": ...}");
                goto out;
        }
        for (size_t i = 0; i < c->n_commands; i++) {
                if (strcmp(c->commands[i].name, cmd) != 0)
                        continue;
                r = c->commands[i].handler(req, &reply, c->userdata);
                if (r < 0 && !reply)
                        reply = error_reply(strerror(-r));
                else if (r >= 0 && reply)
                        json_object_set_new(reply, "ok", json_true());
                goto out;
        }
        reply = error_reply("unknown command");
out:
        if (reply)
                write_reply(fd, reply);
        json_decref(reply);
        json_decref(req);
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
                if (fd < 0)
                        continue;
                serve(c, fd);
                close(fd);
        }
        return NULL;
}

int control_start(const char *path, const struct control_command *commands, size_t n_commands,
                  void *userdata, struct control **ret)
{
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct control *c;
        int r;

        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->listen_fd = c->stop_fd = -1;
        c->commands = commands;
        c->n_commands = n_commands;
        c->userdata = userdata;
        c->path = strdup(path);
        if (!c->path) {
                r = -ENOMEM;
                goto fail;
        }
        memcpy(sa.sun_path, path, strlen(path) + 1);
        c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        c->stop_fd = eventfd(0, EFD_CLOEXEC);
        if (c->listen_fd < 0 || c->stop_fd < 0) {
                r = -errno;
                goto fail;
        }
        (void)unlink(path); /* a socket left by a daemon that was killed */
        if (bind(c->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0600) < 0 ||
            listen(c->listen_fd, 8) < 0) {
                r = -errno;
                goto fail;
        }
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
        }
        if (c->listen_fd >= 0) {
                close(c->listen_fd);
                (void)unlink(c->path); /* best effort */
        }
        if (c->stop_fd >= 0)
                close(c->stop_fd);
        free(c->path);
        free(c);
}
