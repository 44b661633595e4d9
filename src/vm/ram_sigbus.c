// SPDX-License-Identifier: MIT
/*
 * The SIGBUS recovery point of vm/ram_sigbus.h.
 *
 * Global state, forced by signals: a signal handler is one per process,
 * and all it learns is the signal, its siginfo and the thread it runs
 * on.  So the handler's previous disposition is a process-wide static
 * (written once, before the handler is installed, read-only after), and
 * the recovery point of each thread is a thread-local pointer (a static
 * TLS slot of the executable, which a handler may read).  Nothing else
 * is kept.
 *
 * Why the jump is safe: it goes from the handler to the frame of
 * ram_sigbus_call() on the same thread, abandoning only fn's frames,
 * which by the contract hold no lock and nothing allocated.  The signal
 * mask is not saved by sigsetjmp (that would cost a syscall on every
 * call, and vCPUs call once per exit); the handler runs with SIGBUS
 * blocked, so the recovery path unblocks it.
 */
#include "vm/ram_sigbus.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <string.h>

struct catcher {
	sigjmp_buf env;
	uintptr_t lo, hi;		/* the guest RAM mapping */
	volatile uintptr_t addr;	/* set by the handler */
	struct catcher *outer;		/* the call this one nests in */
};

static _Thread_local struct catcher *armed;
static struct sigaction previous;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int install_error;

/* A SIGBUS that is not ours: what was there before us decides.  The
 * default action is restored and the signal raised again: it is blocked
 * while this handler runs and is delivered, fatally, as it returns (a
 * faulting access would fault again anyway; a sent or hardware-reported
 * signal would not). */
static void pass_on(int sig, siginfo_t *si, void *uc)
{
	struct sigaction dfl;

	if ((previous.sa_flags & SA_SIGINFO) && previous.sa_sigaction) {
		previous.sa_sigaction(sig, si, uc);
		return;
	}
	if (!(previous.sa_flags & SA_SIGINFO) &&
	    previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
		previous.sa_handler(sig);
		return;
	}
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	sigaction(sig, &dfl, NULL);
	raise(sig);
}

/* si_code > 0: raised by the kernel for an access (BUS_ADRERR beyond a
 * file's end, BUS_MCEERR_AR for poison or a memory error), not sent. */
static void on_sigbus(int sig, siginfo_t *si, void *uc)
{
	struct catcher *c = armed;
	uintptr_t a = (uintptr_t)si->si_addr;

	if (c && si->si_code > 0 && a >= c->lo && a < c->hi) {
		c->addr = a;
		armed = c->outer;
		siglongjmp(c->env, 1);
	}
	pass_on(sig, si, uc);
}

static void install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, NULL, &previous) ||
	    sigaction(SIGBUS, &sa, NULL))
		install_error = -errno;
}

int ram_sigbus_install(struct errmsg *err)
{
	pthread_once(&once, install);
	if (install_error)
		return errmsg_set(err, install_error,
				  "installing the SIGBUS handler: %s",
				  strerror(-install_error));
	return 0;
}

int ram_sigbus_call(const struct guest_mem *mem, void (*fn)(void *arg),
		    void *arg, uint64_t *offset)
{
	struct catcher c = {
		.lo = (uintptr_t)mem->base,
		.hi = (uintptr_t)mem->base + mem->size,
		.outer = armed,
	};
	sigset_t bus;

	if (sigsetjmp(c.env, 0) == 0) {
		armed = &c;
		/* the handler must see the catcher before fn runs */
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		fn(arg);
		__atomic_signal_fence(__ATOMIC_SEQ_CST);
		armed = c.outer;
		return 0;
	}
	sigemptyset(&bus);
	sigaddset(&bus, SIGBUS);
	pthread_sigmask(SIG_UNBLOCK, &bus, NULL);
	if (offset)
		*offset = c.addr - c.lo;
	return -EFAULT;
}
