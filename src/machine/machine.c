// SPDX-License-Identifier: MIT
/*
 * The machine's lifecycle (the state machine in machine.h) and its
 * accessors.  The state lives here under the machine's lock; whether the
 * VM has ended is the VM's (vm_exit_requested()), so a state read folds
 * that in: a running machine whose guest powered off reads STOPPED.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices/devices.h"
#include "machine/machine_internal.h"
#include "remote/page_store.h"
#include "util/clock.h"

const char *machine_state_name(enum machine_state s)
{
	static const char *const names[] = {
		[MACHINE_CREATED] = "created",
		[MACHINE_RUNNING] = "running",
		[MACHINE_PAUSED] = "paused",
		[MACHINE_SHUTTING_DOWN] = "shutting_down",
		[MACHINE_STOPPED] = "stopped",
		[MACHINE_FAILED] = "failed",
	};

	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] :
								"unknown";
}

/* The exits rackvm or KVM caused, as opposed to the guest or a user. */
static bool exit_is_failure(enum vm_exit_reason r)
{
	return r == VM_EXIT_HOST_ERROR || r == VM_EXIT_INTERNAL_ERROR;
}

/* With m->lock held: the state with the VM's end folded in. */
static enum machine_state state_locked(struct machine *m)
{
	struct vm_exit ex;

	if (m->state == MACHINE_STOPPED || m->state == MACHINE_FAILED)
		return m->state;
	if (m->state != MACHINE_CREATED && vm_exit_peek(&m->vm, &ex))
		m->state = exit_is_failure(ex.reason) ? MACHINE_FAILED :
						       MACHINE_STOPPED;
	return m->state;
}

static int create(const struct machine_config *cfg,
		  const struct machine_hooks *hooks, bool restoring,
		  struct machine **out, struct errmsg *err)
{
	struct machine *m;
	int ret;

	*out = NULL;
	ret = machine_config_validate(cfg, err);
	if (ret)
		return ret;
	m = calloc(1, sizeof(*m));
	if (!m)
		return errmsg_set(err, -ENOMEM, "out of memory");
	m->console_out = m->console_in = -1;
	m->restoring = restoring;
	if (hooks)
		m->hooks = *hooks;
	pthread_mutex_init(&m->lock, NULL);
	vm_init_bare(&m->vm);
	ret = machine_config_copy(&m->cfg, cfg);
	if (ret) {
		machine_config_init(&m->cfg);
		errmsg_set(err, ret, "out of memory");
	} else {
		ret = machine_build(m, err);
	}
	if (ret) {
		machine_destroy(m);
		return ret;
	}
	*out = m;
	return 0;
}

int machine_create(const struct machine_config *cfg,
		   const struct machine_hooks *hooks, struct machine **out,
		   struct errmsg *err)
{
	return create(cfg, hooks, false, out, err);
}

int machine_create_for_restore(const struct machine_config *cfg,
			       const struct machine_hooks *hooks,
			       struct machine **out, struct errmsg *err)
{
	return create(cfg, hooks, true, out, err);
}

struct vm *machine_vm(struct machine *m)
{
	return &m->vm;
}

