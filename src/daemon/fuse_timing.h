/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * FUSE requests counted and timed by operation, for /metrics: a copy of the fs's lowlevel
 * ops table whose entries call the fs's handler between two clock reads.
 */
#pragma once

#include <fuse_lowlevel.h>

#include "prsmfs/buf.h"

/* The table to give fuse_session_new: inner's handlers, timed. inner is borrowed for the
 * life of the process; one wrapped table per process. */
const struct fuse_lowlevel_ops *fuse_timing_wrap(const struct fuse_lowlevel_ops *inner);
/* prsmfs_fuse_operations_total and prsmfs_fuse_operation_duration_seconds, by op. */
_wur_ int fuse_timing_render(struct buf *b);
