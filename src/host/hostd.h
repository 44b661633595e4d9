/* SPDX-License-Identifier: MIT */
/*
 * hostd: the daemon that runs the VMs of one host within a memory
 * budget (`rackvm hostd`, docs/hostd-api.yaml).
 *
 * It keeps a table of VMs, each a separate `rackvm run` process with its
 * control API on RUNTIME_DIR/NAME.sock: the ones it starts (POST /vms,
 * spawned as `rackvm run --config RUNTIME_DIR/NAME.json`, in a session
 * of their own, console and output to files, so they outlive hostd) and
 * the ones it finds there (started by hand with --api-socket in the
 * runtime directory, or by an earlier hostd: adopted, with the settings
 * that hostd kept in NAME.settings).  A thread runs the balancer
 * (balancer.h) every period: observe each VM through its API, decide,
 * apply; its decisions go to RUNTIME_DIR/balancer.jsonl and to an
 * in-memory ring (GET /balancer/log).
 *
 * Failures of VMs are theirs: a VM that ends is marked exited or crashed
 * (why, from its exit status and its log) and stays listed until
 * DELETE; one whose API stops answering is marked unresponsive and left
 * alone (never given memory, never killed) until it answers again.
 *
 * Threads: the API server's thread and the balancer's share the VM
 * table under one mutex, never held across a request to a VM (the
 * balancer thread copies what it needs, talks to the VMs, and writes
 * back).  All requests to VMs are made by the balancer thread, so an
 * API client never waits on a VM.
 */
#ifndef RACKVM_HOST_HOSTD_H
#define RACKVM_HOST_HOSTD_H

#include "host/balancer.h"
#include "util/errmsg.h"

#define HOSTD_DEFAULT_PERIOD_S 1.0
#define HOSTD_DEFAULT_STOP_TIMEOUT_S 10.0

struct hostd_config {
	const char *runtime_dir;	/* created mode 0700 if missing */
	const char *listen_socket;	/* NULL: RUNTIME_DIR/hostd.sock */
	const char *rackvm;		/* the binary whose `run` starts VMs */
	const char *swap;		/* NULL or file:DIR, memd:..., memcached:... */
	struct balancer_params params;	/* its budget > 0 */
	enum balancer_policy policy;	/* of a VM that sets none */
	double period_s;		/* of the balancer, > 0 */
	/* DELETE: PUT /vm/shutdown, then after this PUT /vm/stop, then
	 * after as long again SIGKILL */
	double stop_timeout_s;
};

struct hostd;

/*
 * Adopts the VMs of the runtime directory, checks that the budget holds
 * their minimums (-ENOSPC saying by how much otherwise: nothing is
 * started and no VM is touched), serves the API and starts the balancer.
 * The strings of @cfg are copied.
 */
int hostd_create(const struct hostd_config *cfg, struct hostd **out,
		 struct errmsg *err);
/* Stops the API and the balancer; the VMs keep running.  NULL is fine. */
void hostd_destroy(struct hostd *h);

#endif
