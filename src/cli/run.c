// SPDX-License-Identifier: MIT
/*
 * `rackvm run`: flags into a machine config, the machine built and run
 * by the machine layer, the terminal, signals, and the exit status.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/run_report.h"
#include "cli/run_restore.h"
#include "cli/shutdown_guard.h"
#include "api/api_server.h"
#include "machine/machine.h"
#include "migrate/migrate.h"
#include "migrate/snapshot.h"

extern const uint8_t bundled_guest_start[], bundled_guest_end[];

void print_run_usage(FILE *out)
{
	fprintf(out, "usage: rackvm run [options]\n"
		"       rackvm run --restore FILE [--lazy] [--name NAME] "
		"[--api-socket PATH] [--console FILE|stdio]\n%s%s"
		"  -h, --help        this text\n", machine_config_flags_usage,
		run_restore_usage);
}

static int exit_status(const struct vm_exit *e)
{
	switch (e->reason) {
	case VM_EXIT_GUEST_DONE:
	case VM_EXIT_SHUTDOWN:
		return 0;
	case VM_EXIT_RESET:
		return EXIT_GUEST_RESET;
	case VM_EXIT_TRIPLE_FAULT:
		return EXIT_TRIPLE_FAULT;
	case VM_EXIT_GUEST_FAILED:
		return EXIT_GUEST_FAILED;
	case VM_EXIT_DEBUG_EXIT:
		return e->code & 0xff;
	case VM_EXIT_INTERNAL_ERROR:
		return EXIT_KVM_INTERNAL_ERROR;
	case VM_EXIT_SIGNAL:
		return 128 + e->code;
	case VM_EXIT_STOPPED:
		return 0;
	case VM_EXIT_NONE:
	case VM_EXIT_HOST_ERROR:
		break;
	}
	return EXIT_HOST_ERROR;
}

/* Waits for the VM to end, turning SIGINT/SIGTERM/SIGHUP into a clean
 * stop.  The signals are blocked in every thread and read here.  From
 * the moment the end is requested, the rest is bounded: returns the
 * armed guard (cli/shutdown_guard.h). */
static struct shutdown_guard *wait_for_machine(struct machine *m, int sigfd,
					       struct vm_exit *out)
{
	struct shutdown_guard *guard;
	struct vm_exit ex;
	struct pollfd fds[2] = {
		{ .fd = sigfd, .events = POLLIN },
		{ .fd = machine_exit_fd(m), .events = POLLIN },
	};

	while (!machine_exit_peek(m, &ex)) {
		struct signalfd_siginfo si;

		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if ((fds[0].revents & POLLIN) &&
		    read(sigfd, &si, sizeof(si)) == sizeof(si))
			machine_stop_signal(m, (int)si.ssi_signo);
	}
	guard = machine_exit_peek(m, &ex) ?
		shutdown_guard_arm(exit_status(&ex), ex.detail) : NULL;
	shutdown_guard_stage(guard, "the pager's and the monitor's reports");
	machine_wait(m, out);
	return guard;
}

/* With --console stdio on a terminal, characters go to the guest as
 * typed; ^C still stops the VM. */
struct terminal {
	bool restore;
	struct termios saved;
};

static void terminal_raw(struct terminal *t, const char *console)
{
	struct termios raw;

	t->restore = false;
	if (strcmp(console, "stdio") || !isatty(STDIN_FILENO) ||
	    tcgetattr(STDIN_FILENO, &t->saved))
		return;
	raw = t->saved;
	raw.c_lflag &= ~(ICANON | ECHO);
	raw.c_iflag &= ~(ICRNL | IXON);
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
		t->restore = true;
}

static void terminal_restore(struct terminal *t)
{
	if (t->restore)
		tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
}

static int block_exit_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGHUP);
	/* before any thread exists, so every thread inherits the mask */
	if (pthread_sigmask(SIG_BLOCK, set, NULL))
		return -1;
	return signalfd(-1, set, SFD_CLOEXEC);
}

/* The control API, when --api-socket or --name asks for it; *@out stays
 * NULL otherwise.  The name defaults to vm-<pid>. */
static int start_api(struct machine *m, const struct machine_config *cfg,
		     char *name, size_t name_len, struct migration **migration,
		     struct api_server **out)
{
	struct api_server_config ac = {
		.path = cfg->api_socket,
		.ctx = { .machine = m, .name = name, .version = RACKVM_VERSION,
			 .migration = migration },
	};
	struct errmsg err = { "" };
	char path[256];

