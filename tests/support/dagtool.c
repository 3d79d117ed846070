/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dagtool: computes UnixFS CIDs locally, the way `ipfs add` would, for parity tests.
 *   dagtool file [OPTIONS] < data       prints the root CID of the file
 *   dagtool dir [OPTIONS] PATH          prints the root CID of the tree (`add -r PATH`)
 *   dagtool hamt [OPTIONS] N            prints the root CID of a directory of N entries named
 *                                       file-0000000.. (7 digits or more), entry i being a
 *                                       file of "<i % K>\n" (--leaves K, default 1): big
 *                                       HAMTs without N files on disk
 *   dagtool cat CAR                     writes the file under the CAR's root to stdout, every
 *                                       block verified (what `dag export` of a file gives)
 * OPTIONS: --profile default|legacy, --chunk N, --cid-version 0|1, --raw-leaves 0|1,
 *          --max-links N (file nodes), --dir-max-links N (shard above N entries),
 *          --car OUT (also write every block, root first in the header, as a CAR v1),
 *          --leaves K (hamt: distinct files, 1..N).
 * As in Kubo, --cid-version 1 turns raw leaves on unless --raw-leaves says otherwise.
 * dir follows `add -r`: hidden entries skipped, empty directories kept, symlinks stored as
 * symlink nodes, files with the profile's file parameters, other file types refused.
 * Output: the CID (CIDv0 "Qm...", CIDv1 base32); --verbose adds "size N tsize N" on stderr.
 */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "prsmfs/parse.h"
#include "prsmfs/unixfs.h"

/* Blocks go to a temporary file while the DAG is built (the CAR header names the root, known
 * only at the end); without --car they are dropped. */
static FILE *car_blocks;

static int ignore_block(const struct cid *cid, const uint8_t *p, size_t len, void *ud)
{
        struct buf b;
        int r;

        (void)ud;
        if (!car_blocks)
                return 0;
        buf_init(&b, CID_MAX_BLOCK + 2 * CID_MAX_BIN);
        r = unixfs_car_write_block(cid, p, len, &b);
        if (r >= 0 && fwrite(b.p, 1, b.len, car_blocks) != b.len)
                r = -EIO;
        buf_done(&b);
        return r;
}

static int write_car(const char *path, const struct cid *root)
{
        static uint8_t chunk[1 << 16];
        struct buf h;
        FILE *out = fopen(path, "we");
        size_t n;
        int r;

        if (!out)
                return -errno;
        buf_init(&h, 1024);
        r = unixfs_car_write_header(root, &h);
        if (r >= 0 && fwrite(h.p, 1, h.len, out) != h.len)
                r = -EIO;
        rewind(car_blocks);
        while (r >= 0 && (n = fread(chunk, 1, sizeof(chunk), car_blocks)) > 0)
                if (fwrite(chunk, 1, n, out) != n)
                        r = -EIO;
        if (r >= 0 && ferror(car_blocks))
                r = -EIO;
        if (fclose(out) != 0 && r >= 0)
                r = -EIO;
        buf_done(&h);
        return r;
}

static int build_fd(const struct unixfs_params *p, int fd, struct cid *root, uint64_t *size,
                    uint64_t *tsize)
{
        static uint8_t buf[1 << 20];
        struct unixfs_builder *b;
        int r;

        r = unixfs_builder_new(p, ignore_block, NULL, &b);
        if (r < 0)
                return r;
        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));

                if (n < 0) {
                        r = -errno;
                        break;
                }
                if (n == 0) {
                        r = unixfs_builder_finish(b, root, size, tsize);
                        break;
                }
                r = unixfs_builder_write(b, buf, (size_t)n);
                if (r < 0)
                        break;
        }
        unixfs_builder_free(b);
        return r;
}

static int symlink_node(const struct unixfs_dir_params *dp, const char *target, struct cid *ret,
                        uint64_t *tsize)
{
        struct unixfs_data d = { .type = UNIXFS_SYMLINK,
                                 .data = { .p = (const uint8_t *)target, .len = strlen(target) },
                                 .has_data = true };
        struct unixfs_pb_node n = { .has_data = true };
        struct buf db, bb;
        int r;

        buf_init(&db, CID_MAX_BLOCK);
        buf_init(&bb, CID_MAX_BLOCK);
        r = unixfs_data_encode(&d, &db);
        if (r >= 0) {
                n.data = buf_view(&db);
                r = unixfs_pb_encode(&n, &bb);
        }
        if (r >= 0)
                r = cid_compute(dp->cid_version, CID_CODEC_DAG_PB, CID_MH_SHA2_256, bb.p, bb.len,
                                ret);
        if (r >= 0)
                r = ignore_block(ret, bb.p, bb.len, NULL);
        if (r >= 0)
                *tsize = bb.len;
        buf_done(&db);
        buf_done(&bb);
        return r;
}

