/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Publishing: the UnixFS DAG of a tree (or subtree) of the mount, so that one root CID names
 * it for `ipfs ls`, any gateway or another mount. Files already have their CIDs (a file
 * whose upload is pending is waited for); directories are built here from the index with the
 * profile's directory settings, sharded as a HAMT where Kubo would, so the root equals the
 * real node's `add -r` of the same tree with the same settings. A linked directory that was
 * never listed keeps its own CID (unless something changed below an entry a lookup linked in
 * it: then it is listed first); an entry listed without a type keeps its CID and Tsize. Symlinks
 * become UnixFS symlink nodes; a file never written gets the empty file's CID.
 *
 * Modes and times (opts): off by default, as `add` stores none. With preserve_mode and/or
 * preserve_mtime every directory node (the root shard of a HAMT), every file's root node and
 * (mtime only, as Kubo) every symlink carry them, as `add -r --preserve-mode --preserve-mtime`
 * writes them. A file's root is the only node of its DAG that changes (Kubo keeps metadata
 * in the root alone): its root block is fetched and written again with the fields, a raw
 * root (one raw leaf) becomes a dag-pb File leaf holding the same bytes. Its other blocks
 * stay as uploaded, so nothing is read or uploaded again but one block per file. Kubo's
 * `add --preserve-*` also turns raw leaves off, so for files of more than one chunk in the
 * default profile its CID differs from ours (which is js-ipfs's `add`'s); everything else is
 * the same (tests/unit/unixfs: Kubo's t0047 vectors). A linked directory is expanded (its
 * entries' metadata comes from the index) instead of keeping its CID.
 *
 * What is left out, each named in a notice and listed (up to FS_PUBLISH_SKIPPED_MAX) in the
 * result: FIFOs, sockets and device nodes (no UnixFS form; publishing one by itself is
 * -EOPNOTSUPP) and, unless include_private, what others may not read in the mount: a file
 * without o+r, a directory without o+r or o+x (with everything under it). Anyone with the
 * CID could read those. Publishing a private tree itself, or one under a directory without
 * o+x, is -EACCES.
 *
 * The new blocks (directory nodes, symlinks, empty files) go to the uploader, which pins the
 * root (automatic_pinning, replicas); the root is then recorded as a published root, pinned
 * until prsmctl unpin (pins.c).
 */
#define LOG_MODULE "fs"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "prsmfs/log.h"

#include "fs_internal.h"

#define PUBLISH_MAX_DEPTH 256
/* the path from the published root, for notices: PUBLISH_MAX_DEPTH names and slashes */
#define PUBLISH_PATH_MAX (PUBLISH_MAX_DEPTH * (INDEX_NAME_MAX + 1))
/* bytes of skipped paths listed in a result (a control reply stays well under 1 MiB) */
#define PUBLISH_SKIPPED_BYTES (128 * 1024)

struct publish {
        struct fs *fs;
        unixfs_emit_fn emit;
        void *emit_ud;
        struct unixfs_params fparams;
        struct unixfs_dir_params dparams;
        struct fs_publish_opts opts;
        uint64_t deadline_ns;
        uint64_t root_ino;
        struct cid root;
        const char *root_path;        /* borrowed: as given to fs_publish, for notices */
        struct buf path;              /* of the directory being built, from the root, no NUL */
        struct buf scratch;           /* a file root rewritten with metadata */
        struct fs_publish_result res; /* root unset until the end */
        size_t skipped_bytes;         /* of the paths in res.skipped */
};

void fs_publish_result_done(struct fs_publish_result *r)
{
        if (!r)
                return;
        for (size_t i = 0; i < r->n_skipped; i++)
                free(r->skipped[i].path);
        free(r->skipped);
        r->skipped = NULL;
        r->n_skipped = r->n_skipped_total = 0;
}

/* What others may not read in the mount: publishing it would let anyone with the CID. */
static bool is_private(uint32_t mode)
{
        if (S_ISDIR(mode))
                return (mode & (S_IROTH | S_IXOTH)) != (S_IROTH | S_IXOTH);
        if (S_ISREG(mode))
                return !(mode & S_IROTH);
        return false; /* a symlink's target is readable by all (mode 0777) */
}

/* Metadata of a node as opts ask (NULL: none). Kubo stores no mode for a symlink, and none
 * for a mode of 0 (unixfs SetModeFromUnixPermissions). */
static const struct unixfs_meta *meta_of(const struct publish *p, const struct index_attr *a,
                                         struct unixfs_meta *m)
{
        if (!p->opts.preserve_mode && !p->opts.preserve_mtime)
                return NULL;
        *m = (struct unixfs_meta){
                .has_mode = p->opts.preserve_mode && !S_ISLNK(a->mode) && (a->mode & 07777),
                .mode = a->mode & 07777,
                .has_mtime = p->opts.preserve_mtime,
                .mtime_sec = (int64_t)a->mtime.tv_sec,
                .mtime_nsec = (uint32_t)a->mtime.tv_nsec,
        };
        return m;
}

/* Leaves name (in the directory being built) out: a notice, and an entry in the result. */
static int skip(struct publish *p, const char *name, const struct index_attr *a, const char *reason,
                const char *why)
{
        struct bytes_view dir = buf_view(&p->path);
        size_t len = dir.len + (dir.len ? 1 : 0) + strlen(name);
        struct fs_publish_skipped *e;
        char *path;

        log_notice("publish of '%s': skipping '%.*s%s%s' (inode %" PRIu64 ", mode %04o): %s",
                   p->root_path, (int)dir.len, (const char *)dir.p, dir.len ? "/" : "", name,
                   a->ino, a->mode & 07777, why);
        p->res.n_skipped_total++;
        if (p->res.n_skipped >= FS_PUBLISH_SKIPPED_MAX ||
            p->skipped_bytes + len > PUBLISH_SKIPPED_BYTES)
                return 0; /* counted, not listed */
        e = reallocarray(p->res.skipped, p->res.n_skipped + 1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        p->res.skipped = e;
        path = malloc(len + 1);
        if (!path)
                return -ENOMEM;
        (void)snprintf(path, len + 1, "%.*s%s%s", (int)dir.len, (const char *)dir.p,
                       dir.len ? "/" : "", name);
        e[p->res.n_skipped++] =
                (struct fs_publish_skipped){ .path = path, .reason = reason, .mode = a->mode };
        p->skipped_bytes += len;
        return 0;
}

/* The cumulative DAG size of an existing CID (what a directory link's Tsize says). */
static int tsize_of(struct publish *p, const struct cid *cid, uint64_t *ret)
{
        struct unixfs_pb_node n;
        struct net_block *b = NULL;
        uint64_t t;
        int r;

        r = store_get(p->fs->store, cid, p->deadline_ns, &b);
        if (r < 0)
                return r;
        t = b->len;
        if (cid->codec == CID_CODEC_DAG_PB) {
                r = unixfs_pb_decode(b->data, b->len, &n);
                if (r >= 0) {
                        for (size_t i = 0; i < n.n_links; i++)
                                t += n.links[i].tsize;
                        unixfs_pb_node_done(&n);
                }
        }
        net_block_unref(b);
        *ret = t;
        return r < 0 ? r : 0;
}

struct one_block {
        struct cid cid;
        uint64_t size;
        struct publish *p;
};

static int emit_through(const struct cid *cid, const uint8_t *block, size_t len, void *ud)
{
        struct one_block *o = ud;

        o->cid = *cid;
        o->size += len;
        return o->p->emit(cid, block, len, o->p->emit_ud);
}

/* The root of file cid (an existing DAG) with meta in it, uploaded. */
static int file_with_meta(struct publish *p, const struct cid *cid, const struct unixfs_meta *meta,
                          struct cid *ret, uint64_t *ret_tsize)
{
        struct net_block *b = NULL;
        int r;

        r = store_get(p->fs->store, cid, p->deadline_ns, &b);
        if (r < 0)
                return r;
        r = unixfs_file_set_meta(cid, b->data, b->len, meta, p->dparams.cid_version, &p->scratch,
                                 ret, ret_tsize);
        net_block_unref(b);
        if (r >= 0)
                r = p->emit(ret, p->scratch.p, p->scratch.len, p->emit_ud);
        return r;
}

static int empty_file(struct publish *p, const struct unixfs_meta *meta, struct cid *ret,
                      uint64_t *ret_tsize)
{
        struct unixfs_builder *b;
        struct one_block o = { .p = p };
        struct cid empty;
        int r;

        if (meta) {
                /* the empty leaf of either profile, as a raw block: Data without bytes */
                r = cid_compute(1, CID_CODEC_RAW, CID_MH_SHA2_256, "", 0, &empty);
                if (r >= 0)
                        r = unixfs_file_set_meta(&empty, (const uint8_t *)"", 0, meta,
                                                 p->dparams.cid_version, &p->scratch, ret,
                                                 ret_tsize);
                if (r >= 0)
                        r = p->emit(ret, p->scratch.p, p->scratch.len, p->emit_ud);
                return r;
        }
        r = unixfs_builder_new(&p->fparams, emit_through, &o, &b);
        if (r < 0)
                return r;
        r = unixfs_builder_finish(b, ret, NULL, ret_tsize);
        unixfs_builder_free(b);
        return r;
}

static int symlink_node(struct publish *p, const struct index_attr *a, struct cid *ret,
                        uint64_t *ret_tsize)
{
        struct unixfs_data d = { .type = UNIXFS_SYMLINK, .has_data = true };
        struct unixfs_pb_node n = { .has_data = true };
        char target[FS_SYMLINK_MAX + 1];
        struct unixfs_meta m;
        struct buf data, block;
        int r;

        r = index_readlink(p->fs->idx, a->ino, target, sizeof(target));
        if (r < 0)
                return r;
        d.data = (struct bytes_view){ (const uint8_t *)target, strlen(target) };
        unixfs_data_set_meta(&d, meta_of(p, a, &m));
        buf_init(&data, CID_MAX_BLOCK);
        buf_init(&block, CID_MAX_BLOCK);
        r = unixfs_data_encode(&d, &data);
        if (r >= 0) {
                n.data = buf_view(&data);
                r = unixfs_pb_encode(&n, &block);
        }
        if (r >= 0)
                r = cid_compute(p->dparams.cid_version, CID_CODEC_DAG_PB, CID_MH_SHA2_256,
                                buf_view(&block).p, buf_view(&block).len, ret);
        if (r >= 0)
                r = p->emit(ret, buf_view(&block).p, buf_view(&block).len, p->emit_ud);
        *ret_tsize = buf_view(&block).len;
        buf_done(&data);
        buf_done(&block);
        return r;
}

static int node_cid(struct publish *p, uint64_t ino, unsigned depth, struct cid *ret,
                    uint64_t *ret_tsize);

struct entries {
        struct publish *p;
        struct unixfs_dirent *e;
        uint64_t *inos;
        size_t n, cap;
};

/* The reason token (fs_publish_skipped) and the notice for a special file, else NULL. */
static const char *special_kind(uint32_t mode, const char **ret_why)
{
        switch (mode & S_IFMT) {
        case S_IFIFO:
                *ret_why = "a FIFO has no UnixFS form";
                return "fifo";
        case S_IFSOCK:
                *ret_why = "a socket has no UnixFS form";
                return "socket";
        case S_IFCHR:
                *ret_why = "a character device has no UnixFS form";
                return "char-device";
        case S_IFBLK:
                *ret_why = "a block device has no UnixFS form";
                return "block-device";
        default:
                return NULL;
        }
}

static int collect(const char *name, const struct index_attr *a, uint64_t cookie, void *ud)
{
        struct entries *es = ud;
        const char *why, *kind = special_kind(a->mode, &why);

        (void)cookie;
        if (kind)
                return skip(es->p, name, a, kind, why);
        if (!es->p->opts.include_private && is_private(a->mode))
                return skip(es->p, name, a, "private",
                            S_ISDIR(a->mode) ? "others may not list it (o+rx), nor anything in it"
                                             : "others may not read it (o+r)");
        if (es->n == es->cap) {
                size_t cap = es->cap ? es->cap * 2 : 32;
                struct unixfs_dirent *e = reallocarray(es->e, cap, sizeof(*e));
                uint64_t *inos;

                if (!e)
                        return -ENOMEM;
                es->e = e;
                inos = reallocarray(es->inos, cap, sizeof(*inos));
                if (!inos)
                        return -ENOMEM;
                es->inos = inos;
                es->cap = cap;
        }
        es->e[es->n] = (struct unixfs_dirent){ .name = strdup(name), .name_len = strlen(name) };
        if (!es->e[es->n].name)
                return -ENOMEM;
        es->inos[es->n++] = a->ino;
        return 0;
}

static int directory(struct publish *p, const struct index_attr *a, unsigned depth, struct cid *ret,
                     uint64_t *ret_tsize)
{
        struct entries es = { .p = p };
        struct one_block o = { .p = p };
        size_t path_len = p->path.len;
        struct unixfs_meta m;
        const struct unixfs_meta *meta = meta_of(p, a, &m);
        int r;

        if (a->state == INDEX_STATE_LAZY && a->has_cid && !(a->flags & INDEX_FLAG_CHANGED) &&
            !meta) {
                *ret = a->cid; /* linked, never listed, so unchanged */
                return tsize_of(p, &a->cid, ret_tsize);
        }
        /* listed first when lazy: changed below an entry a lookup linked, or its entries' modes
         * and times wanted (they are in the index once it is listed) */
        r = fs_tree_expand(p->fs, a);
        if (r >= 0)
                r = index_readdir(p->fs->idx, a->ino, 0, collect, &es);
        for (size_t i = 0; r >= 0 && i < es.n; i++) {
                if (path_len)
                        r = buf_append_byte(&p->path, '/');
                if (r >= 0)
                        r = buf_append(&p->path, es.e[i].name, es.e[i].name_len);
                if (r >= 0)
                        r = node_cid(p, es.inos[i], depth + 1, &es.e[i].cid, &es.e[i].tsize);
                p->path.len = path_len;
        }
        if (r >= 0)
                r = unixfs_dir_build_meta(&p->dparams, meta, es.e, es.n, emit_through, &o, ret,
                                          ret_tsize);
        for (size_t i = 0; i < es.n; i++)
                free((char *)es.e[i].name);
        free(es.e);
        free(es.inos);
        return r;
}

static int node_cid(struct publish *p, uint64_t ino, unsigned depth, struct cid *ret,
                    uint64_t *ret_tsize)
{
        const struct unixfs_meta *meta;
        struct unixfs_meta m;
        struct index_attr a;
        int r;

        if (depth > PUBLISH_MAX_DEPTH)
                return -ELOOP;
        r = index_getattr(p->fs->idx, ino, &a);
        if (r >= 0 && S_ISREG(a.mode) && a.staged) {
                /* closed but not uploaded yet: its CID comes with the upload */
                r = fs_wait_committed(p->fs, ino, a.staged, p->deadline_ns);
                if (r >= 0)
                        r = index_getattr(p->fs->idx, ino, &a);
                if (r >= 0 && a.staged)
                        r = -EAGAIN;
        }
        if (r < 0)
                return r;
        if (S_ISDIR(a.mode))
                return directory(p, &a, depth, ret, ret_tsize);
        if (S_ISLNK(a.mode))
                return symlink_node(p, &a, ret, ret_tsize);
        if ((a.mode & S_IFMT) == 0 && a.has_cid) {
                /* listed without a type (its block did not come): as its link said */
                *ret = a.cid;
                *ret_tsize = a.size;
                return 0;
        }
        if (!S_ISREG(a.mode))
                return -EOPNOTSUPP;
        meta = meta_of(p, &a, &m);
        if (!a.has_cid)
                return empty_file(p, meta, ret, ret_tsize);
        if (meta)
                return file_with_meta(p, &a.cid, meta, ret, ret_tsize);
        *ret = a.cid;
        return tsize_of(p, &a.cid, ret_tsize);
}

static int publish_source(unixfs_emit_fn emit, void *emit_ud, void *userdata)
{
        struct publish *p = userdata;
        uint64_t tsize;

        p->emit = emit;
        p->emit_ud = emit_ud;
        /* a new upload attempt (another node) runs the source again from the start */
        fs_publish_result_done(&p->res);
        p->skipped_bytes = 0;
        buf_clear(&p->path);
        return node_cid(p, p->root_ino, 0, &p->root, &tsize);
}

/*
 * The inode at path, if others may read it in the mount: every directory on the way must let
 * them through (o+x), and it must not be private itself. -EACCES (with a notice) when not,
 * unless include_private.
 */
static int resolve_public(struct publish *p, const char *path, struct index_attr *ret)
{
        uint32_t through;
        int r;

        r = fs_resolve_path_through(p->fs, path, ret, &through);
        if (r < 0 || p->opts.include_private || ((through & S_IXOTH) && !is_private(ret->mode)))
                return r;
        log_notice("publish of '%s' refused: %s; --include-private publishes it", p->root_path,
                   !(through & S_IXOTH) ? "a directory above it does not let others through (o+x)"
                                        : "others may not read it");
        return -EACCES;
}

int fs_publish(struct fs *fs, const char *path, const struct fs_publish_opts *opts,
               uint64_t deadline_ns, struct fs_publish_result *ret)
{
        enum unixfs_profile prof = fs->cfg->profile == CONFIG_PROFILE_LEGACY
                                           ? UNIXFS_PROFILE_LEGACY
                                           : UNIXFS_PROFILE_DEFAULT;
        struct publish p = { .fs = fs,
                             .opts = *opts,
                             .deadline_ns = deadline_ns,
                             .root_path = path[0] ? path : "/" };
        struct index_attr a;
        uint64_t since;
        int r;

        if (!fs->up.put_blocks || !fs->store)
                return -EHOSTUNREACH;
        since = index_tree_changes(fs->idx);
        r = resolve_public(&p, path, &a);
        if (r < 0)
                return r;
        unixfs_params_profile(prof, &p.fparams);
        p.fparams.chunk_size = fs->cfg->max_chunk_size;
        unixfs_dir_params_profile(prof, &p.dparams);
        p.root_ino = a.ino;
        buf_init(&p.path, PUBLISH_PATH_MAX);
        buf_init(&p.scratch, CID_MAX_BLOCK);
        r = fs->up.put_blocks(fs->up.ud, publish_source, &p, &p.root);
        buf_done(&p.path);
        buf_done(&p.scratch);
        /* after the pin: a published root stays pinned until prsmctl unpin, whatever becomes
         * of its files */
        if (r >= 0 && fs->cfg->automatic_pinning) {
                r = index_pin_add(fs->idx, &p.root, INDEX_PIN_PUBLISHED);
                fs_pins_kick(fs); /* a root unpinned before is pinned again */
        }
        if (r < 0) {
                fs_publish_result_done(&p.res);
                return r;
        }
        /* the directory's user.prsm.cid from now on, unless something changed meanwhile or
         * the root leaves something of it out */
        if (S_ISDIR(a.mode) && p.res.n_skipped_total == 0 &&
            index_set_dir_cid(fs->idx, a.ino, &p.root, since) < 0)
                log_warning("publish of '%s': cannot record its CID", p.root_path);
        p.res.root = p.root;
        *ret = p.res;
        return 0;
}
