// SPDX-License-Identifier: MIT
/*
 * Writing a snapshot (snapshot.h): a paused VM's config, RAM, KVM state
 * and device states, in that order, as one stream (stream.h).  RAM goes
 * first so that a migration can send it the same way while the VM still
 * runs; the devices go last, once they stopped moving.
 */
#include "migrate/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "memory/pager.h"
#include "migrate/kvm_state.h"
#include "migrate/migrate_internal.h"
#include "migrate/pagemap.h"
#include "migrate/stream.h"
#include "util/clock.h"
#include "util/full_io.h"
#include "util/page.h"
#include "util/state_buf.h"
#include "vm/vm_state.h"


static int check_saveable(struct machine *m, struct errmsg *err)
{
	if (machine_state(m) != MACHINE_PAUSED)
		return errmsg_set(err, -EBUSY, "the VM is %s: pause it first",
				  machine_state_name(machine_state(m)));
	return 0;
}

int migrate_put_config(struct stream_writer *w, struct machine *m,
		       struct errmsg *err)
{
	char *json = machine_config_to_json(machine_config(m));
	int ret;

	if (!json)
		return errmsg_set(err, -ENOMEM, "out of memory");
	ret = stream_put(w, STREAM_CONFIG, json, strlen(json), err);
	free(json);
	return ret;
}

/* [*start, *end) of the next run of the memfd that holds data, from
 * @off; false past the last.  Holes were never written (or the balloon
 * gave them back): they read as zeros and are left out of the stream,
 * which a new VM's RAM already is. */