static int build_dir(const struct unixfs_params *fp, const struct unixfs_dir_params *dp,
                     const char *path, struct cid *ret, uint64_t *tsize)
{
        struct unixfs_dirent *e = NULL;
        char **names = NULL;
        size_t n = 0, cap = 0;
        struct dirent *de;
        DIR *d = opendir(path);
        int r = 0;

        if (!d)
                return -errno;
        while ((de = readdir(d)) && r >= 0) {
                char full[PATH_MAX];
                struct stat st;

                if (de->d_name[0] == '.')
                        continue; /* add skips hidden entries */
                if (n == cap) {
                        struct unixfs_dirent *ne = reallocarray(e, cap ? cap * 2 : 64, sizeof(*e));
                        char **nn;

                        if (ne)
                                e = ne;
                        nn = ne ? reallocarray(names, cap ? cap * 2 : 64, sizeof(*names)) : NULL;
                        if (!nn) {
                                r = -ENOMEM;
                                break;
                        }
                        names = nn;
                        cap = cap ? cap * 2 : 64;
                }
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        r = -ENOMEM;
                        break;
                }
                e[n] = (struct unixfs_dirent){ .name = names[n], .name_len = strlen(names[n]) };
                n++;
                if ((size_t)snprintf(full, sizeof(full), "%s/%s", path, de->d_name) >= sizeof(full))
                        r = -ENAMETOOLONG;
                else if (lstat(full, &st) < 0)
                        r = -errno;
                else if (S_ISLNK(st.st_mode)) {
                        char target[PATH_MAX];
                        ssize_t len = readlink(full, target, sizeof(target) - 1);

                        if (len < 0)
                                r = -errno;
                        else {
                                target[len] = '\0';
                                r = symlink_node(dp, target, &e[n - 1].cid, &e[n - 1].tsize);
                        }
                } else if (S_ISDIR(st.st_mode))
                        r = build_dir(fp, dp, full, &e[n - 1].cid, &e[n - 1].tsize);
                else if (S_ISREG(st.st_mode)) {
                        int fd = open(full, O_RDONLY | O_CLOEXEC);

                        if (fd < 0)
                                r = -errno;
                        else {
                                r = build_fd(fp, fd, &e[n - 1].cid, NULL, &e[n - 1].tsize);
                                close(fd);
                        }
                } else
                        r = -EINVAL; /* fifo, socket, device: `add` refuses them too */
        }
        closedir(d);
        if (r >= 0)
                r = unixfs_dir_build(dp, e, n, ignore_block, NULL, ret, tsize);
        for (size_t i = 0; i < n; i++)
                free(names[i]);
        free(names);
        free(e);
        return r;
}

/* A directory of n synthetic entries (names in order, k distinct small files). */
static int build_synthetic(const struct unixfs_params *fp, const struct unixfs_dir_params *dp,
                           size_t n, size_t k, struct cid *ret, uint64_t *tsize)
{
        struct unixfs_dirent *e = calloc(n ? n : 1, sizeof(*e));
        struct cid *leaves = calloc(k, sizeof(*leaves));
        uint64_t *leaf_tsize = calloc(k, sizeof(*leaf_tsize));
        char *names = calloc(n ? n : 1, 32);
        int r = 0;

        if (!e || !leaves || !leaf_tsize || !names)
                r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < k; i++) {
                struct unixfs_builder *b;
                char data[32];
                int len = snprintf(data, sizeof(data), "%zu\n", i);

                r = unixfs_builder_new(fp, ignore_block, NULL, &b);
                if (r < 0)
                        break;
                r = unixfs_builder_write(b, data, (size_t)len);
                if (r >= 0)
                        r = unixfs_builder_finish(b, &leaves[i], NULL, &leaf_tsize[i]);
                unixfs_builder_free(b);
        }
        for (size_t i = 0; r >= 0 && i < n; i++) {
                char *name = names + 32 * i;

                (void)snprintf(name, 32, "file-%07zu", i);
                e[i] = (struct unixfs_dirent){ .name = name,
                                               .name_len = strlen(name),
                                               .cid = leaves[i % k],
                                               .tsize = leaf_tsize[i % k] };
        }
        if (r >= 0)
                r = unixfs_dir_build(dp, e, n, ignore_block, NULL, ret, tsize);
        free(names);
        free(leaf_tsize);
        free(leaves);
        free(e);
        return r;
}

