// SPDX-License-Identifier: MIT
/*
 * virtio-balloon, see balloon.h.
 *
 * Locking: the transport's lock serialises the ops callbacks (queues,
 * config accesses, the stats timer).  The target and `actual' are
 * atomics, because the API server thread reads and sets them without the
 * transport's lock; b->lock guards the counters and the statistics,
 * which the I/O thread writes and the API server thread reads.  The
 * discard hook is set once before the VM runs (atomic all the same: the
 * I/O thread exists already).
 *
 * Who punches a page given back: this file, or the discard hook when
 * there is one, never both.  With a pager, only the pager may: a page
 * punched while one of its fault threads fills it in (a prefetch over
 * it) gets filled again and counted resident, and a page punched while
 * it is being evicted makes every fault on it retry until the put is
 * done.  The pager punches each page under its own per-page claim, and
 * leaves alone the pages it is fetching.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "virtio/balloon.h"
#include "virtio/balloon_internal.h"
#include "virtio/mmio.h"
#include "virtio/virtqueue.h"
#include "util/le.h"

#define QUEUE_SIZE 128
#define STATS_TIMER_TAG 0
#define STATS_BUF_MAX (VIRTIO_BALLOON_STATS_MAX_ENTRIES * VIRTIO_BALLOON_STAT_ENTRY)

static const char *const stat_names[VIRTIO_BALLOON_STAT_TAGS] = {
	"swap_in", "swap_out", "major_faults", "minor_faults", "mem_free",
	"mem_total", "mem_available", "disk_caches", "hugetlb_allocs",
	"hugetlb_failures", "oom_kills", "alloc_stalls", "async_scans",
	"direct_scans", "async_reclaims", "direct_reclaims",
};

const char *virtio_balloon_stat_name(unsigned tag)
{
	return tag < VIRTIO_BALLOON_STAT_TAGS ? stat_names[tag] : NULL;
}

unsigned virtio_balloon_parse_stats(const uint8_t *buf, size_t len,
				    struct virtio_balloon_stats *out)
{
	size_t n = len / VIRTIO_BALLOON_STAT_ENTRY;

	memset(out, 0, sizeof(*out));
	if (n > VIRTIO_BALLOON_STATS_MAX_ENTRIES)
		n = VIRTIO_BALLOON_STATS_MAX_ENTRIES;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *e = buf + i * VIRTIO_BALLOON_STAT_ENTRY;
		unsigned tag = e[0] | e[1] << 8;

		if (tag >= VIRTIO_BALLOON_STAT_TAGS) {
			out->unknown++;
			continue;
		}
		out->val[tag] = get_le64(e + 2);
		out->valid |= 1u << tag;
	}
	return (unsigned)n;
}

/* Pages of the memfd to give back to the host, merged while adjacent
 * and handed on a batch at a time (the pager drops a batch from its
 * store in one request). */
#define GIVE_BACK_BATCH 64

struct give_back {
	struct page_range r[GIVE_BACK_BATCH];
	size_t n;
	uint64_t discarded;	/* bytes */
	uint64_t errors;
};

static void punch(struct virtio_balloon *b, const struct page_range *r,
		  struct give_back *g)
{
	if (fallocate(b->mem->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)(r->first * PAGE_SIZE),
		      (off_t)(r->count * PAGE_SIZE)) == 0)
		g->discarded += r->count * PAGE_SIZE;
	else
		g->errors++;
	/* the pages read as zeros now: a migration sends them again */
	guest_mem_note_device_write(b->mem, b->mem->base + r->first * PAGE_SIZE,
				    r->count * PAGE_SIZE);
}

