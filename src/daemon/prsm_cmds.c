/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon's PRSM commands (docs/prsm.md). Everything here runs at start-up, at shutdown
 * or on the control thread, never on a FUSE worker.
 *
 * provenance: the records of one path, newest first, following renames back to the path the
 * content had before; each with the record before it in the log ("prev"), so that prsmctl
 * checks every signature and every parent hash itself rather than trusting the daemon.
 * rewards: the ledger's sums per CID, each CID's creator from its latest record, summed per
 * creator; the instance's own creator's content is reported apart and owes nothing.
 */
#define LOG_MODULE "daemon"
#include "prsm_cmds.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "prsmfs/cleanup.h"
#include "prsmfs/config.h"
#include "prsmfs/fs.h"
#include "prsmfs/index.h"
#include "prsmfs/io.h"
#include "prsmfs/log.h"
#include "prsmfs/upload.h"

#define LIST_PAGE   256
#define MAX_RECORDS (1u << 20) /* records a command reads from the log */

int daemon_prsm_init(struct daemon_prsm *dp, const struct config *cfg, struct index *idx)
{
        char path[PATH_MAX], err[PATH_MAX + 256];
        const char *key = cfg->identity_key;
        int r;

        *dp = (struct daemon_prsm){ .cfg = cfg, .idx = idx };
        if (!key) {
                if ((size_t)snprintf(path, sizeof(path), "%s/identity.key", cfg->state_dir) >=
                    sizeof(path)) {
                        fprintf(stderr, "prsmfs: state_dir path too long\n");
                        return -ENAMETOOLONG;
                }
                key = path;
        }
        /* the default key is made at first start; a configured one must exist */
        r = prsm_identity_load(key, !cfg->identity_key, err, sizeof(err), &dp->id);
        if (r < 0) {
                fprintf(stderr, "prsmfs: %s\n", err);
                return r;
        }
        if ((size_t)snprintf(dp->creator_id, sizeof(dp->creator_id), "%s",
                             cfg->creator_id ? cfg->creator_id : prsm_identity_key_id(dp->id)) >=
            sizeof(dp->creator_id)) {
                fprintf(stderr, "prsmfs: config 'creator_id' is longer than %zu bytes\n",
                        sizeof(dp->creator_id) - 1);
                return -E2BIG;
        }
        return 0;
}

int daemon_prsm_start(struct daemon_prsm *dp, struct fs *fs)
{
        int r;

        dp->fs = fs;
        r = prsm_new(&(struct prsm_config){ .idx = dp->idx,
                                            .id = dp->id,
                                            .creator_id = dp->creator_id,
                                            .provenance = dp->cfg->provenance_tracking,
                                            .ledger = dp->cfg->access_rewards,
                                            .flush_ms = 1000 },
                     &dp->prsm);
        if (r >= 0)
                fs_set_prsm(fs, dp->prsm);
        return r;
}

void daemon_prsm_stop(struct daemon_prsm *dp)
{
        if (!dp || !dp->prsm)
                return;
        if (dp->fs)
                fs_set_prsm(dp->fs, NULL);
        prsm_free(dp->prsm);
        dp->prsm = NULL;
}

void daemon_prsm_done(struct daemon_prsm *dp)
{
        daemon_prsm_stop(dp);
        prsm_identity_free(dp->id);
        dp->id = NULL;
}

int daemon_prsm_check_link(const char *cid, json_t **reply)
{
        /* PRSM's client made these up when an upload failed: they name no content, and a
         * fetch of one would only time out */
        const char *prefix = prsm_cid_placeholder(cid);
        char msg[256];

        if (!prefix)
                return 0;
        (void)snprintf(msg, sizeof(msg),
                       "'%.60s' is a placeholder CID (%s followed by hex digits) that PRSM made "
                       "up, not content: link the CID the upload returned",
                       cid, prefix);
        *reply = json_pack("{s:b, s:s}", "ok", 0, "error", msg);
        return -EINVAL;
}

int daemon_prsm_link_format(json_t *request, enum fs_link_format *ret, json_t **reply)
{
        static const char *const names[_FS_LINK_FORMAT_MAX] = {
                [FS_LINK_AUTO] = "auto", [FS_LINK_PRSM] = "prsm", [FS_LINK_RAW] = "raw"
        };
        json_t *f = json_object_get(request, "format");

        *ret = FS_LINK_AUTO;
        if (!f)
                return 0;
        for (size_t i = 0; i < _FS_LINK_FORMAT_MAX; i++)
                if (json_is_string(f) && strcmp(json_string_value(f), names[i]) == 0) {
                        *ret = (enum fs_link_format)i;
                        return 0;
                }
        *reply = json_pack("{s:b, s:s}", "ok", 0, "error", "format is auto, prsm or raw");
        return -EINVAL;
}

