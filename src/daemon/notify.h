/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * systemd readiness (Type=notify): READY=1 once the mount serves, STOPPING=1 when it stops,
 * and WATCHDOG=1 pings while WatchdogSec= is set (WATCHDOG_USEC). Without systemd
 * ($NOTIFY_SOCKET unset) every call does nothing.
 */
#pragma once

#include "prsmfs/base.h"

struct notify;

/* Says READY=1 (with status text) and starts the watchdog thread if systemd asked for one.
 * Never fails the mount: problems are logged. Returns NULL when there is nothing to stop. */
struct notify *notify_ready(const char *mountpoint);
/* Says STOPPING=1 and stops the watchdog thread. NULL-safe (then only STOPPING=1). */
void notify_stopping(struct notify *n);
