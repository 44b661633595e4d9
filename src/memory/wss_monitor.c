// SPDX-License-Identifier: MIT
#include "memory/wss_monitor.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include <stdio.h>

#include "memory/dirty_log.h"
#include "memory/ref_sample.h"
#include "util/page.h"
#include "vm/vm.h"
#include "util/clock.h"

struct wss_monitor {
	struct vm *vm;
	struct wss_config cfg;
	uint64_t npages;
	struct dirty_log *dl;		/* NULL without WSS_MODE_DIRTY */
	struct ref_sample *rs;		/* NULL without WSS_MODE_SAMPLE */
	uint64_t *written;		/* this interval's written pages */
	uint64_t *touched;		/* this interval's touched samples */
	uint64_t sample_n;		/* next sample size */
	uint64_t sample_ceiling;	/* its bound from the pauses it cost */
	double smoothed;
	uint64_t cpu_before;		/* CPU total at the last interval */
	double t_base;			/* a restored history's last time */

	int stop_fd;
	pthread_t thread;
	bool thread_started;

	pthread_mutex_t lock;		/* guards series and heat */
	struct wss_series series;
	struct wss_heatmap heat;
};

void wss_config_defaults(struct wss_config *c)
{
	*c = (struct wss_config){
		.interval_ns = 1000000000ull,
		.mode = WSS_MODE_BOTH,
		.sample_min = 100,
		.sample_max = 4096,
		.rel_error = 0.05,
		.history = 3600,
	};
}

static uint64_t cpu_total(struct wss_monitor *m)
{
	uint64_t ns = clock_ns(CLOCK_THREAD_CPUTIME_ID);

	if (m->rs)
		ns += ref_sample_fault_cpu_ns(m->rs);
	return ns;
}

const char *wss_monitor_dirty_mode(const struct wss_monitor *m)
{
	return dirty_log_mode_name(m->dl ? m->vm->dirty_log : VM_DIRTY_LOG_OFF);
}

bool wss_monitor_reads_look_written(const struct wss_monitor *m)
{
	return m->rs && m->dl && ref_sample_reads_look_written(m->rs);
}

static int arm_first_sample(struct wss_monitor *m, struct errmsg *err)
{
	struct ref_sample_result res;
	int ret = ref_sample_rotate(m->rs, m->cfg.full ? REF_SAMPLE_ALL :
				    m->sample_n, NULL, NULL, &res, err);

	return ret ? ret : ref_sample_arm(m->rs, err);
}

/* How long the monitor waits for the vCPUs to pause before it revokes
 * the sample under running vCPUs (slower, as correct).  A vCPU waiting
 * in a userfaultfd fault cannot pause until the fault is served, maybe
 * by a page store that is down; and the monitor must never be what a
 * fault waits for (uffd_ram.h). */
#define ARM_PAUSE_WAIT_NS 200000000ull

/* The sample shrinks when revoking it paused the vCPUs for more than
 * this share of the interval (1/20: 5%). */
#define WSS_STALL_SHARE 20

static int arm_paused(struct wss_monitor *m, uint64_t *stall_ns,
		      struct errmsg *err)
{
	uint64_t t0 = clock_ns(CLOCK_MONOTONIC);
	bool paused = vm_pause_within(m->vm, ARM_PAUSE_WAIT_NS) == 0;
	int ret = ref_sample_arm(m->rs, err);

	if (paused)
		vm_resume(m->vm);
	*stall_ns = clock_ns(CLOCK_MONOTONIC) - t0;
	return ret;
}

double wss_point_time(double seconds)
{
	return round(seconds * 1e6) / 1e6;
}

