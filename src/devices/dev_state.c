// SPDX-License-Identifier: MIT
/*
 * Shared checks of the platform devices' state blobs (dev_state.h).
 */
#include "devices/dev_state.h"

#include <errno.h>

int dev_state_version(struct state_reader *in, const char *dev,
		      uint32_t version, struct errmsg *err)
{
	uint32_t v;

	if (state_get_u32(in, &v))
		return errmsg_set(err, -EBADMSG,
				  "%s: state of %zu bytes has no version", dev,
				  in->len);
	if (v != version)
		return errmsg_set(err, -EPROTONOSUPPORT,
				  "%s: state layout version %u, this build reads %u",
				  dev, v, version);
	return 0;
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
	if (state_reader_error(in))
		return errmsg_set(err, -EBADMSG,
				  "%s: state truncated at %zu bytes", dev,
				  in->len);
	if (state_reader_left(in))
		return errmsg_set(err, -EBADMSG,
				  "%s: state has %zu byte%s past its end", dev,
				  state_reader_left(in),
				  state_reader_left(in) == 1 ? "" : "s");
	return 0;
}
