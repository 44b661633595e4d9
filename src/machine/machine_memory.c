// SPDX-License-Identifier: MIT
/*
 * The machine's memory services: guest RAM's shared userfaultfd, the
 * page store and the pager (--mem-local), and the working-set monitor
 * (--wss), wired to each other: the sampler joins the pager's uffd, the
 * pager takes the monitor's reference bits and its cold map, and the
 * pages the balloon gives back.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "machine/machine_internal.h"
#include "memory/uffd_ram.h"
#include "migrate/pagemap.h"
#include "remote/page_store.h"
#include "util/page.h"
#include "virtio/balloon.h"
#include "vm/vm_state.h"

#define SECRET_MAX 64
#define DEFAULT_SECRET_BYTES 32

static int random_bytes(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Up to @len bytes, stopping early only at end of file (a FIFO or a
 * pipe may hand them over in pieces).  Bytes read, or -errno. */
static ssize_t read_upto(int fd, uint8_t *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, buf + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (!n)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* The secret file's bytes as they are (no newline stripped): the same
 * file gives the same secret everywhere. */
static int read_secret(const char *path, uint8_t *secret, size_t *len,
		       struct errmsg *err)
{
	uint8_t buf[SECRET_MAX + 1];
	ssize_t got;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return errmsg_set(err, -errno, "--mem-secret-file %s: %s", path,
				  strerror(errno));
	got = read_upto(fd, buf, sizeof(buf));
	close(fd);
	if (got < 0)
		return errmsg_set(err, (int)got, "--mem-secret-file %s: %s", path,
				  strerror((int)-got));
	if (got < 1 || got > SECRET_MAX)
		return errmsg_set(err, -EINVAL, "--mem-secret-file %s: the secret "
				  "must be 1 to %d bytes", path, SECRET_MAX);
	memcpy(secret, buf, (size_t)got);
	memset(buf, 0, sizeof(buf));
	*len = (size_t)got;
	return 0;
}

static void destroy_store(void *s)
{
	page_store_destroy(s);
}

/* Takes ownership of @obj for the VM, or destroys it. */
static int give_to_vm(struct machine *m, void (*destroy)(void *), void *obj,
		      const char *what, struct errmsg *err)
{
	int ret = vm_own(&m->vm, destroy, obj);

	if (ret) {
		destroy(obj);
		return errmsg_set(err, ret, "%s: %s", what, strerror(-ret));
	}
	return 0;
}

/* The config's store; with @own, owned by the VM (else by the restored
 * pager's slot). */
static int open_store(struct machine *m, bool own, struct errmsg *err)
{
	const struct machine_pager *o = &m->cfg.pager;
	struct page_store_params params = {
		.ram_pages = m->vm.mem.size / PAGE_SIZE,
	};
	uint8_t secret[SECRET_MAX];
	char spec_buf[PATH_MAX + 8], ns_buf[64];
	const char *spec = o->backend, *dir;
	struct page_store *store;
	uint32_t tag;
	int ret;

	if (o->secret_file)
		ret = read_secret(o->secret_file, secret, &params.secret_len, err);
	else if ((ret = random_bytes(secret, DEFAULT_SECRET_BYTES)))
		errmsg_set(err, ret, "getrandom: %s", strerror(-ret));
	else
		params.secret_len = DEFAULT_SECRET_BYTES;
	if (ret)
		return ret;
	params.secret = secret;
	params.namespace_name = o->ns;
	if (!o->ns) {
		ret = random_bytes(&tag, sizeof(tag));
		if (ret)
			return errmsg_set(err, ret, "getrandom: %s", strerror(-ret));
		snprintf(ns_buf, sizeof(ns_buf), "vm-%ld-%08x", (long)getpid(), tag);
		params.namespace_name = ns_buf;
	}
	if (!spec) {
		/* a directory: the file store makes an unlinked file in it */
		dir = getenv("TMPDIR");
		if (!dir || !*dir)
			dir = "/var/tmp";
		snprintf(spec_buf, sizeof(spec_buf), "file:%s", dir);
		spec = spec_buf;
	}
	ret = page_store_open(spec, &params, &store, err);
	memset(secret, 0, sizeof(secret));
	if (ret) {
		struct errmsg why = *err;

		return errmsg_set(err, ret, "--mem-backend %s: %s", spec, why.text);
	}
	m->store = store;
	return own ? give_to_vm(m, destroy_store, store, "--mem-local", err) : 0;
}

static void on_pager_event(void *opaque, const struct pager_event *ev)
{
	struct machine *m = opaque;

	if (m->hooks.pager_event)
		m->hooks.pager_event(m->hooks.opaque, ev);
}

/* m->pager on m->store, not yet owned. */
static int build_pager(struct machine *m, struct errmsg *why)
{
	struct pager_config cfg;

	pager_config_defaults(&cfg);
	cfg.local_pages = m->cfg.pager.local_bytes / PAGE_SIZE;
	cfg.store = m->store;
	cfg.vm = &m->vm;
	cfg.on_event = on_pager_event;
	cfg.opaque = m;
	return pager_create(&m->vm.mem, m->uffd, &cfg, &m->pager, why);
}

static int create_pager(struct machine *m, struct errmsg *err)
{
	struct errmsg why = { "" };
	int ret;

	ret = open_store(m, true, err);
	if (ret)
		return ret;
	ret = build_pager(m, &why);
	if (ret)
		return errmsg_set(err, ret, "--mem-local: %s", why.text);
	return give_to_vm(m, pager_destroy, m->pager, "--mem-local", err);
}

/* A restore's pager, which the page map creates later: owned now, in
 * the place the pager has among the VM's things (see machine_build()),
 * so that it outlives the devices' threads all the same. */
static void destroy_restored_pager(void *obj)
{
	struct machine *m = obj;

	pager_destroy(m->pager);
	page_store_destroy(m->store);
	m->pager = NULL;
	m->store = NULL;
}

/*
 * The working-set monitor's history travels with the VM as a device's
 * state does ("wss"), registered while the machine is built.  The
 * monitor itself may come later (a VM that pages builds it with the
 * pager, from the stream's page map, which precedes every state
 * section), so the entry is the machine's and asks it for the monitor.
 */
static int save_wss(void *opaque, struct state_buf *out)
{
	struct machine *m = opaque;

	return m->monitor ? wss_monitor_save(m->monitor, out) : -EINVAL;
}

static int load_wss(void *opaque, struct state_reader *in, struct errmsg *err)
{
	struct machine *m = opaque;

	if (!m->monitor)
		return errmsg_set(err, -EPROTO, "wss: the working-set monitor "
				  "is not there yet");
	return wss_monitor_load(m->monitor, in, err);
}

static const struct vm_state_ops wss_state_ops = {
	.save = save_wss,
	.load = load_wss,
	.optional = true,	/* a stream of an older rackvm has none */
};

int machine_memory_create(struct machine *m, struct errmsg *err)
{
	const struct machine_config *c = &m->cfg;
	bool sampling = c->wss.enabled && (c->wss.mode & WSS_MODE_SAMPLE);
	const char *what = c->pager.enabled ? "--mem-local" : "--wss";
	unsigned threads = c->pager.threads ? c->pager.threads :
			   MACHINE_DEFAULT_PAGER_THREADS;
	struct errmsg why = { "" };
	int ret;

	if (c->wss.enabled) {
		ret = vm_state_register(&m->vm, "wss", &wss_state_ops, m);
		if (ret)
			return errmsg_set(err, ret, "--wss: %s", strerror(-ret));
	}
	/* sampling alone on huge pages: the sampler says why it cannot */
	if (!c->pager.enabled && (!sampling || m->vm.mem.hugetlb))
		return 0;
	ret = uffd_ram_create(&m->vm.mem, c->pager.enabled ? threads : 1,
			      &m->uffd, &why);
	if (ret)
		return errmsg_set(err, ret, "%s: %s", what, why.text);
	ret = give_to_vm(m, uffd_ram_destroy, m->uffd, what, err);
	if (ret || !c->pager.enabled)
		return ret;
	if (!m->restoring)
		return create_pager(m, err);
	ret = vm_own(&m->vm, destroy_restored_pager, m);
	if (ret)
		return errmsg_set(err, ret, "--mem-local: %s", strerror(-ret));
	m->awaits_pagemap = true;
	return 0;
}

bool machine_awaits_pagemap(const struct machine *m)
{
	return m->awaits_pagemap;
}

int machine_restore_pager(struct machine *m, const struct pagemap *map,
			  struct errmsg *err)
{
	struct errmsg why = { "" };
	int ret;

	if (!m->awaits_pagemap)
		return errmsg_set(err, -EINVAL, "a page map for a VM without "
				  "--mem-local");
	if (map->has_store) {
		ret = pagemap_open_store(map, &m->store, &why);
		if (ret)
			return errmsg_set(err, ret, "--mem-local: the source's "
					  "store: %s", why.text);
	} else {
		/* a new store of its own: the config's namespace name may
		 * still be the saved VM's, which may run on and whose end
		 * drops it */
		machine_config_set_string(&m->cfg, &m->cfg.pager.ns, NULL);
		ret = open_store(m, false, err);
		if (ret)
			return ret;
	}
	ret = build_pager(m, &why);
	if (!ret)
		ret = pager_import(m->pager, map, &why);
	if (ret)
		return errmsg_set(err, ret, "--mem-local: %s", why.text);
	m->awaits_pagemap = false;
	machine_memory_balloon(m);
	return machine_memory_monitor(m, err);
}

int machine_pager_commit(struct machine *m, struct errmsg *err)
{
	return m->pager ? pager_handover_commit(m->pager, err) : 0;
}

struct pager *machine_pager(struct machine *m)
{
	return m->pager;
}

void machine_memory_balloon(struct machine *m)
{
	if (m->pager && m->balloon)
		virtio_balloon_set_discard(m->balloon, pager_discard, m->pager);
}

static void on_wss_point(void *opaque, const struct wss_point *p)
{
	struct machine *m = opaque;

	if (m->hooks.wss_point)
		m->hooks.wss_point(m->hooks.opaque, p);
}

int machine_memory_monitor(struct machine *m, struct errmsg *err)
{
	const struct machine_wss *w = &m->cfg.wss;
	struct wss_config cfg;
	struct errmsg why = { "" };
	int ret;

	if (!w->enabled)
		return 0;
	wss_config_defaults(&cfg);
	cfg.interval_ns = w->interval_ns;
	cfg.mode = w->mode;
	cfg.full = w->full;
	cfg.sample_min = w->sample_min;
	cfg.sample_max = w->sample_max;
	cfg.rel_error = w->rel_error;
	cfg.on_interval = on_wss_point;
	cfg.opaque = m;
	/* the sampler joins the shared uffd; the pager gets its bits */
	cfg.uffd = m->uffd;
	if (m->pager) {
		cfg.on_pages = pager_note_pages;
		cfg.take_referenced = pager_take_brought_in;
		cfg.pages_opaque = m->pager;
	}
	ret = wss_monitor_create(&m->vm, &cfg, &m->monitor, &why);
	if (ret)
		return errmsg_set(err, ret, "--wss: %s", why.text);
	ret = give_to_vm(m, wss_monitor_destroy, m->monitor, "--wss", err);
	if (ret) {
		m->monitor = NULL;
		return ret;
	}
	if (!m->pager)
		return 0;
	/* owned after the monitor, so it runs before the monitor goes */
	ret = vm_own(&m->vm, pager_forget_monitor, m->pager);
	if (ret)
		return errmsg_set(err, ret, "--mem-local: %s", strerror(-ret));
	pager_set_monitor(m->pager, m->monitor);
	return 0;
}

int machine_start_memory(struct machine *m, struct errmsg *err)
{
	return machine_memory_start(m, err);
}

int machine_memory_start(struct machine *m, struct errmsg *err)
{
	struct errmsg why = { "" };
	int ret = 0;

	if (m->memory_started)
		return 0;
	if (m->awaits_pagemap)
		return errmsg_set(err, -EPROTO, "--mem-local: the stream brought "
				  "no page map");
	m->memory_started = true;
	if (m->uffd)
		ret = uffd_ram_start(m->uffd, &why);
	if (!ret && m->pager)
		ret = pager_start(m->pager, &why);
	if (ret)
		return errmsg_set(err, ret, "%s: %s",
				  m->pager ? "--mem-local" : "--wss", why.text);
	return 0;
}

int machine_memory_finish(struct machine *m, struct errmsg *err)
{
	const char *csv = m->cfg.wss.csv;
	FILE *f;
	int ret;

	if (m->pager)
		pager_settle(m->pager);
	if (!m->monitor || !csv)
		return 0;
	f = fopen(csv, "w");
	if (!f)
		return errmsg_set(err, -errno, "--wss-csv %s: %s", csv,
				  strerror(errno));
	ret = wss_monitor_write_csv(m->monitor, f);
	if (fclose(f) || ret)
		return errmsg_set(err, -EIO, "--wss-csv %s: write error", csv);
	return 0;
}

int machine_set_mem_local(struct machine *m, uint64_t bytes,
			  struct errmsg *err)
{
	if (!m->pager)
		return errmsg_set(err, -ENOENT, "this VM has no pager: start it "
				  "with --mem-local to change mem_local later");
	if (bytes % PAGE_SIZE || bytes < MACHINE_MIN_LOCAL_BYTES ||
	    bytes > m->cfg.mem_size)
		return errmsg_set(err, -EINVAL, "mem_local must be a multiple of "
				  "4K from %lluM to the guest's RAM (%llu bytes)",
				  MACHINE_MIN_LOCAL_BYTES >> 20,
				  (unsigned long long)m->cfg.mem_size);
	/* the evictor and the fault threads follow the new limit on their
	 * own: this call only stores it and wakes them */
	pager_set_limit(m->pager, bytes / PAGE_SIZE);
	return 0;
}

int machine_set_balloon_target(struct machine *m, uint64_t bytes,
			       struct errmsg *err)
{
	uint64_t ram;

	if (!m->balloon)
		return errmsg_set(err, -ENOENT, "this VM has no balloon: start it "
				  "with --balloon");
	ram = virtio_balloon_ram_pages(m->balloon) * VIRTIO_BALLOON_PAGE_SIZE;
	if (bytes % VIRTIO_BALLOON_PAGE_SIZE || bytes > ram)
		return errmsg_set(err, -EINVAL, "balloon_target must be a multiple "
				  "of 4K and at most the guest's RAM (%llu bytes)",
				  (unsigned long long)ram);
	return virtio_balloon_set_target(m->balloon,
					 (uint32_t)(bytes / VIRTIO_BALLOON_PAGE_SIZE));
}