void daemon_prsm_note_link(struct daemon_prsm *dp, json_t *request, const char *path,
                           const struct cid *cid, uint64_t size)
{
        char abs[PATH_MAX];

        (void)snprintf(abs, sizeof(abs), "%s%s", path[0] == '/' ? "" : "/", path);
        prsm_note(dp->prsm, &(struct prsm_event){ .op = PRSM_OP_LINK,
                                                  .path = abs,
                                                  .cid = cid,
                                                  .size = size,
                                                  .fd = -1,
                                                  .creator = json_string_value(
                                                          json_object_get(request, "creator")) });
}

void daemon_prsm_note_publish(struct daemon_prsm *dp, const char *path, const struct cid *root)
{
        char abs[PATH_MAX];

        (void)snprintf(abs, sizeof(abs), "%s%s", path[0] == '/' ? "" : "/", path);
        prsm_note(dp->prsm, &(struct prsm_event){ .op = PRSM_OP_PUBLISH,
                                                  .path = abs,
                                                  .cid = root,
                                                  .creator = dp->creator_id,
                                                  .fd = -1 });
}

json_t *daemon_prsm_stats(struct daemon_prsm *dp)
{
        struct prsm_stats st = { 0 };

        if (dp->prsm)
                prsm_get_stats(dp->prsm, &st);
        return json_pack("{s:s, s:s, s:b, s:b, s:I, s:I, s:I, s:I}", "creator_id", dp->creator_id,
                         "key", dp->id ? prsm_identity_key_id(dp->id) : "", "provenance",
                         dp->cfg->provenance_tracking, "access_rewards", dp->cfg->access_rewards,
                         "records_written", (json_int_t)st.records_written, "record_errors",
                         (json_int_t)st.record_errors, "accesses_ledgered",
                         (json_int_t)st.accesses_ledgered, "ledger_flushes",
                         (json_int_t)st.ledger_flushes);
}

/* ---- reading the log ---- */

struct log {
        char **texts;
        uint64_t *seqs;
        size_t n, cap;
};

static void log_done(struct log *l)
{
        for (size_t i = 0; i < l->n; i++)
                free(l->texts[i]);
        free(l->texts);
        free(l->seqs);
        *l = (struct log){ 0 };
}

static int log_add(uint64_t seq, const char *record, void *userdata)
{
        struct log *l = userdata;

        if (l->n == l->cap) {
                size_t c = l->cap ? l->cap * 2 : 64;
                char **t = reallocarray(l->texts, c, sizeof(*t));
                uint64_t *s;

                if (!t)
                        return -ENOMEM;
                l->texts = t;
                s = reallocarray(l->seqs, c, sizeof(*s));
                if (!s)
                        return -ENOMEM;
                l->seqs = s;
                l->cap = c;
        }
        l->texts[l->n] = strdup(record);
        if (!l->texts[l->n])
                return -ENOMEM;
        l->seqs[l->n++] = seq;
        return 0;
}

/* The whole log, in seq order, after what is queued was written. */
static int log_load(struct daemon_prsm *dp, struct log *l)
{
        uint64_t after = 0;
        int r;

        r = prsm_flush(dp->prsm);
        if (r < 0)
                log_warning("provenance: records still queued could not be written: %s",
                            strerror(-r));
        for (;;) {
                r = index_prov_list(dp->idx, after, LIST_PAGE, log_add, l);
                if (r < 0)
                        return r;
                if (r < LIST_PAGE)
                        return 0;
                if (l->n >= MAX_RECORDS)
                        return -E2BIG;
                after = l->seqs[l->n - 1];
        }
}

static const char *field(json_t *o, const char *key)
{
        return json_string_value(json_object_get(o, key));
}

static const char *request_path(json_t *request, char *buf, size_t size)
{
        const char *p = json_string_value(json_object_get(request, "path"));

        if (!p)
                return NULL;
        (void)snprintf(buf, size, "%s%s", p[0] == '/' ? "" : "/", p);
        /* "/a/" names "/a"; the root stays "/" */
        for (size_t len = strlen(buf); len > 1 && buf[len - 1] == '/'; len--)
                buf[len - 1] = '\0';
        return buf;
}

