// SPDX-License-Identifier: MIT
/*
 * The machine config's defaults, ownership of its strings, copies,
 * comparison and the checks every source of a config (flags, JSON)
 * shares, so a VM is refused for the same reasons whoever asks for it.
 */
#include "machine/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "boot/boot.h"
#include "memory/wss_monitor.h"
#include "util/page.h"

void machine_config_init(struct machine_config *c)
{
	struct wss_config w;

	wss_config_defaults(&w);
	*c = (struct machine_config){
		.console = "stdio",
		.mem_size = MACHINE_DEFAULT_MEM,
		.cpus = 1,
		/* the guest's statistics are asked for every second */
		.balloon_opts = { .stats_interval_ms = 1000 },
		.wss = {
			.log = VM_DIRTY_LOG_AUTO,
			.interval_ns = w.interval_ns,
			.mode = w.mode,
			.full = w.full,
			.sample_min = w.sample_min,
			.sample_max = w.sample_max,
			.rel_error = w.rel_error,
		},
	};
}

void machine_config_release(struct machine_config *c)
{
	for (unsigned i = 0; i < c->nowned; i++)
		free(c->owned[i]);
	free(c->owned);
	machine_config_init(c);
}

int machine_config_set_string(struct machine_config *c, const char **field,
			      const char *s)
{
	char **grown, *copy;

	if (!s) {
		*field = NULL;
		return 0;
	}
	copy = strdup(s);
	grown = copy ? realloc(c->owned, (c->nowned + 1) * sizeof(*grown)) :
		       NULL;
	if (!grown) {
		free(copy);
		return -ENOMEM;
	}
	c->owned = grown;
	c->owned[c->nowned++] = copy;
	*field = copy;
	return 0;
}

/* Every string field, for the copy and the comparison. */
static unsigned string_fields(struct machine_config *c, const char ***out)
{
	unsigned n = 0;

	out[n++] = &c->kernel;
	out[n++] = &c->initrd;
	out[n++] = &c->cmdline;
	out[n++] = &c->console;
	out[n++] = &c->vconsole.out_path;
	out[n++] = &c->vconsole.in_path;
	out[n++] = &c->name;
	out[n++] = &c->api_socket;
	out[n++] = &c->wss.csv;
	out[n++] = &c->pager.backend;
	out[n++] = &c->pager.ns;
	out[n++] = &c->pager.secret_file;
	for (unsigned i = 0; i < c->ndisks; i++)
		out[n++] = &c->disks[i].path;
	for (unsigned i = 0; i < c->nnets; i++)
		out[n++] = &c->nets[i].tap;
	return n;
}

#define MAX_STRING_FIELDS (12 + 2 * VIRTIO_MMIO_MAX_DEVICES)

int machine_config_copy(struct machine_config *dst,
			const struct machine_config *src)
{
	const char **fields[MAX_STRING_FIELDS];
	unsigned n;

	*dst = *src;
	dst->owned = NULL;
	dst->nowned = 0;
	n = string_fields(dst, fields);
	for (unsigned i = 0; i < n; i++) {
		if (machine_config_set_string(dst, fields[i], *fields[i])) {
			machine_config_release(dst);
			return -ENOMEM;
		}
	}
	return 0;
}

static bool same_string(const char *a, const char *b)
{
	return a == b || (a && b && !strcmp(a, b));
}

static bool same_wss(const struct machine_wss *a, const struct machine_wss *b)
{
	return a->enabled == b->enabled && a->log == b->log &&
	       a->interval_ns == b->interval_ns && a->mode == b->mode &&
	       a->full == b->full && a->sample_min == b->sample_min &&
	       a->sample_max == b->sample_max && a->rel_error == b->rel_error;
}

static bool same_devices(const struct machine_config *a,
			 const struct machine_config *b)
{
	for (unsigned i = 0; i < a->ndisks; i++)
		if (a->disks[i].read_only != b->disks[i].read_only ||
		    a->disks[i].direct != b->disks[i].direct)
			return false;
	for (unsigned i = 0; i < a->nnets; i++)
		if (a->nets[i].has_mac != b->nets[i].has_mac ||
		    a->nets[i].no_offloads != b->nets[i].no_offloads ||
		    (a->nets[i].has_mac &&
		     memcmp(a->nets[i].mac, b->nets[i].mac, ETH_ADDR_LEN)))
			return false;
	return a->rng == b->rng && a->balloon == b->balloon &&
	       (!a->balloon ||
		(a->balloon_opts.deflate_on_oom == b->balloon_opts.deflate_on_oom &&
		 a->balloon_opts.free_page_reporting ==
		 b->balloon_opts.free_page_reporting &&
		 a->balloon_opts.stats_interval_ms ==
		 b->balloon_opts.stats_interval_ms));
}

