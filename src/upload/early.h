/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to upload: early puts. While a file is still being written from its start, every
 * completed run of full leaves (upload_early) is read back from the staging file, hashed and
 * put on a write node by two early threads, without a job, a DAG or a pin; the node's
 * answer adds those leaf CIDs to a small "stored" table (node, CID, when). The file's job,
 * queued at close, still builds and checks everything; its put threads claim each item's
 * leaves in the table first (early_claim) and skip the items whose leaves its node stored,
 * so the node's ingest overlaps the writes and no leaf is sent twice at once. The ranges still
 * queued at close go on until the job sends a block itself (then they are dropped), so the
 * node keeps busy while the job reads and hashes the part the early puts stored.
 *
 * The table is only a hint and never a source of bytes: a leaf is skipped only under the
 * CID the job computed from the final content, on the node the job's session is bound to;
 * entries expire; a failed attempt clears the table, and its retry asks the node (resume).
 * If a node dropped a stored leaf before the pin (garbage collection), the pin fails and the
 * job's next attempt sends it again.
 */
#pragma once

#include "prsmfs/cid.h"
#include "prsmfs/upload.h"

struct early;

/* Borrows cfg (the uploader's; its net, params, run_bytes, timeout_ms). Threads start with
 * the first range. */
_wur_ int early_new(const struct upload_config *cfg, struct upload_stats *st, struct early **ret);
/* Stops the threads (after the ranges being put) and frees what is queued. NULL-safe. */
void early_free(struct early *e);
/* Bytes per range (a whole number of leaves); 0 when early puts do not apply (dag-pb
 * leaves, CIDv0, fewer than two leaves per run). */
size_t early_unit(const struct early *e);
/* Queues [off, off + len) of the file at path (copied): off and len are multiples of the
 * unit. -EINVAL otherwise, -ENOBUFS when the queue is full (the job will send it). */
_wur_ int early_add(struct early *e, const char *path, uint64_t off, uint64_t len);
/* Drops the queued ranges of path (its job sends blocks itself now, or ended). */
void early_drop(struct early *e, const char *path);
/*
 * Before a put of n blocks on node_url (an early range, or a job's block or run): waits
 * while any of them is being put there (by an early put or a job; at most until that put's
 * deadline), then claims every block not stored there recently (claimed[i] = true; raw
 * leaves are marked "being put") and returns how many it claimed: 0 means all of them are on
 * the node, and the put is skipped. Blocks other than raw leaves are always claimed and never
 * recorded. After the put, early_settle(ok) records the claimed leaves as stored or frees
 * them. With no early range ever queued (no table), everything is claimed.
 * ret_oldest (may be NULL): of the leaves not claimed, the index of the one stored there
 * longest ago and that time (n and UINT64_MAX when every block was claimed).
 */
struct early_oldest {
        size_t i;
        uint64_t when_ns;
};
size_t early_claim(struct early *e, const char *node_url, const struct cid *const *cids, size_t n,
                   bool *claimed, struct early_oldest *ret_oldest);
void early_settle(struct early *e, const char *node_url, const struct cid *const *cids, size_t n,
                  const bool *claimed, bool ok);
/* Forgets every stored entry (an attempt failed: its retry asks the node). */
void early_forget(struct early *e);