/* ---- cat: a CAR's file through the lazy layout, as the read path uses it ---- */

struct car_block {
        struct cid cid;
        struct bytes_view b;
};

struct car_set {
        struct car_block *v;
        size_t n;
};

static int car_block_cmp(const void *a, const void *b)
{
        return cid_compare(&((const struct car_block *)a)->cid,
                           &((const struct car_block *)b)->cid);
}

static const struct bytes_view *car_find(const struct car_set *s, const struct cid *cid)
{
        struct car_block key = { .cid = *cid }, *hit;

        hit = bsearch(&key, s->v, s->n, sizeof(*s->v), car_block_cmp);
        return hit ? &hit->b : NULL;
}

static int read_all_fd(int fd, uint8_t **ret, size_t *ret_len)
{
        struct buf b;
        uint8_t tmp[1 << 16];
        ssize_t n;
        int r = 0;

        buf_init(&b, (size_t)16 << 30);
        while (r >= 0 && (n = read(fd, tmp, sizeof(tmp))) != 0)
                r = n < 0 ? -errno : buf_append(&b, tmp, (size_t)n);
        if (r < 0) {
                buf_done(&b);
                return r;
        }
        *ret = buf_steal(&b, ret_len);
        return 0;
}

static int cat_car(const char *path)
{
        struct car_set set = { 0 };
        struct unixfs_car_reader rd;
        struct unixfs_layout l = { 0 };
        const struct bytes_view *root;
        uint8_t *car = NULL;
        size_t len = 0, cap = 0;
        struct bytes_view blk, v;
        struct cid cid;
        int fd, r;

        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = read_all_fd(fd, &car, &len);
        close(fd);
        if (r >= 0)
                r = unixfs_car_init(&rd, car, len);
        while (r >= 0 && (r = unixfs_car_next(&rd, &cid, &blk)) == 1) {
                r = cid_verify(&cid, blk.p, blk.len);
                if (r >= 0 && set.n == cap) {
                        struct car_block *nv = reallocarray(set.v, cap ? cap * 2 : 64, sizeof(*nv));

                        if (!nv)
                                r = -ENOMEM;
                        else {
                                set.v = nv;
                                cap = cap ? cap * 2 : 64;
                        }
                }
                if (r >= 0)
                        set.v[set.n++] = (struct car_block){ .cid = cid, .b = blk };
        }
        if (r == -EAGAIN) {
                fprintf(stderr, "dagtool: %s: truncated CAR\n", path);
                r = -EBADMSG; /* the whole file was read: it ends inside a section */
        }
        if (r >= 0 && rd.n_roots != 1)
                r = -EINVAL;
        if (r >= 0 && set.n)
                qsort(set.v, set.n, sizeof(*set.v), car_block_cmp);
        if (r >= 0) {
                root = car_find(&set, &rd.roots[0]);
                if (!root && !cid_is_identity(&rd.roots[0]))
                        r = -ENOENT;
                else
                        r = unixfs_layout_open(&rd.roots[0], root ? root->p : NULL,
                                               root ? root->len : 0, &l);
        }
        for (uint64_t off = 0; r >= 0 && off < l.size;) {
                size_t i = unixfs_layout_find(&l, off);
                const struct bytes_view *b = car_find(&set, &l.leaves[i].cid);

                if (!b && !cid_is_identity(&l.leaves[i].cid)) {
                        r = -ENOENT;
                        break;
                }
                if (l.leaves[i].is_pending) {
                        r = unixfs_layout_resolve(&l, i, b ? b->p : NULL, b ? b->len : 0);
                        continue;
                }
                r = unixfs_leaf_slice(&l.leaves[i], b ? b->p : NULL, b ? b->len : 0, &v);
                if (r >= 0 && fwrite(v.p, 1, v.len, stdout) != v.len)
                        r = -EIO;
                off += v.len;
        }
        unixfs_layout_done(&l);
        free(set.v);
        free(car);
        if (fflush(stdout) != 0 && r >= 0)
                r = -EIO;
        return r < 0 ? r : 0;
}

