// SPDX-License-Identifier: MIT
/*
 * The VMs' processes: started detached (a session of their own, no
 * terminal, no pipe to hostd, so neither hostd's end nor its terminal's
 * ends them), found in the runtime directory and adopted, watched for
 * their end, and stopped step by step on DELETE.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "api/api_client.h"
#include "host/hostd_internal.h"
#include "util/unix_socket.h"

/* NAME.json: what `rackvm run --config` reads. */
static int write_config(struct hostd *h, const struct machine_config *cfg,
			char *path, size_t len, struct errmsg *err)
{
	char *text = machine_config_to_json(cfg);
	int ret;

	if (!text)
		return errmsg_set(err, -ENOMEM, "out of memory");
	ret = hostd_write_file(h, cfg->name, ".json", text, path, len, err);
	free(text);
	return ret;
}

int hostd_vm_spawn(struct hostd *h, const struct machine_config *cfg,
		   pid_t *pid, struct errmsg *err)
{
	char config[HOSTD_PATH_MAX], log[HOSTD_PATH_MAX];
	char *argv[] = { h->rackvm, "run", "--config", config, NULL };
	int null_fd, log_fd, ret;
	sigset_t none;
	pid_t p;

	ret = write_config(h, cfg, config, sizeof(config), err);
	if (ret)
		return ret;
	if (hostd_path(h, cfg->name, ".log", log, sizeof(log)))
		return errmsg_set(err, -ENAMETOOLONG, "runtime directory path too long");
	null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (null_fd < 0 || log_fd < 0) {
		ret = errmsg_set(err, -errno, "cannot open %s: %s",
				 null_fd < 0 ? "/dev/null" : log, strerror(errno));
		goto out;
	}
	sigemptyset(&none);
	p = fork();
	if (p < 0) {
		ret = errmsg_set(err, -errno, "fork: %s", strerror(errno));
		goto out;
	}
	if (p == 0) {
		/* only async-signal-safe calls from here to exec */
		setsid();
		dup2(null_fd, STDIN_FILENO);
		dup2(log_fd, STDOUT_FILENO);
		dup2(log_fd, STDERR_FILENO);
		close_range(3, ~0u, 0);
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		execv(argv[0], argv);
		_exit(127);
	}
	*pid = p;
out:
	if (null_fd >= 0)
		close(null_fd);
	if (log_fd >= 0)
		close(log_fd);
	return ret;
}

