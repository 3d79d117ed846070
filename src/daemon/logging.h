/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libfuse's own messages through our logger (syslog once daemonized). */
#pragma once

void logging_route_fuse(void);
