/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Model file headers (safetensors, GGUF v2/v3) parsed into a tensor table: pure functions
 * over a byte buffer, no I/O. Every header is hostile: a table is returned only when every
 * tensor lies inside the file, tensors do not overlap and every size matches its dtype and
 * shape; anything else is an error and nothing of the header is used.
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "prsmfs/base.h"

#define FORMATS_HEADER_MAX  (100u << 20) /* bytes of header read at most (safetensors' own cap) */
#define FORMATS_TENSORS_MAX (1u << 20)
#define FORMATS_GGUF_KV_MAX (1u << 20)
#define FORMATS_DIMS_MAX    8
#define FORMATS_NAME_MAX    4096
#define FORMATS_JSON_DEPTH  4 /* safetensors: {name: {"shape": [..]}} needs 3 */

enum formats_kind {
        FORMATS_SAFETENSORS,
        FORMATS_GGUF,
        _FORMATS_KIND_MAX,
};

struct formats_tensor {
        char *name;        /* owned */
        const char *dtype; /* static */
        unsigned n_dims;
        uint64_t shape[FORMATS_DIMS_MAX];
        uint64_t begin, end; /* absolute offsets in the file, begin <= end <= file size */
};

/* Tensors sorted by offset (the order they are prefetched in), without overlap. */
struct formats_table {
        enum formats_kind kind;
        uint64_t data_start; /* where tensor data begins: the header is [0, data_start) */
        struct formats_tensor *tensors; /* owned */
        size_t n;
};

const char *formats_kind_name(enum formats_kind k);

/*
 * Parses the first len bytes of a file of file_size bytes. 0 and *ret filled (free it with
 * formats_table_done); -EAGAIN when the header goes on past len, *ret_need then says how
 * many bytes to pass next (at most FORMATS_HEADER_MAX and file_size); -ENOMSG when the bytes
 * are no such format; -EBADMSG for a malformed or inconsistent header; -E2BIG over a limit;
 * -ENOMEM.
 */
_wur_ int formats_parse(const uint8_t *p, size_t len, uint64_t file_size, size_t *ret_need,
                        struct formats_table *ret);
void formats_table_done(struct formats_table *t);

/* The table as JSON text ({"format", "data_start", "tensors": [{name, dtype, shape,
 * offsets: [begin, end]}]}), a new malloc'd string. */
_wur_ int formats_table_json(const struct formats_table *t, char **ret, size_t *ret_len);
