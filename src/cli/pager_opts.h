/* SPDX-License-Identifier: MIT */
/*
 * `rackvm run --mem-local...`: the pager's options, guest RAM's shared
 * userfaultfd, the page store, the pager's messages and its stats line.
 * Kept apart from run.c, which only calls these.
 *
 * Order in run.c (why: ownership, see memory/pager.h):
 *   pager_cli_create()   after vm_create(), before the devices: the VM
 *                        owns the uffd, the store and the pager, and
 *                        destroys them after the devices' threads stop;
 *   pager_cli_wss()      before wss_cli_create(): the sampler joins the
 *                        shared uffd, the pager gets its reference bits;
 *   pager_cli_monitor()  after wss_cli_create(): victims from the
 *                        monitor's hot/cold map;
 *   pager_cli_start()    before vm_start(): registers guest RAM, starts
 *                        the fault threads and the evictor;
 *   pager_cli_finish()   once the VM ended, before vm_destroy(): the
 *                        stats line.
 */
#ifndef RACKVM_CLI_PAGER_OPTS_H
#define RACKVM_CLI_PAGER_OPTS_H

#include <stdbool.h>
#include <stdint.h>

#include "cli/wss_opts.h"
#include "vm/vm.h"

struct page_store;
struct pager;
struct uffd_ram;

struct pager_options {
	bool enabled;			/* --mem-local given */
	uint64_t local_bytes;
	const char *backend;		/* NULL: a file in $TMPDIR or /var/tmp */
	const char *ns;			/* NULL: vm-<pid>-<random hex> */
	const char *secret_file;	/* NULL: 32 random bytes */
	unsigned threads;		/* fault threads */
	bool other_given;		/* a --mem-backend & co without --mem-local */
};

#define PAGER_OPTIONS_USAGE \
	"  --mem-local SIZE  keep at most SIZE of guest RAM resident; the rest\n" \
	"                    goes to --mem-backend (at least 4M)\n" \
	"  --mem-backend SPEC  where evicted pages go: file:PATH,\n" \
	"                    memd:HOST:PORT[,HOST:PORT...][,replicas=N] or\n" \
	"                    memcached:HOST:PORT[,...] (default: an unlinked\n" \
	"                    file in $TMPDIR or /var/tmp)\n" \
	"  --mem-namespace NAME  the pages' namespace on the servers\n" \
	"                    (default vm-<pid>-<random hex>)\n" \
	"  --mem-secret-file FILE  the namespace's secret, 1-64 bytes (default:\n" \
	"                    32 random bytes for this run)\n" \
	"  --pager-threads N  threads serving page faults, 1-16 (default 2)\n"

void pager_options_init(struct pager_options *o);
/* @name is the long option without "--".  0, or -1 after printing a
 * usage error. */
int pager_options_parse(struct pager_options *o, const char *name,
			const char *arg);
/* Combination checks once all options are in; -1 after printing. */
int pager_options_check(const struct pager_options *o, uint64_t mem_size,
			bool hugetlb, bool direct_disk);

struct pager_cli {
	struct uffd_ram *uffd;		/* NULL: nobody needs one */
	struct page_store *store;
	struct pager *pager;		/* NULL without --mem-local */
	struct vm *vm;
};

/* Each prints its own error and returns -1 on failure. */
int pager_cli_create(struct vm *vm, const struct pager_options *o,
		     bool sampling, struct pager_cli *c);
void pager_cli_wss(struct pager_cli *c, struct wss_options *w);
int pager_cli_monitor(struct pager_cli *c, struct wss_monitor *m);
int pager_cli_start(struct pager_cli *c);
void pager_cli_finish(struct pager_cli *c);

#endif
