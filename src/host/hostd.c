// SPDX-License-Identifier: MIT
/*
 * hostd's state: its start and end, the VM table and the files it keeps
 * per VM (hostd.h, hostd_internal.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "host/hostd_internal.h"
#include "util/full_io.h"

static const char *const state_names[] = {
	[HOSTD_VM_STARTING] = "starting", [HOSTD_VM_RUNNING] = "running",
	[HOSTD_VM_UNRESPONSIVE] = "unresponsive",
	[HOSTD_VM_STOPPING] = "stopping", [HOSTD_VM_EXITED] = "exited",
	[HOSTD_VM_CRASHED] = "crashed", [HOSTD_VM_GONE] = "gone",
};

const char *hostd_vm_state_name(enum hostd_vm_state s)
{
	return s <= HOSTD_VM_GONE ? state_names[s] : "?";
}

bool hostd_vm_live(enum hostd_vm_state s)
{
	return s <= HOSTD_VM_STOPPING;
}

double hostd_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int hostd_path(const struct hostd *h, const char *name, const char *suffix,
	       char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s%s", h->runtime_dir, name, suffix);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

struct hostd_vm *hostd_vm_find(struct hostd *h, const char *name)
{
	for (size_t i = 0; i < h->nvms; i++)
		if (!strcmp(h->vms[i]->name, name))
			return h->vms[i];
	return NULL;
}

struct hostd_vm *hostd_vm_add(struct hostd *h, const char *name,
			      const struct hostd_settings *set)
{
	struct hostd_vm *vm, **grown;

	if (h->nvms == h->cap) {
		grown = realloc(h->vms, (h->cap * 2 + 8) * sizeof(*grown));
		if (!grown)
			return NULL;
		h->vms = grown;
		h->cap = h->cap * 2 + 8;
	}
	vm = calloc(1, sizeof(*vm));
	if (!vm)
		return NULL;
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	if (hostd_path(h, name, ".sock", vm->socket, sizeof(vm->socket))) {
		free(vm);
		return NULL;
	}
	vm->set = *set;
	h->vms[h->nvms++] = vm;
	return vm;
}

void hostd_vm_remove(struct hostd *h, struct hostd_vm *vm)
{
	for (size_t i = 0; i < h->nvms; i++) {
		if (h->vms[i] != vm)
			continue;
		memmove(&h->vms[i], &h->vms[i + 1],
			(h->nvms - i - 1) * sizeof(h->vms[0]));
		h->nvms--;
		free(vm);
		return;
	}
}

uint64_t hostd_sum_of_mins(const struct hostd *h, uint64_t extra)
{
	uint64_t sum = extra;

	for (size_t i = 0; i < h->nvms; i++)
		if (hostd_vm_live(h->vms[i]->state))
			sum += hostd_effective_min(&h->vms[i]->set, h->vms[i]->ram,
						   h->cfg.params.min_default);
	return sum;
}

int hostd_write_file(const struct hostd *h, const char *name,
		     const char *suffix, const char *text, char *path,
		     size_t len, struct errmsg *err)
{
	char tmp[HOSTD_PATH_MAX + 8];
	int fd, ret = 0;

	if (hostd_path(h, name, suffix, path, len))
		return errmsg_set(err, -ENAMETOOLONG, "runtime directory path too long");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write_full(fd, text, strlen(text)) || fsync(fd) ||
	    rename(tmp, path))
		ret = errmsg_set(err, -EIO, "cannot write %s: %s", path,
				 strerror(errno));
	if (fd >= 0)
		close(fd);
	if (ret)
		unlink(tmp);
	return ret;
}

int hostd_save_settings(const struct hostd *h, const char *name,
			const struct hostd_settings *set, struct errmsg *err)
{
	char path[HOSTD_PATH_MAX];
	char *text = hostd_settings_to_json(set);
	int ret;

	if (!text)
		return errmsg_set(err, -ENOMEM, "out of memory");
	ret = hostd_write_file(h, name, ".settings", text, path, sizeof(path), err);
	free(text);
	return ret;
}

int hostd_load_settings(const struct hostd *h, const char *name,
			struct hostd_settings *set)
{
	char path[HOSTD_PATH_MAX], text[1024];
	struct errmsg err = { "" };
	ssize_t n;
	int fd;

	if (hostd_path(h, name, ".settings", path, sizeof(path)))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, text, sizeof(text));
	close(fd);
	if (n < 0 || (size_t)n >= sizeof(text))
		return -EINVAL;
	/* 0 RAM: checked against the VM's RAM when it is known */
	return hostd_parse_settings(text, (size_t)n, 0, set, &err);
}