static bool next_data(int memfd, uint64_t size, uint64_t off, uint64_t *start,
		      uint64_t *end)
{
	off_t d, h;

	if (off >= size)
		return false;
	d = lseek(memfd, (off_t)off, SEEK_DATA);
	if (d < 0) {
		if (errno == ENXIO)
			return false;
		/* no SEEK_DATA here (hugetlbfs): everything is data */
		*start = off;
		*end = size;
		return true;
	}
	h = lseek(memfd, d, SEEK_HOLE);
	*start = (uint64_t)d & ~(uint64_t)(PAGE_SIZE - 1);
	*end = h < 0 || (uint64_t)h > size ? size :
	       ((uint64_t)h + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
	return *start < *end;
}

/* Guest RAM as RAM sections, read with pread() from the memfd: no page
 * faults on the guest's mapping, no hole filled in. */
static int put_ram(struct stream_writer *w, const struct guest_mem *mem,
		   struct errmsg *err)
{
	const size_t chunk = STREAM_PAGES_MAX * PAGE_SIZE;
	uint64_t off = 0, start, end;
	uint8_t *buf = malloc(chunk);
	int ret = 0;

	if (!buf)
		return errmsg_set(err, -ENOMEM, "out of memory");
	while (!ret && next_data(mem->memfd, mem->size, off, &start, &end)) {
		for (off = start; !ret && off < end; ) {
			size_t n = end - off < chunk ? (size_t)(end - off) : chunk;

			ret = pread_full(mem->memfd, buf, n, off);
			if (ret) {
				errmsg_set(err, ret, "reading guest RAM at "
					   "0x%llx: %s", (unsigned long long)off,
					   strerror(-ret));
				break;
			}
			ret = stream_put_pages(w, off / PAGE_SIZE, buf,
					       (uint32_t)(n / PAGE_SIZE), err);
			off += n;
		}
	}
	free(buf);
	return ret;
}

/* A VM that pages: every page but the zero ones, read through its
 * frozen pager (from RAM or from the store, without faulting), so that
 * the file holds all of it; the pager then goes on as before. */
static int put_paged_ram(struct stream_writer *w, struct pager *p,
			 struct errmsg *err)
{
	uint8_t *buf = malloc(STREAM_PAGES_MAX * PAGE_SIZE);
	struct pager_handover_stats hs;
	struct pagemap *map = NULL;
	struct state_buf blob;
	uint64_t page = 0;
	int ret;

	if (!buf)
		return errmsg_set(err, -ENOMEM, "out of memory");
	state_buf_init(&blob);
	ret = pager_handover_begin(p, &blob, &map, &hs, err);
	state_buf_release(&blob);	/* the store's keys: not for a file */
	while (!ret && page < map->ram_pages) {
		uint64_t first = page;
		uint32_t n = 0;

		while (!ret && page < map->ram_pages && n < STREAM_PAGES_MAX &&
		       map->kind[page] != PAGEMAP_ZERO)
			ret = pager_read_page(p, page++,
					      buf + (size_t)n++ * PAGE_SIZE, err);
		if (!ret && n)
			ret = stream_put_pages(w, first, buf, n, err);
		page += !n;
	}
	if (map)
		pager_handover_cancel(p);
	pagemap_free(map);
	free(buf);
	return ret;
}

static int put_kvm_state(struct stream_writer *w, struct vm *vm,
			 struct errmsg *err)
{
	struct state_buf b;
	int ret = 0;

	/* the vCPUs first: loading the IOAPIC delivers what it has pending
	 * to local APICs that must be in place by then */
	state_buf_init(&b);
	for (unsigned i = 0; !ret && i < vm->ncpus; i++) {
		b.len = 0;
		ret = kvm_state_save_cpu(&vm->vcpus[i], &b, err);
		if (!ret)
			ret = stream_put_cpu(w, i, b.data, b.len, err);
	}
	if (!ret) {
		b.len = 0;
		ret = kvm_state_save_vm(vm, &b, err);
	}
	if (!ret)
		ret = stream_put(w, STREAM_VM, b.data, b.len, err);
	state_buf_release(&b);
	return ret;
}

static int put_devices(struct stream_writer *w, struct vm *vm,
		       struct errmsg *err)
{
	struct state_buf b;
	int ret = 0;

	state_buf_init(&b);
	for (unsigned i = 0; !ret && i < vm_state_count(vm); i++) {
		const struct vm_state_entry *e = vm_state_at(vm, i);

		b.len = 0;
		ret = e->ops->save(e->opaque, &b);
		if (ret)
			errmsg_set(err, ret, "saving %s: %s", e->name,
				   strerror(-ret));
		else
			ret = stream_put_device(w, e->name, b.data, b.len, err);
	}
	state_buf_release(&b);
	return ret;
}

int migrate_put_state(struct stream_writer *w, struct vm *vm,
		      struct errmsg *err)
{
	int ret = put_kvm_state(w, vm, err);

	return ret ? ret : put_devices(w, vm, err);
}

int snapshot_write(struct machine *m, int fd, const struct snapshot_options *o,
		   struct snapshot_result *res, struct errmsg *err)
{
	struct stream_options so = { .compress = o && o->compress };
	struct vm *vm = machine_vm(m);
	struct stream_counts counts;
	struct stream_writer *w;
	uint64_t t0 = monotonic_ns();
	int ret = check_saveable(m, err);

	if (ret)
		return ret;
	ret = stream_writer_create(fd, MIGRATE_PRODUCER, &so, &w, err);
	if (ret)
		return ret;
	/* devices write guest RAM too: they stop before RAM is read */
	ret = vm_state_quiesce_all(vm, err);
	if (ret) {
		stream_writer_destroy(w);
		return ret;
	}
	ret = migrate_put_config(w, m, err);
	if (!ret)
		ret = machine_pager(m) ? put_paged_ram(w, machine_pager(m), err) :
		      put_ram(w, &vm->mem, err);
	if (!ret)
		ret = migrate_put_state(w, vm, err);
	if (!ret)
		ret = stream_finish(w, err);
	vm_state_unquiesce_all(vm);
	stream_writer_counts(w, &counts);
	stream_writer_destroy(w);
	if (!ret && res)
		*res = (struct snapshot_result){
			.bytes = counts.bytes, .pages = counts.pages,
			.zero_pages = counts.zero_pages,
			.ns = monotonic_ns() - t0,
		};
	return ret;
}

int snapshot_save(struct machine *m, const char *path,
		  const struct snapshot_options *o, struct snapshot_result *res,
		  struct errmsg *err)
{
	struct errmsg why = { "" };
	int fd, ret = check_saveable(m, &why);

	if (ret)	/* before the file exists */
		return errmsg_set(err, ret, "snapshot %s: %s", path, why.text);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errmsg_set(err, -errno, "cannot create %s: %s%s", path,
				  strerror(errno), errno == EEXIST ?
				  " (a snapshot never replaces a file)" : "");
	ret = snapshot_write(m, fd, o, res, &why);
	if (!ret && fsync(fd) < 0)
		ret = errmsg_set(&why, -errno, "fsync: %s", strerror(errno));
	if (close(fd) < 0 && !ret)
		ret = errmsg_set(&why, -errno, "close: %s", strerror(errno));
	if (ret) {
		unlink(path);
		return errmsg_set(err, ret, "snapshot %s: %s", path, why.text);
	}
	return 0;
}
