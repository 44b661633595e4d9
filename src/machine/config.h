/* SPDX-License-Identifier: MIT */
/*
 * What a VM is made of: one plain struct that `rackvm run` fills from its
 * flags, and the API and hostd fill from JSON.  It can be printed back as
 * flags and as JSON (config_flags.c, config_json.c), which is how hostd
 * starts a VM and how migration tells the destination what to build.
 *
 * Strings: every string field points into memory the config owns (the
 * parsers and machine_config_set_string() copy what they are given), so
 * a config can outlive the argv or JSON text it came from.  Free with
 * machine_config_release(); copy with machine_config_copy().
 *
 * Field names follow the flags of `rackvm run` (--mem-local is
 * pager.local_bytes, and so on); error messages name the flag.
 */
#ifndef RACKVM_MACHINE_CONFIG_H
#define RACKVM_MACHINE_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "util/errmsg.h"
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/mmio.h"
#include "virtio/net.h"
#include "vm/vm.h"

#define MACHINE_DEFAULT_MEM (256ull << 20)
#define MACHINE_MAX_CPUS 255
#define MACHINE_DEFAULT_PAGER_THREADS 2
#define MACHINE_MAX_PAGER_THREADS 16
#define MACHINE_MIN_LOCAL_BYTES (4ull << 20)
#define MACHINE_MIN_WSS_INTERVAL_NS 10000000ull
#define MACHINE_NAME_MAX 64		/* [A-Za-z0-9._-], not starting with '.' */
/* A VM name as --name takes it: 1 to MACHINE_NAME_MAX of [A-Za-z0-9._-],
 * not starting with '.' (it names files and sockets). */
bool machine_name_valid(const char *name);

/* --wss and its companions: the working-set monitor. */
struct machine_wss {
	bool enabled;
	const char *csv;		/* the series as CSV at the end, or NULL */
	enum vm_dirty_log log;		/* AUTO, RING or BITMAP */
	uint64_t interval_ns;
	unsigned mode;			/* WSS_MODE_* */
	bool full;			/* sample every resident page */
	uint64_t sample_min;
	uint64_t sample_max;
	double rel_error;		/* target CI half-width / estimate */
};

/* --mem-local and its companions: the hypervisor pager. */
struct machine_pager {
	bool enabled;
	uint64_t local_bytes;
	const char *backend;		/* NULL: a file in $TMPDIR or /var/tmp */
	const char *ns;			/* NULL: vm-<pid>-<random hex> */
	const char *secret_file;	/* NULL: 32 random bytes */
	unsigned threads;		/* 0: MACHINE_DEFAULT_PAGER_THREADS */
};

struct machine_config {
	const char *kernel;		/* NULL: the bundled guest runtime */
	const char *initrd;
	const char *cmdline;
	const char *console;		/* "stdio" or a file (created) */
	uint64_t mem_size;
	unsigned cpus;
	bool hugetlb;
	bool exit_stats;
	/* virtio-mmio devices, numbered in this order: disks, NICs, rng,
	 * balloon, console */
	struct virtio_blk_options disks[VIRTIO_MMIO_MAX_DEVICES];
	unsigned ndisks;
	struct virtio_net_options nets[VIRTIO_MMIO_MAX_DEVICES];
	unsigned nnets;
	bool rng;
	bool balloon;
	struct virtio_balloon_options balloon_opts;
	struct virtio_console_options vconsole;	/* out_path NULL: none */
	/* The VM's name (the API's `vm` label, the default socket's file
	 * name) and the API socket; the API is served when either is set
	 * (api/api_server.h, cli/run.c).  NULL: none. */
	const char *name;
	const char *api_socket;
	struct machine_wss wss;
	struct machine_pager pager;

	/* the strings above, owned (see the top of this file) */
	char **owned;
	unsigned nowned;
};

/* The defaults of `rackvm run` with no flags. */
void machine_config_init(struct machine_config *c);
/* Frees the strings; the config is then as after machine_config_init(). */
void machine_config_release(struct machine_config *c);
/* A deep copy into @dst (initialised here).  -ENOMEM. */
int machine_config_copy(struct machine_config *dst,
			const struct machine_config *src);
/* *@field = a copy of @s owned by @c (NULL stays NULL).  -ENOMEM. */
int machine_config_set_string(struct machine_config *c, const char **field,
			      const char *s);

/* Every check a config must pass before machine_create(), alone and in
 * combination; -EINVAL with a message naming the flag otherwise. */
int machine_config_validate(const struct machine_config *c,
			    struct errmsg *err);
unsigned machine_config_virtio_count(const struct machine_config *c);
/* True if both configs describe the same machine. */
bool machine_config_equal(const struct machine_config *a,
			  const struct machine_config *b);

/*
 * The flags of `rackvm run` (config_flags.c).  Parsing starts from
 * machine_config_init() defaults; on a usage error it returns -EINVAL
 * with the message in @err, 1 if --help was asked for, else 0.  @argv
 * may be rearranged (getopt) but is not kept.
 */
int machine_config_parse_flags(struct machine_config *c, int argc,
			       char **argv, struct errmsg *err);
/* The flags that parse back into @c, as one shell-quoted line in a
 * malloc'ed string (NULL on -ENOMEM). */
char *machine_config_format_flags(const struct machine_config *c);
/* The usage text of the flags. */
extern const char machine_config_flags_usage[];

/*
 * JSON (config_json.c): an object with the flags' names as keys
 * ("mem", "cpus", "disks": [{"path", "ro", "direct"}], "pager":
 * {"mem_local", ...}, ...); sizes are bytes or strings like "512M".
 * Unknown keys and wrong types are errors naming the key.
 */
int machine_config_from_json(struct machine_config *c, const char *text,
			     size_t len, struct errmsg *err);
/* The same from the file @path (at most MACHINE_CONFIG_JSON_MAX bytes):
 * `rackvm run --config FILE`.  -errno with @err naming the file. */
#define MACHINE_CONFIG_JSON_MAX (1u << 20)
int machine_config_from_json_file(struct machine_config *c, const char *path,
				  struct errmsg *err);
/* malloc'ed, NULL on -ENOMEM. */
char *machine_config_to_json(const struct machine_config *c);

#endif
