// SPDX-License-Identifier: MIT
/*
 * The config and the state parts of a restore (restore_parts.h).
 */
#include "migrate/restore_parts.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/kvm_state.h"
#include "util/state_buf.h"
#include "vm/vm.h"
#include "vm/vm_state.h"

int restore_config(const struct stream_section *s,
		   const struct restore_options *o, struct machine_config *c,
		   struct errmsg *err)
{
	int ret = machine_config_from_json(c, (const char *)s->data, s->len,
					   err);

	if (ret)
		return ret;
	if (o->name)
		ret = machine_config_set_string(c, &c->name, o->name);
	if (!ret)
		ret = machine_config_set_string(c, &c->api_socket, o->api_socket);
	if (!ret)
		ret = machine_config_set_string(c, &c->console,
						o->console ? o->console : "stdio");
	if (ret)
		return errmsg_set(err, ret, "out of memory");
	return machine_config_validate(c, err);
}

int restore_parts_init(struct restore_parts *p, struct vm *vm,
		       struct errmsg *err)
{
	*p = (struct restore_parts){ .vm = vm };
	p->have_cpu = calloc(vm->ncpus ? vm->ncpus : 1, sizeof(bool));
	p->have_dev = calloc(vm_state_count(vm) + 1, sizeof(bool));
	if (!p->have_cpu || !p->have_dev)
		return errmsg_set(err, -ENOMEM, "out of memory");
	return 0;
}

void restore_parts_release(struct restore_parts *p)
{
	free(p->have_cpu);
	free(p->have_dev);
	p->have_cpu = p->have_dev = NULL;
}

static int take_cpu(struct restore_parts *p, const struct stream_section *s,
		    struct restore_part *out, struct errmsg *err)
{
	int ret = stream_section_cpu(s, &out->part, &out->data, &out->len, err);

	if (ret)
		return ret;
	if (out->part >= p->vm->ncpus || p->have_cpu[out->part])
		return errmsg_set(err, -EBADMSG, "section %u: vCPU %u %s",
				  s->index, out->part,
				  out->part >= p->vm->ncpus ?
				  "is not in this VM" : "comes twice");
	p->have_cpu[out->part] = true;
	return 0;
}

static int take_device(struct restore_parts *p, const struct stream_section *s,
		       struct restore_part *out, struct errmsg *err)
{
	char name[STREAM_NAME_MAX + 1];
	const struct vm_state_entry *e;
	int ret = stream_section_device(s, name, &out->data, &out->len, err);

	if (ret)
		return ret;
	e = vm_state_find(p->vm, name);
	if (!e)
		return errmsg_set(err, -EBADMSG, "section %u: this VM has no "
				  "device %s", s->index, name);
	out->part = (unsigned)(e - vm_state_at(p->vm, 0));
	if (p->have_dev[out->part])
		return errmsg_set(err, -EBADMSG, "section %u: device %s comes "
				  "twice", s->index, name);
	p->have_dev[out->part] = true;
	return 0;
}

int restore_parts_take(struct restore_parts *p, const struct stream_section *s,
		       struct restore_part *out, struct errmsg *err)
{
	*out = (struct restore_part){ .type = s->type, .index = s->index };
	switch ((unsigned)s->type) {
	case STREAM_VM:
		if (p->have_vm)
			return errmsg_set(err, -EBADMSG, "section %u: the VM's "
					  "state comes twice", s->index);
		p->have_vm = true;
		out->data = s->data;
		out->len = s->len;
		return 0;
	case STREAM_CPU:
		return take_cpu(p, s, out, err);
	case STREAM_DEVICE:
		return take_device(p, s, out, err);
	}
	return errmsg_set(err, -EINVAL, "section %u: a %s section is no "
			  "state part", s->index, stream_type_name(s->type));
}

int restore_parts_load(struct restore_parts *p, const struct restore_part *part,
		       struct errmsg *err)
{
	const struct vm_state_entry *e;
	struct errmsg why = { "" };
	struct state_reader in;
	char what[48];
	int ret;

	state_reader_init(&in, part->data, part->len);
	if (part->type == STREAM_VM) {
		snprintf(what, sizeof(what), "vm");
		ret = kvm_state_load_vm(p->vm, &in, &why);
	} else if (part->type == STREAM_CPU) {
		snprintf(what, sizeof(what), "vCPU %u", part->part);
		ret = kvm_state_load_cpu(&p->vm->vcpus[part->part], &in, &why);
	} else {
		e = vm_state_at(p->vm, part->part);
		snprintf(what, sizeof(what), "%s", e->name);
		ret = e->ops->load(e->opaque, &in, &why);
	}
	if (!ret && state_reader_left(&in))
		ret = errmsg_set(&why, -EBADMSG, "%zu bytes left over",
				 state_reader_left(&in));
	return ret ? errmsg_set(err, ret, "section %u (%s): %s", part->index,
				what, why.text[0] ? why.text : strerror(-ret)) : 0;
}

int restore_parts_complete(const struct restore_parts *p, const char *what,
			   struct errmsg *err)
{
	if (!p->have_vm)
		return errmsg_set(err, -EBADMSG, "%s has no VM state", what);
	for (unsigned i = 0; i < p->vm->ncpus; i++)
		if (!p->have_cpu[i])
			return errmsg_set(err, -EBADMSG, "%s has no state for "
					  "vCPU %u", what, i);
	for (unsigned i = 0; i < vm_state_count(p->vm); i++)
		if (!p->have_dev[i] && !vm_state_at(p->vm, i)->ops->optional)
			return errmsg_set(err, -EBADMSG, "%s has no state for "
					  "device %s", what,
					  vm_state_at(p->vm, i)->name);
	return 0;
}