/* The last line of NAME.log (what `rackvm run` said last), or "". */
static void last_log_line(const struct hostd *h, const char *name, char *buf,
			  size_t len)
{
	char path[HOSTD_PATH_MAX], tail[512], *line, *end;
	ssize_t n = 0;
	off_t size;
	int fd;

	buf[0] = 0;
	if (hostd_path(h, name, ".log", path, sizeof(path)) ||
	    (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	size = lseek(fd, 0, SEEK_END);
	if (size > 0)
		n = pread(fd, tail, sizeof(tail) - 1,
			  size > (off_t)sizeof(tail) - 1 ? size - (off_t)sizeof(tail) + 1 : 0);
	close(fd);
	if (n <= 0)
		return;
	tail[n] = 0;
	while (n > 0 && tail[n - 1] == '\n')
		tail[--n] = 0;
	line = strrchr(tail, '\n');
	line = line ? line + 1 : tail;
	for (end = line; *end; end++)
		if (*end < 0x20 || *end > 0x7e)
			*end = '?';
	n = (ssize_t)strnlen(line, len - 1);
	memcpy(buf, line, (size_t)n);
	buf[n] = 0;
}

/* A process that is there and not a zombie. */
static bool process_alive(pid_t pid)
{
	char path[64], stat[256], *paren;
	ssize_t n;
	int fd;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno != ENOENT;
	n = read(fd, stat, sizeof(stat) - 1);
	close(fd);
	if (n <= 0)
		return true;
	stat[n] = 0;
	paren = strrchr(stat, ')');
	return !(paren && paren[1] == ' ' && (paren[2] == 'Z' || paren[2] == 'X'));
}

bool hostd_vm_ended(const struct hostd *h, const struct hostd_vm *vm,
		    enum hostd_vm_state *state, char *why, size_t why_len)
{
	char last[256];
	int status;

	if (!vm->pid)
		return false;
	if (vm->child) {
		if (waitpid(vm->pid, &status, WNOHANG) != vm->pid)
			return false;
		last_log_line(h, vm->name, last, sizeof(last));
		if (WIFEXITED(status) && !WEXITSTATUS(status)) {
			*state = HOSTD_VM_EXITED;
			snprintf(why, why_len, "exited with status 0");
		} else if (WIFEXITED(status)) {
			*state = HOSTD_VM_CRASHED;
			snprintf(why, why_len, "exited with status %d%s%s",
				 WEXITSTATUS(status), last[0] ? ": " : "", last);
		} else {
			*state = HOSTD_VM_CRASHED;
			snprintf(why, why_len, "killed by signal %d (%s)",
				 WTERMSIG(status), strsignal(WTERMSIG(status)));
		}
		return true;
	}
	if (process_alive(vm->pid))
		return false;
	*state = HOSTD_VM_GONE;
	snprintf(why, why_len, "process %d ended (not hostd's child: no exit "
		 "status; see %s.log)", (int)vm->pid, vm->name);
	return true;
}

/* The pid of the process serving @socket (its credentials at listen()). */
static pid_t socket_pid(const char *socket)
{
	struct errmsg err = { "" };
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd;
	pid_t pid = 0;

	if (unix_connect(socket, &fd, &err))
		return 0;
	if (!getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len))
		pid = cred.pid;
	close(fd);
	return pid;
}

/* The RAM of NAME.json (a VM hostd started), or 0. */
static uint64_t config_ram(const struct hostd *h, const char *name)
{
	struct machine_config c;
	struct errmsg err = { "" };
	char path[HOSTD_PATH_MAX];
	uint64_t ram = 0;

	machine_config_init(&c);
	if (!hostd_path(h, name, ".json", path, sizeof(path)) &&
	    !machine_config_from_json_file(&c, path, &err))
		ram = c.mem_size;
	machine_config_release(&c);
	return ram;
}

/* What @socket says it is: 0 with @ram, -ETIMEDOUT (there but not
 * answering), or -ECONNREFUSED and the like (nobody there). */
static int probe(const char *socket, uint64_t *ram)
{
	struct api_client_reply reply;
	struct errmsg err = { "" };
	json_t *o, *mem;
	int ret = api_client_request(socket, "GET", "/vm", NULL,
				     HOSTD_PROBE_TIMEOUT_MS, &reply, &err);

	if (ret)
		return ret;
	o = json_loads(reply.body, 0, NULL);
	mem = json_object_get(json_object_get(o, "config"), "mem");
	if (reply.status != 200 || !json_is_integer(mem))
		ret = -EPROTO;	/* not a VM's API */
	else
		*ram = (uint64_t)json_integer_value(mem);
	json_decref(o);
	api_client_reply_free(&reply);
	return ret;
}

/* NAME of NAME@suffix, if @entry is that and NAME a VM name. */
static bool entry_name(const char *entry, const char *suffix, char *name,
		       size_t len)
{
	size_t n = strlen(entry), s = strlen(suffix);

	if (n <= s || n - s >= len || strcmp(entry + n - s, suffix))
		return false;
	memcpy(name, entry, n - s);
	name[n - s] = 0;
	return hostd_name_valid(name);
}

/* One name found in the directory: adopted as what it turns out to be. */
static void adopt(struct hostd *h, const char *name, bool startup)
{
	struct hostd_settings set;
	struct hostd_vm *vm;
	enum hostd_vm_state state;
	char socket[HOSTD_PATH_MAX], why[200] = "";
	bool known;
	uint64_t ram = 0;
	pid_t pid = 0;
	int ret;

	hostd_settings_init(&set, h->cfg.policy);
	known = !hostd_load_settings(h, name, &set);
	if (hostd_path(h, name, ".sock", socket, sizeof(socket)))
		return;
	ret = probe(socket, &ram);
	if (!ret) {
		state = HOSTD_VM_RUNNING;
		pid = socket_pid(socket);
	} else if (ret == -ETIMEDOUT) {
		state = HOSTD_VM_UNRESPONSIVE;
		pid = socket_pid(socket);
		ram = config_ram(h, name);
		snprintf(why, sizeof(why), "its API did not answer in %u ms when "
			 "found", HOSTD_PROBE_TIMEOUT_MS);
	} else if (startup && known) {
		state = HOSTD_VM_GONE;
		snprintf(why, sizeof(why), "ended while hostd was not running "
			 "(see %s.log)", name);
	} else {
		return;		/* a stale socket, or not a VM's */
	}
	pthread_mutex_lock(&h->lock);
	vm = hostd_vm_find(h, name);
	if (vm && vm->state == HOSTD_VM_GONE && state != HOSTD_VM_GONE)
		hostd_vm_remove(h, vm);	/* it came back: adopted afresh */
	else if (vm) {
		pthread_mutex_unlock(&h->lock);
		return;
	}
	vm = hostd_vm_add(h, name, &set);
	if (vm) {
		vm->state = state;
		vm->pid = pid;
		vm->ram = ram;
		vm->adopted = true;
		snprintf(vm->why, sizeof(vm->why), "%s", why);
	}
	pthread_mutex_unlock(&h->lock);
}

/* A name to look at: not in the table, or there as gone. */
static bool wanted(struct hostd *h, const char *name)
{
	struct hostd_vm *vm;
	bool ret;

	pthread_mutex_lock(&h->lock);
	vm = hostd_vm_find(h, name);
	ret = !vm || vm->state == HOSTD_VM_GONE;
	pthread_mutex_unlock(&h->lock);
	return ret;
}

int hostd_scan(struct hostd *h, bool startup, struct errmsg *err)
{
	char name[MACHINE_NAME_MAX + 1];
	struct dirent *e;
	DIR *d = opendir(h->runtime_dir);

	if (!d)
		return errmsg_set(err, -errno, "runtime directory %s: %s",
				  h->runtime_dir, strerror(errno));
	while ((e = readdir(d))) {
		if (entry_name(e->d_name, ".sock", name, sizeof(name)) ||
		    (startup && entry_name(e->d_name, ".settings", name,
					   sizeof(name))))
			if (wanted(h, name))
				adopt(h, name, startup);
	}
	closedir(d);
	return 0;
}

/* One request of the stop sequence; its failure only means the next
 * step comes. */
static void ask(const char *socket, const char *path)
{
	struct api_client_reply reply;
	struct errmsg err = { "" };

	if (!api_client_request(socket, "PUT", path, NULL, HOSTD_VM_TIMEOUT_MS,
				&reply, &err))
		api_client_reply_free(&reply);
}

void hostd_vm_stop_step(struct hostd *h, struct hostd_vm *vm, double now)
{
	if (vm->stop_step && now < vm->stop_at)
		return;
	switch (vm->stop_step) {
	case 0:
		ask(vm->socket, "/vm/shutdown");
		break;
	case 1:
		ask(vm->socket, "/vm/stop");
		break;
	case 2:
		if (vm->pid)
			kill(vm->pid, SIGKILL);
		break;
	default:
		return;
	}
	vm->stop_step++;
	vm->stop_at = now + h->cfg.stop_timeout_s;
}
