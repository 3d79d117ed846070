/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Provenance records of the file system's own content operations (docs/prsm.md): an upload's
 * commit (create or modify), a rename, a delete. Each is noted after the index transaction
 * that made it true committed, as an event the prsm module queues; nothing here waits for a
 * record to be written. Paths come from the index (a few row reads), so these run on the
 * thread of the operation but never under an fs lock. Links and publishes are noted by the
 * control commands that make them.
 */
#define LOG_MODULE "fs"
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "prsmfs/index.h"
#include "prsmfs/log.h"

#include "fs_internal.h"

void fs_set_prsm(struct fs *fs, struct prsm *p)
{
        fs->prsm = p;
}

/* dir's path joined with name ("/" + name at the root). */
static int entry_path(struct fs *fs, uint64_t dir, const char *name, char *buf, size_t size)
{
        size_t len;
        int r;

        r = index_path(fs->idx, dir, buf, size);
        if (r < 0)
                return r;
        len = strlen(buf);
        if (len == 1)
                len = 0; /* the root's "/" */
        if (len + 1 + strlen(name) + 1 > size)
                return -ENAMETOOLONG;
        buf[len] = '/';
        memcpy(buf + len + 1, name, strlen(name) + 1);
        return 0;
}

void fs_prov_commit(struct fs *fs, uint64_t ino, const struct index_attr *before,
                    const struct cid *root, uint64_t size, int fd)
{
        char path[PATH_MAX];
        bool had = before && before->has_cid;
        int r;

        if (!prsm_has_provenance(fs->prsm)) {
                if (fd >= 0)
                        close(fd);
                return;
        }
        r = index_path(fs->idx, ino, path, sizeof(path));
        if (r < 0) {
                /* unlinked before its upload committed: no path holds this content */
                if (fd >= 0)
                        close(fd);
                return;
        }
        prsm_note(fs->prsm, &(struct prsm_event){ .op = had ? PRSM_OP_MODIFY : PRSM_OP_CREATE,
                                                  .path = path,
                                                  .old_cid = had ? &before->cid : NULL,
                                                  .cid = root,
                                                  .size = size,
                                                  .fd = fd });
}

void fs_prov_entry(struct fs *fs, uint64_t oldparent, const char *oldname, uint64_t parent,
                   const char *name, const struct index_attr *a)
{
        char oldp[PATH_MAX], newp[PATH_MAX];
        const struct cid *cid = a->has_cid && !a->staged ? &a->cid : NULL;

        if (!prsm_has_provenance(fs->prsm) ||
            entry_path(fs, oldparent, oldname, oldp, sizeof(oldp)) < 0)
                return;
        if (parent && entry_path(fs, parent, name, newp, sizeof(newp)) < 0)
                return;
        prsm_note(fs->prsm, &(struct prsm_event){ .op = parent ? PRSM_OP_RENAME : PRSM_OP_DELETE,
                                                  .path = parent ? newp : oldp,
                                                  .old_path = parent ? oldp : NULL,
                                                  .old_cid = cid,
                                                  .cid = parent ? cid : NULL,
                                                  .size = a->size,
                                                  .fd = -1 });
}

int fs_prov_xattr(struct fs *fs, uint64_t ino, bool creator, char **ret, size_t *ret_len)
{
        char path[PATH_MAX];
        struct index_attr a;
        char *rec = NULL;
        json_t *o;
        int r;

        if (!fs->prsm)
                return -ENODATA;
        r = index_getattr(fs->idx, ino, &a);
        if (r < 0)
                return r;
        /* the latest record of this path, else of its content (a CID recorded elsewhere) */
        if (index_path(fs->idx, ino, path, sizeof(path)) < 0 ||
            index_prov_latest(fs->idx, NULL, path, &rec) < 0) {
                if (!a.has_cid || index_prov_latest(fs->idx, &a.cid, NULL, &rec) < 0)
                        return -ENODATA;
        }
        if (!creator) {
                *ret = rec;
                *ret_len = strlen(rec);
                return 0;
        }
        o = json_loads(rec, 0, NULL);
        free(rec);
        r = -ENODATA;
        if (json_string_value(json_object_get(o, "creator"))) {
                *ret = strdup(json_string_value(json_object_get(o, "creator")));
                r = *ret ? 0 : -ENOMEM;
                if (*ret)
                        *ret_len = strlen(*ret);
        }
        json_decref(o);
        return r;
}
