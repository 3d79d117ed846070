/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * safetensors and GGUF headers into a tensor table (see formats.h). Pure: no I/O, no
 * logging; the caller reads the file's first bytes and asks again with more on -EAGAIN.
 *
 * What is checked, since a table is used to choose what to fetch and is shown to tools:
 * - safetensors (u64 LE header length N, N bytes of JSON, data from 8+N): N at most
 *   FORMATS_HEADER_MAX and inside the file; the JSON nested at most FORMATS_JSON_DEPTH
 *   deep (checked before jansson sees it), no duplicate names; each tensor's dtype is
 *   known, its shape has at most FORMATS_DIMS_MAX dims, and end - begin is exactly
 *   elements x dtype size (no overflow); sorted by offset the tensors start at 0 and follow
 *   each other without gap or overlap (what the safetensors crate checks), and end inside
 *   the file. "__metadata__" must map strings to strings.
 * - GGUF v2/v3 (magic, version, tensor count, KV count, KVs, tensor infos, data aligned to
 *   general.alignment, default 32): counts at most FORMATS_TENSORS_MAX and
 *   FORMATS_GGUF_KV_MAX, every length checked against both the buffer and the file size
 *   before it is used, no nested arrays, the alignment a power of two; each tensor's type
 *   known (its block size divides the first dim), its offset aligned, no overlap, inside the
 *   file, names unique and valid UTF-8.
 */
#include "formats.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#define GGUF_MAGIC         "GGUF"
#define GGUF_ALIGN_DEFAULT 32
#define GGUF_DIMS_MAX      4 /* GGML_MAX_DIMS */
#define NEED_MIN           (64u << 10)

const char *formats_kind_name(enum formats_kind k)
{
        static const char *const names[_FORMATS_KIND_MAX] = {
                [FORMATS_SAFETENSORS] = "safetensors",
                [FORMATS_GGUF] = "gguf",
        };

        return k < _FORMATS_KIND_MAX ? names[k] : "unknown";
}

void formats_table_done(struct formats_table *t)
{
        if (!t)
                return;
        for (size_t i = 0; i < t->n; i++)
                free(t->tensors[i].name);
        free(t->tensors);
        t->tensors = NULL;
        t->n = 0;
}

static uint64_t le64(const uint8_t *p)
{
        uint64_t v = 0;

        for (int i = 7; i >= 0; i--)
                v = v << 8 | p[i];
        return v;
}

