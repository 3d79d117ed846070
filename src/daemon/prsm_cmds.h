/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon's PRSM part (docs/prsm.md): the identity, the record writer's lifetime, and the
 * control commands provenance, provenance_export and rewards; link and publish note their
 * records through it.
 */
#pragma once

#include <jansson.h>

#include "prsmfs/base.h"
#include "prsmfs/cid.h"
#include "prsmfs/fs.h"
#include "prsmfs/prsm.h"

struct config;
struct fs;
struct index;

struct daemon_prsm {
        const struct config *cfg; /* borrowed */
        struct index *idx;        /* borrowed */
        struct fs *fs;            /* borrowed, set by start */
        struct prsm_identity *id; /* owned */
        struct prsm *prsm;        /* owned, after start */
        char creator_id[512];     /* the config's, else the key id */
};

/* Loads (or makes) the identity key; prints the reason on stderr and returns -errno when it
 * cannot. Before mounting. */
_wur_ int daemon_prsm_init(struct daemon_prsm *dp, const struct config *cfg, struct index *idx);
/* Starts the record writer and hands it to fs (after daemonizing: it runs a thread). */
_wur_ int daemon_prsm_start(struct daemon_prsm *dp, struct fs *fs);
/* Writes what is queued and stops the writer (after the last read and commit). NULL-safe. */
void daemon_prsm_stop(struct daemon_prsm *dp);
void daemon_prsm_done(struct daemon_prsm *dp);

/* -EINVAL, with a reason in *reply, for a CID string PRSM's placeholders look like. */
_wur_ int daemon_prsm_check_link(const char *cid, json_t **reply);
/* The request's "format" (auto, prsm or raw; absent: auto); -EINVAL with a reply otherwise. */
_wur_ int daemon_prsm_link_format(json_t *request, enum fs_link_format *ret, json_t **reply);
/* Records a link (creator: the request's "creator", optional) or a publish. */
void daemon_prsm_note_link(struct daemon_prsm *dp, json_t *request, const char *path,
                           const struct cid *cid, uint64_t size);
void daemon_prsm_note_publish(struct daemon_prsm *dp, const char *path, const struct cid *root);
/* Counters for prsmctl status ("prsm"), a new object. */
json_t *daemon_prsm_stats(struct daemon_prsm *dp);

/* Control command handlers (control_handler_fn, userdata: the struct daemon_prsm). */
_wur_ int daemon_prsm_cmd_provenance(json_t *request, json_t **reply, struct daemon_prsm *dp);
_wur_ int daemon_prsm_cmd_export(json_t *request, json_t **reply, struct daemon_prsm *dp);
/* prsmctl provenance --publish: adds the export reply's "document" (and a newline, as
 * --export writes it) to the write node as one UnixFS file, pinned as written files are, and
 * puts its CID in the reply ("cid"). -EHOSTUNREACH without an uploader. */
struct upload;
_wur_ int daemon_prsm_publish_export(struct upload *u, json_t *reply);
_wur_ int daemon_prsm_cmd_rewards(json_t *request, json_t **reply, struct daemon_prsm *dp);
