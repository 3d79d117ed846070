/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The file system: FUSE low-level operations answered from the index (metadata) and, as
 * the read and write paths land, the store and the uploader. Inode numbers are index rowids.
 */
#pragma once

#include <fuse_lowlevel.h>

#include "prsmfs/base.h"
#include "prsmfs/config.h"
#include "prsmfs/index.h"

struct fs;

/* Borrows idx and cfg: both must outlive the fs. */
_wur_ int fs_new(struct index *idx, const struct config *cfg, struct fs **ret);
void fs_free(struct fs *fs);
/* Path of the control socket, offered to prsmctl as the root's user.prsm.control xattr. */
_wur_ int fs_set_control_path(struct fs *fs, const char *path);

/* The operation table to pass to fuse_session_new together with the fs as userdata. */
const struct fuse_lowlevel_ops *fs_lowlevel_ops(void);

/* Maps an internal negative errno to what a syscall may return (positive). */
int fs_errno_for_reply(int r);