bool machine_config_equal(const struct machine_config *a,
			  const struct machine_config *b)
{
	const char **fa[MAX_STRING_FIELDS], **fb[MAX_STRING_FIELDS];
	struct machine_config x = *a, y = *b;
	unsigned n;

	if (a->ndisks != b->ndisks || a->nnets != b->nnets)
		return false;
	n = string_fields(&x, fa);
	string_fields(&y, fb);
	for (unsigned i = 0; i < n; i++)
		if (!same_string(*fa[i], *fb[i]))
			return false;
	return a->mem_size == b->mem_size && a->cpus == b->cpus &&
	       a->hugetlb == b->hugetlb && a->exit_stats == b->exit_stats &&
	       same_devices(a, b) && same_wss(&a->wss, &b->wss) &&
	       a->pager.enabled == b->pager.enabled &&
	       a->pager.local_bytes == b->pager.local_bytes &&
	       a->pager.threads == b->pager.threads;
}

unsigned machine_config_virtio_count(const struct machine_config *c)
{
	return c->ndisks + c->nnets + (c->rng ? 1 : 0) + (c->balloon ? 1 : 0) +
	       (c->vconsole.out_path ? 1 : 0);
}

static bool has_direct_disk(const struct machine_config *c)
{
	for (unsigned i = 0; i < c->ndisks; i++)
		if (c->disks[i].direct)
			return true;
	return false;
}

bool machine_name_valid(const char *name)
{
	size_t len = strlen(name);

	return len && len <= MACHINE_NAME_MAX && name[0] != '.' &&
	       strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		      "0123456789._-") == len;
}

static int validate_devices(const struct machine_config *c,
			    struct errmsg *err)
{
	if (c->ndisks > VIRTIO_MMIO_MAX_DEVICES ||
	    c->nnets > VIRTIO_MMIO_MAX_DEVICES ||
	    machine_config_virtio_count(c) > VIRTIO_MMIO_MAX_DEVICES)
		return errmsg_set(err, -EINVAL,
				  "too many virtio devices (at most %d)",
				  VIRTIO_MMIO_MAX_DEVICES);
	for (unsigned i = 0; i < c->ndisks; i++)
		if (!c->disks[i].path || !*c->disks[i].path)
			return errmsg_set(err, -EINVAL, "--disk needs a file name");
	for (unsigned i = 0; i < c->nnets; i++)
		if (!c->nets[i].tap || !*c->nets[i].tap ||
		    strlen(c->nets[i].tap) >= 16)
			return errmsg_set(err, -EINVAL, "--net needs tap=NAME, an "
					  "interface name of 1 to 15 characters");
	if (c->vconsole.out_path && !*c->vconsole.out_path)
		return errmsg_set(err, -EINVAL, "--vconsole needs a file name");
	if (c->vconsole.in_path && (!c->vconsole.out_path ||
				    !*c->vconsole.in_path))
		return errmsg_set(err, -EINVAL, "--vconsole in= needs a path");
	return 0;
}

/* The name becomes a file name and a Prometheus label value: keep it to
 * characters that need no quoting in either. */
static int validate_api(const struct machine_config *c, struct errmsg *err)
{
	if (c->api_socket && !*c->api_socket)
		return errmsg_set(err, -EINVAL, "--api-socket needs a socket path");
	if (!c->name)
		return 0;
	if (!machine_name_valid(c->name))
		return errmsg_set(err, -EINVAL, "invalid --name '%s': 1 to %d "
				  "letters, digits, '.', '_' or '-', not "
				  "starting with '.'", c->name, MACHINE_NAME_MAX);
	return 0;
}