int machine_start(struct machine *m, struct errmsg *err)
{
	int ret;

	pthread_mutex_lock(&m->lock);
	if (m->state != MACHINE_CREATED) {
		pthread_mutex_unlock(&m->lock);
		return errmsg_set(err, -EBUSY, "the machine is %s, not created",
				  machine_state_name(m->state));
	}
	ret = machine_memory_start(m, err);
	if (!ret)
		ret = vm_start(&m->vm, m->restoring ? NULL : &m->entry.cpu,
			       err);
	if (!ret && m->monitor) {
		ret = wss_monitor_start(m->monitor, err);
		if (ret) {
			struct errmsg why = *err;

			errmsg_set(err, ret, "--wss: %s", why.text);
		}
	}
	m->start_ns = monotonic_ns();
	if (ret) {
		/* the vCPUs may run already: they stop with the VM */
		vm_request_exit(&m->vm, VM_EXIT_HOST_ERROR, ret, 0, "%s",
				err ? err->text : "the machine could not start");
		m->state = MACHINE_FAILED;
	} else {
		m->state = MACHINE_RUNNING;
	}
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/* Runs @op if the machine is in state @from, then moves it to @to. */
static int transition(struct machine *m, enum machine_state from,
		      enum machine_state to, int (*op)(struct machine *m))
{
	int ret;

	pthread_mutex_lock(&m->lock);
	if (state_locked(m) != from) {
		pthread_mutex_unlock(&m->lock);
		return -EBUSY;
	}
	ret = op(m);
	if (!ret)
		m->state = to;
	else if (ret == -ECANCELED)	/* the VM ended meanwhile */
		ret = -EBUSY;
	pthread_mutex_unlock(&m->lock);
	return ret;
}

/* settled: a paused machine's state may be saved (snapshot, migration) */
static int pause_vm(struct machine *m)
{
	return vm_pause_settled(&m->vm);
}

static int resume_vm(struct machine *m)
{
	return vm_resume(&m->vm);
}

static int press_power_button(struct machine *m)
{
	return acpi_power_button_press(&m->vm);
}

int machine_pause(struct machine *m)
{
	return transition(m, MACHINE_RUNNING, MACHINE_PAUSED, pause_vm);
}

int machine_resume(struct machine *m)
{
	return transition(m, MACHINE_PAUSED, MACHINE_RUNNING, resume_vm);
}

int machine_request_shutdown(struct machine *m)
{
	return transition(m, MACHINE_RUNNING, MACHINE_SHUTTING_DOWN,
			  press_power_button);
}

static int stop_with(struct machine *m, enum vm_exit_reason reason, int code,
		     const char *detail)
{
	enum machine_state s;

	pthread_mutex_lock(&m->lock);
	s = state_locked(m);
	if (s == MACHINE_STOPPED || s == MACHINE_FAILED) {
		pthread_mutex_unlock(&m->lock);
		return -EBUSY;
	}
	vm_request_exit(&m->vm, reason, code, 0, "%s", detail);
	/* a paused VM's vCPUs must run to see the exit; resuming one that
	 * is ending is harmless */
	if (s == MACHINE_PAUSED)
		(void)vm_resume(&m->vm);
	m->state = MACHINE_STOPPED;
	pthread_mutex_unlock(&m->lock);
	return 0;
}

int machine_stop(struct machine *m)
{
	return stop_with(m, VM_EXIT_STOPPED, 0, "stopped by request");
}

int machine_stop_signal(struct machine *m, int signo)
{
	char detail[64];

	snprintf(detail, sizeof(detail), "stopped by signal %s", strsignal(signo));
	return stop_with(m, VM_EXIT_SIGNAL, signo, detail);
}

void machine_wait(struct machine *m, struct vm_exit *out)
{
	struct errmsg err = { "" };
	struct vm_exit ex;

	pthread_mutex_lock(&m->lock);
	if (!m->waited) {
		/* nothing to wait for in a machine that never started and
		 * was not stopped: that would block forever */
		if (m->state == MACHINE_CREATED && !vm_exit_requested(&m->vm))
			vm_request_exit(&m->vm, VM_EXIT_STOPPED, 0, 0,
					"never started");
		pthread_mutex_unlock(&m->lock);
		vm_wait(&m->vm, &ex);
		/* after the vCPUs stopped: nothing moves pages any more */
		if (machine_memory_finish(m, &err) && ex.reason == VM_EXIT_GUEST_DONE) {
			ex.reason = VM_EXIT_HOST_ERROR;
			snprintf(ex.detail, sizeof(ex.detail), "%s", err.text);
		}
		pthread_mutex_lock(&m->lock);
		if (!m->waited) {
			m->exit = ex;
			m->waited = true;
			m->state = exit_is_failure(ex.reason) ? MACHINE_FAILED :
								 MACHINE_STOPPED;
		}
	}
	if (out)
		*out = m->exit;
	pthread_mutex_unlock(&m->lock);
}

void machine_destroy(struct machine *m)
{
	if (!m)
		return;
	if (m->vm_created && m->state != MACHINE_CREATED) {
		(void)stop_with(m, VM_EXIT_STOPPED, 0, "the machine was destroyed");
		machine_wait(m, NULL);
	}
	/* stops the vCPUs if still running, then frees what the VM owns */
	vm_destroy(&m->vm);
	if (m->console_out_owned)
		close(m->console_out);
	free(m->kernel);
	free(m->initrd);
	machine_config_release(&m->cfg);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

enum machine_state machine_state(struct machine *m)
{
	enum machine_state s;

	pthread_mutex_lock(&m->lock);
	s = state_locked(m);
	pthread_mutex_unlock(&m->lock);
	return s;
}

int machine_exit_fd(const struct machine *m)
{
	return m->vm.exit_fd;
}

bool machine_exit_peek(struct machine *m, struct vm_exit *out)
{
	return vm_exit_peek(&m->vm, out);
}

const struct machine_config *machine_config(const struct machine *m)
{
	return &m->cfg;
}

unsigned machine_ncpus(const struct machine *m)
{
	return m->cfg.cpus;
}

int machine_vcpu_stats(struct machine *m, unsigned i, struct vcpu_stats *out)
{
	if (i >= m->vm.ncpus || !m->vm.vcpus)
		return -EINVAL;
	/* written by the vCPU thread alone: a racy but whole-word read of
	 * monotonic counters is what a report needs */
	*out = m->vm.vcpus[i].stats;
	return 0;
}

int machine_device_stats(struct machine *m, unsigned i,
			 struct virtio_mmio_stats *out)
{
	if (i >= machine_config_virtio_count(&m->cfg))
		return -ENOENT;
	return virtio_mmio_get_stats(&m->vm, i, out);
}

int machine_pager_stats(struct machine *m, struct pager_stats *out)
{
	if (!m->pager)
		return -ENOENT;
	pager_get_stats(m->pager, out);
	return 0;
}

uint64_t machine_host_resident(struct machine *m)
{
	return guest_mem_host_bytes(&m->vm.mem);
}

void machine_store_describe(struct machine *m, char *buf, size_t len)
{
	if (!len)
		return;
	buf[0] = 0;
	if (m->store)
		page_store_describe(m->store, buf, len);
}

struct wss_monitor *machine_wss_monitor(struct machine *m)
{
	return m->monitor;
}

struct virtio_balloon *machine_balloon(struct machine *m)
{
	return m->balloon;
}

uint64_t machine_uptime_ns(struct machine *m)
{
	uint64_t start;

	pthread_mutex_lock(&m->lock);
	start = m->start_ns;
	pthread_mutex_unlock(&m->lock);
	return start ? monotonic_ns() - start : 0;
}
