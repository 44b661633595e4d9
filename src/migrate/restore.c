// SPDX-License-Identifier: MIT
/*
 * Restoring a snapshot (snapshot.h): the config builds the machine, then
 * each section is loaded into it as it comes; at the end every part the
 * machine has (each vCPU, the in-kernel state, each registered device)
 * must have been loaded exactly once.
 */
#include "migrate/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate/kvm_state.h"
#include "migrate/lazy_ram.h"
#include "migrate/stream.h"
#include "util/page.h"
#include "vm/vm_state.h"

struct restorer {
	const char *path;
	int fd;
	bool lazy;
	struct machine *m;
	struct vm *vm;
	struct lazy_ram *lazy_ram;	/* until the VM owns it */
	bool lazy_started;
	bool have_vm;
	bool *have_cpu;
	bool *have_dev;
};

/* The run's own settings replace the snapshot's.  The console and the
 * API socket are never taken from the snapshot: the VM saved may still
 * run and use them, and opening its console file again would truncate
 * what it wrote. */
static int override(struct machine_config *c, const struct restore_options *o,
		    struct errmsg *err)
{
	int ret = 0;

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

static int refuse_unsupported(const struct machine_config *c, bool lazy,
			      struct errmsg *err)
{
	if (c->pager.enabled)
		return errmsg_set(err, -ENOTSUP, "a VM with --mem-local cannot "
				  "be restored yet");
	if (lazy && c->wss.enabled)
		return errmsg_set(err, -ENOTSUP, "a lazy restore of a VM with "
				  "--wss is not supported yet: restore it eagerly");
	return 0;
}

static int build(struct restorer *r, const struct stream_section *s,
		 const struct restore_options *o,
		 const struct machine_hooks *hooks, struct errmsg *err)
{
	struct machine_config cfg;
	int ret;

	machine_config_init(&cfg);
	ret = machine_config_from_json(&cfg, (const char *)s->data, s->len, err);
	if (!ret)
		ret = override(&cfg, o, err);
	if (!ret)
		ret = refuse_unsupported(&cfg, r->lazy, err);
	if (!ret)
		ret = machine_create_for_restore(&cfg, hooks, &r->m, err);
	machine_config_release(&cfg);
	if (ret)
		return ret;
	r->vm = machine_vm(r->m);
	r->have_cpu = calloc(r->vm->ncpus, sizeof(bool));
	r->have_dev = calloc(vm_state_count(r->vm) + 1, sizeof(bool));
	if (!r->have_cpu || !r->have_dev)
		return errmsg_set(err, -ENOMEM, "out of memory");
	if (r->lazy)
		return lazy_ram_create(r->vm, r->fd, r->path, &r->lazy_ram, err);
	return 0;
}

static int put_page(void *opaque, uint64_t page, const uint8_t *data,
		    uint64_t stream_offset)
{
	struct restorer *r = opaque;
	uint8_t *dst = r->vm->mem.base + page * PAGE_SIZE;

	if (r->lazy)
		lazy_ram_set(r->lazy_ram, page, data ? stream_offset : 0);
	else if (data)
		memcpy(dst, data, PAGE_SIZE);
	else
		memset(dst, 0, PAGE_SIZE);
	return 0;
}

static int load_ram(struct restorer *r, const struct stream_section *s,
		    struct errmsg *err)
{
	if (r->lazy && s->compressed)
		return errmsg_set(err, -ENOTSUP, "section %u: a compressed "
				  "snapshot cannot be restored lazily", s->index);
	if (r->lazy_started)
		return errmsg_set(err, -EPROTO, "section %u: guest RAM after "
				  "the VM's state", s->index);
	return stream_section_pages(s, r->vm->mem.size / PAGE_SIZE, put_page,
				    r, err);
}

/* Guest RAM is complete once the state sections begin; the devices'
 * loads may read their rings, so a lazy RAM serves faults from here. */
static int ram_complete(struct restorer *r, struct errmsg *err)
{
	int ret;

	if (!r->lazy || r->lazy_started)
		return 0;
	ret = lazy_ram_start(r->lazy_ram, err);
	if (ret)
		return ret;
	ret = vm_own(r->vm, lazy_ram_destroy, r->lazy_ram);
	if (ret) {
		lazy_ram_destroy(r->lazy_ram);
		r->lazy_ram = NULL;
		return errmsg_set(err, ret, "out of memory");
	}
	r->lazy_ram = NULL;	/* the VM's now */
	r->lazy_started = true;
	return 0;
}

static int load_part(const uint8_t *data, size_t len,
		     int (*load)(void *obj, struct state_reader *in,
				 struct errmsg *err),
		     void *obj, const char *what, unsigned index,
		     struct errmsg *err)
{
	struct errmsg why = { "" };
	struct state_reader in;
	int ret;

