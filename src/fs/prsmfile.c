/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * PRSM content shown as the file it describes (docs/prsm.md, "Content formats"): a shard
 * manifest as its shards' contents in order, a JSON wrapper as its decoded hex. Linking
 * (prsmctl link, --format) reads the linked JSON once, decodes it (src/prsm/formats.c) and
 * keeps the layout in the index (schema 10); the inode has INDEX_FLAG_PRSM, the manifest's
 * (or wrapper's) CID, the decoded size and mode 0444, and refuses writes (EROFS).
 *
 * Reads: every part (a shard, or the wrapper's hex) is a UnixFS file read through its own
 * reader, so each block is verified against its CID as for any file. Before any byte of a
 * part is returned, its sha256 is checked over the whole part, streamed through the store in
 * 1 MiB pieces (memory stays bounded whatever the part's size); the result is kept for as
 * long as the file is open (PV_OK: later reads just read; PV_BAD: EIO). A manifest's
 * original_hash is checked too when its parts are verified in order (a read from the start):
 * a mismatch makes the file EIO from then on. A part that fails its hash never gives a byte.
 *
 * Lock order: pv->lock is a leaf, never held across a fetch, a hash or the index; one thread
 * verifies a part (PV_VERIFYING) while others wait on pv->cond (a FUSE worker never waits: it
 * hands the read to a reader thread with -EWOULDBLOCK).
 */
#define LOG_MODULE "fs"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prsmfs/cleanup.h"
#include "prsmfs/hash.h"
#include "prsmfs/log.h"

#include "fs_internal.h"

#define PV_CHUNK     (1u << 20)  /* bytes hashed at a time */
#define PV_AUTO_MAX  (16u << 20) /* --format auto reads linked files up to this size */
#define PV_SNIFF_LEN 4096u       /* ... after its first bytes look like JSON */

enum {
        PV_UNVERIFIED,
        PV_VERIFYING,
        PV_OK,
        PV_BAD,
};

struct fs_pview {
        uint64_t ino;
        struct prsm_layout l; /* immutable */
        pthread_mutex_t lock;
        pthread_cond_t cond;           /* a verification ended */
        uint8_t *state;                /* lock: PV_* per part */
        struct rfile **rf;             /* lock: each part's reader, opened at its first read */
        struct hash_sha256_ctx *whole; /* lock: original_hash over the parts verified in order */
        size_t whole_next;             /* lock: the next part that feeds it */
        bool whole_bad;                /* lock: original_hash did not match */
};

uint64_t fs_pview_size(const struct fs_pview *pv)
{
        return pv->l.size;
}

void fs_pview_free(struct fs_pview *pv)
{
        if (!pv)
                return;
        for (size_t i = 0; pv->rf && i < pv->l.n_parts; i++)
                fs_rfile_free_part(pv->rf[i]);
        free(pv->rf);
        free(pv->state);
        hash_sha256_free(pv->whole);
        prsm_layout_done(&pv->l);
        pthread_cond_destroy(&pv->cond);
        pthread_mutex_destroy(&pv->lock);
        free(pv);
}

static int layout_of(struct fs *fs, const struct cid *cid, struct prsm_layout *ret)
{
        _cleanup_free_ char *text = NULL;
        int r;

        r = index_prsm_format_get(fs->idx, cid, &text);
        if (r >= 0)
                r = prsm_layout_decode(text, ret);
        return r;
}

int fs_pview_open(struct fs *fs, const struct index_attr *a, struct fs_pview **ret)
{
        struct fs_pview *pv;
        int r;

        pv = calloc(1, sizeof(*pv));
        if (!pv)
                return -ENOMEM;
        pthread_mutex_init(&pv->lock, NULL);
        pthread_cond_init(&pv->cond, NULL);
        pv->ino = a->ino;
        r = layout_of(fs, &a->cid, &pv->l);
        if (r < 0) {
                char s[CID_MAX_STR];

                log_warning("file %" PRIu64 ": no usable PRSM layout for %s: %s", a->ino,
                            cid_to_string(&a->cid, s), strerror(-r));
                fs_pview_free(pv);
                return r == -ENOENT ? -EBADMSG : r;
        }
        pv->state = calloc(pv->l.n_parts, 1);
        pv->rf = calloc(pv->l.n_parts, sizeof(*pv->rf));
        if (!pv->state || !pv->rf || (pv->l.has_whole && hash_sha256_new(&pv->whole) < 0)) {
                fs_pview_free(pv);
                return -ENOMEM;
        }
        *ret = pv;
        return 0;
}

/* Part i's reader, opened at its first use (its root block: may fetch, or -EWOULDBLOCK). */
static int part_reader(struct fs *fs, struct fs_pview *pv, size_t i, struct rfile **ret)
{
        const struct prsm_part *p = &pv->l.parts[i];
        struct rfile *rf = NULL;
        int r;

        pthread_mutex_lock(&pv->lock);
        *ret = pv->rf[i];
        pthread_mutex_unlock(&pv->lock);
        if (*ret)
                return 0;
        r = fs_rfile_open_part(fs, &p->cid, pv->l.is_hex ? UINT64_MAX : p->size, &rf);
        if (r < 0)
                return r;
        pthread_mutex_lock(&pv->lock);
        if (!pv->rf[i]) {
                pv->rf[i] = rf;
                rf = NULL;
        }
        *ret = pv->rf[i];
        pthread_mutex_unlock(&pv->lock);
        fs_rfile_free_part(rf); /* another thread opened it first */
        return 0;
}

/* len bytes at off of rf into buf, all of them (a short read is -EBADMSG). */
static int read_exact(struct fs *fs, struct rfile *rf, uint64_t off, size_t len, unsigned flags,
                      uint8_t *buf)
{
        struct fs_seg *segs = NULL;
        size_t n = 0, got = 0;
        int r;

        r = fs_rfile_read(fs, rf, off, len, flags, &segs, &n);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                r = fs_seg_copy(&segs[i], buf + got);
                got += segs[i].len;
        }
        fs_segs_free(segs, n);
        return r < 0 ? r : got == len ? 0 : -EBADMSG;
}

/* Decoded bytes [off, off + len) of part i (len <= PV_CHUNK) into buf (2 * len bytes for a
 * wrapper's hex, decoded in place). */
static int part_bytes(struct fs *fs, struct fs_pview *pv, size_t i, struct rfile *rf, uint64_t off,
                      size_t len, unsigned flags, uint8_t *buf)
{
        const struct prsm_part *p = &pv->l.parts[i];
        int r;

        if (!pv->l.is_hex)
                return read_exact(fs, rf, off, len, flags, buf);
        r = read_exact(fs, rf, p->src_off + 2 * off, 2 * len, flags, buf);
        /* in place: byte k comes from digits 2k and 2k + 1, read before k is written */
        return r < 0 ? r : prsm_hex_decode(buf, len, buf);
}

/* Hashes all of part i; feeds the whole-file hash too when whole says so. 0, -EILSEQ for a
 * mismatch, another error when its bytes could not be read (tried again at the next read). */
static int part_hash(struct fs *fs, struct fs_pview *pv, size_t i, bool whole)
{
        const struct prsm_part *p = &pv->l.parts[i];
        struct hash_sha256_ctx *h = NULL;
        uint8_t digest[HASH_SHA256_LEN];
        _cleanup_free_ uint8_t *buf = NULL;
        struct rfile *rf;
        int r;

        r = part_reader(fs, pv, i, &rf);
        if (r < 0)
                return r;
        buf = malloc(pv->l.is_hex ? 2 * PV_CHUNK : PV_CHUNK);
        if (!buf || hash_sha256_new(&h) < 0)
                return -ENOMEM;
        for (uint64_t off = 0; off < p->size;) {
                size_t n = (size_t)MIN(p->size - off, PV_CHUNK);

                r = part_bytes(fs, pv, i, rf, off, n, 0, buf);
                if (r < 0)
                        break;
                hash_sha256_update(h, buf, n);
                if (whole)
                        hash_sha256_update(pv->whole, buf, n); /* only this thread feeds it */
                off += n;
        }
        if (r >= 0) {
                hash_sha256_final(h, digest);
                r = memcmp(digest, p->sha256, sizeof(digest)) == 0 ? 0 : -EILSEQ;
        }
        hash_sha256_free(h);
        return r;
}

/* Whole-file hash of a manifest once part i (which fed it) was verified. Under pv->lock. */
static void whole_advance(struct fs_pview *pv)
{
        uint8_t digest[HASH_SHA256_LEN];

        if (++pv->whole_next < pv->l.n_parts)
                return;
        hash_sha256_final(pv->whole, digest);
        if (memcmp(digest, pv->l.whole_sha256, sizeof(digest)) != 0) {
                pv->whole_bad = true;
                log_error("file %" PRIu64 ": its shards verify but together do not have the "
                          "manifest's original_hash: reads fail from now on",
                          pv->ino);
        }
}

/* 0 when part i's sha256 was checked; verifies it first (local: -EWOULDBLOCK instead). */
static int part_check(struct fs *fs, struct fs_pview *pv, size_t i, bool local)
{
        bool whole;
        int r;

        pthread_mutex_lock(&pv->lock);
        while (pv->state[i] == PV_VERIFYING && !local)
                pthread_cond_wait(&pv->cond, &pv->lock);
        r = pv->whole_bad || pv->state[i] == PV_BAD ? -EILSEQ
            : pv->state[i] == PV_OK                 ? 0
            : local                                 ? -EWOULDBLOCK
                                                    : 1;
        if (r == 1)
                pv->state[i] = PV_VERIFYING;
        whole = pv->whole && pv->whole_next == i;
        pthread_mutex_unlock(&pv->lock);
        if (r <= 0)
                return r;

        r = part_hash(fs, pv, i, whole);

        pthread_mutex_lock(&pv->lock);
        pv->state[i] = r == 0 ? PV_OK : r == -EILSEQ || r == -EBADMSG ? PV_BAD : PV_UNVERIFIED;
        if (r == 0 && whole)
                whole_advance(pv);
        else if (whole)
                pv->whole_next = SIZE_MAX; /* fed in part: original_hash can no longer be checked */
        pthread_cond_broadcast(&pv->cond);
        pthread_mutex_unlock(&pv->lock);
        if (r == 0) {
                __atomic_add_fetch(&fs->st.prsm_parts_ok, 1, __ATOMIC_RELAXED);
                pthread_mutex_lock(&pv->lock);
                r = pv->whole_bad ? -EILSEQ : 0;
                pthread_mutex_unlock(&pv->lock);
                return r;
        }
        if (r == -EILSEQ || r == -EBADMSG) {
                char s[CID_MAX_STR];

                __atomic_add_fetch(&fs->st.prsm_parts_bad, 1, __ATOMIC_RELAXED);
                log_error("file %" PRIu64 ": PRSM %s %zu (%s) does not match its sha256 or "
                          "size: its bytes are never returned",
                          pv->ino, pv->l.is_hex ? "data" : "shard", i,
                          cid_to_string(&pv->l.parts[i].cid, s));
        }
        return r;
}

static int segs_grow(struct fs_seg **segs, size_t *cap, size_t need)
{
        struct fs_seg *p;
        size_t c = *cap ? *cap : 4;

        if (need <= *cap)
                return 0;
        while (c < need)
                c *= 2;
        p = reallocarray(*segs, c, sizeof(*p));
        if (!p)
                return -ENOMEM;
        *segs = p;
        *cap = c;
        return 0;
}

/* Decoded wrapper bytes as one segment (a block of our own, freed with the segment). */
static int hex_seg(struct fs *fs, struct fs_pview *pv, size_t i, struct rfile *rf, uint64_t off,
                   size_t len, unsigned flags, struct fs_seg *ret)
{
        struct net_block *b = calloc(1, sizeof(*b));
        int r;

        if (!b)
                return -ENOMEM;
        b->data = malloc(2 * len);
        b->refs = 1;
        b->cid = pv->l.parts[i].cid;
        if (!b->data) {
                net_block_unref(b);
                return -ENOMEM;
        }
        r = part_bytes(fs, pv, i, rf, off, len, flags, b->data);
        if (r < 0) {
                net_block_unref(b);
                return r;
        }
        b->len = len;
        *ret = (struct fs_seg){ .block = b, .p = b->data, .len = len, .fd = -1 };
        return 0;
}

int fs_pview_read(struct fs *fs, struct fs_pview *pv, uint64_t off, uint64_t end, unsigned flags,
                  struct fs_seg **ret_segs, size_t *ret_n)
{
        bool local = flags & FS_READ_LOCAL || fs_no_fetch;
        struct fs_seg *segs = NULL;
        size_t n = 0, cap = 0;
        int r = 0;

        for (uint64_t pos = off; r >= 0 && pos < end;) {
                size_t i = prsm_layout_find(&pv->l, pos);
                const struct prsm_part *p = &pv->l.parts[i];
                uint64_t in = pos - p->offset, take = MIN(end - pos, p->size - in);
                struct fs_seg *sub = NULL;
                size_t n_sub = 0;
                struct rfile *rf;

                r = part_check(fs, pv, i, local);
                if (r >= 0)
                        r = part_reader(fs, pv, i, &rf);
                if (r >= 0 && pv->l.is_hex) {
                        take = MIN(take, PV_CHUNK);
                        r = segs_grow(&segs, &cap, n + 1);
                        if (r >= 0)
                                r = hex_seg(fs, pv, i, rf, in, (size_t)take, flags, &segs[n]);
                        if (r >= 0)
                                n++;
                } else if (r >= 0) {
                        r = fs_rfile_read(fs, rf, in, (size_t)take, flags, &sub, &n_sub);
                        if (r >= 0)
                                r = segs_grow(&segs, &cap, n + n_sub);
                        if (r >= 0) {
                                uint64_t got = 0;

                                for (size_t k = 0; k < n_sub; k++)
                                        got += sub[k].len;
                                memcpy(segs + n, sub, n_sub * sizeof(*sub)); /* moved */
                                n += n_sub;
                                free(sub);
                                sub = NULL;
                                n_sub = 0;
                                if (got != take)
                                        r = -EBADMSG; /* the shard is shorter than listed */
                        }
                        fs_segs_free(sub, n_sub);
                }
                pos += take;
        }
        if (r < 0) {
                fs_segs_free(segs, n);
                return r;
        }
        *ret_segs = segs;
        *ret_n = n;
        return 0;
}

/* ---- user.prsm.format, user.prsm.meta[.KEY] ---- */

int fs_pview_xattr(struct fs *fs, uint64_t ino, const char *name, char **ret, size_t *ret_len)
{
        struct prsm_layout l;
        struct index_attr a;
        int r;

        r = index_getattr(fs->idx, ino, &a);
        if (r < 0)
                return r;
        if (!(a.flags & INDEX_FLAG_PRSM) || !a.has_cid)
                return -ENODATA;
        r = layout_of(fs, &a.cid, &l);
        if (r < 0)
                return r == -ENOENT ? -ENODATA : r;
        if (strcmp(name, "user.prsm.format") == 0) {
                const char *f = l.kind == PRSM_FORMAT_MANIFEST ? "shard-manifest" : "json-wrapper";

                *ret = strdup(f);
                *ret_len = strlen(f);
                r = *ret ? 0 : -ENOMEM;
        } else if (strcmp(name, "user.prsm.meta") == 0)
                r = prsm_layout_meta(&l, NULL, ret, ret_len);
        else if (strncmp(name, "user.prsm.meta.", 15) == 0)
                r = prsm_layout_meta(&l, name + 15, ret, ret_len);
        else
                r = -ENODATA;
        prsm_layout_done(&l);
        return r;
}

/* ---- linking ---- */

/* All of the UnixFS file cid (size bytes) in memory. */
static int read_whole(struct fs *fs, const struct cid *cid, uint64_t size, uint8_t **ret)
{
        _cleanup_free_ uint8_t *buf = malloc(size ? size : 1);
        struct rfile *rf = NULL;
        int r;

        if (!buf)
                return -ENOMEM;
        r = fs_rfile_open_part(fs, cid, size, &rf);
        for (uint64_t off = 0; r >= 0 && off < size; off += PV_CHUNK)
                r = read_exact(fs, rf, off, (size_t)MIN(size - off, PV_CHUNK), 0, buf + off);
        fs_rfile_free_part(rf);
        if (r >= 0)
                *ret = TAKE_PTR(buf);
        return r;
}

/* The size of the file cid from its root block: -ENOTTY when it is no UnixFS file. */
static int file_size(struct fs *fs, const struct cid *cid, uint64_t *ret)
{
        struct unixfs_layout l = { 0 };
        struct net_block *b = NULL;
        int r;

        r = fs_block_get(fs, cid, fs_deadline(fs), &b);
        if (r < 0)
                return r;
        r = unixfs_layout_open(cid, b->data, b->len, &l);
        net_block_unref(b);
        if (r < 0)
                return -ENOTTY;
        *ret = l.size;
        unixfs_layout_done(&l);
        return 0;
}

/* The index of the first byte at or after i that is not JSON whitespace (n if none). */
static size_t skip_json_space(const uint8_t *b, size_t n, size_t i)
{
        while (i < n && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r'))
                i++;
        return i;
}

/* Whether the first bytes of the file are a JSON object's: whitespace, '{', whitespace, then
 * '"' or '}' (or the end of what was read). A byte of '{' alone would make one random file in
 * 256 look like JSON, and then be read whole at link time. */
static int looks_like_json(struct fs *fs, const struct cid *cid, uint64_t size)
{
        uint8_t head[PV_SNIFF_LEN];
        size_t n = (size_t)MIN(size, sizeof(head));
        struct rfile *rf = NULL;
        size_t i;
        int r;

        r = fs_rfile_open_part(fs, cid, size, &rf);
        if (r >= 0)
                r = read_exact(fs, rf, 0, n, FS_READ_NO_RA, head);
        fs_rfile_free_part(rf);
        if (r < 0)
                return r;
        i = skip_json_space(head, n, 0);
        if (i == n || head[i] != '{')
                return 0;
        i = skip_json_space(head, n, i + 1);
        return i == n || head[i] == '"' || head[i] == '}';
}

/* The layout of the PRSM content cid: 0, -ENOMSG when it is none (with format auto only
 * looked for in files up to PV_AUTO_MAX that start like JSON), another error with err set. */
static int detect(struct fs *fs, const struct cid *cid, enum fs_link_format format,
                  struct prsm_layout *ret, char *err, size_t err_size)
{
        uint64_t max = format == FS_LINK_PRSM ? PRSM_FORMAT_JSON_MAX : PV_AUTO_MAX;
        _cleanup_free_ uint8_t *buf = NULL;
        uint64_t size;
        int r;

        r = file_size(fs, cid, &size);
        if (r == -ENOTTY)
                return -ENOMSG; /* a directory or symlink */
        if (r < 0)
                return r;
        if (size > max) {
                if (format == FS_LINK_AUTO)
                        return -ENOMSG;
                (void)snprintf(err, err_size,
                               "%" PRIu64 " bytes: larger than the %u MiB PRSM JSON prsmfs decodes",
                               size, PRSM_FORMAT_JSON_MAX >> 20);
                return -E2BIG;
        }
        r = size ? looks_like_json(fs, cid, size) : 0;
        if (r <= 0)
                return r < 0 ? r : -ENOMSG;
        r = read_whole(fs, cid, size, &buf);
        if (r < 0)
                return r;
        return prsm_format_parse(buf, (size_t)size, cid, ret, err, err_size);
}

int fs_link_path_as(struct fs *fs, const char *cidstr, const char *path, enum fs_link_format format,
                    uint32_t uid, uint32_t gid, char *err, size_t err_size, struct index_attr *ret)
{
        _cleanup_free_ char *copy = NULL, *text = NULL;
        struct prsm_layout l = { 0 };
        struct index_new_node n;
        const char *name;
        uint64_t parent;
        struct cid cid;
        int r;

        if (err_size)
                err[0] = '\0';
        if (format == FS_LINK_RAW)
                return fs_link_path(fs, cidstr, path, uid, gid, ret);
        if (cid_parse(cidstr, strlen(cidstr), &cid) < 0)
                return -EINVAL;
        if (!fs->store)
                return -EHOSTUNREACH;
        r = fs_link_parent(fs, path, &parent, &copy, &name); /* before any fetch */
        if (r < 0)
                return r;
        r = detect(fs, &cid, format, &l, err, err_size);
        if (r == -ENOMSG && format == FS_LINK_AUTO)
                return fs_link_path(fs, cidstr, path, uid, gid, ret);
        if (r == -ENOMSG)
                (void)snprintf(err, err_size,
                               "not a PRSM shard manifest or JSON wrapper (JSON with "
                               "original_size, original_hash, shard_size and shards, or "
                               "model_data/data with metadata.data_hash)");
        if (r < 0)
                return r == -ENOMSG ? -EBADMSG : r;
        r = prsm_layout_encode(&l, &text);
        if (r >= 0)
                r = index_prsm_format_put(fs->idx, &cid, text);
        n = (struct index_new_node){
                .mode = S_IFREG | 0444, /* read-only: it is what the JSON says */
                .uid = uid,
                .gid = gid,
                .size = l.size,
                .cid = &cid,
                .flags = INDEX_FLAG_PRSM,
        };
        prsm_layout_done(&l);
        if (r >= 0)
                r = index_mknode(fs->idx, parent, name, &n, ret);
        if (r < 0)
                return r;
        __atomic_add_fetch(&fs->st.links, 1, __ATOMIC_RELAXED);
        if (fs->se)
                (void)fuse_lowlevel_notify_inval_entry(fs->se, parent, name, strlen(name));
        return 0;
}