static uint32_t le32(const uint8_t *p)
{
        return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int cmp_offset(const void *a, const void *b)
{
        const struct formats_tensor *x = a, *y = b;

        if (x->begin != y->begin)
                return x->begin < y->begin ? -1 : 1;
        if (x->end != y->end)
                return x->end < y->end ? -1 : 1;
        return 0;
}

/* elements x elem_size, or -E2BIG on overflow. */
static int shape_bytes(const uint64_t *shape, unsigned n, uint64_t elem_size, uint64_t *ret)
{
        uint64_t v = elem_size;

        for (unsigned i = 0; i < n; i++)
                if (__builtin_mul_overflow(v, shape[i], &v))
                        return -E2BIG;
        *ret = v;
        return 0;
}

static bool name_ok(const char *p, size_t len)
{
        json_t *s;

        if (len > FORMATS_NAME_MAX || memchr(p, '\0', len))
                return false;
        s = json_stringn(p, len); /* NULL for invalid UTF-8 */
        json_decref(s);
        return s != NULL;
}

/* ---- safetensors ---- */

static const struct {
        const char *name;
        unsigned size;
} st_dtypes[] = {
        { "BOOL", 1 },    { "U8", 1 },  { "I8", 1 },  { "F8_E5M2", 1 }, { "F8_E4M3", 1 },
        { "F8_E8M0", 1 }, { "I16", 2 }, { "U16", 2 }, { "F16", 2 },     { "BF16", 2 },
        { "I32", 4 },     { "U32", 4 }, { "F32", 4 }, { "C64", 8 },     { "F64", 8 },
        { "I64", 8 },     { "U64", 8 },
};

/* Nesting depth of JSON text, strings skipped: > max means reject before parsing. */
static bool json_depth_ok(const uint8_t *p, size_t len, unsigned max)
{
        unsigned depth = 0;
        bool in_str = false;

        for (size_t i = 0; i < len; i++) {
                if (in_str) {
                        if (p[i] == '\\')
                                i++;
                        else if (p[i] == '"')
                                in_str = false;
                } else if (p[i] == '"') {
                        in_str = true;
                } else if (p[i] == '{' || p[i] == '[') {
                        if (++depth > max)
                                return false;
                } else if ((p[i] == '}' || p[i] == ']') && depth) {
                        depth--;
                }
        }
        return true;
}

static bool json_u64(json_t *v, uint64_t *ret)
{
        if (!json_is_integer(v) || json_integer_value(v) < 0)
                return false;
        *ret = (uint64_t)json_integer_value(v);
        return true;
}

static int st_tensor(const char *name, json_t *o, struct formats_tensor *t)
{
        json_t *dtype = json_object_get(o, "dtype"), *shape = json_object_get(o, "shape");
        json_t *offs = json_object_get(o, "data_offsets"), *v;
        uint64_t elem = 0, bytes;
        size_t i;
        int r;

        if (!json_is_object(o) || !json_is_string(dtype) || !json_is_array(shape) ||
            !json_is_array(offs) || json_array_size(offs) != 2 ||
            json_array_size(shape) > FORMATS_DIMS_MAX || !name_ok(name, strlen(name)))
                return -EBADMSG;
        for (i = 0; i < sizeof(st_dtypes) / sizeof(st_dtypes[0]); i++)
                if (strcmp(json_string_value(dtype), st_dtypes[i].name) == 0) {
                        t->dtype = st_dtypes[i].name;
                        elem = st_dtypes[i].size;
                }
        if (!elem)
                return -EBADMSG; /* unknown dtype: its size cannot be checked */
        json_array_foreach(shape, i, v)
        {
                if (!json_u64(v, &t->shape[i]))
                        return -EBADMSG;
        }
        t->n_dims = (unsigned)json_array_size(shape);
        if (!json_u64(json_array_get(offs, 0), &t->begin) ||
            !json_u64(json_array_get(offs, 1), &t->end) || t->begin > t->end)
                return -EBADMSG;
        r = shape_bytes(t->shape, t->n_dims, elem, &bytes);
        if (r < 0)
                return r;
        if (t->end - t->begin != bytes)
                return -EBADMSG;
        t->name = strdup(name);
        return t->name ? 0 : -ENOMEM;
}

static bool st_metadata_ok(json_t *m)
{
        const char *k;
        json_t *v;

        if (!json_is_object(m))
                return false;
        json_object_foreach(m, k, v)
        {
                if (!json_is_string(v))
                        return false;
        }
        return true;
}

static int st_parse_json(json_t *root, uint64_t data_start, uint64_t file_size,
                         struct formats_table *t)
{
        size_t n = json_object_size(root), k = 0;
        const char *name;
        uint64_t at = 0;
        json_t *v;
        int r = 0;

        if (n > FORMATS_TENSORS_MAX)
                return -E2BIG;
        t->tensors = calloc(n ? n : 1, sizeof(*t->tensors));
        if (!t->tensors)
                return -ENOMEM;
        json_object_foreach(root, name, v)
        {
                if (strcmp(name, "__metadata__") == 0) {
                        if (!st_metadata_ok(v))
                                return -EBADMSG;
                        continue;
                }
                r = st_tensor(name, v, &t->tensors[k]);
                if (t->tensors[k].name)
                        t->n = ++k;
                if (r < 0)
                        return r;
        }
        qsort(t->tensors, t->n, sizeof(*t->tensors), cmp_offset);
        for (size_t i = 0; i < t->n; i++) {
                struct formats_tensor *x = &t->tensors[i];

                if (x->begin != at)
                        return -EBADMSG; /* a gap or an overlap */
                at = x->end;
                if (at > file_size - data_start)
                        return -EBADMSG; /* past the end of the file */
                x->begin += data_start;
                x->end += data_start;
        }
        return 0;
}

static int st_parse(const uint8_t *p, size_t len, uint64_t file_size, size_t *ret_need,
                    struct formats_table *t)
{
        json_t *root;
        uint64_t n;
        int r;

        if (file_size < 10)
                return -ENOMSG;
        if (len < 9) {
                *ret_need = 9;
                return -EAGAIN;
        }
        n = le64(p);
        /* not safetensors unless the length fits the file and the JSON starts there */
        if (n < 2 || n > file_size - 8 || p[8] != '{')
                return -ENOMSG;
        if (n > FORMATS_HEADER_MAX)
                return -E2BIG;
        if (len - 8 < n) {
                *ret_need = (size_t)(8 + n);
                return -EAGAIN;
        }
        if (!json_depth_ok(p + 8, (size_t)n, FORMATS_JSON_DEPTH))
                return -E2BIG;
        root = json_loadb((const char *)p + 8, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(root)) {
                json_decref(root);
                return -EBADMSG;
        }
        t->kind = FORMATS_SAFETENSORS;
        t->data_start = 8 + n;
        r = st_parse_json(root, t->data_start, file_size, t);
        json_decref(root);
        return r;
}

/* ---- GGUF ---- */

/* ggml types: name, elements per block, bytes per block (ggml.c's type_traits). */
static const struct {
        const char *name;
        unsigned blck, size;
} gguf_types[] = {
        [0] = { "F32", 1, 4 },         [1] = { "F16", 1, 2 },         [2] = { "Q4_0", 32, 18 },
        [3] = { "Q4_1", 32, 20 },      [6] = { "Q5_0", 32, 22 },      [7] = { "Q5_1", 32, 24 },
        [8] = { "Q8_0", 32, 34 },      [9] = { "Q8_1", 32, 36 },      [10] = { "Q2_K", 256, 84 },
        [11] = { "Q3_K", 256, 110 },   [12] = { "Q4_K", 256, 144 },   [13] = { "Q5_K", 256, 176 },
        [14] = { "Q6_K", 256, 210 },   [15] = { "Q8_K", 256, 292 },   [16] = { "IQ2_XXS", 256, 66 },
        [17] = { "IQ2_XS", 256, 74 },  [18] = { "IQ3_XXS", 256, 98 }, [19] = { "IQ1_S", 256, 50 },
        [20] = { "IQ4_NL", 32, 18 },   [21] = { "IQ3_S", 256, 110 },  [22] = { "IQ2_S", 256, 82 },
        [23] = { "IQ4_XS", 256, 136 }, [24] = { "I8", 1, 1 },         [25] = { "I16", 1, 2 },
        [26] = { "I32", 1, 4 },        [27] = { "I64", 1, 8 },        [28] = { "F64", 1, 8 },
        [29] = { "IQ1_M", 256, 56 },   [30] = { "BF16", 1, 2 },       [34] = { "TQ1_0", 256, 54 },
        [35] = { "TQ2_0", 256, 66 },   [39] = { "MXFP4", 32, 17 },
};

enum {
        GGUF_U8,
        GGUF_I8,
        GGUF_U16,
        GGUF_I16,
        GGUF_U32,
        GGUF_I32,
        GGUF_F32,
        GGUF_BOOL,
        GGUF_STRING,
        GGUF_ARRAY,
        GGUF_U64,
        GGUF_I64,
        GGUF_F64,
        _GGUF_VALUE_MAX,
};

static const unsigned gguf_value_size[_GGUF_VALUE_MAX] = {
        [GGUF_U8] = 1,  [GGUF_I8] = 1,  [GGUF_U16] = 2, [GGUF_I16] = 2,
        [GGUF_U32] = 4, [GGUF_I32] = 4, [GGUF_F32] = 4, [GGUF_BOOL] = 1,
        [GGUF_U64] = 8, [GGUF_I64] = 8, [GGUF_F64] = 8,
};

/* A reader over the buffer that tells "the header goes on past the buffer" (-EAGAIN) from
 * "the header goes on past the file" (-EBADMSG). */
struct gguf_rd {
        const uint8_t *p;
        size_t len, pos;
        uint64_t file_size;
};

static int rd_take(struct gguf_rd *rd, uint64_t n, const uint8_t **ret)
{
        if (n > rd->file_size - rd->pos)
                return -EBADMSG;
        if (n > rd->len - rd->pos)
                return -EAGAIN;
        if (ret)
                *ret = rd->p + rd->pos;
        rd->pos += (size_t)n;
        return 0;
}

static int rd_u32(struct gguf_rd *rd, uint32_t *ret)
{
        const uint8_t *q;
        int r = rd_take(rd, 4, &q);

        if (r >= 0)
                *ret = le32(q);
        return r;
}

static int rd_u64(struct gguf_rd *rd, uint64_t *ret)
{
        const uint8_t *q;
        int r = rd_take(rd, 8, &q);

        if (r >= 0)
                *ret = le64(q);
        return r;
}

/* A gguf_string: u64 length, bytes (not NUL-terminated; borrowed). */
static int rd_str(struct gguf_rd *rd, uint64_t max, const uint8_t **ret, uint64_t *ret_len)
{
        uint64_t n;
        int r = rd_u64(rd, &n);

        if (r < 0)
                return r;
        if (n > max)
                return -E2BIG;
        r = rd_take(rd, n, ret);
        if (r >= 0)
                *ret_len = n;
        return r;
}

static int rd_value(struct gguf_rd *rd, uint32_t type, bool in_array)
{
        const uint8_t *s;
        uint64_t n, len;
        uint32_t et;
        int r;

        if (type >= _GGUF_VALUE_MAX)
                return -EBADMSG;
        if (type == GGUF_STRING)
                return rd_str(rd, FORMATS_HEADER_MAX, &s, &len);
        if (type != GGUF_ARRAY)
                return rd_take(rd, gguf_value_size[type], NULL);
        if (in_array)
                return -EBADMSG; /* nested arrays: llama.cpp reads none either */
        r = rd_u32(rd, &et);
        if (r >= 0)
                r = rd_u64(rd, &n);
        if (r < 0)
                return r;
        if (et >= _GGUF_VALUE_MAX || et == GGUF_ARRAY)
                return -EBADMSG;
        if (et != GGUF_STRING) {
                if (n > (rd->file_size - rd->pos) / gguf_value_size[et])
                        return -EBADMSG;
                return rd_take(rd, n * gguf_value_size[et], NULL);
        }
        if (n > (rd->file_size - rd->pos) / 8)
                return -EBADMSG; /* each string is at least its length */
        for (uint64_t i = 0; i < n; i++) {
                r = rd_str(rd, FORMATS_HEADER_MAX, &s, &len);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int rd_kv(struct gguf_rd *rd, uint64_t *alignment)
{
        const uint8_t *key;
        uint64_t key_len;
        uint32_t type;
        size_t at;
        int r;

        r = rd_str(rd, FORMATS_NAME_MAX, &key, &key_len);
        if (r >= 0)
                r = rd_u32(rd, &type);
        if (r < 0)
                return r;
        at = rd->pos;
        r = rd_value(rd, type, false);
        if (r < 0)
                return r;
        if (key_len == 17 && memcmp(key, "general.alignment", 17) == 0) {
                uint32_t a;

                if (type != GGUF_U32)
                        return -EBADMSG;
                a = le32(rd->p + at);
                if (a == 0 || (a & (a - 1)) != 0)
                        return -EBADMSG;
                *alignment = a;
        }
        return 0;
}

static int rd_tensor(struct gguf_rd *rd, struct formats_tensor *t, uint64_t *ret_size)
{
        const uint8_t *name;
        uint64_t name_len, elems, size;
        uint32_t n_dims, type;
        int r;

        r = rd_str(rd, FORMATS_NAME_MAX, &name, &name_len);
        if (r >= 0)
                r = rd_u32(rd, &n_dims);
        if (r < 0)
                return r;
        if (n_dims == 0 || n_dims > GGUF_DIMS_MAX)
                return -EBADMSG;
        for (uint32_t i = 0; i < n_dims; i++) {
                r = rd_u64(rd, &t->shape[i]);
                if (r < 0)
                        return r;
                if (t->shape[i] > INT64_MAX)
                        return -EBADMSG;
        }
        r = rd_u32(rd, &type);
        if (r >= 0)
                r = rd_u64(rd, &t->begin);
        if (r < 0)
                return r;
        if (type >= sizeof(gguf_types) / sizeof(gguf_types[0]) || !gguf_types[type].name)
                return -EBADMSG; /* unknown type: its size cannot be checked */
        if (t->shape[0] % gguf_types[type].blck != 0)
                return -EBADMSG;
        r = shape_bytes(t->shape, n_dims, 1, &elems);
        if (r < 0)
                return r;
        if (__builtin_mul_overflow(elems / gguf_types[type].blck, gguf_types[type].size, &size))
                return -E2BIG;
        if (!name_ok((const char *)name, (size_t)name_len))
                return -EBADMSG;
        t->n_dims = n_dims;
        t->dtype = gguf_types[type].name;
        t->name = strndup((const char *)name, (size_t)name_len);
        *ret_size = size;
        return t->name ? 0 : -ENOMEM;
}

static int cmp_name(const void *a, const void *b)
{
        const struct formats_tensor *const *x = a, *const *y = b;

        return strcmp((*x)->name, (*y)->name);
}

static int names_unique(const struct formats_table *t)
{
        const struct formats_tensor **v;
        int r = 0;

        v = calloc(t->n ? t->n : 1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < t->n; i++)
                v[i] = &t->tensors[i];
        qsort(v, t->n, sizeof(*v), cmp_name);
        for (size_t i = 1; i < t->n && r == 0; i++)
                if (strcmp(v[i - 1]->name, v[i]->name) == 0)
                        r = -EBADMSG;
        free(v);
        return r;
}

/* Tensor offsets are relative to the data: made absolute, checked inside the file, sorted. */
static int gguf_place(struct formats_table *t, const uint64_t *sizes, uint64_t alignment,
                      uint64_t file_size)
{
        for (size_t i = 0; i < t->n; i++) {
                struct formats_tensor *x = &t->tensors[i];

                if (x->begin % alignment != 0 || x->begin > file_size - t->data_start ||
                    sizes[i] > file_size - t->data_start - x->begin)
                        return -EBADMSG;
                x->begin += t->data_start;
                x->end = x->begin + sizes[i];
        }
        qsort(t->tensors, t->n, sizeof(*t->tensors), cmp_offset);
        for (size_t i = 1; i < t->n; i++)
                if (t->tensors[i].begin < t->tensors[i - 1].end)
                        return -EBADMSG; /* overlap */
        return names_unique(t);
}

static int gguf_parse(const uint8_t *p, size_t len, uint64_t file_size, struct formats_table *t)
{
        struct gguf_rd rd = { .p = p, .len = len, .file_size = file_size };
        uint64_t n_tensors, n_kv, alignment = GGUF_ALIGN_DEFAULT, *sizes = NULL;
        uint32_t version;
        int r;

        r = rd_take(&rd, 4, NULL);
        if (r >= 0)
                r = rd_u32(&rd, &version);
        if (r >= 0)
                r = rd_u64(&rd, &n_tensors);
        if (r >= 0)
                r = rd_u64(&rd, &n_kv);
        if (r < 0)
                return r;
        if (version != 2 && version != 3)
                return -EBADMSG; /* v1 had 32-bit counts; later ones are unknown */
        if (n_tensors > FORMATS_TENSORS_MAX || n_kv > FORMATS_GGUF_KV_MAX)
                return -E2BIG;
        for (uint64_t i = 0; i < n_kv; i++) {
                r = rd_kv(&rd, &alignment);
                if (r < 0)
                        return r;
        }
        t->kind = FORMATS_GGUF;
        t->tensors = calloc(n_tensors ? n_tensors : 1, sizeof(*t->tensors));
        sizes = calloc(n_tensors ? n_tensors : 1, sizeof(*sizes));
        if (!t->tensors || !sizes) {
                free(sizes);
                return -ENOMEM;
        }
        for (uint64_t i = 0; i < n_tensors && r >= 0; i++) {
                r = rd_tensor(&rd, &t->tensors[i], &sizes[i]);
                if (t->tensors[i].name)
                        t->n = i + 1;
        }
        if (r >= 0) {
                /* data starts at the next multiple of the alignment after the infos */
                uint64_t pad = (alignment - rd.pos % alignment) % alignment;

                if (pad > file_size - rd.pos)
                        r = -EBADMSG;
                else
                        t->data_start = rd.pos + pad;
        }
        if (r >= 0)
                r = gguf_place(t, sizes, alignment, file_size);
        free(sizes);
        return r;
}

int formats_parse(const uint8_t *p, size_t len, uint64_t file_size, size_t *ret_need,
                  struct formats_table *ret)
{
        struct formats_table t = { 0 };
        size_t need = 0;
        int r;

        if (len > file_size)
                return -EINVAL;
        if (len < 4 && file_size >= 4) {
                *ret_need = file_size < NEED_MIN ? (size_t)file_size : NEED_MIN;
                return -EAGAIN;
        }
        if (len >= 4 && memcmp(p, GGUF_MAGIC, 4) == 0) {
                r = gguf_parse(p, len, file_size, &t);
                if (r == -EAGAIN) {
                        uint64_t cap =
                                file_size < FORMATS_HEADER_MAX ? file_size : FORMATS_HEADER_MAX;

                        /* the infos' end is known only once read: twice as much each time */
                        need = len < NEED_MIN / 2 ? NEED_MIN : len * 2;
                        if (len >= cap)
                                r = -E2BIG;
                        else if (need > cap)
                                need = (size_t)cap;
                }
        } else {
                r = st_parse(p, len, file_size, &need, &t);
        }
        if (r == -EAGAIN)
                *ret_need = need;
        if (r < 0) {
                formats_table_done(&t);
                return r;
        }
        *ret = t;
        return 0;
}

static json_t *tensor_json(const struct formats_tensor *x)
{
        json_t *shape = json_array();

        for (unsigned d = 0; shape && d < x->n_dims; d++)
                if (json_array_append_new(shape, json_integer((json_int_t)x->shape[d])) < 0) {
                        json_decref(shape);
                        shape = NULL;
                }
        if (!shape)
                return NULL;
        return json_pack("{s:s, s:s, s:o, s:[I, I]}", "name", x->name, "dtype", x->dtype, "shape",
                         shape, "offsets", (json_int_t)x->begin, (json_int_t)x->end);
}

int formats_table_json(const struct formats_table *t, char **ret, size_t *ret_len)
{
        json_t *list = json_array(), *o = NULL;
        char *s = NULL;

        for (size_t i = 0; list && i < t->n; i++)
                if (json_array_append_new(list, tensor_json(&t->tensors[i])) < 0) {
                        json_decref(list);
                        list = NULL;
                }
        if (list)
                o = json_pack("{s:s, s:I, s:o}", "format", formats_kind_name(t->kind), "data_start",
                              (json_int_t)t->data_start, "tensors", list);
        if (o)
                s = json_dumps(o, JSON_COMPACT);
        json_decref(o);
        if (!s)
                return -ENOMEM;
        *ret = s;
        *ret_len = strlen(s);
        return 0;
}
