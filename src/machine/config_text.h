/* SPDX-License-Identifier: MIT */
/*
 * Pieces of the machine config's text forms shared by the flags and the
 * JSON (internal to src/machine/): the device specs ("PATH,ro,direct",
 * "tap=NAME,mac=MAC") and a growing string for the printers.
 *
 * The spec parsers copy what they keep into @c's owned strings and
 * return -EINVAL with a message naming the flag, or -ENOMEM.
 */
#ifndef RACKVM_MACHINE_CONFIG_TEXT_H
#define RACKVM_MACHINE_CONFIG_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "machine/config.h"

/* "PATH[,ro][,direct]" */
int config_text_parse_disk(struct machine_config *c, const char *spec,
			   struct virtio_blk_options *d, struct errmsg *err);
/* "tap=NAME[,mac=MAC][,offload=on|off]" */
int config_text_parse_net(struct machine_config *c, const char *spec,
			  struct virtio_net_options *n, struct errmsg *err);
/* "[deflate-on-oom][,free-page-reporting]"; @spec may be NULL */
int config_text_parse_balloon(const char *spec,
			      struct virtio_balloon_options *b,
			      struct errmsg *err);
/* "FILE[,in=PATH]" */
int config_text_parse_vconsole(struct machine_config *c, const char *spec,
			       struct virtio_console_options *v,
			       struct errmsg *err);

/* A string that grows; after an allocation failure it stays failed
 * (text NULL) and every append is a no-op. */
struct strbuf {
	char *text;
	size_t len, cap;
	bool failed;
};

void strbuf_printf(struct strbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Returns the text (the caller frees it), NULL if an append failed. */
char *strbuf_finish(struct strbuf *b);

/* "256M", "1G", "4096": the shortest exact form parse_size() reads. */
void config_text_size(char *out, size_t len, uint64_t bytes);
/* "2s", "500ms", "250us": exact to the microsecond. */
void config_text_duration(char *out, size_t len, uint64_t ns);
/* The device specs, as the parsers above read them. */
void config_text_disk(struct strbuf *b, const struct virtio_blk_options *d);
void config_text_net(struct strbuf *b, const struct virtio_net_options *n);

#endif
