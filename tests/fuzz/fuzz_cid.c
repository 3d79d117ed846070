/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * CIDs from arbitrary bytes, read three ways: as a whole binary CID, as a stream of CIDs (CAR
 * sections, dag-pb links) and as a string. Whatever parses must be canonical (its bytes are
 * the input), format and parse back equal in every base, agree with cid_read, convert
 * between versions without losing its multihash, and sort consistently. Aborts on a mismatch.
 */
#include <stdlib.h>
#include <string.h>

#include "prsmfs/cid.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct cid *c)
{
        char s[CID_MAX_STR];
        struct cid back, v1, v0;
        struct cursor cur;
        struct bytes_view d = cid_digest(c);
        int r;

        if (c->len > CID_MAX_BIN || c->digest_off + c->digest_len != c->len ||
            (!cid_is_identity(c) && c->digest_len < CID_MIN_DIGEST))
                abort();
        for (int b = 0; b < _CID_BASE_MAX; b++) {
                int n = cid_format(c, (enum cid_base)b, s, sizeof(s));

                if (n < 0 || (size_t)n != strlen(s) || cid_parse(s, (size_t)n, &back) < 0 ||
                    !cid_equal(c, &back) || cid_compare(c, &back) != 0)
                        abort();
        }
        if (strcmp(cid_to_string(c, s), s) != 0 || s[0] == '\0')
                abort();
        cursor_init(&cur, c->bin, c->len);
        if (cid_read(&cur, &back) < 0 || !cursor_eof(&cur) || !cid_equal(c, &back))
                abort();
        if (cid_to_v1(c, &v1) < 0 || !cid_same_multihash(c, &v1) || v1.codec != c->codec)
                abort();
        if (cid_to_v0(&v1, &v0) == 0 && (!cid_same_multihash(c, &v0) || v0.len != 34))
                abort();
        if (c->version == 1 && !cid_equal(c, &v1))
                abort();
        if (cid_make(c->version, c->codec, c->mh_code, d.p, d.len, &back) < 0 ||
            !cid_equal(c, &back))
                abort();
        r = cid_compare(c, &v1);
        if ((r == 0) != cid_equal(c, &v1) || cid_compare(&v1, c) != -r)
                abort();
        if (cid_is_identity(c) && cid_verify(c, d.p, d.len) != 0)
                abort();
        r = cid_verify(c, "x", 1);
        if (r != 0 && r != -EILSEQ && r != -EOPNOTSUPP)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct cursor cur;
        struct cid c;

        if (cid_from_bytes(data, size, &c) >= 0) {
                if (c.len != size || memcmp(c.bin, data, size) != 0)
                        abort();
                check(&c);
        }
        /* a stream: each CID read moves the cursor by exactly its length; a failure not */
        cursor_init(&cur, data, size);
        for (;;) {
                size_t pos = cur.pos;

                if (cid_read(&cur, &c) < 0) {
                        if (cur.pos != pos)
                                abort();
                        break;
                }
                if (cur.pos - pos != c.len || memcmp(c.bin, data + pos, c.len) != 0)
                        abort();
                check(&c);
        }
        if (cid_parse((const char *)data, size, &c) >= 0)
                check(&c);
        return 0;
}
