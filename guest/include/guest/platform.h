/* SPDX-License-Identifier: MIT */
/*
 * What the runtime knows about the machine once it is up: CPU count and
 * RAM size (fw_cfg, or the memory map without it), the highest mapped
 * address, and the end of the loaded image.
 */
#ifndef GUEST_PLATFORM_H
#define GUEST_PLATFORM_H

#include <stdbool.h>
#include <stdint.h>

struct platform {
	bool have_fw_cfg;
	unsigned int nb_cpus;
	uint64_t ram_bytes;
};

extern struct platform platform;

/* Fills platform (ring 3). */
void platform_probe(void);

/* Set by ring-0 setup: everything below is identity mapped. */
extern uint64_t mapped_limit;

/* Linker symbols: first byte and end (page aligned) of the image. */
extern char __image_start[], __image_end[];

#endif