static int validate_wss(const struct machine_wss *w, struct errmsg *err)
{
	if (!w->enabled)
		return 0;
	if (w->interval_ns < MACHINE_MIN_WSS_INTERVAL_NS)
		return errmsg_set(err, -EINVAL, "invalid --wss interval: give e.g. "
				  "1s, 500ms (at least 10ms)");
	if (w->csv && !*w->csv)
		return errmsg_set(err, -EINVAL, "--wss-csv needs a file name");
	if (!(w->rel_error > 0 && w->rel_error <= 1))
		return errmsg_set(err, -EINVAL, "invalid --wss-error: give a "
				  "percentage above 0, at most 100");
	if (!w->full && (w->sample_min < 1 || w->sample_max < w->sample_min))
		return errmsg_set(err, -EINVAL, "invalid --wss-sample: give a page "
				  "count or full");
	if (w->mode < WSS_MODE_DIRTY || w->mode > WSS_MODE_BOTH)
		return errmsg_set(err, -EINVAL, "invalid --wss-mode: give dirty, "
				  "sample or both");
	if (w->log != VM_DIRTY_LOG_AUTO && w->log != VM_DIRTY_LOG_RING &&
	    w->log != VM_DIRTY_LOG_BITMAP)
		return errmsg_set(err, -EINVAL, "invalid --wss-log: give ring, "
				  "bitmap or auto");
	return 0;
}

static int validate_pager(const struct machine_config *c, struct errmsg *err)
{
	const struct machine_pager *p = &c->pager;

	if (!p->enabled) {
		if (p->backend || p->ns || p->secret_file || p->threads)
			return errmsg_set(err, -EINVAL, "--mem-backend, --mem-namespace, "
					  "--mem-secret-file and --pager-threads "
					  "need --mem-local");
		return 0;
	}
	if (p->local_bytes < MACHINE_MIN_LOCAL_BYTES)
		return errmsg_set(err, -EINVAL, "invalid --mem-local: give a size of "
				  "at least 4M, like 64M or 1G");
	if (p->backend && !*p->backend)
		return errmsg_set(err, -EINVAL, "--mem-backend needs a SPEC");
	if (p->secret_file && !*p->secret_file)
		return errmsg_set(err, -EINVAL, "--mem-secret-file needs a file name");
	if (p->threads > MACHINE_MAX_PAGER_THREADS)
		return errmsg_set(err, -EINVAL, "invalid --pager-threads: give 1 to 16");
	/* --mem-local >= --mem is allowed: nothing is evicted */
	if (c->hugetlb)
		return errmsg_set(err, -EINVAL, "--mem-local needs 4 KiB guest pages: "
				  "it cannot be combined with --hugetlb");
	/* O_DIRECT pins guest pages before transferring into them: a page
	 * evicted meanwhile would lose what the disk wrote (pager.h) */
	if (has_direct_disk(c))
		return errmsg_set(err, -EINVAL, "--mem-local cannot be combined with "
				  "a --disk ...,direct (O_DIRECT)");
	return 0;
}

int machine_config_validate(const struct machine_config *c,
			    struct errmsg *err)
{
	int ret;

	if (c->mem_size < GUEST_MEM_MIN_SIZE || c->mem_size % PAGE_SIZE)
		return errmsg_set(err, -EINVAL, "invalid --mem: give a size of at "
				  "least 2M, a multiple of 4K, like 512M or 2G");
	if (c->cpus < 1 || c->cpus > MACHINE_MAX_CPUS)
		return errmsg_set(err, -EINVAL, "invalid --cpus %u: give a whole "
				  "number from 1 to %d", c->cpus, MACHINE_MAX_CPUS);
	if (c->hugetlb && c->mem_size % (2u << 20))
		return errmsg_set(err, -EINVAL, "--hugetlb needs --mem to be a "
				  "multiple of 2M");
	if (c->cmdline && strlen(c->cmdline) > BOOT_CMDLINE_MAX)
		return errmsg_set(err, -EINVAL, "--cmdline is too long (at most "
				  "%d bytes)", BOOT_CMDLINE_MAX);
	if (c->kernel && !*c->kernel)
		return errmsg_set(err, -EINVAL, "--kernel needs a file name");
	if (c->initrd && !*c->initrd)
		return errmsg_set(err, -EINVAL, "--initrd needs a file name");
	if (!c->console || !*c->console)
		return errmsg_set(err, -EINVAL, "--console needs stdio or a file name");
	ret = validate_devices(c, err);
	if (!ret)
		ret = validate_wss(&c->wss, err);
	if (!ret)
		ret = validate_pager(c, err);
	if (!ret)
		ret = validate_api(c, err);
	return ret;
}
