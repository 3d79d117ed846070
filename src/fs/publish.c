/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Publishing: the UnixFS DAG of a tree (or subtree) of the mount, so that one root CID names
 * it for `ipfs ls`, any gateway or another mount. Files already have their CIDs (a file
 * whose upload is pending is waited for); directories are built here from the index with the
 * profile's directory settings, sharded as a HAMT where Kubo would, so the root equals the
 * real node's `add -r` of the same tree with the same settings. A linked directory that was
 * never listed keeps its own CID (unless something changed below an entry a lookup linked in
 * it: then it is listed first); an entry listed without a type keeps its CID and Tsize. Symlinks
 * become UnixFS symlink nodes; a file never written gets the empty file's CID. Modes and times are
 * not stored, as `add` does not by default. FIFOs, sockets and device nodes have no UnixFS form:
 * they are left out of their directories (with a notice naming each, and a count for prsmctl);
 * publishing one by itself is -EOPNOTSUPP.
 *
 * The new blocks (directory nodes, symlinks, empty files) go to the uploader, which pins the
 * root (automatic_pinning, replicas).
 */
#define LOG_MODULE "fs"
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "prsmfs/log.h"

#include "fs_internal.h"

#define PUBLISH_MAX_DEPTH 256
/* the path from the published root, for notices: PUBLISH_MAX_DEPTH names and slashes */
#define PUBLISH_PATH_MAX (PUBLISH_MAX_DEPTH * (INDEX_NAME_MAX + 1))

struct publish {
        struct fs *fs;
        unixfs_emit_fn emit;
        void *emit_ud;
        struct unixfs_params fparams;
        struct unixfs_dir_params dparams;
        uint64_t deadline_ns;
        uint64_t root_ino;
        struct cid root;
        const char *root_path; /* borrowed: as given to fs_publish, for notices */
        struct buf path;       /* of the directory being built, from the root, no NUL */
        size_t skipped;        /* special files left out */
};

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

static int empty_file(struct publish *p, struct cid *ret, uint64_t *ret_tsize)
{
        struct unixfs_builder *b;
        struct one_block o = { .p = p };
        int r;

        r = unixfs_builder_new(&p->fparams, emit_through, &o, &b);
        if (r < 0)
                return r;
        r = unixfs_builder_finish(b, ret, NULL, ret_tsize);
        unixfs_builder_free(b);
        return r;
}

static int symlink_node(struct publish *p, uint64_t ino, struct cid *ret, uint64_t *ret_tsize)
{
        struct unixfs_data d = { .type = UNIXFS_SYMLINK, .has_data = true };
        struct unixfs_pb_node n = { .has_data = true };
        char target[FS_SYMLINK_MAX + 1];
        struct buf data, block;
        int r;

        r = index_readlink(p->fs->idx, ino, target, sizeof(target));
        if (r < 0)
                return r;
        d.data = (struct bytes_view){ (const uint8_t *)target, strlen(target) };
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

static const char *special_kind(uint32_t mode)
{
        switch (mode & S_IFMT) {
        case S_IFIFO:
                return "FIFO";
        case S_IFSOCK:
                return "socket";
        case S_IFCHR:
                return "character device";
        case S_IFBLK:
                return "block device";
        default:
                return NULL;
        }
}

static int collect(const char *name, const struct index_attr *a, uint64_t cookie, void *ud)
{
        struct entries *es = ud;
        const char *kind = special_kind(a->mode);

        (void)cookie;
        if (kind) {
                struct bytes_view dir = buf_view(&es->p->path);

                log_notice("publish of '%s': skipping '%.*s%s%s' (inode %" PRIu64
                           "): a %s has no UnixFS form",
                           es->p->root_path, (int)dir.len, (const char *)dir.p, dir.len ? "/" : "",
                           name, a->ino, kind);
                es->p->skipped++;
                return 0;
        }
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
        int r;

        if (a->state == INDEX_STATE_LAZY && a->has_cid && !(a->flags & INDEX_FLAG_CHANGED)) {
                *ret = a->cid; /* linked, never listed, so unchanged */
                return tsize_of(p, &a->cid, ret_tsize);
        }
        /* changed below an entry a lookup linked: its other entries are listed first */
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
                r = unixfs_dir_build(&p->dparams, es.e, es.n, emit_through, &o, ret, ret_tsize);
        for (size_t i = 0; i < es.n; i++)
                free((char *)es.e[i].name);
        free(es.e);
        free(es.inos);
        return r;
}

static int node_cid(struct publish *p, uint64_t ino, unsigned depth, struct cid *ret,
                    uint64_t *ret_tsize)
{
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
                return symlink_node(p, ino, ret, ret_tsize);
        if ((a.mode & S_IFMT) == 0 && a.has_cid) {
                /* listed without a type (its block did not come): as its link said */
                *ret = a.cid;
                *ret_tsize = a.size;
                return 0;
        }
        if (!S_ISREG(a.mode))
                return -EOPNOTSUPP;
        if (!a.has_cid)
                return empty_file(p, ret, ret_tsize);
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
        p->skipped = 0;
        buf_clear(&p->path);
        return node_cid(p, p->root_ino, 0, &p->root, &tsize);
}

int fs_publish(struct fs *fs, const char *path, uint64_t deadline_ns, struct cid *ret,
               size_t *ret_skipped)
{
        enum unixfs_profile prof = fs->cfg->profile == CONFIG_PROFILE_LEGACY
                                           ? UNIXFS_PROFILE_LEGACY
                                           : UNIXFS_PROFILE_DEFAULT;
        struct publish p = { .fs = fs,
                             .deadline_ns = deadline_ns,
                             .root_path = path[0] ? path : "/" };
        struct index_attr a;
        uint64_t since;
        int r;

        if (!fs->up.put_blocks || !fs->store)
                return -EHOSTUNREACH;
        since = index_tree_changes(fs->idx);
        r = fs_resolve_path(fs, path, &a);
        if (r < 0)
                return r;
        unixfs_params_profile(prof, &p.fparams);
        p.fparams.chunk_size = fs->cfg->max_chunk_size;
        unixfs_dir_params_profile(prof, &p.dparams);
        p.root_ino = a.ino;
        buf_init(&p.path, PUBLISH_PATH_MAX);
        r = fs->up.put_blocks(fs->up.ud, publish_source, &p, &p.root);
        buf_done(&p.path);
        if (r < 0)
                return r;
        /* the directory's user.prsm.cid from now on, unless something changed meanwhile */
        if (S_ISDIR(a.mode) && index_set_dir_cid(fs->idx, a.ino, &p.root, since) < 0)
                log_warning("publish of '%s': cannot record its CID", p.root_path);
        *ret = p.root;
        if (ret_skipped)
                *ret_skipped = p.skipped;
        return 0;
}
