/* SPDX-License-Identifier: MIT */
/*
 * hostd's state, shared by its files (internal to src/host/): the VM
 * table (hostd.c), the VMs' processes (hostd_vm.c), the balancer thread
 * (hostd_loop.c) and the API (hostd_api.c).  hostd.h says who holds the
 * lock when.
 *
 * Files of VM NAME in the runtime directory: NAME.sock (its API),
 * NAME.json (its config, for the VMs hostd starts), NAME.settings
 * (hostd's settings of it), NAME.console and NAME.log (its console and
 * its process's output).  No suffix ends another, so no two VMs' files
 * can have the same name.
 */
#ifndef RACKVM_HOST_HOSTD_INTERNAL_H
#define RACKVM_HOST_HOSTD_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "api/api_server.h"
#include "host/balancer.h"
#include "host/hostd.h"
#include "host/hostd_request.h"

/* One request to a VM's API (the balancer's, the stop steps'). */
#define HOSTD_VM_TIMEOUT_MS 500
/* A socket found in the runtime directory: how long it may take to say
 * what it is before it counts as unresponsive. */
#define HOSTD_PROBE_TIMEOUT_MS 1000
/* The decision log: lines kept for GET /balancer/log, and the file's
 * size at which it is moved to balancer.jsonl.1 and begun again. */
#define HOSTD_LOG_RING 128
#define HOSTD_LOG_FILE_MAX (4u << 20)
#define HOSTD_PATH_MAX 512

enum hostd_vm_state {
	HOSTD_VM_STARTING,	/* its process runs, its API not answered yet */
	HOSTD_VM_RUNNING,
	HOSTD_VM_UNRESPONSIVE,	/* its API did not answer the last period */
	HOSTD_VM_STOPPING,	/* DELETE: on its way out, then forgotten */
	HOSTD_VM_EXITED,	/* ended with status 0 */
	HOSTD_VM_CRASHED,	/* ended otherwise (@why says how) */
	HOSTD_VM_GONE,		/* ended, not hostd's child: no status */
};

const char *hostd_vm_state_name(enum hostd_vm_state s);
/* A VM whose process is there (it counts against the budget). */
bool hostd_vm_live(enum hostd_vm_state s);

struct hostd_vm {
	char name[MACHINE_NAME_MAX + 1];
	char socket[HOSTD_PATH_MAX];
	pid_t pid;			/* 0: not known (yet) */
	bool child;			/* hostd's own child: reaped here */
	bool adopted;			/* found, not started by this hostd */
	enum hostd_vm_state state;
	char why[200];			/* the last problem, or "" */
	uint64_t ram;			/* 0: not known yet */
	struct hostd_settings set;
	/* the balancer's state of the VM (its settings copied from @set
	 * each period; its name points at @name only in the loop's copy) */
	struct balancer_vm bal;
	/* DELETE's steps: 0 shutdown to ask, 1 asked, 2 stop asked, 3 killed */
	unsigned stop_step;
	double stop_at;			/* when the next step is due */
};

struct hostd_log_line {
	char *text;
	double t;
};

struct hostd {
	struct hostd_config cfg;	/* its strings point at the copies below */
	char *runtime_dir, *listen_socket, *rackvm, *swap;

	pthread_mutex_t lock;		/* the fields below */
	struct hostd_vm **vms;
	size_t nvms, cap;
	struct hostd_log_line ring[HOSTD_LOG_RING];
	size_t ring_next, ring_n;
	int last_decide;		/* balancer_decide()'s last result */
	uint64_t periods;

	/* the balancer thread's own */
	int log_fd;
	uint64_t log_size;
	pthread_t loop;
	bool loop_started;
	bool quit;			/* under lock; @wake tells */
	pthread_cond_t wake;

	struct api_server *server;
};

/* CLOCK_MONOTONIC seconds. */
double hostd_now(void);
/* @buf = RUNTIME_DIR/@name@suffix; -ENAMETOOLONG. */
int hostd_path(const struct hostd *h, const char *name, const char *suffix,
	       char *buf, size_t len);

/* The table, lock held. */
struct hostd_vm *hostd_vm_find(struct hostd *h, const char *name);
/* A new entry (zeroed but @name, @socket, @set): NULL on ENOMEM. */
struct hostd_vm *hostd_vm_add(struct hostd *h, const char *name,
			      const struct hostd_settings *set);
void hostd_vm_remove(struct hostd *h, struct hostd_vm *vm);
/* The sum of the live VMs' minimums, plus @extra. */
uint64_t hostd_sum_of_mins(const struct hostd *h, uint64_t extra);

/* RUNTIME_DIR/@name@suffix (its path into @path) written whole, or not
 * at all: a temporary file synced and renamed. */
int hostd_write_file(const struct hostd *h, const char *name,
		     const char *suffix, const char *text, char *path,
		     size_t len, struct errmsg *err);
/* NAME.settings written (atomically: a temporary file renamed). */
int hostd_save_settings(const struct hostd *h, const char *name,
			const struct hostd_settings *set, struct errmsg *err);
/* NAME.settings read into @set (left alone if there is none: -ENOENT). */
int hostd_load_settings(const struct hostd *h, const char *name,
			struct hostd_settings *set);
/* A VM forgotten: NAME.json, NAME.settings and a stale NAME.sock removed. */
void hostd_forget_files(const struct hostd *h, const char *name);

/* ---- hostd_vm.c: processes ---- */

/* Writes NAME.json and starts `rackvm run --config` on it, detached.  *@pid. */
int hostd_vm_spawn(struct hostd *h, const struct machine_config *cfg,
		   pid_t *pid, struct errmsg *err);
/* Has @vm's process ended?  Reaps a child; true with @why (and the
 * state it ended in) filled. */
bool hostd_vm_ended(const struct hostd *h, const struct hostd_vm *vm,
		    enum hostd_vm_state *state, char *why, size_t why_len);
/* Adopts the sockets in the runtime directory that no entry has
 * (@startup: also NAME.settings without a socket, as gone); takes the
 * lock for the table itself. */
int hostd_scan(struct hostd *h, bool startup, struct errmsg *err);
/* DELETE's next step on a copy of the VM, when due (no lock held). */
void hostd_vm_stop_step(struct hostd *h, struct hostd_vm *vm, double now);

/* ---- hostd_loop.c: the balancer thread ---- */
int hostd_loop_start(struct hostd *h, struct errmsg *err);
void hostd_loop_stop(struct hostd *h);

/* ---- hostd_api.c, hostd_metrics.c ---- */
void hostd_api_dispatch(void *opaque, const struct api_request *req,
			struct api_response *resp);
/* GET /metrics (takes the lock). */
void hostd_api_metrics(struct hostd *h, struct api_response *resp);

#endif