int daemon_prsm_cmd_provenance(json_t *request, json_t **reply, struct daemon_prsm *dp)
{
        char path_buf[PATH_MAX], cur[PATH_MAX];
        const char *path = request_path(request, path_buf, sizeof(path_buf));
        struct log l = { 0 };
        json_t *chain;
        int r;

        if (!path)
                return -EINVAL;
        r = log_load(dp, &l);
        chain = r >= 0 ? json_array() : NULL;
        if (r >= 0 && !chain)
                r = -ENOMEM;
        (void)snprintf(cur, sizeof(cur), "%s", path);
        /* newest first; a rename to cur continues with the path it came from */
        for (size_t i = l.n; r >= 0 && i-- > 0;) {
                json_t *o = json_loads(l.texts[i], 0, NULL);
                const char *p = field(o, "path"), *op = field(o, "op"),
                           *from = field(o, "old_path");
                bool match = !o || (p && strcmp(p, cur) == 0);

                /* a record that is no JSON any more is shown (and fails to verify) */
                if (match && json_array_append_new(
                                     chain, json_pack("{s:I, s:s, s:s?}", "seq",
                                                      (json_int_t)l.seqs[i], "record", l.texts[i],
                                                      "prev", i > 0 ? l.texts[i - 1] : NULL)) < 0)
                        r = -ENOMEM;
                if (match && o && op && strcmp(op, "rename") == 0 && from)
                        (void)snprintf(cur, sizeof(cur), "%s", from);
                json_decref(o);
        }
        if (r >= 0) {
                *reply = json_pack("{s:s, s:s, s:s, s:o, s:I}", "path", path, "key",
                                   prsm_identity_key_id(dp->id), "creator_id", dp->creator_id,
                                   "chain", chain, "first_seq", (json_int_t)(l.n ? l.seqs[0] : 0));
                chain = NULL;
                r = *reply ? 0 : -ENOMEM;
        }
        json_decref(chain);
        log_done(&l);
        return r;
}

/* A signed document of the whole log (or of one path's chain): docs/prsm.md, "Export". */
int daemon_prsm_cmd_export(json_t *request, json_t **reply, struct daemon_prsm *dp)
{
        char path_buf[PATH_MAX];
        const char *path = request_path(request, path_buf, sizeof(path_buf));
        struct log l = { 0 };
        char *text = NULL, *signed_doc = NULL;
        json_t *records = json_array(), *doc = NULL;
        struct timespec ts;
        int r;

        r = records ? log_load(dp, &l) : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < l.n; i++) {
                json_t *o = json_loads(l.texts[i], 0, NULL);

                /* a record that is no JSON any more goes as its text: it fails verification */
                if (!o)
                        o = json_string(l.texts[i]);
                if (path && json_is_object(o) &&
                    (!field(o, "path") ||
                     (strcmp(field(o, "path"), path) != 0 &&
                      (!field(o, "old_path") || strcmp(field(o, "old_path"), path) != 0)))) {
                        json_decref(o);
                        continue;
                }
                if (json_array_append_new(records, o) < 0)
                        r = -ENOMEM;
        }
        clock_gettime(CLOCK_REALTIME, &ts);
        if (r >= 0) {
                doc = json_pack("{s:s, s:s, s:o, s:I, s:O}", "format", "prsm-provenance/1",
                                "creator_id", dp->creator_id, "path",
                                path ? json_string(path) : json_null(), "exported_ns",
                                (json_int_t)ts.tv_sec * 1000000000 + ts.tv_nsec, "records",
                                records);
                text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
                r = text ? prsm_record_sign(dp->id, text, &signed_doc) : -ENOMEM;
        }
        if (r >= 0) {
                *reply = json_pack("{s:s, s:I}", "document", signed_doc, "records",
                                   (json_int_t)json_array_size(records));
                r = *reply ? 0 : -ENOMEM;
        }
        free(text);
        free(signed_doc);
        json_decref(doc);
        json_decref(records);
        log_done(&l);
        return r;
}