int main(int argc, char *argv[])
{
        static const struct option opts[] = {
                { "profile", required_argument, NULL, 'p' },
                { "chunk", required_argument, NULL, 'c' },
                { "cid-version", required_argument, NULL, 'v' },
                { "raw-leaves", required_argument, NULL, 'r' },
                { "max-links", required_argument, NULL, 'l' },
                { "dir-max-links", required_argument, NULL, 'd' },
                { "car", required_argument, NULL, 'o' },
                { "leaves", required_argument, NULL, 'k' },
                { "verbose", no_argument, NULL, 'V' },
                { 0 },
        };
        enum unixfs_profile prof = UNIXFS_PROFILE_DEFAULT;
        bool set_c = false, set_v = false, set_r = false, set_l = false, verbose = false;
        uint64_t chunk = 0, ver = 0, raw = 0, links = 0, dir_links = 0, v, size = 0, tsize = 0;
        uint64_t n_entries = 0, n_leaves = 1;
        const char *car = NULL;
        struct unixfs_dir_params dp;
        struct unixfs_params p;
        char out[CID_MAX_STR];
        struct cid root;
        int c, r;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                const char *a = optarg;

                switch (c) {
                case 'p':
                        if (strcmp(a, "legacy") == 0)
                                prof = UNIXFS_PROFILE_LEGACY;
                        else if (strcmp(a, "default") != 0)
                                goto usage;
                        break;
                case 'o':
                        car = a;
                        break;
                case 'V':
                        verbose = true;
                        break;
                case 'c':
                case 'v':
                case 'r':
                case 'l':
                case 'd':
                case 'k':
                        if (parse_u64(a, &v) < 0)
                                goto usage;
                        if (c == 'c') {
                                chunk = v;
                                set_c = true;
                        } else if (c == 'v') {
                                ver = v;
                                set_v = true;
                        } else if (c == 'r') {
                                raw = v;
                                set_r = true;
                        } else if (c == 'l') {
                                links = v;
                                set_l = true;
                        } else if (c == 'k')
                                n_leaves = v;
                        else
                                dir_links = v;
                        break;
                default:
                        goto usage;
                }
        }
        if (optind >= argc)
                goto usage;
        unixfs_params_profile(prof, &p);
        unixfs_dir_params_profile(prof, &dp);
        if (set_c)
                p.chunk_size = (size_t)chunk;
        if (set_v) {
                if (ver > 1)
                        goto usage;
                p.cid_version = dp.cid_version = (unsigned)ver;
                if (ver == 1)
                        p.raw_leaves = true; /* Kubo: cid-version=1 implies raw leaves */
        }
        if (set_r)
                p.raw_leaves = raw != 0;
        if (set_l)
                p.max_links = (size_t)links;
        dp.max_links = (size_t)dir_links;
        if (car) {
                car_blocks = tmpfile();
                if (!car_blocks) {
                        perror("dagtool: tmpfile");
                        return 1;
                }
        }
        if (strcmp(argv[optind], "cat") == 0 && optind + 2 == argc) {
                r = cat_car(argv[optind + 1]);
                if (r < 0)
                        fprintf(stderr, "dagtool: %s: %s\n", argv[optind + 1], strerror(-r));
                return r < 0 ? 1 : 0;
        }
        if (strcmp(argv[optind], "file") == 0 && optind + 1 == argc)
                r = build_fd(&p, STDIN_FILENO, &root, &size, &tsize);
        else if (strcmp(argv[optind], "dir") == 0 && optind + 2 == argc)
                r = build_dir(&p, &dp, argv[optind + 1], &root, &tsize);
        else if (strcmp(argv[optind], "hamt") == 0 && optind + 2 == argc &&
                 parse_u64(argv[optind + 1], &n_entries) >= 0 && n_leaves >= 1 &&
                 n_entries <= 100000000 && n_leaves <= n_entries)
                r = build_synthetic(&p, &dp, (size_t)n_entries, (size_t)n_leaves, &root, &tsize);
        else
                goto usage;
        if (r >= 0 && car)
                r = write_car(car, &root);
        if (car_blocks)
                fclose(car_blocks);
        if (r < 0) {
                fprintf(stderr, "dagtool: %s\n", strerror(-r));
                return 1;
        }
        printf("%s\n", cid_to_string(&root, out));
        if (verbose)
                fprintf(stderr, "size %llu tsize %llu\n", (unsigned long long)size,
                        (unsigned long long)tsize);
        return 0;
usage:
        fprintf(stderr, "usage: dagtool file [OPTIONS] < data\n"
                        "       dagtool dir [OPTIONS] PATH\n"
                        "       dagtool hamt [OPTIONS] [--leaves K] N\n"
                        "       dagtool cat CAR > data\n"
                        "options: --profile default|legacy --chunk N --cid-version 0|1 "
                        "--raw-leaves 0|1 --max-links N --dir-max-links N --car OUT --verbose\n");
        return 2;
}
