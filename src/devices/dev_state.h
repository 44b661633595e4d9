/* SPDX-License-Identifier: MIT */
/*
 * What the platform devices' state blobs (vm/vm_state.h) have in common,
 * for their load functions: a u32 layout version first, flags that must
 * be 0 or 1, and an end that must come exactly where the last field
 * does.  Each helper reads from an untrusted blob, fills @err with a line
 * that starts with the device's registered name (@dev) and returns
 * -errno; none of them applies anything.
 */
#ifndef RACKVM_DEVICES_DEV_STATE_H
#define RACKVM_DEVICES_DEV_STATE_H

#include <stdbool.h>
#include <stdint.h>

#include "util/errmsg.h"
#include "util/state_buf.h"

/* -EBADMSG if the blob is too short for a version, -EPROTONOSUPPORT for
 * any version but @version. */
int dev_state_version(struct state_reader *in, const char *dev,
		      uint32_t version, struct errmsg *err);
/* A u8 that must be 0 or 1 (@what names it in the message): -EBADMSG
 * for another value.  A blob that ends before it is left to
 * dev_state_end() (*@v is then false). */
int dev_state_flag(struct state_reader *in, const char *dev,
		   const char *what, bool *v, struct errmsg *err);
/* After the last field: -EBADMSG if a field ran past the end of the
 * blob, or if bytes are left over. */
int dev_state_end(const struct state_reader *in, const char *dev,
		  struct errmsg *err);

#endif
