/* SPDX-License-Identifier: MIT */
/*
 * Command line: "<workload> key=value ...".
 *
 * The first word names the workload (none, or a first word that is itself
 * a key=value, means "hello").  Tokens containing a '.' belong to someone
 * else (virtio_mmio.device=..., VMM additions): they are not workload
 * parameters, but are kept whole in foreign[] for the runtime's drivers
 * (guest/virtio_mmio.h finds its devices there).  Values are strings;
 * cmdline_u64() reads them as decimal or 0x-prefixed hex.
 */
#ifndef GUEST_CMDLINE_H
#define GUEST_CMDLINE_H

#include <stdbool.h>
#include <stdint.h>

#define CMDLINE_MAX_LEN 4096
#define CMDLINE_MAX_PARAMS 32
#define CMDLINE_MAX_FOREIGN 32

struct cmdline_param {
	const char *key;
	const char *value;	/* "" for a bare word */
	bool bare;		/* a word without '=' */
};

struct cmdline {
	char buf[CMDLINE_MAX_LEN];
	const char *workload;
	unsigned int nr_params;
	struct cmdline_param params[CMDLINE_MAX_PARAMS];
	unsigned int nr_foreign;	/* beyond CMDLINE_MAX_FOREIGN: dropped */
	const char *foreign[CMDLINE_MAX_FOREIGN];	/* whole tokens */
};

/* Returns 0, or -1 if there are more than CMDLINE_MAX_PARAMS parameters
 * (the first ones are kept). */
int cmdline_parse(struct cmdline *c, const char *text);

/* The value of @key, or NULL. */
const char *cmdline_get(const struct cmdline *c, const char *key);

/* Parses decimal or 0x hex; false on anything else or on overflow. */
bool parse_u64(const char *s, uint64_t *out);

/* The value of @key as a number, @def if absent; a malformed value fails
 * the guest with a clear message. */
uint64_t cmdline_u64(const struct cmdline *c, const char *key, uint64_t def);

#endif
