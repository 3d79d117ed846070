/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Logging to stderr (the journal when run under systemd). Each .c file defines LOG_MODULE
 * before including this header. log_*_errno(r, ...) logs with strerror(-r) and returns r.
 */
#pragma once

#include <pthread.h>
#include <stdarg.h>

#include "prsmfs/base.h"

enum log_level {
        LOG_LEVEL_ERROR,
        LOG_LEVEL_WARNING,
        LOG_LEVEL_NOTICE,
        LOG_LEVEL_INFO,
        LOG_LEVEL_DEBUG,
        _LOG_LEVEL_MAX,
};

#ifndef LOG_MODULE
#define LOG_MODULE "prsmfs"
#endif

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error".."debug"; -EINVAL otherwise. */
_wur_ int log_level_from_string(const char *s, enum log_level *ret);
/* From now on every message goes to syslog (facility daemon) under ident, not stderr: for a
 * daemonized process, whose stderr is /dev/null. ident is borrowed until the process ends. */
void log_open_syslog(const char *ident);
bool log_is_syslog(void);
/* Replaces the user:password of every "scheme://user:password@host" in msg by "***". */
void log_redact_urls(char *msg);

/*
 * At most burst messages per interval (systemd's ratelimit): log only when this returns true;
 * *ret_suppressed is how many the window that just ended dropped (say so in the next line).
 */
struct log_ratelimit {
        pthread_mutex_t lock;
        uint64_t interval_ns, begin_ns; /* lock */
        unsigned burst, n, suppressed;  /* lock */
};
#define LOG_RATELIMIT_INIT(interval, b)                                                    \
        {                                                                                  \
                .lock = PTHREAD_MUTEX_INITIALIZER, .interval_ns = (interval), .burst = (b) \
        }
_wur_ bool log_ratelimit_ok(struct log_ratelimit *rl, uint64_t now_ns, unsigned *ret_suppressed);

_printf_(4, 0) int log_internalv(enum log_level level, int err, const char *module, const char *fmt,
                                 va_list ap);
_printf_(4, 5) int log_internal(enum log_level level, int err, const char *module, const char *fmt,
                                ...);

#define log_full_errno(lvl, r, ...) \
        (log_get_level() >= (lvl) ? log_internal((lvl), (r), LOG_MODULE, __VA_ARGS__) : (r))
#define log_error(...)            ((void)log_full_errno(LOG_LEVEL_ERROR, 0, __VA_ARGS__))
#define log_warning(...)          ((void)log_full_errno(LOG_LEVEL_WARNING, 0, __VA_ARGS__))
#define log_notice(...)           ((void)log_full_errno(LOG_LEVEL_NOTICE, 0, __VA_ARGS__))
#define log_info(...)             ((void)log_full_errno(LOG_LEVEL_INFO, 0, __VA_ARGS__))
#define log_debug(...)            ((void)log_full_errno(LOG_LEVEL_DEBUG, 0, __VA_ARGS__))
#define log_error_errno(r, ...)   log_full_errno(LOG_LEVEL_ERROR, (r), __VA_ARGS__)
#define log_warning_errno(r, ...) log_full_errno(LOG_LEVEL_WARNING, (r), __VA_ARGS__)
#define log_debug_errno(r, ...)   log_full_errno(LOG_LEVEL_DEBUG, (r), __VA_ARGS__)
