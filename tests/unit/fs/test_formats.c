/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The model header parsers (formats.c): a safetensors and a GGUF file made here parse into
 * the tables they were written with (absolute offsets, sorted by offset); a short buffer
 * asks for more, never past the file; wrong headers are refused.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "formats.h"

/* A safetensors file: header text (padded to 8) and data_len bytes of tensor data. */
static size_t st_make(uint8_t *out, size_t cap, const char *header, size_t data_len)
{
        size_t n = strlen(header), total = 8 + n + data_len;

        assert_true(total <= cap);
        for (int i = 0; i < 8; i++)
                out[i] = (uint8_t)((uint64_t)n >> (8 * i));
        memcpy(out + 8, header, n);
        memset(out + 8 + n, 0xab, data_len);
        return total;
}

static int st_parse(const char *header, size_t data_len, struct formats_table *t)
{
        static uint8_t buf[4096];
        size_t len = st_make(buf, sizeof(buf), header, data_len), need = 0;

        return formats_parse(buf, len, len, &need, t);
}

static void test_safetensors__valid__table_by_offset(void **state)
{
        const char *h = "{\"z\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                        "\"a\":{\"dtype\":\"U8\",\"shape\":[5],\"data_offsets\":[24,29]},"
                        "\"__metadata__\":{\"format\":\"pt\"}}";
        struct formats_table t;

        (void)state;
        assert_int_equal(st_parse(h, 29, &t), 0);
        assert_int_equal(t.kind, FORMATS_SAFETENSORS);
        assert_int_equal(t.data_start, 8 + strlen(h));
        assert_int_equal(t.n, 2);
        assert_string_equal(t.tensors[0].name, "z");
        assert_string_equal(t.tensors[0].dtype, "F32");
        assert_int_equal(t.tensors[0].n_dims, 2);
        assert_int_equal(t.tensors[0].shape[1], 3);
        assert_int_equal(t.tensors[0].begin, t.data_start);
        assert_int_equal(t.tensors[1].end, t.data_start + 29);
        formats_table_done(&t);
}

static void test_safetensors__hostile__refused(void **state)
{
        static const char *const bad[] = {
                /* overlap */
                "{\"a\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[0,8]},"
                "\"b\":{\"dtype\":\"U8\",\"shape\":[8],\"data_offsets\":[4,12]}}",
                /* gap */
                "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                "\"b\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[8,12]}}",
                /* past the end of the file */
                "{\"a\":{\"dtype\":\"U8\",\"shape\":[64],\"data_offsets\":[0,64]}}",
                /* size is not dtype x shape */
                "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,8]}}",
                /* shape overflows */
                "{\"a\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904,4],"
                "\"data_offsets\":[0,0]}}",
                /* unknown dtype, duplicate names, metadata not strings, too deep */
                "{\"a\":{\"dtype\":\"Q9\",\"shape\":[1],\"data_offsets\":[0,1]}}",
                "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
                "\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
                "{\"__metadata__\":{\"x\":1}}",
                "{\"a\":[[[[[[]]]]]]}",
                "{not json}",
        };
        struct formats_table t;

        (void)state;
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                int r = st_parse(bad[i], 16, &t);

                if (r != -EBADMSG && r != -E2BIG)
                        fail_msg("header %zu: %d", i, r);
        }
}

static void test_safetensors__short_buffer__asks_for_header(void **state)
{
        const char *h = "{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]}}";
        struct formats_table t;
        uint8_t buf[256];
        size_t len = st_make(buf, sizeof(buf), h, 4), need = 0;

        (void)state;
        assert_int_equal(formats_parse(buf, 4, len, &need, &t), -EAGAIN);
        assert_true(need > 4 && need <= len);
        assert_int_equal(formats_parse(buf, 20, len, &need, &t), -EAGAIN);
        assert_int_equal(need, 8 + strlen(h));
        assert_int_equal(formats_parse(buf, need, len, &need, &t), 0);
        formats_table_done(&t);
        /* a length past the file, or no JSON where it should start: not safetensors */
        buf[5] = 1;
        assert_int_equal(formats_parse(buf, len, len, &need, &t), -ENOMSG);
}

/* GGUF v3 writer: little-endian fields into a buffer. */
struct w {
        uint8_t b[1024];
        size_t n;
};

static void put(struct w *w, uint64_t v, int bytes)
{
        for (int i = 0; i < bytes; i++)
                w->b[w->n++] = (uint8_t)(v >> (8 * i));
}