/* One interval's work; @t seconds since the start. */
static int tick(struct wss_monitor *m, double t, struct errmsg *err)
{
	uint64_t words = bitmap_words(m->npages);
	struct ref_sample_result res = { 0 };
	struct wss_estimate e;
	struct wss_point p = { .t = wss_point_time(t) };
	int64_t written = 0;
	uint64_t cpu, paged_in = 0, armed = m->sample_n, sample_n, ceiling;
	double smoothed;
	int ret;

	memset(m->written, 0, words * 8);
	memset(m->touched, 0, words * 8);
	if (m->dl) {
		written = dirty_log_collect(m->dl, m->written, err);
		if (written < 0)
			return (int)written;
	}
	/* before the rotation: a sampled page the pager brought back is
	 * known referenced, not a sample hit to extrapolate from */
	if (m->cfg.take_referenced)
		paged_in = m->cfg.take_referenced(m->cfg.pages_opaque,
						  m->written);
	if (m->rs) {
		ret = ref_sample_rotate(m->rs, m->cfg.full ? REF_SAMPLE_ALL :
					m->sample_n, m->written, m->touched,
					&res, err);
		/* The vCPUs are paused while the sample is revoked: every
		 * revoked page is an MMU-notifier invalidation, and a vCPU in
		 * guest mode gets a TLB-flush IPI for each and keeps retrying
		 * faults while they are in flight.  Measured on nested KVM:
		 * 4096 pages revoked under a running vCPU took 350 ms (the
		 * guest barely ran meanwhile), paused 9 ms. */
		if (!ret)
			ret = arm_paused(m, &p.arm_stall_ns, err);
		if (ret)
			return ret;
	}
	e = wss_estimate((uint64_t)written + paged_in, res.touched_unwritten,
			 res.sampled, res.population, WSS_Z95);
	/* only this thread writes them, under the lock for a save */
	sample_n = m->sample_n;
	ceiling = m->sample_ceiling;
	if (m->rs && !m->cfg.full && res.sampled)
		sample_n = wss_next_sample_size(
			(double)res.touched_unwritten / (double)res.sampled,
			res.population ? e.pages / (double)res.population : 0,
			res.population, m->cfg.rel_error, WSS_Z95, sample_n,
			m->cfg.sample_min, m->cfg.sample_max);
	if (m->rs && !m->cfg.full) {
		ceiling = wss_stall_ceiling(
			ceiling, armed, p.arm_stall_ns,
			m->cfg.interval_ns / WSS_STALL_SHARE, m->cfg.sample_min,
			m->cfg.sample_max);
		if (sample_n > ceiling)
			sample_n = ceiling;
	}
	smoothed = m->series.count ?
		wss_smooth(m->smoothed, e.pages, WSS_SMOOTH_UP, WSS_SMOOTH_DOWN) :
		e.pages;

	p.wss_pages = (uint64_t)(e.pages + 0.5);
	p.error_pages = (uint64_t)(e.error_pages + 0.5);
	p.written_pages = (uint64_t)written;
	p.paged_in_pages = paged_in;
	p.sampled = res.sampled;
	p.touched_sampled = res.touched;
	p.smoothed_pages = (uint64_t)(smoothed + 0.5);
	p.population = res.population;

	if (m->cfg.on_pages)
		m->cfg.on_pages(m->cfg.pages_opaque,
				m->dl || paged_in ? m->written : NULL,
				m->rs ? m->touched : NULL);
	pthread_mutex_lock(&m->lock);
	m->sample_n = sample_n;
	m->sample_ceiling = ceiling;
	m->smoothed = smoothed;
	/* the point's own (rounded) time: a saved history's check that no
	 * region was seen after its last point holds exactly */
	wss_heatmap_mark_bitmap(&m->heat, m->written, m->npages, p.t);
	if (m->rs)
		wss_heatmap_mark_bitmap(&m->heat, m->touched, m->npages, p.t);
	cpu = cpu_total(m);
	p.estimator_cpu_ns = cpu - m->cpu_before;
	m->cpu_before = cpu;
	wss_series_push(&m->series, &p);
	pthread_mutex_unlock(&m->lock);

	if (m->cfg.on_interval)
		m->cfg.on_interval(m->cfg.opaque, &p);
	return 0;
}

static void *monitor_thread(void *arg)
{
	struct wss_monitor *m = arg;
	uint64_t start = clock_ns(CLOCK_MONOTONIC), next = start;
	struct pollfd pfd = { .fd = m->stop_fd, .events = POLLIN };
	struct errmsg err = { "" };

	pthread_setname_np(pthread_self(), "wss");
	m->cpu_before = cpu_total(m);
	for (;;) {
		uint64_t now = clock_ns(CLOCK_MONOTONIC);
		int ret, timeout;

		next += m->cfg.interval_ns;
		/* a late tick does not cause a burst of catch-up ticks */
		if (next < now)
			next = now;
		timeout = (int)((next - now + 999999) / 1000000);
		ret = poll(&pfd, 1, timeout);
		if (ret < 0 && errno == EINTR)
			continue;
		if (ret != 0)
			break;	/* stop requested (or poll failed) */
		ret = tick(m, m->t_base +
			   (double)(clock_ns(CLOCK_MONOTONIC) - start) / 1e9,
			   &err);
		if (ret) {
			vm_request_exit(m->vm, VM_EXIT_HOST_ERROR, ret, 0,
					"working-set monitor: %s", err.text);
			break;
		}
	}
	return NULL;
}

int wss_monitor_create(struct vm *vm, const struct wss_config *cfg,
		       struct wss_monitor **out, struct errmsg *err)
{
	struct wss_monitor *m;
	uint64_t words;
	int ret;

	if (!cfg->mode || cfg->interval_ns < 1000000 || !cfg->history ||
	    !cfg->sample_min || cfg->sample_max < cfg->sample_min)
		return errmsg_set(err, -EINVAL, "invalid working-set monitor settings");
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->vm = vm;
	m->cfg = *cfg;
	m->npages = vm->mem.size >> PAGE_SHIFT;
	m->sample_n = cfg->sample_min;
	m->sample_ceiling = cfg->sample_max;
	m->stop_fd = -1;
	pthread_mutex_init(&m->lock, NULL);
	words = bitmap_words(m->npages);
	m->written = calloc(words, 8);
	m->touched = calloc(words, 8);
	if (!m->written || !m->touched ||
	    wss_series_init(&m->series, cfg->history) ||
	    wss_heatmap_init(&m->heat, vm->mem.size)) {
		ret = errmsg_set(err, -ENOMEM, "working-set monitor: out of memory");
		goto fail;
	}
	m->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (m->stop_fd < 0) {
		ret = errmsg_set(err, -errno, "eventfd: %s", strerror(errno));
		goto fail;
	}
	if (cfg->mode & WSS_MODE_DIRTY) {
		ret = dirty_log_create(vm, &m->dl, err);
		if (ret)
			goto fail;
	}
	if (cfg->mode & WSS_MODE_SAMPLE) {
		uint64_t seed = cfg->seed ? cfg->seed :
				clock_ns(CLOCK_MONOTONIC) | 1;

		ret = cfg->uffd ?
		      ref_sample_create_on(cfg->uffd, &vm->mem, seed, &m->rs, err) :
		      ref_sample_create(&vm->mem, seed, &m->rs, err);
		if (ret)
			goto fail;
	}
	*out = m;
	return 0;
fail:
	wss_monitor_destroy(m);
	return ret;
}