static void give_back_flush(struct virtio_balloon *b, struct give_back *g)
{
	virtio_balloon_discard_fn fn = __atomic_load_n(&b->discard,
						       __ATOMIC_ACQUIRE);
	uint64_t bytes = 0;

	if (!g->n)
		return;
	if (!fn) {
		for (size_t i = 0; i < g->n; i++)
			punch(b, &g->r[i], g);
		g->n = 0;
		return;
	}
	for (size_t i = 0; i < g->n; i++)
		bytes += g->r[i].count * PAGE_SIZE;
	if (fn(b->discard_opaque, g->r, g->n) == 0)
		g->discarded += bytes;
	else
		g->errors++;
	g->n = 0;
}

/* [off, off + len) of the memfd, both page-aligned. */
static void give_back(struct virtio_balloon *b, struct give_back *g,
		      uint64_t off, uint64_t len)
{
	struct page_range *last = g->n ? &g->r[g->n - 1] : NULL;
	uint64_t first = off / PAGE_SIZE;

	if (last && last->first + last->count == first) {
		last->count += len / PAGE_SIZE;
		return;
	}
	if (g->n == GIVE_BACK_BATCH)
		give_back_flush(b, g);
	g->r[g->n++] = (struct page_range){ first, len / PAGE_SIZE };
}

/* Reads the chain's device-readable bytes as a stream of le32 PFNs (an
 * entry may straddle two buffers: no framing is assumed, §2.6.4). */
struct pfn_reader {
	const struct virtq_chain *c;
	unsigned seg;
	uint32_t off;
};

static bool next_pfn(struct pfn_reader *r, uint32_t *pfn)
{
	uint8_t bytes[4];
	unsigned got = 0;

	while (got < 4 && r->seg < r->c->nsegs) {
		const struct virtq_seg *s = &r->c->segs[r->seg];

		if (s->is_write || r->off == s->len) {
			r->seg++;
			r->off = 0;
			continue;
		}
		bytes[got++] = s->ptr[r->off++];
	}
	if (got < 4)
		return false;
	*pfn = get_le32(bytes);
	return true;
}

/* Host offset in the memfd of guest page @pfn, or false if it is not
 * RAM. */
static bool pfn_offset(const struct virtio_balloon *b, uint32_t pfn,
		       uint64_t *off)
{
	uint8_t *p = guest_mem_ptr(b->mem, (uint64_t)pfn << VIRTIO_BALLOON_PFN_SHIFT,
				   VIRTIO_BALLOON_PAGE_SIZE);

	if (!p)
		return false;
	*off = (uint64_t)(p - b->mem->base);
	return true;
}

/* One inflate or deflate request.  All PFNs are checked before any page
 * is discarded, so a bad request changes nothing. */
static void pfn_request(struct virtio_balloon *b, bool inflate)
{
	struct pfn_reader r = { .c = &b->chain };
	struct give_back g = { .n = 0 };
	uint64_t npfns = 0, off = 0;
	uint32_t pfn;

	while (next_pfn(&r, &pfn)) {
		if (!pfn_offset(b, pfn, &off)) {
			pthread_mutex_lock(&b->lock);
			b->info.bad_requests++;
			pthread_mutex_unlock(&b->lock);
			return;
		}
		npfns++;
	}
	if (inflate) {
		r = (struct pfn_reader){ .c = &b->chain };
		while (next_pfn(&r, &pfn)) {
			(void)pfn_offset(b, pfn, &off);	/* checked above */
			give_back(b, &g, off, VIRTIO_BALLOON_PAGE_SIZE);
		}
		give_back_flush(b, &g);
	}
	pthread_mutex_lock(&b->lock);
	if (inflate)
		b->info.inflated_pages += npfns;
	else
		b->info.deflated_pages += npfns;
	b->info.discarded_bytes += g.discarded;
	b->info.discard_errors += g.errors;
	pthread_mutex_unlock(&b->lock);
}

