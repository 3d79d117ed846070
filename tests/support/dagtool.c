/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dagtool: computes UnixFS CIDs locally, the way `ipfs add` would, for parity tests.
 *   dagtool file [--profile default|legacy] [--chunk N] [--cid-version 0|1]
 *                [--raw-leaves 0|1] [--max-links N] < data       prints the root CID
 *   dagtool dir [--profile default|legacy] PATH                    prints the tree's CID
 * dir follows `add -r`: hidden entries skipped, empty directories kept, symlinks stored as
 * symlink nodes, files with the profile's file parameters.
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

static int ignore_block(const struct cid *cid, const uint8_t *p, size_t len, void *ud)
{
        (void)cid;
        (void)p;
        (void)len;
        (void)ud;
        return 0;
}

static int build_fd(const struct unixfs_params *p, int fd, struct cid *root, uint64_t *tsize)
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
                        r = unixfs_builder_finish(b, root, NULL, tsize);
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
                        cap = cap ? cap * 2 : 64;
                        e = reallocarray(e, cap, sizeof(*e));
                        names = reallocarray(names, cap, sizeof(*names));
                        if (!e || !names) {
                                r = -ENOMEM;
                                break;
                        }
                }
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        r = -ENOMEM;
                        break;
                }
                e[n] = (struct unixfs_dirent){ .name = names[n], .name_len = strlen(names[n]) };
                (void)snprintf(full, sizeof(full), "%s/%s", path, de->d_name);
                if (lstat(full, &st) < 0)
                        r = -errno;
                else if (S_ISLNK(st.st_mode)) {
                        char target[PATH_MAX];
                        ssize_t len = readlink(full, target, sizeof(target) - 1);

                        if (len < 0)
                                r = -errno;
                        else {
                                target[len] = '\0';
                                r = symlink_node(dp, target, &e[n].cid, &e[n].tsize);
                        }
                } else if (S_ISDIR(st.st_mode))
                        r = build_dir(fp, dp, full, &e[n].cid, &e[n].tsize);
                else {
                        int fd = open(full, O_RDONLY | O_CLOEXEC);

                        if (fd < 0)
                                r = -errno;
                        else {
                                r = build_fd(fp, fd, &e[n].cid, &e[n].tsize);
                                close(fd);
                        }
                }
                n++;
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

int main(int argc, char *argv[])
{
        static const struct option opts[] = {
                { "profile", required_argument, NULL, 'p' },
                { "chunk", required_argument, NULL, 'c' },
                { "cid-version", required_argument, NULL, 'v' },
                { "raw-leaves", required_argument, NULL, 'r' },
                { "max-links", required_argument, NULL, 'l' },
                { 0 },
        };
        enum unixfs_profile prof = UNIXFS_PROFILE_DEFAULT;
        struct unixfs_params p;
        struct unixfs_dir_params dp;
        char out[CID_MAX_STR];
        struct cid root;
        uint64_t v, tsize;
        int c, r;
        bool set_c = false, set_v = false, set_r = false, set_l = false;
        uint64_t chunk = 0, ver = 0, raw = 0, links = 0;

        while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
                const char *a = optarg;

                switch (c) {
                case 'p':
                        if (strcmp(a, "legacy") == 0)
                                prof = UNIXFS_PROFILE_LEGACY;
                        else if (strcmp(a, "default") != 0)
                                goto usage;
                        break;
                case 'c':
                case 'v':
                case 'r':
                case 'l':
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
                        } else {
                                links = v;
                                set_l = true;
                        }
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
        if (set_v)
                p.cid_version = dp.cid_version = (unsigned)ver;
        if (set_r)
                p.raw_leaves = raw != 0;
        if (set_l)
                p.max_links = (size_t)links;
        if (strcmp(argv[optind], "file") == 0)
                r = build_fd(&p, STDIN_FILENO, &root, &tsize);
        else if (strcmp(argv[optind], "dir") == 0 && optind + 1 < argc)
                r = build_dir(&p, &dp, argv[optind + 1], &root, &tsize);
        else
                goto usage;
        if (r < 0) {
                fprintf(stderr, "dagtool: %s\n", strerror(-r));
                return 1;
        }
        printf("%s\n", cid_to_string(&root, out));
        return 0;
usage:
        fprintf(stderr, "usage: dagtool file|dir [--profile default|legacy] [--chunk N] "
                        "[--cid-version 0|1] [--raw-leaves 0|1] [--max-links N] [PATH]\n");
        return 2;
}
