// SPDX-License-Identifier: MIT
/*
 * The balancer thread (hostd.h): every period it adopts new sockets,
 * copies the table, and with no lock held watches each VM's process,
 * observes it, decides over all, applies to the responsive ones, logs
 * the decision, and writes back what it learnt.  DELETE's steps run
 * here too, so that only this thread talks to VMs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "host/hostd_internal.h"
#include "util/full_io.h"

/* One VM as this period sees it: a copy, and what became of it. */
struct period_vm {
	struct hostd_vm vm;
	bool ended;
	bool balanced;		/* part of this period's decision */
};

static int open_log(struct hostd *h)
{
	char path[HOSTD_PATH_MAX];
	off_t size;

	if (hostd_path(h, "balancer", ".jsonl", path, sizeof(path)))
		return -ENAMETOOLONG;
	h->log_fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (h->log_fd < 0)
		return -errno;
	size = lseek(h->log_fd, 0, SEEK_END);
	h->log_size = size > 0 ? (uint64_t)size : 0;
	return 0;
}

/* Appends @line to the file (moved to balancer.jsonl.1 when it reached
 * its bound) and to the ring, which takes it. */
static void log_line(struct hostd *h, char *line, double now)
{
	char path[HOSTD_PATH_MAX], old[HOSTD_PATH_MAX + 4];
	size_t len = strlen(line);

	if (h->log_fd >= 0 && h->log_size + len + 1 > HOSTD_LOG_FILE_MAX &&
	    !hostd_path(h, "balancer", ".jsonl", path, sizeof(path))) {
		snprintf(old, sizeof(old), "%s.1", path);
		rename(path, old);
		close(h->log_fd);
		open_log(h);
	}
	line[len] = '\n';	/* the NUL's place, put back below */
	if (h->log_fd >= 0 && !write_full(h->log_fd, line, len + 1))
		h->log_size += len + 1;
	line[len] = 0;
	pthread_mutex_lock(&h->lock);
	free(h->ring[h->ring_next].text);
	h->ring[h->ring_next] = (struct hostd_log_line){ line, now };
	h->ring_next = (h->ring_next + 1) % HOSTD_LOG_RING;
	if (h->ring_n < HOSTD_LOG_RING)
		h->ring_n++;
	pthread_mutex_unlock(&h->lock);
}

/* The table's live VMs, copied. */
static struct period_vm *snapshot(struct hostd *h, size_t *n)
{
	struct period_vm *p;

	pthread_mutex_lock(&h->lock);
	p = calloc(h->nvms + 1, sizeof(*p));
	*n = 0;
	for (size_t i = 0; p && i < h->nvms; i++) {
		struct hostd_vm *vm = h->vms[i];

		if (!hostd_vm_live(vm->state) || !vm->pid)
			continue;
		p[*n].vm = *vm;
		p[*n].vm.bal.name = p[*n].vm.name;
		p[*n].vm.bal.shares = vm->set.shares;
		p[*n].vm.bal.min = vm->set.min;
		p[*n].vm.bal.max = vm->set.max;
		p[*n].vm.bal.policy = vm->set.policy;
		(*n)++;
	}
	pthread_mutex_unlock(&h->lock);
	return p;
}

/* The process and its API, this period. */
static void watch(struct hostd *h, struct period_vm *p, double now)
{
	struct hostd_vm *vm = &p->vm;
	struct errmsg err = { "" };
	enum hostd_vm_state ended;
	int ret;

	if (hostd_vm_ended(h, vm, &ended, vm->why, sizeof(vm->why))) {
		p->ended = true;
		vm->state = ended;
		return;
	}
	if (vm->state == HOSTD_VM_STOPPING) {
		hostd_vm_stop_step(h, vm, now);
		return;
	}
	ret = balancer_observe(&vm->bal, vm->socket, HOSTD_VM_TIMEOUT_MS, &err);
	if (!ret) {
		vm->state = HOSTD_VM_RUNNING;
		vm->why[0] = 0;
		vm->ram = vm->bal.in.ram;
		p->balanced = true;
	} else if (vm->state != HOSTD_VM_STARTING) {
		/* left alone: never given memory, never killed for it */
		vm->state = HOSTD_VM_UNRESPONSIVE;
		snprintf(vm->why, sizeof(vm->why), "%.199s", err.text);
		p->balanced = true;
	}
}

