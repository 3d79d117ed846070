/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Strict string-to-number parsing: the only place raw strtoull/strtod are called. */
#pragma once

#include "prsmfs/base.h"

/* Whole-string decimal; -EINVAL on junk or empty, -ERANGE on overflow. */
_wur_ int parse_u64(const char *s, uint64_t *ret);
/* "true/false/yes/no/on/off/1/0". */
_wur_ int parse_bool(const char *s, bool *ret);
/* Bytes with an optional binary suffix K, M, G, T (KiB..TiB; "KiB" etc. also accepted). */
_wur_ int parse_size(const char *s, uint64_t *ret);
/* Seconds as a decimal (e.g. "0.25"), or with a unit suffix "ms"/"s"; result in ms. */
_wur_ int parse_duration_ms(const char *s, uint64_t *ret);

/* Writes what is wrong into err (err_size bytes; none when 0, truncated when longer) and
 * returns -EINVAL: how the config and key-file readers report a bad value. */
_printf_(3, 4) int parse_fail(char *err, size_t err_size, const char *fmt, ...);
