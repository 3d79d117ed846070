/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Shared by fuzz_safetensors.c and fuzz_gguf.c: runs the model header parser on a whole file
 * and on a prefix of it, and aborts when a promise of formats.h is broken. */
#pragma once

#include <errno.h>
#include <stdlib.h>

#include "formats.h"

/* What a table promises: sorted, no overlap, every tensor after the header and in the file. */
static inline void fuzz_formats_check(const struct formats_table *t, uint64_t file_size)
{
        uint64_t at = t->data_start;
        size_t len;
        char *json;

        if (t->data_start > file_size)
                abort();
        for (size_t i = 0; i < t->n; i++) {
                if (t->tensors[i].begin < at || t->tensors[i].end < t->tensors[i].begin ||
                    t->tensors[i].end > file_size || !t->tensors[i].name)
                        abort();
                at = t->tensors[i].end;
        }
        if (formats_table_json(t, &json, &len) == 0)
                free(json);
}

static inline void fuzz_formats_run(const uint8_t *data, size_t size)
{
        struct formats_table t;
        size_t need = 0;
        int r;

        r = formats_parse(data, size, size, &need, &t);
        if (r == -EAGAIN)
                abort(); /* the whole file was there */
        if (r == 0) {
                fuzz_formats_check(&t, size);
                formats_table_done(&t);
        }
        /* a prefix: more is asked for, never less, never past the file */
        if (size > 16) {
                r = formats_parse(data, 16, size, &need, &t);
                if (r == -EAGAIN && (need <= 16 || need > size))
                        abort();
                if (r == 0) {
                        fuzz_formats_check(&t, size);
                        formats_table_done(&t);
                }
        }
}
