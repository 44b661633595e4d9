/* SPDX-License-Identifier: MIT */
/*
 * The balloon's control commands:
 *   balloon SIZE     sets the balloon's target size (K/M/G suffixes;
 *                    a multiple of 4K, at most guest RAM); replies "ok"
 *   balloon-stats    "ok target_pages=N actual_pages=N ... mem_free=..."
 *                    (counters, then the guest's last statistics), and
 *                    asks the guest for fresh statistics
 */
#ifndef RACKVM_API_BALLOON_COMMANDS_H
#define RACKVM_API_BALLOON_COMMANDS_H

#include "api/control.h"
#include "virtio/balloon.h"

int balloon_commands_register(struct control_server *s,
			      struct virtio_balloon *b);

#endif
