/* SPDX-License-Identifier: MIT */
/*
 * Inside migrate/kvm_state: the part framing both states share
 * (kvm_state.c), and the MSR half of a vCPU's state (kvm_state_msr.c).
 */
#ifndef RACKVM_MIGRATE_KVM_STATE_INTERNAL_H
#define RACKVM_MIGRATE_KVM_STATE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "migrate/kvm_state.h"

struct kvm_msrs;

/* What a load accepts for one tag (the table is indexed by tag). */
struct kvm_state_part_spec {
	const char *name;	/* "SREGS"; NULL: no such tag */
	size_t len;		/* exact length; 0: up to max */
	size_t max;
	bool optional;
};

/* One part as found in the bytes; data points into the reader's. */
struct kvm_state_part {
	const uint8_t *data;
	size_t len;
	bool present;
};

#define KVM_STATE_MAX_PARTS 32u

void kvm_state_put_part(struct state_buf *b, uint32_t tag, const void *p,
			size_t n);

/* Reads a u32 part count and the parts after it into @parts (indexed by
 * tag, @ntags entries), checking each against @specs: -EBADMSG naming
 * @who and the part for anything out of place. */
int kvm_state_read_parts(struct state_reader *in, const char *who,
			 const struct kvm_state_part_spec *specs,
			 unsigned ntags, struct kvm_state_part *parts,
			 struct errmsg *err);

/* MSRs (kvm_state_msr.c).  Save: every MSR KVM lists (and a few it
 * does not list but serves) that this vCPU can read, as a MSRS part. */
int kvm_state_save_msrs(struct vcpu *vcpu, struct state_buf *out,
			struct errmsg *err);
/* Parses a MSRS part into a new list (free() it). */
int kvm_state_parse_msrs(const struct kvm_state_part *part, const char *who,
			 struct kvm_msrs **out, struct errmsg *err);
/* Sets the MSRs of @msrs that pass @filter(index) == @want, skipping
 * those KVM refuses by design (kvm_state_msr.c says which and why). */
int kvm_state_set_msrs(struct vcpu *vcpu, const struct kvm_msrs *msrs,
		       bool (*filter)(uint32_t index), bool want,
		       struct errmsg *err);
bool kvm_state_msr_is_tsc_deadline(uint32_t index);

#endif
