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

#include "migrate/lazy_ram.h"
#include "migrate/pagemap.h"
#include "migrate/restore_parts.h"
#include "migrate/stream.h"
#include "util/clock.h"
#include "util/full_io.h"
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
	struct restore_parts parts;
	uint64_t built_ns;	/* when the machine was built: for the timing line */
	bool migration;		/* a migration stream, not a snapshot file */
	/* a VM that pages: its page map, as its pieces come, then loaded */
	uint8_t *map_bytes;
	uint64_t map_len, map_got;
	struct pagemap *map;
	struct errmsg *page_err;	/* put_page()'s reason */
	uint32_t section;	/* lazy: the RAM section's, for lazy_ram_set() */
};

static int refuse_unsupported(const struct machine_config *c, bool lazy,
			      struct errmsg *err)
{
	if (c->pager.enabled && lazy)
		return errmsg_set(err, -ENOTSUP, "a lazy restore of a VM with "
				  "--mem-local is not supported (the pager and "
				  "the lazy loader would share guest RAM's "
				  "faults): restore it eagerly");
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
	ret = restore_config(s, o, &cfg, err);
	if (!ret)
		ret = refuse_unsupported(&cfg, r->lazy, err);
	if (!ret)
		ret = machine_create_for_restore(&cfg, hooks, &r->m, err);
	machine_config_release(&cfg);
	if (ret)
		return ret;
	r->vm = machine_vm(r->m);
	ret = restore_parts_init(&r->parts, r->vm, err);
	if (!ret && r->lazy)
		ret = lazy_ram_create(r->vm, r->fd, r->path, &r->lazy_ram, err);
	return ret;
}

static int put_page(void *opaque, uint64_t page, const uint8_t *data,
		    uint64_t stream_offset)
{
	struct restorer *r = opaque;
	uint8_t *dst = r->vm->mem.base + page * PAGE_SIZE;

	/* a page left in the store must stay a hole: its first touch
	 * fetches it */
	if (r->map && r->map->kind[page] != PAGEMAP_SEND)
		return errmsg_set(r->page_err, -EBADMSG, "guest page 0x%llx is "
				  "in the store by the page map, yet it came in "
				  "the stream", (unsigned long long)page);
	/* lazy: raw sections only, where the offset is 0 for a zero page
	 * (a deferred section gives no data at all) */
	if (r->lazy)
		lazy_ram_set(r->lazy_ram, page, stream_offset, r->section);
	else if (data)
		memcpy(dst, data, PAGE_SIZE);
	else
		memset(dst, 0, PAGE_SIZE);
	return 0;
}

/* A snapshot of a VM that pages holds all its RAM (snapshot.c read
 * the evicted pages back): the pager starts on a new store from the
 * config, with every page the file brings resident until the evictor,
 * once the VM runs, brings it down to --mem-local. */
static int snapshot_pager(struct restorer *r, struct errmsg *err)
{
	struct pagemap *none;
	int ret;

	if (r->migration || !machine_awaits_pagemap(r->m))
		return 0;
	ret = pagemap_alloc(r->vm->mem.size / PAGE_SIZE, &none);
	if (ret)
		return errmsg_set(err, ret, "out of memory");
	ret = machine_restore_pager(r->m, none, err);
	pagemap_free(none);
	return ret;
}

static int load_ram(struct restorer *r, const struct stream_section *s,
		    struct errmsg *err)
{
	int ret;

	if (r->lazy && s->compressed)
		return errmsg_set(err, -ENOTSUP, "section %u: a compressed "
				  "snapshot cannot be restored lazily", s->index);
	if (r->lazy_started)
		return errmsg_set(err, -EPROTO, "section %u: guest RAM after "
				  "the VM's state", s->index);
	if (machine_awaits_pagemap(r->m) && r->migration)
		return errmsg_set(err, -EPROTO, "section %u: guest RAM before "
				  "the page map of a VM with --mem-local",
				  s->index);
	ret = snapshot_pager(r, err);
	if (ret)
		return ret;
	r->page_err = err;
	if (!s->deferred) {
		r->section = LAZY_RAM_CHECKED;
		return stream_section_pages(s, r->vm->mem.size / PAGE_SIZE,
					    put_page, r, err);
	}
	/* its checksum: on the first fault on one of its pages */
	ret = lazy_ram_add_section(r->lazy_ram, &s->check, &r->section, err);
	if (ret)
		return ret;
	return stream_section_pages(s, r->vm->mem.size / PAGE_SIZE, put_page,
				    r, err);
}

/* A piece of the page map; the whole map builds the pager. */
static int load_pagemap(struct restorer *r, const struct stream_section *s,
			struct errmsg *err)
{
	uint64_t pages = r->vm->mem.size / PAGE_SIZE, total, at;
	const uint8_t *bytes;
	struct errmsg why = { "" };
	size_t len;
	int ret;