	state_reader_init(&in, data, len);
	ret = load(obj, &in, &why);
	if (!ret && state_reader_left(&in))
		ret = errmsg_set(&why, -EBADMSG, "%zu bytes left over",
				 state_reader_left(&in));
	return ret ? errmsg_set(err, ret, "section %u (%s): %s", index, what,
				why.text[0] ? why.text : strerror(-ret)) : 0;
}

static int load_vm_state(void *obj, struct state_reader *in, struct errmsg *err)
{
	return kvm_state_load_vm(obj, in, err);
}

static int load_cpu_state(void *obj, struct state_reader *in,
			  struct errmsg *err)
{
	return kvm_state_load_cpu(obj, in, err);
}

static int load_cpu(struct restorer *r, const struct stream_section *s,
		    struct errmsg *err)
{
	const uint8_t *state;
	unsigned idx;
	size_t len;
	char what[32];
	int ret = stream_section_cpu(s, &idx, &state, &len, err);

	if (ret)
		return ret;
	if (idx >= r->vm->ncpus || r->have_cpu[idx])
		return errmsg_set(err, -EBADMSG, "section %u: vCPU %u %s",
				  s->index, idx, idx >= r->vm->ncpus ?
				  "is not in this VM" : "comes twice");
	snprintf(what, sizeof(what), "vCPU %u", idx);
	ret = load_part(state, len, load_cpu_state, &r->vm->vcpus[idx],
			what, s->index, err);
	r->have_cpu[idx] = !ret;
	return ret;
}

static int load_device(struct restorer *r, const struct stream_section *s,
		       struct errmsg *err)
{
	char name[STREAM_NAME_MAX + 1];
	const struct vm_state_entry *e;
	const uint8_t *state;
	size_t len;
	unsigned i;
	int ret = stream_section_device(s, name, &state, &len, err);

	if (ret)
		return ret;
	e = vm_state_find(r->vm, name);
	if (!e)
		return errmsg_set(err, -EBADMSG, "section %u: this VM has no "
				  "device %s", s->index, name);
	i = (unsigned)(e - vm_state_at(r->vm, 0));
	if (r->have_dev[i])
		return errmsg_set(err, -EBADMSG, "section %u: device %s comes "
				  "twice", s->index, name);
	ret = load_part(state, len, e->ops->load, e->opaque, name,
			s->index, err);
	r->have_dev[i] = !ret;
	return ret;
}

static int load_section(struct restorer *r, const struct stream_section *s,
			struct errmsg *err)
{
	int ret = s->type == STREAM_RAM ? 0 : ram_complete(r, err);

