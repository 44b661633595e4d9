// SPDX-License-Identifier: MIT
/*
 * The destination's restore of a post-copy (or hybrid) stream
 * (migrate.h): like a snapshot restore (restore.c), but the stream's
 * first part ends with HANDOVER instead of END, PENDING sections name
 * the pages that come later, and the state sections are held until
 * HANDOVER: they are loaded only once guest RAM serves faults from the
 * source (postcopy_dst.h), because a device's load or its threads after
 * it may touch a page still missing, and the thread reading the stream
 * cannot be the one waiting for a page the stream brings.
 *
 * Held state is bounded: each vCPU, the VM and each device once (a
 * second copy is refused as it arrives), each at most a section.
 */
#include "migrate/postcopy_recv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "migrate/postcopy_dst.h"
#include "migrate/restore_parts.h"
#include "util/full_io.h"
#include "util/page.h"
#include "util/state_buf.h"
#include "vm/vm.h"
#include "vm/vm_state.h"

struct pc_restorer {
	struct machine *m;
	struct vm *vm;
	struct postcopy_dst *pc;	/* until the VM owns it */
	struct restore_part *held;	/* their data copied */
	unsigned nheld, cap;
	struct restore_parts parts;
	int fd;				/* our dup of the connection */
};

static int build(struct pc_restorer *r, const struct stream_section *s,
		 const struct restore_options *o,
		 const struct machine_hooks *hooks, struct errmsg *err)
{
	struct machine_config c;
	int ret;

	machine_config_init(&c);
	ret = restore_config(s, o, &c, err);
	if (!ret && (c.pager.enabled || c.wss.enabled))
		ret = errmsg_set(err, -ENOTSUP, "a VM with %s cannot arrive by "
				 "post-copy yet", c.pager.enabled ?
				 "--mem-local" : "--wss");
	if (!ret)
		ret = machine_create_for_restore(&c, hooks, &r->m, err);
	machine_config_release(&c);
	if (ret)
		return ret;
	r->vm = machine_vm(r->m);
	ret = restore_parts_init(&r->parts, r->vm, err);
	if (ret)
		return ret;
	ret = postcopy_dst_create(r->vm, r->fd, &r->pc, err);
	r->fd = -1;	/* the page service's */
	/* the devices' threads (the UART's input) must not change what is
	 * being loaded into them */
	return ret ? ret : vm_state_quiesce_all(r->vm, err);
}

static int put_page(void *opaque, uint64_t page, const uint8_t *data,
		    uint64_t stream_offset)
{
	struct pc_restorer *r = opaque;
	uint8_t *dst = r->vm->mem.base + page * PAGE_SIZE;

	(void)stream_offset;
	if (data)
		memcpy(dst, data, PAGE_SIZE);
	else
		memset(dst, 0, PAGE_SIZE);
	return 0;
}

/* Checks and counts a state part, and keeps a copy of it for after
 * HANDOVER (the section's buffer is the reader's). */
static int hold(struct pc_restorer *r, const struct stream_section *s,
		struct errmsg *err)
{
	struct restore_part *h;
	uint8_t *copy;
	int ret;

	if (r->nheld == r->cap) {
		unsigned cap = r->cap ? r->cap * 2 : 16;

		h = realloc(r->held, cap * sizeof(*h));
		if (!h)
			return errmsg_set(err, -ENOMEM, "out of memory");
		r->held = h;
		r->cap = cap;
	}
	h = &r->held[r->nheld];
	ret = restore_parts_take(&r->parts, s, h, err);
	if (ret)
		return ret;
	copy = malloc(h->len ? h->len : 1);
	if (!copy)
		return errmsg_set(err, -ENOMEM, "out of memory");
	memcpy(copy, h->data, h->len);
	h->data = copy;
	r->nheld++;
	return 0;
}

/* One section before HANDOVER: 1 at HANDOVER, 0 to go on. */
static int take(struct pc_restorer *r, const struct stream_section *s,
		bool *pending_seen, struct errmsg *err)
{
	const uint8_t *bits;
	uint64_t first;
	uint32_t n;
	int ret;

	switch ((unsigned)s->type) {
	case STREAM_RAM:
		if (*pending_seen)
			break;
		return stream_section_pages(s, r->vm->mem.size / PAGE_SIZE,
					    put_page, r, err);
	case STREAM_PENDING:
		ret = stream_section_pending(s, r->vm->mem.size / PAGE_SIZE,
					     &first, &n, &bits, err);
		if (!ret)
			postcopy_dst_mark(r->pc, first, n, bits);
		*pending_seen = true;
		return ret;
	case STREAM_VM:
	case STREAM_CPU:
	case STREAM_DEVICE:
		return hold(r, s, err);
	case STREAM_HANDOVER:
		return 1;
	case STREAM_SYNC:	/* hybrid's rounds: each page is in */
		postcopy_dst_say(r->pc, "SYNCED\n");
		return 0;
	default:
		break;
	}
	return errmsg_set(err, -EPROTO, "section %u: a %s section %s",
			  s->index, stream_type_name(s->type),
			  s->type == STREAM_RAM ? "after the pending pages" :
			  "before the handover");
}