static void put_str(struct w *w, const char *s)
{
        put(w, strlen(s), 8);
        memcpy(w->b + w->n, s, strlen(s));
        w->n += strlen(s);
}

/* Two tensors: "b" F32 [8] at 0 and "a" Q8_0 [32] at 64, alignment 64. */
static void gguf_make(struct w *w, uint64_t second_offset)
{
        memset(w, 0, sizeof(*w));
        memcpy(w->b, "GGUF", 4);
        w->n = 4;
        put(w, 3, 4);
        put(w, 2, 8);
        put(w, 2, 8);
        put_str(w, "general.alignment");
        put(w, 4, 4); /* UINT32 */
        put(w, 64, 4);
        put_str(w, "tokenizer.ggml.tokens");
        put(w, 9, 4); /* ARRAY of STRING */
        put(w, 8, 4);
        put(w, 2, 8);
        put_str(w, "x");
        put_str(w, "yz");
        put_str(w, "b");
        put(w, 1, 4);
        put(w, 8, 8);
        put(w, 0, 4); /* F32 */
        put(w, 0, 8);
        put_str(w, "a");
        put(w, 1, 4);
        put(w, 32, 8);
        put(w, 8, 4); /* Q8_0: 34 bytes per 32 */
        put(w, second_offset, 8);
        w->n += (64 - w->n % 64) % 64;
        w->n += 64 + 34;
}

static void test_gguf__valid__table_by_offset(void **state)
{
        struct formats_table t;
        struct w w;
        size_t need;

        (void)state;
        gguf_make(&w, 64);
        assert_int_equal(formats_parse(w.b, w.n, w.n, &need, &t), 0);
        assert_int_equal(t.kind, FORMATS_GGUF);
        assert_int_equal(t.data_start % 64, 0);
        assert_int_equal(t.n, 2);
        assert_string_equal(t.tensors[0].name, "b");
        assert_int_equal(t.tensors[0].begin, t.data_start);
        assert_int_equal(t.tensors[0].end, t.data_start + 32);
        assert_string_equal(t.tensors[1].dtype, "Q8_0");
        assert_int_equal(t.tensors[1].begin, t.data_start + 64);
        assert_int_equal(t.tensors[1].end, t.data_start + 64 + 34);
        formats_table_done(&t);
        /* a prefix asks for more, at most the file */
        assert_int_equal(formats_parse(w.b, 40, w.n, &need, &t), -EAGAIN);
        assert_true(need > 40 && need <= w.n);
}

static void test_gguf__hostile__refused(void **state)
{
        struct formats_table t;
        struct w w;
        size_t need;

        (void)state;
        gguf_make(&w, 32); /* unaligned */
        assert_int_equal(formats_parse(w.b, w.n, w.n, &need, &t), -EBADMSG);
        gguf_make(&w, 1u << 30); /* past the end */
        assert_int_equal(formats_parse(w.b, w.n, w.n, &need, &t), -EBADMSG);
        gguf_make(&w, 0); /* overlaps "b" */
        assert_int_equal(formats_parse(w.b, w.n, w.n, &need, &t), -EBADMSG);
        gguf_make(&w, 64);
        w.b[8] = 0xff; /* a tensor count of 255 + ... : absurd, or infos past the file */
        w.b[15] = 0x40;
        assert_int_equal(formats_parse(w.b, w.n, w.n, &need, &t), -E2BIG);
        gguf_make(&w, 64);
        w.b[4] = 1; /* version 1 */
        assert_int_equal(formats_parse(w.b, w.n, w.n, &need, &t), -EBADMSG);
}

static void test_table_json__names_offsets(void **state)
{
        struct formats_table t;
        struct w w;
        size_t need, len;
        char *json;

        (void)state;
        gguf_make(&w, 64);
        assert_int_equal(formats_parse(w.b, w.n, w.n, &need, &t), 0);
        assert_int_equal(formats_table_json(&t, &json, &len), 0);
        assert_int_equal(strlen(json), len);
        assert_non_null(strstr(json, "\"format\":\"gguf\""));
        assert_non_null(strstr(json, "{\"name\":\"a\",\"dtype\":\"Q8_0\",\"shape\":[32]"));
        free(json);
        formats_table_done(&t);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_safetensors__valid__table_by_offset),
                cmocka_unit_test(test_safetensors__hostile__refused),
                cmocka_unit_test(test_safetensors__short_buffer__asks_for_header),
                cmocka_unit_test(test_gguf__valid__table_by_offset),
                cmocka_unit_test(test_gguf__hostile__refused),
                cmocka_unit_test(test_table_json__names_offsets),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