	ret = stream_section_pagemap(s, &total, &at, &bytes, &len, err);
	if (ret)
		return ret;
	if (!machine_awaits_pagemap(r->m))
		return errmsg_set(err, -EPROTO, "section %u: a page map for a "
				  "VM that %s", s->index, r->map ? "has one "
				  "already" : "does not page (--mem-local)");
	/* 9 bytes a page at most (pagemap.h), and the credentials */
	if (total > pages * 9 + 65536 || (r->map_bytes && total != r->map_len) ||
	    at != r->map_got)
		return errmsg_set(err, -EBADMSG, "section %u: a page map piece "
				  "at %llu of %llu bytes, not the next one of a "
				  "map this VM's size", s->index,
				  (unsigned long long)at, (unsigned long long)total);
	if (!r->map_bytes) {
		r->map_bytes = malloc(total);
		if (!r->map_bytes)
			return errmsg_set(err, -ENOMEM, "out of memory");
		r->map_len = total;
	}
	memcpy(r->map_bytes + at, bytes, len);
	r->map_got += len;
	if (r->map_got < r->map_len)
		return 0;
	ret = pagemap_load(r->map_bytes, r->map_len, pages, &r->map, &why);
	if (ret)
		return errmsg_set(err, ret, "section %u: %s", s->index, why.text);
	return machine_restore_pager(r->m, r->map, err);
}

/* Guest RAM is complete once the state sections begin; the devices'
 * loads may read their rings, so a lazy RAM serves faults from here. */
static int ram_complete(struct restorer *r, struct errmsg *err)
{
	int ret;

	ret = snapshot_pager(r, err);
	if (ret)
		return ret;
	if (machine_pager(r->m) || machine_awaits_pagemap(r->m))
		return machine_start_memory(r->m, err);
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

/* A state part, checked and loaded at once. */
static int load_part(struct restorer *r, const struct stream_section *s,
		     struct errmsg *err)
{
	struct restore_part part;
	int ret = restore_parts_take(&r->parts, s, &part, err);

	return ret ? ret : restore_parts_load(&r->parts, &part, err);
}

/* Everything before it is loaded (each RAM section is written when it
 * comes): the source may go on. */
static int answer_sync(struct restorer *r, const struct stream_section *s,
		       struct errmsg *err)
{
	static const char synced[] = "SYNCED\n";

	if (!r->migration)
		return errmsg_set(err, -EPROTO, "section %u: a sync section "
				  "outside a migration", s->index);
	if (send_full(r->fd, synced, sizeof(synced) - 1))
		return errmsg_set(err, -ECONNRESET, "section %u: the source "
				  "went away", s->index);
	return 0;
}

static int load_section(struct restorer *r, const struct stream_section *s,
			struct errmsg *err)
{
	int ret;

	if ((unsigned)s->type == STREAM_PAGEMAP)
		return load_pagemap(r, s, err);
	if ((unsigned)s->type == STREAM_SYNC)
		return answer_sync(r, s, err);
	ret = s->type == STREAM_RAM ? 0 : ram_complete(r, err);
	if (ret)
		return ret;
	switch (s->type) {
	case STREAM_RAM:
		return load_ram(r, s, err);
	case STREAM_VM:
	case STREAM_CPU:
	case STREAM_DEVICE:
		return load_part(r, s, err);
	case STREAM_END:
		return 0;
	case STREAM_CONFIG:
		break;
	}
	return errmsg_set(err, -EBADMSG, "section %u: unexpected %s section",
			  s->index, stream_type_name(s->type));
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
	r->built_ns = monotonic_ns();
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
	return ret ? ret : restore_parts_complete(&r->parts, "the snapshot",
						  err);
}

/* The stream on @fd into a new machine; @what names it in messages. */
static int restore_fd(int fd, const char *what, bool lazy, bool migration,
		      const struct restore_options *o,
		      const struct machine_hooks *hooks, struct machine **out,
		      uint64_t *built_ns, struct errmsg *err)
{
	static const struct restore_options none;
	struct restorer r = { .path = what, .fd = fd, .lazy = lazy,
			      .migration = migration };
	struct stream_reader *sr = NULL;
	struct errmsg why = { "" };
	int ret;

	*out = NULL;
	ret = stream_reader_create(r.fd, &sr, &why);
	/* a lazy restore reads pages on first touch, and checks their
	 * sections then (a file that is not regular is read in full) */
	if (!ret && lazy)
		(void)stream_reader_defer_ram(sr);
	if (!ret)
		ret = read_all(&r, sr, o ? o : &none, hooks, &why);
	stream_reader_destroy(sr);
	restore_parts_release(&r.parts);
	lazy_ram_destroy(r.lazy_ram);	/* if the VM never took it */
	pagemap_free(r.map);
	free(r.map_bytes);
	if (ret) {
		machine_destroy(r.m);
		return errmsg_set(err, ret, "%s: %s", what, why.text);
	}
	*out = r.m;
	*built_ns = r.built_ns;
	return 0;
}

int snapshot_restore(const char *path, const struct restore_options *o,
		     const struct machine_hooks *hooks, struct machine **out,
		     struct errmsg *err)
{
	uint64_t t0 = monotonic_ns(), built = 0, now;
	char what[512];
	int fd, ret;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errmsg_set(err, -errno, "cannot open the snapshot %s: %s",
				  path, strerror(errno));
	snprintf(what, sizeof(what), "snapshot %s", path);
	ret = restore_fd(fd, what, o && o->lazy, false, o, hooks, out, &built,
			 err);
	close(fd);
	now = monotonic_ns();
	if (!ret && o && o->times) {
		o->times->built_ms = (double)(built - t0) / 1e6;
		o->times->ready_ms = (double)(now - t0) / 1e6;
	}
	return ret;
}

int snapshot_restore_stream(int fd, const char *what,
			    const struct restore_options *o,
			    const struct machine_hooks *hooks,
			    struct machine **out, struct errmsg *err)
{
	uint64_t built;

	if (o && o->lazy)
		return errmsg_set(err, -EINVAL, "%s: a stream cannot be "
				  "restored lazily", what);
	return restore_fd(fd, what, false, true, o, hooks, out, &built, err);
}
