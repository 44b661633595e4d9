// SPDX-License-Identifier: MIT
/*
 * Shared checks of the platform devices' state blobs (dev_state.h).
 */
#include "devices/dev_state.h"

#include <errno.h>

int dev_state_version(struct state_reader *in, const char *dev,
		      uint32_t version, struct errmsg *err)
{
	return state_check_version(in, dev, version, err);
}

int dev_state_flag(struct state_reader *in, const char *dev,
		   const char *what, bool *v, struct errmsg *err)
{
	uint8_t raw;

	*v = false;
	/* a short blob: dev_state_end() reports it with its length */
	if (state_get_u8(in, &raw))
		return 0;
	if (raw > 1)
		return errmsg_set(err, -EBADMSG, "%s: %s is %u, not 0 or 1",
				  dev, what, raw);
	*v = raw;
	return 0;
}

int dev_state_end(const struct state_reader *in, const char *dev,
		  struct errmsg *err)
{
	return state_check_end(in, dev, err);
}
