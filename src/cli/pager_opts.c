// SPDX-License-Identifier: MIT
#include "cli/pager_opts.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "memory/pager.h"
#include "memory/uffd_ram.h"
#include "remote/page_store.h"
#include "util/parse.h"
#include "util/page.h"

#define DEFAULT_THREADS 2
#define MIN_LOCAL_BYTES ((uint64_t)PAGER_MIN_LOCAL_PAGES * PAGE_SIZE)
#define SECRET_MAX 64
#define DEFAULT_SECRET_BYTES 32

static int pager_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, "rackvm run: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n(see rackvm run --help)\n");
	return -1;
}

void pager_options_init(struct pager_options *o)
{
	*o = (struct pager_options){ .threads = DEFAULT_THREADS };
}

int pager_options_parse(struct pager_options *o, const char *name,
			const char *arg)
{
	if (!strcmp(name, "mem-local")) {
		if (parse_size(arg, &o->local_bytes) ||
		    o->local_bytes < MIN_LOCAL_BYTES)
			return pager_usage("invalid --mem-local '%s': give a size of at least "
					   "4M, like 64M or 1G", arg);
		o->enabled = true;
		return 0;
	}
	o->other_given = true;
	if (!strcmp(name, "mem-backend")) {
		if (!*arg)
			return pager_usage("--mem-backend needs a SPEC%s", "");
		o->backend = arg;
	} else if (!strcmp(name, "mem-namespace")) {
		o->ns = arg;
	} else if (!strcmp(name, "mem-secret-file")) {
		if (!*arg)
			return pager_usage("--mem-secret-file needs a file name%s", "");
		o->secret_file = arg;
	} else if (!strcmp(name, "pager-threads")) {
		if (parse_uint(arg, 1, UFFD_RAM_MAX_THREADS, &o->threads))
			return pager_usage("invalid --pager-threads '%s': give 1 to 16", arg);
	}
	return 0;
}

int pager_options_check(const struct pager_options *o, uint64_t mem_size,
			bool hugetlb, bool direct_disk)
{
	(void)mem_size;	/* --mem-local >= --mem is allowed: no eviction */
	if (!o->enabled) {
		if (o->other_given)
			return pager_usage("--mem-backend, --mem-namespace, --mem-secret-file "
					   "and --pager-threads need --mem-local%s", "");
		return 0;
	}
	if (hugetlb)
		return pager_usage("--mem-local needs 4 KiB guest pages: it cannot be "
				   "combined with --hugetlb%s", "");
	/* O_DIRECT pins guest pages before transferring into them: a page
	 * evicted meanwhile would lose what the disk wrote (pager.h) */
	if (direct_disk)
		return pager_usage("--mem-local cannot be combined with a --disk "
				   "...,direct (O_DIRECT)%s", "");
	return 0;
}

/* --- the store's identity -------------------------------------------------- */

static int random_bytes(void *buf, size_t len)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = getrandom(p, len, 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The secret file's bytes as they are (no newline stripped): the same
 * file gives the same secret everywhere. */
static int read_secret(const char *path, uint8_t *secret, size_t *len)
{
	uint8_t buf[SECRET_MAX + 1];
	size_t got = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "rackvm: --mem-secret-file %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	while (got < sizeof(buf)) {
		ssize_t n = read(fd, buf + got, sizeof(buf) - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fprintf(stderr, "rackvm: --mem-secret-file %s: %s\n", path,
				strerror(errno));
			close(fd);
			return -1;
		}
		if (!n)
			break;
		got += (size_t)n;
	}
	close(fd);
	if (got < 1 || got > SECRET_MAX) {
		fprintf(stderr, "rackvm: --mem-secret-file %s: the secret must be 1 to "
			"%d bytes\n", path, SECRET_MAX);
		return -1;
	}
	memcpy(secret, buf, got);
	*len = got;
	return 0;
}

static void destroy_store(void *s)
{
	page_store_destroy(s);
}

static int open_store(struct vm *vm, const struct pager_options *o,
		      struct pager_cli *c)
{
	struct page_store_params params = {
		.ram_pages = vm->mem.size / 4096,
	};
	uint8_t secret[SECRET_MAX];
	char spec_buf[PATH_MAX + 8], ns_buf[64];
	const char *spec = o->backend, *dir;
	struct errmsg err = { "" };
	uint32_t tag;
	int ret;