int wss_monitor_start(struct wss_monitor *m, struct errmsg *err)
{
	int ret;

	if (m->thread_started)
		return errmsg_set(err, -EINVAL, "working-set monitor already started");
	if (m->dl) {
		/* what was written before the start is not interval 1's */
		int64_t r = dirty_log_collect(m->dl, m->written, err);

		if (r < 0)
			return (int)r;
	}
	if (m->rs) {
		ret = arm_first_sample(m, err);
		if (ret)
			return ret;
	}
	ret = -pthread_create(&m->thread, NULL, monitor_thread, m);
	if (ret)
		return errmsg_set(err, ret, "starting the working-set monitor: %s",
				  strerror(-ret));
	m->thread_started = true;
	return 0;
}

void wss_monitor_destroy(void *obj)
{
	struct wss_monitor *m = obj;
	uint64_t one = 1;

	if (!m)
		return;
	if (m->thread_started) {
		if (write(m->stop_fd, &one, sizeof(one)) < 0) {
			/* cannot fail for an eventfd counter of 1 */
		}
		pthread_join(m->thread, NULL);
	}
	/* the sampler first: its fault threads may serve vCPUs until the
	 * uffd is gone (or it is detached from a shared one); then the
	 * dirty log, whose ring handler vCPUs use */
	ref_sample_destroy(m->rs);
	dirty_log_destroy(m->dl);
	if (m->stop_fd >= 0)
		close(m->stop_fd);
	wss_series_destroy(&m->series);
	wss_heatmap_destroy(&m->heat);
	free(m->written);
	free(m->touched);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

static struct wss_history history_of(struct wss_monitor *m)
{
	return (struct wss_history){
		.series = &m->series, .heat = &m->heat, .npages = m->npages,
		.smoothed = m->smoothed, .sample_n = m->sample_n,
		.sample_ceiling = m->sample_ceiling,
	};
}

int wss_monitor_save(struct wss_monitor *m, struct state_buf *out)
{
	struct wss_history h;

	pthread_mutex_lock(&m->lock);
	h = history_of(m);
	wss_history_save(&h, out);
	pthread_mutex_unlock(&m->lock);
	return state_buf_error(out);
}

int wss_monitor_load(struct wss_monitor *m, struct state_reader *in,
		     struct errmsg *err)
{
	struct wss_history h;
	int ret;

	if (m->thread_started)
		return errmsg_set(err, -EBUSY, "wss: the monitor runs already");
	pthread_mutex_lock(&m->lock);
	h = history_of(m);
	ret = wss_history_load(&h, in, m->cfg.sample_min, m->cfg.sample_max,
			       err);
	if (!ret) {
		m->smoothed = h.smoothed;
		m->sample_n = h.sample_n;
		m->sample_ceiling = h.sample_ceiling;
		m->t_base = wss_history_last_t(&m->series);
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

int wss_monitor_write_csv(struct wss_monitor *m, FILE *out)
{
	int ret;

	pthread_mutex_lock(&m->lock);
	ret = wss_series_write_csv(&m->series, out);
	pthread_mutex_unlock(&m->lock);
	return ret;
}

uint64_t wss_monitor_points(struct wss_monitor *m, double since,
			    struct wss_point *out, uint64_t max)
{
	uint64_t len, first = 0, n = 0;

	/* a copy under the lock, so that a reader (an API client) never
	 * holds it while it does I/O */
	pthread_mutex_lock(&m->lock);
	len = wss_series_len(&m->series);
	while (first < len && wss_series_get(&m->series, first)->t <= since)
		first++;
	if (len - first > max)
		first = len - max;
	for (; first < len; first++)
		out[n++] = *wss_series_get(&m->series, first);
	pthread_mutex_unlock(&m->lock);
	return n;
}

uint64_t wss_monitor_coldest(struct wss_monitor *m,
			     struct wss_cold_region *out, uint64_t n)
{
	uint64_t got;
	double now;

	pthread_mutex_lock(&m->lock);
	now = m->series.count ?
	      wss_series_get(&m->series, wss_series_len(&m->series) - 1)->t : 0;
	got = wss_heatmap_coldest(&m->heat, now, out, n);
	pthread_mutex_unlock(&m->lock);
	return got;
}
