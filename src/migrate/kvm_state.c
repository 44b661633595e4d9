// SPDX-License-Identifier: MIT
/*
 * The part framing of migrate/kvm_state.h: u32 count, then tagged parts
 * with lengths, read back with every tag and length checked.
 */
#include <errno.h>
#include <inttypes.h>

#include "migrate/kvm_state_internal.h"

void kvm_state_put_part(struct state_buf *b, uint32_t tag, const void *p,
			size_t n)
{
	state_put_u32(b, tag);
	state_put_blob(b, p, n);
}

static int read_one_part(struct state_reader *in, const char *who,
			 const struct kvm_state_part_spec *specs,
			 unsigned ntags, struct kvm_state_part *parts,
			 struct errmsg *err)
{
	const struct kvm_state_part_spec *spec;
	struct kvm_state_part *part;
	uint32_t tag;
	size_t max;

	if (state_get_u32(in, &tag))
		return errmsg_set(err, -EBADMSG, "%s state: truncated before a part's tag",
				  who);
	if (tag == 0 || tag >= ntags || !specs[tag].name)
		return errmsg_set(err, -EBADMSG, "%s state: unknown part tag %" PRIu32,
				  who, tag);
	spec = &specs[tag];
	part = &parts[tag];
	if (part->present)
		return errmsg_set(err, -EBADMSG, "%s state: part %s appears twice",
				  who, spec->name);
	max = spec->len ? spec->len : spec->max;
	if (state_get_blob(in, &part->data, &part->len, max))
		return errmsg_set(err, -EBADMSG,
				  "%s state: part %s truncated or longer than %zu bytes",
				  who, spec->name, max);
	if (spec->len && part->len != spec->len)
		return errmsg_set(err, -EBADMSG,
				  "%s state: part %s has %zu bytes, not %zu",
				  who, spec->name, part->len, spec->len);
	part->present = true;
	return 0;
}

int kvm_state_read_parts(struct state_reader *in, const char *who,
			 const struct kvm_state_part_spec *specs,
			 unsigned ntags, struct kvm_state_part *parts,
			 struct errmsg *err)
{
	uint32_t count;
	int ret;

	for (unsigned t = 0; t < ntags; t++)
		parts[t] = (struct kvm_state_part){ 0 };
	if (state_get_u32(in, &count))
		return errmsg_set(err, -EBADMSG, "%s state: truncated before the part count",
				  who);
	if (count > KVM_STATE_MAX_PARTS)
		return errmsg_set(err, -EBADMSG, "%s state: %" PRIu32 " parts (at most %u)",
				  who, count, KVM_STATE_MAX_PARTS);
	for (uint32_t i = 0; i < count; i++) {
		ret = read_one_part(in, who, specs, ntags, parts, err);
		if (ret)
			return ret;
	}
	for (unsigned t = 1; t < ntags; t++) {
		if (specs[t].name && !specs[t].optional && !parts[t].present)
			return errmsg_set(err, -EBADMSG, "%s state: part %s is missing",
					  who, specs[t].name);
	}
	return 0;
}
