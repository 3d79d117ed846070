/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Control commands for model loading (prsmctl prefetch): a warm-up is a job in the fs that
 * runs on its own threads; the control thread only starts it and reports its progress, so a
 * long prefetch never holds the control socket.
 *
 *   {"cmd": "prefetch", "paths": ["a/b", ...], "mode": "fetch"|"check"|"evict"}
 *       -> {"id": N}
 *   {"cmd": "prefetch_status", "id": N}
 *       -> {"id", "mode", "done", "walking", "files", "files_done", "bytes_total", "bytes_done",
 *           "bytes_cached", "bytes_fetched", "blocks_total", "blocks_done", "blocks_cached",
 *           "blocks_fetched", "blocks_failed", "blocks_evicted", "elapsed_ms",
 *           "errors": [{"path", "error"}], "errors_count"}
 *       once "done" is true the job is forgotten (its final status is given once)
 */
#pragma once

#include <jansson.h>

#include "prsmfs/fs.h"

_wur_ int loading_cmd_prefetch(struct fs *fs, json_t *request, json_t **reply);
_wur_ int loading_cmd_prefetch_status(struct fs *fs, json_t *request, json_t **reply);
/* The loading counters of prsmctl status ("loading"): a new object, or NULL. */
json_t *loading_stats_json(const struct fs_stats *st);