/* Free page reporting: the whole pages inside every buffer. */
static void report_request(struct virtio_balloon *b)
{
	const uint64_t mask = VIRTIO_BALLOON_PAGE_SIZE - 1;
	struct give_back g = { .n = 0 };
	uint64_t reported = 0;

	for (unsigned i = 0; i < b->chain.nsegs; i++) {
		const struct virtq_seg *s = &b->chain.segs[i];
		uint64_t start = (uint64_t)(s->ptr - b->mem->base);
		uint64_t end = start + s->len;

		start = (start + mask) & ~mask;
		end &= ~mask;
		if (end <= start)
			continue;
		reported += end - start;
		give_back(b, &g, start, end - start);
	}
	give_back_flush(b, &g);
	pthread_mutex_lock(&b->lock);
	b->info.reported_bytes += reported;
	b->info.discarded_bytes += g.discarded;
	b->info.discard_errors += g.errors;
	pthread_mutex_unlock(&b->lock);
}

static void return_stats_buffer(struct virtio_balloon *b, struct virtio_mmio *t)
{
	if (!b->stats_held)
		return;
	b->stats_held = false;
	virtq_push(b->stats_vq, b->stats_head, 0);
	virtio_mmio_used(t, b->stats_vq);
}

/* The driver posted fresh statistics: keep them, and keep its buffer
 * until we want the next ones. */
static void stats_buffer(struct virtio_balloon *b, struct virtio_mmio *t,
			 struct virtq *vq)
{
	uint8_t buf[STATS_BUF_MAX];
	struct virtio_balloon_stats st;
	size_t len = 0;

	for (unsigned i = 0; i < b->chain.nsegs && len < sizeof(buf); i++) {
		const struct virtq_seg *s = &b->chain.segs[i];
		size_t n = s->len;

		if (s->is_write)
			continue;
		if (n > sizeof(buf) - len)
			n = sizeof(buf) - len;
		memcpy(buf + len, s->ptr, n);
		len += n;
	}
	virtio_balloon_parse_stats(buf, len, &st);
	pthread_mutex_lock(&b->lock);
	b->info.stats = st;
	b->info.stats_updates++;
	pthread_mutex_unlock(&b->lock);
	/* a driver holds one buffer; one posted on top of another gets
	 * the older back at once rather than leak it */
	return_stats_buffer(b, t);
	b->stats_vq = vq;
	b->stats_head = b->chain.head;
	b->stats_held = true;
}

enum queue_role { ROLE_INFLATE, ROLE_DEFLATE, ROLE_STATS, ROLE_REPORT, ROLE_NONE };

static enum queue_role queue_role(const struct virtio_balloon *b,
				  struct virtio_mmio *t, unsigned q)
{
	uint64_t f = virtio_mmio_driver_features_locked(t);
	bool stats = f & (1ull << VIRTIO_BALLOON_F_STATS_VQ);
	bool report = b->reporting && (f & (1ull << VIRTIO_BALLOON_F_PAGE_REPORTING));

	switch (q) {
	case VIRTIO_BALLOON_Q_INFLATE: return ROLE_INFLATE;
	case VIRTIO_BALLOON_Q_DEFLATE: return ROLE_DEFLATE;
	case VIRTIO_BALLOON_Q_STATS:
		/* see balloon.h: numbering by negotiated features */
		return stats ? ROLE_STATS : report ? ROLE_REPORT : ROLE_NONE;
	case VIRTIO_BALLOON_Q_STATS + 1:
		return report ? ROLE_REPORT : ROLE_NONE;
	}
	return ROLE_NONE;
}

static void balloon_queue_notify(void *dev, struct virtio_mmio *t,
				 struct virtq *vq, unsigned q)
{
	struct virtio_balloon *b = dev;
	enum queue_role role = queue_role(b, t, q);
	bool pushed = false;

	if (role == ROLE_NONE) {
		/* a queue the negotiated features do not have */
		virtq_set_broken(vq, VIRTQ_ERR_LAYOUT);
		return;
	}
	while (virtq_pop(vq, &b->chain) == 1) {
		switch (role) {
		case ROLE_INFLATE:
		case ROLE_DEFLATE:
			pfn_request(b, role == ROLE_INFLATE);
			break;
		case ROLE_REPORT:
			report_request(b);
			break;
		case ROLE_STATS:
			stats_buffer(b, t, vq);
			continue;	/* held, not completed */
		case ROLE_NONE:
			break;
		}
		virtq_push(vq, b->chain.head, 0);
		pushed = true;
	}
	if (pushed)
		virtio_mmio_used(t, vq);
}