/* Decides over the VMs taking part, applies, logs. */
static void balance(struct hostd *h, struct period_vm *p, size_t n, double now)
{
	struct balancer_vm *b = calloc(n + 1, sizeof(*b));
	size_t *of = calloc(n + 1, sizeof(*of));	/* b[j] is p[of[j]] */
	struct balancer_params params = h->cfg.params;
	struct errmsg err = { "" };
	size_t m = 0;
	char *line;
	int ret;

	if (!b || !of)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (p[i].balanced) {
			of[m] = i;
			b[m++] = p[i].vm.bal;
		}
	ret = balancer_decide(&params, b, m, now);
	for (size_t j = 0; j < m; j++)
		if (b[j].in.responsive)
			balancer_apply(&b[j], p[of[j]].vm.socket,
				       HOSTD_VM_TIMEOUT_MS, &err);
	line = balancer_log_line(&params, b, m, now);
	if (line)
		log_line(h, line, now);
	for (size_t j = 0; j < m; j++)
		p[of[j]].vm.bal = b[j];
	pthread_mutex_lock(&h->lock);
	h->last_decide = ret;
	h->periods++;
	pthread_mutex_unlock(&h->lock);
out:
	free(of);
	free(b);
}

/* What the period learnt, into the table (VMs may have gone meanwhile). */
static void write_back(struct hostd *h, struct period_vm *p, size_t n)
{
	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < n; i++) {
		struct hostd_vm *vm = hostd_vm_find(h, p[i].vm.name);

		if (!vm || vm->pid != p[i].vm.pid)
			continue;
		if (vm->state == HOSTD_VM_STOPPING &&
		    (p[i].ended || (p[i].vm.stop_step > 3 && !vm->pid))) {
			hostd_forget_files(h, vm->name);
			hostd_vm_remove(h, vm);
			continue;
		}
		if (vm->state == HOSTD_VM_STOPPING && !p[i].ended) {
			vm->stop_step = p[i].vm.stop_step;
			vm->stop_at = p[i].vm.stop_at;
			continue;
		}
		vm->state = p[i].vm.state;
		memcpy(vm->why, p[i].vm.why, sizeof(vm->why));
		vm->ram = p[i].vm.ram;
		vm->bal.in = p[i].vm.bal.in;
		vm->bal.out = p[i].vm.bal.out;
		vm->bal.prev = p[i].vm.bal.prev;
	}
	pthread_mutex_unlock(&h->lock);
}

static void period(struct hostd *h)
{
	struct errmsg err = { "" };
	double now = hostd_now();
	struct period_vm *p;
	size_t n;

	hostd_scan(h, false, &err);
	p = snapshot(h, &n);
	if (!p)
		return;
	for (size_t i = 0; i < n; i++)
		watch(h, &p[i], now);
	balance(h, p, n, now);
	write_back(h, p, n);
	free(p);
}

static void *loop(void *opaque)
{
	struct hostd *h = opaque;
	struct timespec next;
	bool quit = false;

	clock_gettime(CLOCK_MONOTONIC, &next);
	while (!quit) {
		period(h);
		next.tv_nsec += (long)(h->cfg.period_s * 1e9);
		next.tv_sec += next.tv_nsec / 1000000000;
		next.tv_nsec %= 1000000000;
		pthread_mutex_lock(&h->lock);
		while (!h->quit &&
		       pthread_cond_timedwait(&h->wake, &h->lock, &next) != ETIMEDOUT)
			;
		quit = h->quit;
		pthread_mutex_unlock(&h->lock);
		/* a period that ran long: the next one starts now */
		{
			struct timespec t;

			clock_gettime(CLOCK_MONOTONIC, &t);
			if (t.tv_sec > next.tv_sec)
				next = t;
		}
	}
	return NULL;
}

int hostd_loop_start(struct hostd *h, struct errmsg *err)
{
	int ret = open_log(h);

	if (ret)
		return errmsg_set(err, ret, "the decision log %s/balancer.jsonl: %s",
				  h->runtime_dir, strerror(-ret));
	ret = pthread_create(&h->loop, NULL, loop, h);
	if (ret)
		return errmsg_set(err, -ret, "cannot start the balancer thread: %s",
				  strerror(ret));
	h->loop_started = true;
	return 0;
}

void hostd_loop_stop(struct hostd *h)
{
	if (!h->loop_started)
		return;
	pthread_mutex_lock(&h->lock);
	h->quit = true;
	pthread_cond_signal(&h->wake);
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->loop, NULL);
	h->loop_started = false;
}
