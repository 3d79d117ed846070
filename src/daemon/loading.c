/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The prefetch control commands (see loading.h): requests checked and turned into fs
 * prefetch jobs, progress turned into JSON.
 */
#define LOG_MODULE "control"
#include "loading.h"

#include <stdlib.h>
#include <string.h>

#define PREFETCH_MAX_PATHS 4096

int loading_cmd_prefetch(struct fs *fs, json_t *request, json_t **reply)
{
        json_t *paths = json_object_get(request, "paths"), *v;
        const char *mode = json_string_value(json_object_get(request, "mode"));
        enum fs_prefetch_mode m = _FS_PREFETCH_MODE_MAX;
        const char **list;
        uint64_t id = 0;
        size_t i, n;
        int r;

        for (int k = 0; mode && k < _FS_PREFETCH_MODE_MAX; k++)
                if (strcmp(mode, fs_prefetch_mode_name((enum fs_prefetch_mode)k)) == 0)
                        m = (enum fs_prefetch_mode)k;
        if (!mode)
                m = FS_PREFETCH_FETCH;
        n = json_array_size(paths);
        if (m == _FS_PREFETCH_MODE_MAX || !json_is_array(paths) || n == 0 ||
            n > PREFETCH_MAX_PATHS) {
                *reply = json_pack("{s:b, s:s}", "ok", 0, "error",
                                   "expected \"paths\": [1..4096 paths] and \"mode\": fetch, "
                                   "check or evict");
                return -EINVAL;
        }
        list = calloc(n, sizeof(*list));
        if (!list)
                return -ENOMEM;
        json_array_foreach(paths, i, v)
        {
                list[i] = json_string_value(v);
                if (!list[i]) {
                        free(list);
                        *reply = json_pack("{s:b, s:s}", "ok", 0, "error",
                                           "\"paths\" must hold strings");
                        return -EINVAL;
                }
        }
        r = fs_prefetch_start(fs, list, n, m, &id);
        free(list);
        if (r < 0)
                return r;
        *reply = json_pack("{s:I}", "id", (json_int_t)id);
        return *reply ? 0 : -ENOMEM;
}

static json_t *status_json(const struct fs_prefetch_status *st)
{
        json_t *errors = json_array(), *o;

        for (size_t i = 0; errors && i < st->n_errors; i++)
                if (json_array_append_new(errors,
                                          json_pack("{s:s, s:s}", "path", st->errors[i].path,
                                                    "error", strerror(-st->errors[i].error))) < 0) {
                        json_decref(errors);
                        errors = NULL;
                }
        if (!errors)
                return NULL;
        o = json_pack("{s:I, s:s, s:b, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "id",
                      (json_int_t)st->id, "mode", fs_prefetch_mode_name(st->mode), "done",
                      st->is_done, "walking", st->is_walking, "files", (json_int_t)st->files,
                      "files_done", (json_int_t)st->files_done, "bytes_total",
                      (json_int_t)st->bytes_total, "bytes_done", (json_int_t)st->bytes_done,
                      "bytes_cached", (json_int_t)st->bytes_cached, "bytes_fetched",
                      (json_int_t)st->bytes_fetched, "elapsed_ms",
                      (json_int_t)(st->elapsed_ns / 1000000), "errors_count",
                      (json_int_t)st->n_errors_total);
        if (o && json_object_update_new(
                         o, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o}", "blocks_total",
                                      (json_int_t)st->blocks_total, "blocks_done",
                                      (json_int_t)st->blocks_done, "blocks_cached",
                                      (json_int_t)st->blocks_cached, "blocks_fetched",
                                      (json_int_t)st->blocks_fetched, "blocks_failed",
                                      (json_int_t)st->blocks_failed, "blocks_evicted",
                                      (json_int_t)st->blocks_evicted, "errors", errors)) == 0)
                return o;
        json_decref(o);
        return NULL;
}

int loading_cmd_prefetch_status(struct fs *fs, json_t *request, json_t **reply)
{
        json_t *idv = json_object_get(request, "id");
        struct fs_prefetch_status st;
        int r;

        if (!json_is_integer(idv) || json_integer_value(idv) <= 0)
                return -EINVAL;
        r = fs_prefetch_status(fs, (uint64_t)json_integer_value(idv), &st);
        if (r == -ENOENT)
                *reply = json_pack("{s:b, s:s}", "ok", 0, "error", "no such prefetch job");
        if (r < 0)
                return r;
        *reply = status_json(&st);
        if (*reply && st.is_done)
                (void)!fs_prefetch_forget(fs, st.id); /* reported: over (gone: fine) */
        fs_prefetch_status_done(&st);
        return *reply ? 0 : -ENOMEM;
}

json_t *loading_stats_json(const struct fs_stats *st)
{
        return json_pack("{s:I, s:I, s:I, s:I}", "prefetches_on_open",
                         (json_int_t)st->prefetches_on_open, "copies_linked",
                         (json_int_t)st->copies_linked, "uploads_committed",
                         (json_int_t)st->uploads_committed, "prefetches_by_tensors",
                         (json_int_t)st->prefetches_by_tensors);
}