	*out = NULL;
	if (!cfg->api_socket && !cfg->name)
		return 0;
	if (cfg->name)
		snprintf(name, name_len, "%s", cfg->name);
	else
		snprintf(name, name_len, "vm-%ld", (long)getpid());
	if (!ac.path) {
		if (api_default_socket(name, path, sizeof(path), &err)) {
			fprintf(stderr, "rackvm: %s\n", err.text);
			return -1;
		}
		ac.path = path;
		ac.private_dir = true;
	}
	if (api_server_create(&ac, out, &err)) {
		fprintf(stderr, "rackvm: %s\n", err.text);
		return -1;
	}
	return 0;
}

static void machine_hooks_for_run(struct machine_hooks *hooks)
{
	*hooks = (struct machine_hooks){
		.default_kernel = bundled_guest_start,
		.default_kernel_size = (size_t)(bundled_guest_end -
						bundled_guest_start),
	};
	run_report_hooks(hooks);
}

/* A VM that migrated away ends this process: its API stays up a moment
 * more, so that whoever follows the migration (rackvm ctl migrate polls
 * GET /vm/migrate) sees it completed instead of a socket gone. */
static void linger_after_migration(struct migration *mg)
{
	struct timespec second = { 1, 0 };
	struct migrate_status st;

	if (!mg)
		return;
	migration_status(mg, &st);
	if (st.phase == MIGRATE_COMPLETED || st.phase == MIGRATE_UNCONFIRMED ||
	    st.phase == MIGRATE_LOST)
		nanosleep(&second, NULL);
}

/* A migration that moved the VM away says how it went: the API that
 * started it is gone once this process exits. */
static void report_migration(struct migration *mg)
{
	struct migrate_status st;

	if (!mg)
		return;
	migration_status(mg, &st);
	if (st.phase != MIGRATE_COMPLETED && st.phase != MIGRATE_UNCONFIRMED &&
	    st.phase != MIGRATE_LOST)
		return;
	fprintf(stderr, "rackvm: migration %s: %u rounds, %.1f MiB of guest "
		"RAM sent, downtime %.1f ms, %.2f s in all (%s)\n",
		migrate_phase_name(st.phase), st.round,
		(double)st.bytes_sent / (1 << 20), st.downtime_ms, st.total_s,
		migrate_mode_name(st.mode));
	if (st.have_downtime_parts)
		fprintf(stderr, "rackvm: downtime: pause %.1f, quiesce %.1f, "
			"copy %.1f, destination load %.1f, start %.1f ms\n",
			st.pause_ms, st.quiesce_ms, st.copy_ms, st.load_ms,
			st.start_ms);
	if (st.pages_left_in_store)
		fprintf(stderr, "rackvm: %.1f MiB (%llu pages) left in the page "
			"store, not copied: the destination reads them there\n",
			(double)st.bytes_left_in_store / (1 << 20),
			(unsigned long long)st.pages_left_in_store);
	if (st.throttle_percent)
		fprintf(stderr, "rackvm: auto-converge: the guest was throttled "
			"up to %u%% of each 100 ms\n", st.throttle_percent);
	if (st.dest_ended)
		fprintf(stderr, "rackvm: post-copy: the VM ended on the "
			"destination with %llu pages not sent yet: they were "
			"not needed\n", (unsigned long long)st.pages_remaining);
	if (st.mode != MIGRATE_MODE_PRECOPY)
		fprintf(stderr, "rackvm: post-copy: %llu pages asked for, served "
			"in p50 %.2f ms p99 %.2f ms; the destination's faults: "
			"%llu, waited p50 %.2f ms p99 %.2f ms\n",
			(unsigned long long)st.urgent_requests, st.urgent_p50_ms,
			st.urgent_p99_ms, (unsigned long long)st.dest_faults,
			st.fault_p50_ms, st.fault_p99_ms);
}

/* Runs the built machine to its end and frees it; returns the process
 * exit status.  @incoming: the migration source to tell once the vCPUs
 * run (-1: none). */
static int run_machine(struct machine *m, int sigfd,
		       struct migrate_incoming *incoming)
{
	const struct machine_config *cfg = machine_config(m);
	struct migration *migration = NULL;
	struct shutdown_guard *guard;
	struct vm_exit exit = { 0 };
	struct errmsg err = { "" };
	struct api_server *api;
	char name[MACHINE_NAME_MAX + 32];