int daemon_prsm_publish_export(struct upload *u, json_t *reply)
{
        const char *doc = json_string_value(json_object_get(reply, "document"));
        _cleanup_close_ int fd = -1;
        char s[CID_MAX_STR];
        struct cid root;
        uint64_t size;
        int r;

        if (!u)
                return -EHOSTUNREACH;
        if (!doc)
                return -EINVAL;
        /* upload_fd reads a file: the document goes through an anonymous one */
        fd = memfd_create("prsm-provenance", MFD_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = io_write_all(fd, doc, strlen(doc));
        if (r >= 0)
                r = io_write_all(fd, "\n", 1);
        if (r >= 0)
                r = upload_fd(u, fd, &root, &size);
        if (r < 0)
                return log_error_errno(r, "cannot publish the provenance export");
        log_notice("provenance export published as %s (%" PRIu64 " bytes)", cid_to_string(&root, s),
                   size);
        return json_object_set_new(reply, "cid", json_string(s)) < 0 ? -ENOMEM : 0;
}

/* ---- rewards ---- */

struct creator_sum {
        char *creator;
        uint64_t accesses, bytes, cids;
};

static struct creator_sum *creator_find(struct creator_sum **sums, size_t *n, const char *c)
{
        struct creator_sum *p;

        for (size_t i = 0; i < *n; i++)
                if (strcmp((*sums)[i].creator, c) == 0)
                        return &(*sums)[i];
        p = reallocarray(*sums, *n + 1, sizeof(*p));
        if (!p)
                return NULL;
        *sums = p;
        p[*n] = (struct creator_sum){ .creator = strdup(c) };
        if (!p[*n].creator)
                return NULL;
        return &p[(*n)++];
}

static char *creator_of_cid(struct daemon_prsm *dp, const struct cid *cid)
{
        char *rec = NULL, *ret = NULL;
        json_t *o;

        if (index_prov_latest(dp->idx, cid, NULL, &rec) < 0)
                return strdup("unknown");
        o = json_loads(rec, 0, NULL);
        ret = strdup(field(o, "creator") ? field(o, "creator") : "unknown");
        json_decref(o);
        free(rec);
        return ret;
}

int daemon_prsm_cmd_rewards(json_t *request, json_t **reply, struct daemon_prsm *dp)
{
        json_t *since_j = json_object_get(request, "since"), *list = NULL;
        uint64_t rate = dp->cfg->royalty_rate_milli, own_acc = 0, own_bytes = 0, total_milli = 0;
        struct index_access *rows = NULL;
        struct creator_sum *sums = NULL;
        int64_t since = 0;
        size_t n = 0, n_sums = 0;
        int r;

        if (since_j && !json_is_integer(since_j))
                return -EINVAL;
        since = since_j ? (int64_t)json_integer_value(since_j) : 0;
        r = prsm_flush(dp->prsm);
        if (r < 0)
                log_warning("rewards: counts not flushed yet: %s", strerror(-r));
        r = index_ledger_sum(dp->idx, since, &rows, &n);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                char *c = creator_of_cid(dp, &rows[i].cid);
                struct creator_sum *s;

                if (!c) {
                        r = -ENOMEM;
                        break;
                }
                if (strcmp(c, dp->creator_id) == 0) {
                        own_acc += rows[i].opens; /* the instance's own content: no royalty */
                        own_bytes += rows[i].bytes;
                        free(c);
                        continue;
                }
                s = creator_find(&sums, &n_sums, c);
                free(c);
                if (!s) {
                        r = -ENOMEM;
                        break;
                }
                s->accesses += rows[i].opens;
                s->bytes += rows[i].bytes;
                s->cids++;
        }
        list = r >= 0 ? json_array() : NULL;
        for (size_t i = 0; list && i < n_sums; i++) {
                bool payable = strcmp(sums[i].creator, "unknown") != 0;
                uint64_t milli = payable ? sums[i].accesses * rate : 0;

                total_milli += milli;
                if (json_array_append_new(list, json_pack("{s:s, s:I, s:I, s:I, s:I, s:f}",
                                                          "creator", sums[i].creator, "accesses",
                                                          (json_int_t)sums[i].accesses, "bytes",
                                                          (json_int_t)sums[i].bytes, "cids",
                                                          (json_int_t)sums[i].cids,
                                                          "ftns_owed_milli", (json_int_t)milli,
                                                          "ftns_owed", milli / 1000.0)) < 0)
                        r = -ENOMEM;
        }
        if (r >= 0 && list) {
                *reply = json_pack("{s:s, s:f, s:I, s:I, s:o, s:{s:I, s:I}, s:I, s:f}",
                                   "creator_id", dp->creator_id, "royalty_rate", rate / 1000.0,
                                   "royalty_rate_milli", (json_int_t)rate, "since",
                                   (json_int_t)since, "creators", list, "own", "accesses",
                                   (json_int_t)own_acc, "bytes", (json_int_t)own_bytes,
                                   "total_ftns_owed_milli", (json_int_t)total_milli,
                                   "total_ftns_owed", total_milli / 1000.0);
                list = NULL;
                r = *reply ? 0 : -ENOMEM;
        } else if (r >= 0)
                r = -ENOMEM;
        json_decref(list);
        for (size_t i = 0; i < n_sums; i++)
                free(sums[i].creator);
        free(sums);
        free(rows);
        return r;
}