	if (ret)
		return ret;
	switch (s->type) {
	case STREAM_RAM:
		return load_ram(r, s, err);
	case STREAM_VM:
		if (r->have_vm)
			return errmsg_set(err, -EBADMSG, "section %u: the VM's "
					  "state comes twice", s->index);
		r->have_vm = true;
		return load_part(s->data, s->len, load_vm_state, r->vm,
				 "vm", s->index, err);
	case STREAM_CPU:
		return load_cpu(r, s, err);
	case STREAM_DEVICE:
		return load_device(r, s, err);
	case STREAM_END:
		return 0;
	case STREAM_CONFIG:
		break;
	}
	return errmsg_set(err, -EBADMSG, "section %u: unexpected %s section",
			  s->index, stream_type_name(s->type));
}

/* Everything the machine has was in the snapshot. */
static int check_complete(struct restorer *r, struct errmsg *err)
{
	if (!r->have_vm)
		return errmsg_set(err, -EBADMSG, "the snapshot has no VM state");
	for (unsigned i = 0; i < r->vm->ncpus; i++)
		if (!r->have_cpu[i])
			return errmsg_set(err, -EBADMSG, "the snapshot has no "
					  "state for vCPU %u", i);
	for (unsigned i = 0; i < vm_state_count(r->vm); i++)
		if (!r->have_dev[i])
			return errmsg_set(err, -EBADMSG, "the snapshot has no "
					  "state for device %s",
					  vm_state_at(r->vm, i)->name);
	return 0;
}

static int read_all(struct restorer *r, struct stream_reader *sr,
		    const struct restore_options *o,
		    const struct machine_hooks *hooks, struct errmsg *err)
{
	struct stream_section s;
	int ret;

	ret = stream_next(sr, &s, err);
	if (ret)
		return ret;
	if (s.type != STREAM_CONFIG)	/* the reader checks it too */
		return errmsg_set(err, -EBADMSG, "the snapshot does not start "
				  "with the VM's config");
	ret = build(r, &s, o, hooks, err);
	/* the new devices' threads (the UART's input) must not change what
	 * is being loaded into them: held input is delivered after */
	if (!ret)
		ret = vm_state_quiesce_all(r->vm, err);
	if (ret)
		return ret;
	while (!ret && s.type != STREAM_END) {
		ret = stream_next(sr, &s, err);
		if (!ret)
			ret = load_section(r, &s, err);
	}
	vm_state_unquiesce_all(r->vm);
	return ret ? ret : check_complete(r, err);
}

/* The stream on @fd into a new machine; @what names it in messages. */
static int restore_fd(int fd, const char *what, bool lazy,
		      const struct restore_options *o,
		      const struct machine_hooks *hooks, struct machine **out,
		      struct errmsg *err)
{
	static const struct restore_options none;
	struct restorer r = { .path = what, .fd = fd, .lazy = lazy };
	struct stream_reader *sr = NULL;
	struct errmsg why = { "" };
	int ret;

	*out = NULL;
	ret = stream_reader_create(r.fd, &sr, &why);
	if (!ret)
		ret = read_all(&r, sr, o ? o : &none, hooks, &why);
	stream_reader_destroy(sr);
	free(r.have_cpu);
	free(r.have_dev);
	lazy_ram_destroy(r.lazy_ram);	/* if the VM never took it */
	if (ret) {
		machine_destroy(r.m);
		return errmsg_set(err, ret, "%s: %s", what, why.text);
	}
	*out = r.m;
	return 0;
}

int snapshot_restore(const char *path, const struct restore_options *o,
		     const struct machine_hooks *hooks, struct machine **out,
		     struct errmsg *err)
{
	char what[512];
	int fd, ret;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errmsg_set(err, -errno, "cannot open the snapshot %s: %s",
				  path, strerror(errno));
	snprintf(what, sizeof(what), "snapshot %s", path);
	ret = restore_fd(fd, what, o && o->lazy, o, hooks, out, err);
	close(fd);
	return ret;
}

int snapshot_restore_stream(int fd, const char *what,
			    const struct restore_options *o,
			    const struct machine_hooks *hooks,
			    struct machine **out, struct errmsg *err)
{
	if (o && o->lazy)
		return errmsg_set(err, -EINVAL, "%s: a stream cannot be "
				  "restored lazily", what);
	return restore_fd(fd, what, false, o, hooks, out, err);
}