	/* the API borrows the machine: it goes first at the end */
	if (start_api(m, cfg, name, sizeof(name), &migration, &api)) {
		migrate_incoming_abort(incoming);
		machine_destroy(m);
		return EXIT_HOST_ERROR;
	}
	run_report_setup(m);
	if (machine_start(m, &err)) {
		fprintf(stderr, "rackvm: %s\n", err.text[0] ? err.text : "VM start failed");
		migrate_incoming_abort(incoming);	/* no RUNNING */
	} else {
		migrate_incoming_running(incoming);
	}
	guard = wait_for_machine(m, sigfd, &exit);
	run_report_end(m);
	linger_after_migration(migration);
	shutdown_guard_stage(guard, "the API server to stop");
	api_server_destroy(api);
	shutdown_guard_stage(guard, "an outgoing migration to end");
	report_migration(migration);
	migration_destroy(migration);
	shutdown_guard_stage(guard, "device and memory threads to stop");
	machine_destroy(m);
	shutdown_guard_disarm(guard);

	if (exit.reason != VM_EXIT_GUEST_DONE && exit.reason != VM_EXIT_DEBUG_EXIT &&
	    exit.reason != VM_EXIT_SHUTDOWN)
		fprintf(stderr, "rackvm: %s: %s\n", vm_exit_reason_name(exit.reason),
			exit.detail);
	return exit_status(&exit);
}

/* The restore, and how long it took (the figure bench/migrate reads). */
static int restore_snapshot(const struct run_restore *restore,
			    const struct machine_hooks *hooks,
			    struct machine **m, struct errmsg *err)
{
	struct restore_options o = restore->opts;
	struct restore_times times;
	int ret;

	o.times = &times;
	ret = snapshot_restore(restore->path, &o, hooks, m, err);
	if (!ret)
		fprintf(stderr, "restore: ready to run after %.2f ms (%s): "
			"machine built in %.2f ms, state loaded in %.2f ms\n",
			times.ready_ms, o.lazy ? "lazy" : "eager",
			times.built_ms, times.ready_ms - times.built_ms);
	return ret;
}

/* The machine from the flags, from the snapshot --restore names or
 * from the migration --incoming waits for (*@incoming: its connection). */
static int build_machine(const struct machine_config *cfg,
			 const struct run_restore *restore, struct machine **m,
			 struct migrate_incoming **incoming)
{
	struct machine_hooks hooks;
	struct errmsg err = { "" };
	int ret;

	*incoming = NULL;
	machine_hooks_for_run(&hooks);
	if (restore->incoming)
		ret = migrate_incoming(restore->incoming, &restore->opts, &hooks,
				       m, incoming, &err);
	else if (restore->path)
		ret = restore_snapshot(restore, &hooks, m, &err);
	else
		ret = machine_create(cfg, &hooks, m, &err);
	if (ret)
		fprintf(stderr, "rackvm: %s\n", err.text[0] ? err.text :
			"VM setup failed");
	return ret;
}

int cmd_run(int argc, char **argv)
{
	struct run_restore restore = { 0 };
	struct machine_config cfg;
	struct errmsg err = { "" };
	struct terminal term;
	struct machine *m;
	sigset_t set;
	struct migrate_incoming *incoming;
	int sigfd, status, ret;

	/* a closed console pipe is an error for the UART, not a reason to die */
	signal(SIGPIPE, SIG_IGN);
	machine_config_init(&cfg);
	if (run_restore_asked(argc, argv))
		ret = run_restore_parse(&restore, argc, argv, &err);
	else
		ret = machine_config_parse_flags(&cfg, argc, argv, &err);
	if (ret) {
		if (ret > 0)
			print_run_usage(stdout);
		else
			fprintf(stderr, "rackvm run: %s\n(see rackvm run --help)\n",
				err.text);
		machine_config_release(&cfg);
		return ret > 0 ? 0 : EXIT_HOST_ERROR;
	}
	sigfd = block_exit_signals(&set);
	if (sigfd < 0) {
		fprintf(stderr, "rackvm: signalfd: %s\n", strerror(errno));
		machine_config_release(&cfg);
		return EXIT_HOST_ERROR;
	}
	if (build_machine(&cfg, &restore, &m, &incoming)) {
		close(sigfd);
		machine_config_release(&cfg);
		return EXIT_HOST_ERROR;
	}
	terminal_raw(&term, machine_config(m)->console);
	status = run_machine(m, sigfd, incoming);
	terminal_restore(&term);
	close(sigfd);
	machine_config_release(&cfg);
	return status;
}
