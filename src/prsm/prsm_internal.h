/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers shared by the prsm module's files (record.c). */
#pragma once

#include "prsmfs/base.h"

/* len bytes as 2 * len lowercase hex digits and a NUL into out. */
void prsm_hex(const uint8_t *p, size_t len, char *out);
/* Exactly 2 * len lowercase hex digits (then the string's end) into len bytes; -EINVAL. */
_wur_ int prsm_unhex(const char *s, uint8_t *out, size_t len);
