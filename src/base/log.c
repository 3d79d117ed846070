/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One line per message on stderr: "prsmfs[pid]: <level> <module>: text[: strerror]", or one
 * syslog record ("<module>: text[: strerror]", facility daemon) once log_open_syslog was
 * called (a daemonized mount, whose stderr is /dev/null; under systemd the journal keeps
 * both). The level is a process-wide atomic so that hot paths pay one load when disabled.
 *
 * Secrets: the user:password part of any URL in a message is replaced by "***" here, once for
 * every caller, so that a node URL with credentials never reaches a log.
 */
#include "prsmfs/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static int level = LOG_LEVEL_NOTICE;
static bool to_syslog; /* atomic; set once by log_open_syslog */

static const int syslog_prio[_LOG_LEVEL_MAX] = {
        [LOG_LEVEL_ERROR] = LOG_ERR,     [LOG_LEVEL_WARNING] = LOG_WARNING,
        [LOG_LEVEL_NOTICE] = LOG_NOTICE, [LOG_LEVEL_INFO] = LOG_INFO,
        [LOG_LEVEL_DEBUG] = LOG_DEBUG,
};

static const char *const level_names[_LOG_LEVEL_MAX] = {
        [LOG_LEVEL_ERROR] = "error", [LOG_LEVEL_WARNING] = "warning", [LOG_LEVEL_NOTICE] = "notice",
        [LOG_LEVEL_INFO] = "info",   [LOG_LEVEL_DEBUG] = "debug",
};

void log_set_level(enum log_level l)
{
        __atomic_store_n(&level, (int)l, __ATOMIC_RELAXED);
}

enum log_level log_get_level(void)
{
        return (enum log_level)__atomic_load_n(&level, __ATOMIC_RELAXED);
}

int log_level_from_string(const char *s, enum log_level *ret)
{
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (strcmp(s, level_names[i]) == 0) {
                        *ret = (enum log_level)i;
                        return 0;
                }
        return -EINVAL;
}

void log_open_syslog(const char *ident)
{
        openlog(ident, LOG_PID | LOG_NDELAY, LOG_DAEMON);
        __atomic_store_n(&to_syslog, true, __ATOMIC_RELEASE);
}

bool log_is_syslog(void)
{
        return __atomic_load_n(&to_syslog, __ATOMIC_ACQUIRE);
}

void log_redact_urls(char *msg)
{
        for (char *p = strstr(msg, "://"); p; p = strstr(p, "://")) {
                char *user = p + 3, *end = user + strcspn(user, "/@ \t'\"");

                p = user;
                if (*end != '@' || end == user || (end - user == 3 && !memcmp(user, "***", 3)))
                        continue;
                /* "user:pass@" becomes "***@" */
                memcpy(user, "***", 3);
                memmove(user + 3, end, strlen(end) + 1);
                p = user + 3;
        }
}

bool log_ratelimit_ok(struct log_ratelimit *rl, uint64_t now_ns, unsigned *ret_suppressed)
{
        bool ok;

        *ret_suppressed = 0;
        pthread_mutex_lock(&rl->lock);
        if (rl->begin_ns == 0 || now_ns - rl->begin_ns >= rl->interval_ns) {
                *ret_suppressed = rl->suppressed;
                rl->begin_ns = now_ns;
                rl->n = 0;
                rl->suppressed = 0;
        }
        ok = rl->n < rl->burst;
        if (ok)
                rl->n++;
        else
                rl->suppressed++;
        pthread_mutex_unlock(&rl->lock);
        return ok;
}

int log_internal(enum log_level l, int err, const char *module, const char *fmt, ...)
{
        va_list ap;

        va_start(ap, fmt);
        (void)log_internalv(l, err, module, fmt, ap);
        va_end(ap);
        return err;
}

int log_internalv(enum log_level l, int err, const char *module, const char *fmt, va_list ap)
{
        char msg[1024];
        size_t len;

        (void)vsnprintf(msg, sizeof(msg), fmt, ap); /* truncation of a log line is fine */
        len = strlen(msg);
        while (len && msg[len - 1] == '\n') /* libfuse's messages end in one */
                msg[--len] = '\0';
        log_redact_urls(msg);
        if (log_is_syslog()) {
                if (err != 0)
                        syslog(syslog_prio[l], "%s %s: %s: %s", level_names[l], module, msg,
                               strerror(err < 0 ? -err : err));
                else
                        syslog(syslog_prio[l], "%s %s: %s", level_names[l], module, msg);
                return err;
        }
        if (err != 0)
                fprintf(stderr, "prsmfs[%d]: %s %s: %s: %s\n", (int)getpid(), level_names[l],
                        module, msg, strerror(err < 0 ? -err : err));
        else
                fprintf(stderr, "prsmfs[%d]: %s %s: %s\n", (int)getpid(), level_names[l], module,
                        msg);
        return err;
}