/* The held state in restore's order: vCPUs, the VM, the devices; then
 * everything the machine has must have come. */
static int load_held(struct pc_restorer *r, struct errmsg *err)
{
	static const unsigned order[] = { STREAM_CPU, STREAM_VM, STREAM_DEVICE };
	int ret = 0;

	for (unsigned k = 0; !ret && k < 3; k++)
		for (unsigned i = 0; !ret && i < r->nheld; i++)
			if (r->held[i].type == order[k])
				ret = restore_parts_load(&r->parts,
							 &r->held[i], err);
	return ret ? ret : restore_parts_complete(&r->parts, "the stream",
						  err);
}

/* Up to HANDOVER, then the missing pages served, the state loaded.
 * *@pc: the page service once the VM owns it. */
static int restore(struct pc_restorer *r, struct stream_reader **sr,
		   const struct restore_options *o,
		   const struct machine_hooks *hooks, struct postcopy_dst **pc,
		   struct errmsg *err)
{
	struct stream_section s;
	bool pending_seen = false;
	int ret = stream_next(*sr, &s, err);

	if (!ret)
		ret = build(r, &s, o, hooks, err);
	while (!ret) {
		ret = stream_next(*sr, &s, err);
		if (!ret)
			ret = take(r, &s, &pending_seen, err);
	}
	if (ret < 0)
		return ret;
	ret = postcopy_dst_start(r->pc, *sr, err);
	*sr = NULL;	/* the receiver's, even on failure */
	if (!ret)
		ret = vm_own(r->vm, postcopy_dst_destroy, r->pc) ?
		      errmsg_set(err, -ENOMEM, "out of memory") : 0;
	if (ret)
		return ret;
	*pc = r->pc;
	r->pc = NULL;	/* the VM's now */
	ret = load_held(r, err);
	vm_state_unquiesce_all(r->vm);
	return ret;
}

/* "ERROR why\n" to the source, through @pc once there is one (its
 * fault threads send requests on the same connection). */
static void tell_error(int conn, struct postcopy_dst *pc, const char *why)
{
	char line[400];
	int n = snprintf(line, sizeof(line), "ERROR %s\n", why);

	if (n > (int)sizeof(line) - 2) {	/* a cut message still ends */
		n = (int)sizeof(line) - 1;
		line[n - 1] = '\n';
	}
	if (pc)
		postcopy_dst_say(pc, line);
	else
		(void)send_full(conn, line, (size_t)n);
}

int postcopy_restore(int conn, const char *what,
		     const struct restore_options *o,
		     const struct machine_hooks *hooks, struct machine **out,
		     struct postcopy_dst **pc, struct errmsg *err)
{
	struct pc_restorer r = { .fd = -1 };
	struct stream_reader *sr = NULL;
	struct errmsg why = { "" };
	struct postcopy_dst *served = NULL;
	int ret;

	*out = NULL;
	*pc = NULL;
	/* the page service reads and writes its own fd: the caller's is
	 * closed once the VM runs */
	r.fd = fcntl(conn, F_DUPFD_CLOEXEC, 0);
	ret = r.fd < 0 ? errmsg_set(&why, -errno, "dup: %s", strerror(errno)) :
			 stream_reader_create(r.fd, &sr, &why);
	if (!ret)
		ret = restore(&r, &sr, o, hooks, &served, &why);
	stream_reader_destroy(sr);
	if (r.fd >= 0)
		close(r.fd);
	for (unsigned i = 0; i < r.nheld; i++)
		free((void *)r.held[i].data);
	free(r.held);
	restore_parts_release(&r.parts);
	if (!ret) {
		postcopy_dst_say(served, "READY\n");
		ret = postcopy_dst_wait_go(served, &why);
		if (ret)
			tell_error(conn, served, why.text);
	} else {
		tell_error(conn, served ? served : r.pc, why.text);
	}
	postcopy_dst_destroy(r.pc);	/* if the VM never took it */
	if (ret) {
		machine_destroy(r.m);
		return errmsg_set(err, ret, "%s: %s", what, why.text);
	}
	*out = r.m;
	*pc = served;
	return 0;
}
