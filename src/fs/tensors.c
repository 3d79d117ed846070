/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A file's tensor table (formats.h) read from its first bytes through the reader, for the
 * user.prsm.tensors xattr and for prefetch_on_open's order. Nothing is kept: the header's
 * blocks stay in the cache, so asking again reads them from disk. Under fs_no_fetch a header
 * block that is not local gives -EWOULDBLOCK (the caller defers to a job thread).
 */
#define LOG_MODULE "fs"
#include <stdlib.h>
#include <string.h>

#include "prsmfs/log.h"

#include "formats.h"
#include "fs_internal.h"

/* Reads [0, len) of rf into buf (len is within the file). */
static int read_head(struct fs *fs, struct rfile *rf, uint8_t *buf, size_t len)
{
        struct fs_seg *segs = NULL;
        size_t n = 0, at = 0;
        int r;

        r = fs_rfile_read(fs, rf, 0, len, FS_READ_NO_RA, &segs, &n);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (segs[i].len > len - at) {
                        r = -EIO;
                        break;
                }
                r = fs_seg_copy(&segs[i], buf + at);
                at += segs[i].len;
        }
        fs_segs_free(segs, n);
        if (r >= 0 && at != len)
                r = -EIO;
        return r;
}

int fs_tensors_load(struct fs *fs, const struct index_attr *a, struct formats_table *ret)
{
        struct rfile *rf = NULL;
        uint8_t *buf = NULL;
        size_t len = 0, need;
        int r;

        if (!S_ISREG(a->mode) || !a->has_cid || a->staged || a->state != INDEX_STATE_CLEAN ||
            a->size == 0)
                return -ENOMSG;
        r = fs_rfile_open(fs, a, &rf);
        if (r < 0)
                return r;
        need = a->size < 4096 ? (size_t)a->size : 4096;
        for (;;) {
                uint8_t *nb;

                if (need <= len || need > a->size || need > FORMATS_HEADER_MAX) {
                        r = -EBADMSG; /* a parser asking for what it had or cannot have */
                        break;
                }
                nb = realloc(buf, need);
                if (!nb) {
                        r = -ENOMEM;
                        break;
                }
                buf = nb;
                len = need;
                r = read_head(fs, rf, buf, len);
                if (r < 0)
                        break;
                r = formats_parse(buf, len, a->size, &need, ret);
                if (r != -EAGAIN)
                        break;
        }
        free(buf);
        fs_rfile_close(fs, rf);
        return r;
}