void hostd_forget_files(const struct hostd *h, const char *name)
{
	static const char *const suffixes[] = { ".json", ".settings", ".sock" };
	char path[HOSTD_PATH_MAX];

	for (unsigned i = 0; i < 3; i++)
		if (!hostd_path(h, name, suffixes[i], path, sizeof(path)))
			unlink(path);
}

static int copy_config(struct hostd *h, const struct hostd_config *cfg,
		       struct errmsg *err)
{
	char path[HOSTD_PATH_MAX];

	h->cfg = *cfg;
	if (!cfg->listen_socket) {
		if ((size_t)snprintf(path, sizeof(path), "%s/%s.sock", cfg->runtime_dir,
				     HOSTD_RESERVED_NAME) >= sizeof(path))
			return errmsg_set(err, -ENAMETOOLONG, "runtime directory path "
					  "too long");
	}
	h->runtime_dir = strdup(cfg->runtime_dir);
	h->listen_socket = strdup(cfg->listen_socket ? cfg->listen_socket : path);
	h->rackvm = strdup(cfg->rackvm);
	h->swap = cfg->swap ? strdup(cfg->swap) : NULL;
	if (!h->runtime_dir || !h->listen_socket || !h->rackvm ||
	    (cfg->swap && !h->swap))
		return errmsg_set(err, -ENOMEM, "out of memory");
	h->cfg.runtime_dir = h->runtime_dir;
	h->cfg.listen_socket = h->listen_socket;
	h->cfg.rackvm = h->rackvm;
	h->cfg.swap = h->swap;
	return 0;
}

/* The runtime directory: ours, mode 0700 (VMs' sockets are their
 * control: no one else may reach them). */
static int runtime_dir(const char *dir, struct errmsg *err)
{
	struct stat st;

	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return errmsg_set(err, -errno, "runtime directory %s: %s", dir,
				  strerror(errno));
	if (stat(dir, &st) < 0)
		return errmsg_set(err, -errno, "runtime directory %s: %s", dir,
				  strerror(errno));
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077))
		return errmsg_set(err, -EPERM, "runtime directory %s must be a "
				  "directory of this user with mode 0700", dir);
	return 0;
}

static int check_budget(struct hostd *h, struct errmsg *err)
{
	uint64_t mins = hostd_sum_of_mins(h, 0);

	if (mins <= h->cfg.params.budget)
		return 0;
	return errmsg_set(err, -ENOSPC, "the budget (%llu MiB) is smaller than "
			  "the sum of the running VMs' minimums (%llu MiB): give "
			  "--memory at least that, or lower their min",
			  (unsigned long long)(h->cfg.params.budget >> 20),
			  (unsigned long long)((mins + (1 << 20) - 1) >> 20));
}

int hostd_create(const struct hostd_config *cfg, struct hostd **out,
		 struct errmsg *err)
{
	struct api_server_config sc = { .dispatch = hostd_api_dispatch };
	struct hostd *h;
	int ret;

	*out = NULL;
	if (cfg->swap && (ret = hostd_swap_check(cfg->swap, err)))
		return ret;
	if (!cfg->params.budget || !(cfg->period_s > 0))
		return errmsg_set(err, -EINVAL, "hostd needs a budget and a period");
	h = calloc(1, sizeof(*h));
	if (!h)
		return errmsg_set(err, -ENOMEM, "out of memory");
	h->log_fd = -1;
	pthread_mutex_init(&h->lock, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&h->wake, &ca);
		pthread_condattr_destroy(&ca);
	}
	ret = copy_config(h, cfg, err);
	if (!ret)
		ret = runtime_dir(h->runtime_dir, err);
	if (!ret)
		ret = hostd_scan(h, true, err);
	if (!ret)
		ret = check_budget(h, err);
	if (!ret) {
		sc.path = h->listen_socket;
		sc.opaque = h;
		ret = api_server_create(&sc, &h->server, err);
	}
	if (!ret)
		ret = hostd_loop_start(h, err);
	if (ret) {
		hostd_destroy(h);
		return ret;
	}
	*out = h;
	return 0;
}

void hostd_destroy(struct hostd *h)
{
	if (!h)
		return;
	/* the API first: its handlers use the table */
	api_server_destroy(h->server);
	hostd_loop_stop(h);
	for (size_t i = 0; i < h->nvms; i++)
		free(h->vms[i]);
	free(h->vms);
	for (size_t i = 0; i < HOSTD_LOG_RING; i++)
		free(h->ring[i].text);
	if (h->log_fd >= 0)
		close(h->log_fd);
	pthread_cond_destroy(&h->wake);
	pthread_mutex_destroy(&h->lock);
	free(h->runtime_dir);
	free(h->listen_socket);
	free(h->rackvm);
	free(h->swap);
	free(h);
}
