/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Whole reads and writes on file descriptors: each loops over short transfers and EINTR, so
 * callers state what they need (exactly len bytes, or up to the end of the file) once.
 */
#pragma once

#include <stdint.h>
#include <sys/types.h>

#include "prsmfs/base.h"

/* Up to len bytes at off: the count read (short only at the end of the file), or -errno. */
_wur_ ssize_t io_pread_full(int fd, void *buf, size_t len, uint64_t off);

/* Exactly len bytes at off: 0, -errno, or -EIO when the file ends first. */
_wur_ int io_pread_exact(int fd, void *buf, size_t len, uint64_t off);
/* Writes len bytes at off; returns how many were written, fewer only when an error (ENOSPC,
 * EIO) stopped it after some, or -errno when none were. */
_wur_ ssize_t io_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

/* All len bytes at off (pwrite) or at the file offset (write): 0 or -errno (-EIO if the
 * kernel accepts nothing without an error). */
_wur_ int io_pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
_wur_ int io_write_all(int fd, const void *buf, size_t len);
