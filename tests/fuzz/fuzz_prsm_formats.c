/* SPDX-License-Identifier: GPL-2.0-or-later */
/* PRSM shard manifests and JSON wrappers (src/prsm/formats.c): the decoder of linked JSON,
 * then the round trip through the form the index keeps, which must give the same layout. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "prsmfs/prsm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        struct prsm_layout l, back;
        char err[256], *enc = NULL, *meta = NULL;
        size_t meta_len = 0;
        int r;

        static const char self_str[] =
                "bafkreifzjut3te2nhyekklss27nh3k72ysco7y32koao5eei66wof36n5e";
        struct cid self;

        if (cid_parse(self_str, strlen(self_str), &self) < 0)
                abort();
        r = prsm_format_parse(data, size, &self, &l, err, sizeof(err));
        if (r < 0) {
                assert(r == -ENOMSG || r == -EBADMSG || r == -ENOMEM);
                return 0;
        }
        assert(l.n_parts > 0);
        for (size_t i = 0; i < l.n_parts; i++) {
                assert(prsm_layout_find(&l, l.parts[i].offset) == i || l.parts[i].size == 0);
                if (l.is_hex)
                        assert(l.parts[i].src_off + 2 * l.parts[i].size < size);
        }
        if (prsm_layout_encode(&l, &enc) == 0) {
                r = prsm_layout_decode(enc, &back);
                assert(r == 0 || r == -ENOMEM);
                if (r == 0) {
                        assert(back.size == l.size && back.n_parts == l.n_parts);
                        assert(back.kind == l.kind && back.is_hex == l.is_hex);
                        for (size_t i = 0; i < l.n_parts; i++)
                                assert(memcmp(&back.parts[i], &l.parts[i], sizeof(l.parts[i])) ==
                                       0);
                        prsm_layout_done(&back);
                }
                free(enc);
        }
        if (prsm_layout_meta(&l, NULL, &meta, &meta_len) == 0)
                free(meta);
        prsm_layout_done(&l);
        return 0;
}