/* The stats timer fired (periodically, or armed by a request). */
static void balloon_backend_ready(void *dev, struct virtio_mmio *t,
				  unsigned tag)
{
	struct virtio_balloon *b = dev;
	uint64_t expirations;

	if (tag != STATS_TIMER_TAG)
		return;
	if (read(b->timer_fd, &expirations, sizeof(expirations)) < 0)
		return;
	if (!virtio_mmio_live_locked(t) || !b->stats_held ||
	    !b->stats_vq->ready || virtq_broken(b->stats_vq))
		return;
	return_stats_buffer(b, t);
}

static uint64_t balloon_features(void *dev)
{
	struct virtio_balloon *b = dev;
	uint64_t f = (1ull << VIRTIO_BALLOON_F_MUST_TELL_HOST) |
		     (1ull << VIRTIO_BALLOON_F_STATS_VQ);

	if (b->deflate_on_oom)
		f |= 1ull << VIRTIO_BALLOON_F_DEFLATE_ON_OOM;
	if (b->reporting)
		f |= 1ull << VIRTIO_BALLOON_F_PAGE_REPORTING;
	return f;
}

static void config_bytes(struct virtio_balloon *b, uint8_t *cfg)
{
	uint32_t v[2] = { __atomic_load_n(&b->target, __ATOMIC_SEQ_CST),
			  __atomic_load_n(&b->actual, __ATOMIC_SEQ_CST) };

	for (unsigned i = 0; i < 8; i++)
		cfg[i] = (uint8_t)(v[i / 4] >> (8 * (i % 4)));
}

static void balloon_config_read(void *dev, uint32_t offset, uint8_t *data,
				unsigned len)
{
	uint8_t cfg[VIRTIO_BALLOON_CONFIG_SIZE];

	config_bytes(dev, cfg);
	memcpy(data, cfg + offset, len);
}

/* Only `actual' is the driver's to write; writes to num_pages are
 * dropped.  Accesses of any width are merged byte by byte. */
static void balloon_config_write(void *dev, uint32_t offset,
				 const uint8_t *data, unsigned len)
{
	struct virtio_balloon *b = dev;
	uint8_t cfg[VIRTIO_BALLOON_CONFIG_SIZE];

	config_bytes(b, cfg);
	for (unsigned i = 0; i < len; i++)
		if (offset + i >= VIRTIO_BALLOON_CFG_ACTUAL)
			cfg[offset + i] = data[i];
	__atomic_store_n(&b->actual, get_le32(cfg + VIRTIO_BALLOON_CFG_ACTUAL),
			 __ATOMIC_SEQ_CST);
}

static void balloon_reset(void *dev)
{
	struct virtio_balloon *b = dev;

	/* the queues go away with the held buffer; the target stays (it
	 * is the host's wish), the driver's balloon is gone */
	b->stats_held = false;
	b->stats_vq = NULL;
	__atomic_store_n(&b->actual, 0, __ATOMIC_SEQ_CST);
}

static void balloon_destroy(void *dev)
{
	struct virtio_balloon *b = dev;

	if (b->timer_fd >= 0)
		close(b->timer_fd);
	pthread_mutex_destroy(&b->lock);
	free(b);
}

static const struct virtio_device_ops balloon_ops = {
	.name = "balloon",
	.device_id = VIRTIO_ID_BALLOON,
	.nqueues = 4,
	.queue_max_size = QUEUE_SIZE,
	.config_size = VIRTIO_BALLOON_CONFIG_SIZE,
	.features = balloon_features,
	.config_read = balloon_config_read,
	.config_write = balloon_config_write,
	.queue_notify = balloon_queue_notify,
	.backend_ready = balloon_backend_ready,
	.reset = balloon_reset,
	.destroy = balloon_destroy,
	.save = virtio_balloon_save,
	.load = virtio_balloon_load,
};