	if (o->secret_file) {
		if (read_secret(o->secret_file, secret, &params.secret_len))
			return -1;
	} else if (random_bytes(secret, DEFAULT_SECRET_BYTES)) {
		fprintf(stderr, "rackvm: getrandom: %s\n", strerror(errno));
		return -1;
	} else {
		params.secret_len = DEFAULT_SECRET_BYTES;
	}
	params.secret = secret;
	params.namespace_name = o->ns;
	if (!o->ns) {
		if (random_bytes(&tag, sizeof(tag))) {
			fprintf(stderr, "rackvm: getrandom: %s\n", strerror(errno));
			return -1;
		}
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
	ret = page_store_open(spec, &params, &c->store, &err);
	memset(secret, 0, sizeof(secret));
	if (ret) {
		fprintf(stderr, "rackvm: --mem-backend %s: %s\n", spec, err.text);
		return -1;
	}
	ret = vm_own(vm, destroy_store, c->store);
	if (ret) {
		page_store_destroy(c->store);
		c->store = NULL;
		fprintf(stderr, "rackvm: --mem-local: %s\n", strerror(-ret));
		return -1;
	}
	return 0;
}

/* --- the pager's messages ---------------------------------------------------- */

static void print_event(void *opaque, const struct pager_event *ev)
{
	unsigned long long page = ev->page;

	(void)opaque;
	switch (ev->kind) {
	case PAGER_EVENT_UNREACHABLE:
		fprintf(stderr, "pager: page %llu unreachable on every server (%s): "
			"VM paused until one comes back\n", page, ev->store);
		break;
	case PAGER_EVENT_REACHABLE:
		fprintf(stderr, "pager: page %llu reachable again (%s): VM resumed\n",
			page, ev->store);
		break;
	case PAGER_EVENT_PAGE_LOST:
		fprintf(stderr, "pager: page %llu cannot be brought back from %s: %s: "
			"stopping the VM\n", page, ev->store, ev->detail);
		break;
	case PAGER_EVENT_EVICT_FAILED:
		fprintf(stderr, "pager: cannot evict to %s (%s): keeping the pages "
			"resident, retrying\n", ev->store, ev->detail);
		break;
	case PAGER_EVENT_EVICT_RESUMED:
		fprintf(stderr, "pager: evicting to %s again\n", ev->store);
		break;
	}
}

/* --- lifetime ------------------------------------------------------------------ */

int pager_cli_create(struct vm *vm, const struct pager_options *o,
		     bool sampling, struct pager_cli *c)
{
	struct pager_config cfg;
	struct errmsg err = { "" };
	int ret;

	*c = (struct pager_cli){ .vm = vm };
	/* sampling alone on huge pages: the sampler says why it cannot */
	if (!o->enabled && (!sampling || vm->mem.hugetlb))
		return 0;
	ret = uffd_ram_create(&vm->mem, o->enabled ? o->threads : 1, &c->uffd,
			      &err);
	if (!ret) {
		ret = vm_own(vm, uffd_ram_destroy, c->uffd);
		if (ret) {
			uffd_ram_destroy(c->uffd);
			errmsg_set(&err, ret, "%s", strerror(-ret));
		}
	}
	if (ret) {
		c->uffd = NULL;
		fprintf(stderr, "rackvm: %s: %s\n",
			o->enabled ? "--mem-local" : "--wss", err.text);
		return -1;
	}
	if (!o->enabled)
		return 0;
	if (open_store(vm, o, c))
		return -1;
	pager_config_defaults(&cfg);
	cfg.local_pages = o->local_bytes / 4096;
	cfg.store = c->store;
	cfg.vm = vm;
	cfg.on_event = print_event;
	ret = pager_create(&vm->mem, c->uffd, &cfg, &c->pager, &err);
	if (!ret) {
		ret = vm_own(vm, pager_destroy, c->pager);
		if (ret) {
			pager_destroy(c->pager);
			errmsg_set(&err, ret, "%s", strerror(-ret));
		}
	}
	if (ret) {
		c->pager = NULL;
		fprintf(stderr, "rackvm: --mem-local: %s\n", err.text);
		return -1;
	}
	return 0;
}

void pager_cli_wss(struct pager_cli *c, struct wss_options *w)
{
	w->cfg.uffd = c->uffd;
	if (c->pager) {
		w->cfg.on_pages = pager_note_pages;
		w->cfg.pages_opaque = c->pager;
	}
}

int pager_cli_monitor(struct pager_cli *c, struct wss_monitor *m)
{
	int ret;

	if (!c->pager || !m)
		return 0;
	/* owned after the monitor, so it runs before the monitor goes */
	ret = vm_own(c->vm, pager_forget_monitor, c->pager);
	if (ret) {
		fprintf(stderr, "rackvm: --mem-local: %s\n", strerror(-ret));
		return -1;
	}
	pager_set_monitor(c->pager, m);
	return 0;
}

int pager_cli_start(struct pager_cli *c)
{
	struct errmsg err = { "" };
	int ret = 0;

	if (c->uffd)
		ret = uffd_ram_start(c->uffd, &err);
	if (!ret && c->pager)
		ret = pager_start(c->pager, &err);
	if (ret) {
		fprintf(stderr, "rackvm: %s: %s\n", c->pager ? "--mem-local" : "--wss",
			err.text);
		return -1;
	}
	if (c->pager) {
		struct pager_stats st;
		char desc[256];

		pager_get_stats(c->pager, &st);
		c->store->ops->describe(c->store, desc, sizeof(desc));
		fprintf(stderr, "pager: keeping at most %llu of %llu pages resident, "
			"the others in %s\n", (unsigned long long)st.limit_pages,
			(unsigned long long)st.ram_pages, desc);
	}
	return 0;
}

void pager_cli_finish(struct pager_cli *c)
{
	struct pager_stats st;
	double hit;

	if (!c->pager)
		return;
	pager_settle(c->pager);
	pager_get_stats(c->pager, &st);
	hit = st.prefetched ? (double)st.prefetch_hits / (double)st.prefetched : 0;
	fprintf(stderr, "pager: resident=%llu remote=%llu zero=%llu faults=%llu "
		"fetches=%llu fetched_pages=%llu prefetch_hit=%.2f evictions=%llu "
		"bytes_in=%llu bytes_out=%llu fault_p50_us=%llu fault_p90_us=%llu "
		"fault_p99_us=%llu\n",
		(unsigned long long)st.resident, (unsigned long long)st.remote,
		(unsigned long long)st.zero, (unsigned long long)st.faults,
		(unsigned long long)st.fetches,
		(unsigned long long)st.fetched_pages, hit,
		(unsigned long long)st.evictions,
		(unsigned long long)st.bytes_in, (unsigned long long)st.bytes_out,
		(unsigned long long)st.fault_p50_us,
		(unsigned long long)st.fault_p90_us,
		(unsigned long long)st.fault_p99_us);
}