static struct timespec ms_to_timespec(unsigned ms)
{
	return (struct timespec){ .tv_sec = ms / 1000,
				  .tv_nsec = (long)(ms % 1000) * 1000000 };
}

/* Fires after @first_ns (0: disarmed), then every stats interval. */
static int arm_timer(struct virtio_balloon *b, long first_ns)
{
	struct itimerspec its = {
		.it_interval = ms_to_timespec(b->stats_interval_ms),
		.it_value = { .tv_nsec = first_ns },
	};

	if (!first_ns)
		its.it_value = its.it_interval;
	return timerfd_settime(b->timer_fd, 0, &its, NULL) < 0 ? -errno : 0;
}

int virtio_balloon_create(struct vm *vm, unsigned index,
			  const struct virtio_balloon_options *opt,
			  struct virtio_balloon **out, struct errmsg *err)
{
	struct virtio_balloon *b = calloc(1, sizeof(*b));
	struct virtio_mmio *t;
	int ret;

	if (!b)
		return -ENOMEM;
	b->mem = &vm->mem;
	b->deflate_on_oom = opt->deflate_on_oom;
	b->reporting = opt->free_page_reporting;
	b->stats_interval_ms = opt->stats_interval_ms;
	pthread_mutex_init(&b->lock, NULL);
	b->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (b->timer_fd < 0) {
		ret = -errno;
		balloon_destroy(b);
		return errmsg_set(err, ret, "virtio-balloon: timerfd: %s",
				  strerror(-ret));
	}
	/* from here the transport owns b, even on failure */
	ret = virtio_mmio_create(vm, index, &balloon_ops, b, &t, err);
	if (ret)
		return ret;
	b->t = t;
	ret = virtio_mmio_watch_fd(t, b->timer_fd, STATS_TIMER_TAG);
	if (!ret)
		ret = arm_timer(b, 0);
	if (ret)
		return errmsg_set(err, ret, "virtio-balloon: stats timer: %s",
				  strerror(-ret));
	if (out)
		*out = b;
	return 0;
}

void virtio_balloon_set_discard(struct virtio_balloon *b,
				virtio_balloon_discard_fn fn, void *opaque)
{
	b->discard_opaque = opaque;
	__atomic_store_n(&b->discard, fn, __ATOMIC_RELEASE);
}

uint64_t virtio_balloon_ram_pages(const struct virtio_balloon *b)
{
	return b->mem->size >> VIRTIO_BALLOON_PFN_SHIFT;
}

bool virtio_balloon_driver_ok(struct virtio_balloon *b)
{
	return virtio_mmio_status(b->t) & VIRTIO_STATUS_DRIVER_OK;
}

int virtio_balloon_set_target(struct virtio_balloon *b, uint32_t pages)
{
	if (pages > virtio_balloon_ram_pages(b))
		return -EINVAL;
	__atomic_store_n(&b->target, pages, __ATOMIC_SEQ_CST);
	virtio_mmio_config_changed(b->t);
	return 0;
}

void virtio_balloon_request_stats(struct virtio_balloon *b)
{
	/* the I/O thread returns the buffer when the timer fires: 1 ns */
	(void)arm_timer(b, 1);
}

void virtio_balloon_get_info(struct virtio_balloon *b,
			     struct virtio_balloon_info *out)
{
	pthread_mutex_lock(&b->lock);
	*out = b->info;
	pthread_mutex_unlock(&b->lock);
	out->target_pages = __atomic_load_n(&b->target, __ATOMIC_SEQ_CST);
	out->actual_pages = __atomic_load_n(&b->actual, __ATOMIC_SEQ_CST);
}
