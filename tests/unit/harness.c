// SPDX-License-Identifier: MIT
/*
 * The unit-test runner: each test in a forked child of its own, its output
 * in a log of its own, its temporary files in a directory of its own (the
 * model is described in harness.h).
 */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_TIMEOUT_S 120	/* per test; $UNIT_TEST_TIMEOUT overrides */
#define REPORT_LINES 60		/* at most, of a sanitizer report */
#define TAIL_LINES 20		/* of a failed test's log without one */
#define STACK_FRAMES 8		/* per thread of a test that timed out */

enum outcome { OUTCOME_NONE, OUTCOME_OK, OUTCOME_FAIL, OUTCOME_SKIP };

/* What a test's child tells the harness, in memory shared with it: it
 * outlives the child, whatever ends it. */
struct result {
	enum outcome outcome;
	char message[512];
};

/* What a failed test's log holds. */
struct log_scan {
	long lines;
	long report;		/* a sanitizer report's first line, or -1 */
	char summary[256];	/* its SUMMARY line without "SUMMARY: ", or
				 * UBSan's "file:line:col: runtime error: ..." */
};

static struct unit_test *registered;
static struct result *result;
static char run_dir[PATH_MAX];		/* every test's scratch directory */
static char test_dir[PATH_MAX];	/* the running test's, run_dir/N: short,
					 * for socket paths and file names in
					 * fixed-size messages */
static char log_dir[PATH_MAX];
static int timeout_s = DEFAULT_TIMEOUT_S;
static sigset_t caller_mask;		/* given back to each child */

void harness_register(struct unit_test *t)
{
	t->next = registered;
	registered = t;
}

void harness_fail(const char *file, int line, const char *fmt, ...)
{
	size_t size = sizeof(result->message);
	va_list ap;
	int n;

	result->outcome = OUTCOME_FAIL;
	n = snprintf(result->message, size, "%s:%d: ", file, line);
	if (n < 0 || (size_t)n >= size)
		return;
	va_start(ap, fmt);
	vsnprintf(result->message + n, size - n, fmt, ap);
	va_end(ap);
}

void harness_skip(const char *reason)
{
	if (result->outcome == OUTCOME_FAIL)
		return;
	result->outcome = OUTCOME_SKIP;
	snprintf(result->message, sizeof(result->message), "%s", reason);
}

int harness_failed(void)
{
	return result->outcome == OUTCOME_FAIL;
}

const char *harness_tmpdir(void)
{
	return test_dir;
}

/* snprintf() for a path: 0, or -1 with errno ENAMETOOLONG. */
static int __attribute__((format(printf, 3, 4)))
pathf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

/* mkdir -p; 0 or -1 with errno set. */
static int mkdir_p(const char *path)
{
	char buf[PATH_MAX], *p;

	snprintf(buf, sizeof(buf), "%s", path);
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0755) && errno != EEXIST ? -1 : 0;
}

static int remove_entry(const char *path, const struct stat *st, int type,
			struct FTW *ftw)
{
	(void)st;
	(void)type;
	(void)ftw;
	if (remove(path))
		fprintf(stderr, "unit-tests: cannot remove %s: %s\n", path,
			strerror(errno));
	return 0;
}

static void remove_tree(const char *path)
{
	nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/*
 * The directories: run_dir for the tests' temporary files, and log_dir,
 * $UNIT_TEST_LOGS or test-results/unit beside the directory of this
 * binary (build/asan/unit-tests: build/test-results/unit).  0 or -1.
 */
static int setup_dirs(void)
{
	const char *base = getenv("TMPDIR"), *env = getenv("UNIT_TEST_LOGS");
	char exe[PATH_MAX], *slash;
	ssize_t n;

	if (!base || !*base)
		base = "/tmp";
	if (pathf(run_dir, sizeof(run_dir), "%s/rackvm-unit-XXXXXX", base) ||
	    !mkdtemp(run_dir)) {
		fprintf(stderr, "unit-tests: mkdtemp %s: %s\n", run_dir,
			strerror(errno));
		return -1;
	}
	if (env && *env) {
		n = pathf(log_dir, sizeof(log_dir), "%s", env);
	} else {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		exe[n > 0 ? n : 0] = 0;
		slash = strrchr(exe, '/');
		if (slash)
			*slash = 0;
		slash = strrchr(exe, '/');
		if (slash)
			*slash = 0;
		n = pathf(log_dir, sizeof(log_dir), "%s/test-results/unit",
			  slash ? exe : ".");
	}
	if (n || mkdir_p(log_dir)) {
		fprintf(stderr, "unit-tests: cannot create %s (%s): the tests' logs are not kept\n",
			log_dir, strerror(errno));
		if (pathf(log_dir, sizeof(log_dir), "%s/logs", run_dir) ||
		    mkdir(log_dir, 0755))
			return -1;
	}
	return 0;
}

/* In the child: runs @t, its output into @log_fd; does not return. */
static void run_child(const struct unit_test *t, int log_fd, pid_t harness)
{
	int null_fd = open("/dev/null", O_RDONLY);

	setpgid(0, 0);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != harness)
		_exit(127);
	if (null_fd >= 0)
		dup2(null_fd, STDIN_FILENO);
	dup2(log_fd, STDOUT_FILENO);
	dup2(log_fd, STDERR_FILENO);
	if (null_fd > STDERR_FILENO)
		close(null_fd);
	if (log_fd > STDERR_FILENO)
		close(log_fd);
	setvbuf(stdout, NULL, _IOLBF, 0);
	setenv("TMPDIR", test_dir, 1);
	sigprocmask(SIG_SETMASK, &caller_mask, NULL);
	t->fn();
	if (result->outcome == OUTCOME_NONE)
		result->outcome = OUTCOME_OK;
	exit(0);	/* the leak check runs at exit */
}

/*
 * Waits until the child @pid has ended (left unreaped, so that its process
 * group stays its own) or timeout_s have passed.  0 once it ended,
 * -ETIMEDOUT, or a signal of @waited other than SIGCHLD that arrived.
 */
static int wait_child(pid_t pid, const sigset_t *waited)
{
	struct timespec now, end, left;
	siginfo_t info;
	int sig;

	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += timeout_s;
	for (;;) {
		info.si_pid = 0;
		if (waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) &&
		    errno != EINTR)
			return 0;	/* waitpid() will say why */
		if (info.si_pid == pid)
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
		left.tv_sec = end.tv_sec - now.tv_sec;
		left.tv_nsec = end.tv_nsec - now.tv_nsec;
		if (left.tv_nsec < 0) {
			left.tv_nsec += 1000000000L;
			left.tv_sec--;
		}
		if (left.tv_sec < 0)
			return -ETIMEDOUT;
		sig = sigtimedwait(waited, NULL, &left);
		if (sig > 0 && sig != SIGCHLD)
			return sig;
	}
}

/* The first line of file @path, without its newline, or "". */
static void read_line(const char *path, char *buf, int size)
{
	FILE *f = fopen(path, "r");

	buf[0] = 0;
	if (!f)
		return;
	if (fgets(buf, size, f))
		buf[strcspn(buf, "\n")] = 0;
	fclose(f);
}

/* Appends to @log one line per thread of @pid: its name, state and kernel
 * stack (readable as root), to say where a test that timed out waits. */
static void dump_threads(pid_t pid, FILE *out)
{
	char path[PATH_MAX], comm[64], stat_line[512], frame[256], *state;
	struct dirent *d;
	DIR *dir;
	FILE *f;
	int n;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return;
	while ((d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/comm", (int)pid,
			 d->d_name);
		read_line(path, comm, sizeof(comm));
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stat", (int)pid,
			 d->d_name);
		read_line(path, stat_line, sizeof(stat_line));
		state = strrchr(stat_line, ')');
		fprintf(out, "harness: thread %s %s %c:", d->d_name, comm,
			state && state[1] && state[2] ? state[2] : '?');
		snprintf(path, sizeof(path), "/proc/%d/task/%s/stack", (int)pid,
			 d->d_name);
		f = fopen(path, "r");
		for (n = 0; f && n < STACK_FRAMES && fgets(frame, sizeof(frame), f); n++) {
			char *fn = strstr(frame, "] ");

			fn = fn ? fn + 2 : frame;
			fn[strcspn(fn, "+\n")] = 0;
			fprintf(out, "%s %s", n ? " <" : "", fn);
		}
		if (f)
			fclose(f);
		fprintf(out, "\n");
	}
	closedir(dir);
}

static bool is_report_start(const char *line)
{
	return (!strncmp(line, "==", 2) && strstr(line, "==ERROR: ")) ||
	       strstr(line, ": runtime error: ");
}

static void scan_log(const char *path, struct log_scan *scan)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t size = 0;

	scan->lines = 0;
	scan->report = -1;
	scan->summary[0] = 0;
	if (!f)
		return;
	for (; getline(&line, &size, f) > 0; scan->lines++) {
		line[strcspn(line, "\n")] = 0;
		if (scan->report < 0 && is_report_start(line))
			scan->report = scan->lines;
		/* UBSan's report may have no SUMMARY line; its first line
		 * says more anyway */
		if (!scan->summary[0] && strstr(line, ": runtime error: "))
			snprintf(scan->summary, sizeof(scan->summary), "%s",
				 line);
		if (!scan->summary[0] && !strncmp(line, "SUMMARY: ", 9))
			snprintf(scan->summary, sizeof(scan->summary), "%s",
				 line + 9);
	}
	free(line);
	fclose(f);
}

/* After a FAIL line: the sanitizer report in the log, else its end. */
static void print_report(const char *path, const struct log_scan *scan)
{
	long first = scan->lines > TAIL_LINES ? scan->lines - TAIL_LINES : 0;
	long last = scan->lines, n;
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t size = 0;

	if (scan->report >= 0) {
		first = scan->report;
		if (last > first + REPORT_LINES)
			last = first + REPORT_LINES;
	}
	for (n = 0; f && n < last && getline(&line, &size, f) > 0; n++) {
		if (n < first)
			continue;
		line[strcspn(line, "\n")] = 0;
		printf("  | %s\n", line);
		if (scan->report >= 0 && !strncmp(line, "SUMMARY: ", 9))
			break;
	}
	free(line);
	if (f)
		fclose(f);
	if (scan->lines && !getenv("RACK_HOST"))
		printf("  | (all of it: %s)\n", path);
}

/* Appends @fmt to the reason in @buf, after "; " if it holds one. */
static void __attribute__((format(printf, 3, 4)))
appendf(char *buf, size_t size, const char *fmt, ...)
{
	size_t n = strlen(buf);
	va_list ap;

	if (n && n + 2 < size) {
		strcpy(buf + n, "; ");
		n += 2;
	}
	va_start(ap, fmt);
	vsnprintf(buf + n, size - n, fmt, ap);
	va_end(ap);
}

/* Ends the child's process group, cleans up and dies of @sig, which the
 * harness was sent while test @pid ran. */
static void __attribute__((noreturn)) stop_run(pid_t pid, int sig)
{
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	remove_tree(run_dir);
	signal(sig, SIG_DFL);
	sigprocmask(SIG_SETMASK, &caller_mask, NULL);
	raise(sig);
	_exit(128 + sig);
}

/* Runs @t, the @n-th test, in a child of its own and prints its line; its
 * outcome. */
static enum outcome run_test(const struct unit_test *t, int n,
			     const sigset_t *waited)
{
	char log_path[PATH_MAX], reason[1024] = "";
	pid_t pid, harness = getpid();
	struct log_scan scan;
	int log_fd, status, ret;
	FILE *f;

	if (pathf(test_dir, sizeof(test_dir), "%s/%d", run_dir, n) ||
	    pathf(log_path, sizeof(log_path), "%s/%s.log", log_dir, t->name)) {
		printf("FAIL %s: harness: %s\n", t->name, strerror(errno));
		return OUTCOME_FAIL;
	}
	if (mkdir(test_dir, 0700)) {
		printf("FAIL %s: harness: mkdir %s: %s\n", t->name, test_dir,
		       strerror(errno));
		return OUTCOME_FAIL;
	}
	log_fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (log_fd < 0) {
		printf("FAIL %s: harness: %s: %s\n", t->name, log_path,
		       strerror(errno));
		return OUTCOME_FAIL;
	}
	memset(result, 0, sizeof(*result));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0)
		run_child(t, log_fd, harness);
	close(log_fd);
	if (pid < 0) {
		printf("FAIL %s: harness: fork: %s\n", t->name, strerror(errno));
		return OUTCOME_FAIL;
	}
	setpgid(pid, pid);

	ret = wait_child(pid, waited);
	if (ret > 0)
		stop_run(pid, ret);
	if (ret == -ETIMEDOUT) {
		f = fopen(log_path, "a");
		if (f) {
			fprintf(f, "harness: timed out after %d s; its threads:\n",
				timeout_s);
			dump_threads(pid, f);
			fclose(f);
		}
		kill(pid, SIGKILL);
	}
	kill(-pid, SIGKILL);	/* whatever the test left running */
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			printf("FAIL %s: harness: waitpid: %s\n", t->name,
			       strerror(errno));
			return OUTCOME_FAIL;
		}
	}

	if (ret == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		if (result->outcome == OUTCOME_OK) {
			printf("ok %s\n", t->name);
			return OUTCOME_OK;
		}
		if (result->outcome == OUTCOME_SKIP) {
			printf("skip %s: %s\n", t->name, result->message);
			return OUTCOME_SKIP;
		}
	}
	if (result->outcome == OUTCOME_FAIL)
		appendf(reason, sizeof(reason), "%s", result->message);
	if (ret == -ETIMEDOUT)
		appendf(reason, sizeof(reason),
			"timed out after %d s (UNIT_TEST_TIMEOUT)", timeout_s);
	else if (WIFSIGNALED(status))
		appendf(reason, sizeof(reason), "killed by signal %d (%s)",
			WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (WEXITSTATUS(status))
		appendf(reason, sizeof(reason), "exited with status %d",
			WEXITSTATUS(status));
	else if (result->outcome == OUTCOME_NONE)
		appendf(reason, sizeof(reason),
			"exited with status 0 before the test returned");
	scan_log(log_path, &scan);
	if (scan.summary[0])
		appendf(reason, sizeof(reason), "%s", scan.summary);
	printf("FAIL %s: %s\n", t->name, reason);
	print_report(log_path, &scan);
	return OUTCOME_FAIL;
}

/* $UNIT_KVM: which tests by their need of KVM (harness.h). */
enum kvm_filter { KVM_ALL, KVM_ONLY, KVM_NONE };
static enum kvm_filter kvm_filter;

static int parse_kvm_filter(void)
{
	const char *env = getenv("UNIT_KVM");

	if (!env || !*env)
		kvm_filter = KVM_ALL;
	else if (!strcmp(env, "only"))
		kvm_filter = KVM_ONLY;
	else if (!strcmp(env, "none"))
		kvm_filter = KVM_NONE;
	else {
		fprintf(stderr, "unit-tests: UNIT_KVM takes 'only' or 'none', not '%s'\n",
			env);
		return -1;
	}
	return 0;
}

/* $UNIT_SHARD=K/N: of the tests selected, only every Nth from the Kth
 * (counting from 0), so that N processes can share a run. */
static unsigned shard_index, shard_count = 1;

static int parse_shard(void)
{
	const char *env = getenv("UNIT_SHARD");
	unsigned k, n;
	char end;

	if (!env || !*env)
		return 0;
	if (sscanf(env, "%u/%u%c", &k, &n, &end) != 2 || n == 0 || k >= n) {
		fprintf(stderr, "unit-tests: UNIT_SHARD takes K/N with K < N, not '%s'\n",
			env);
		return -1;
	}
	shard_index = k;
	shard_count = n;
	return 0;
}

static bool selected(const struct unit_test *t, char **patterns, int n)
{
	int i;

	if ((kvm_filter == KVM_ONLY && !t->needs_kvm) ||
	    (kvm_filter == KVM_NONE && t->needs_kvm))
		return false;
	for (i = 0; i < n; i++) {
		if (strstr(t->name, patterns[i]))
			return true;
	}
	return n == 0;
}

/*
 * unit-tests [--list] [PATTERN...]: runs every test, or those whose name
 * contains one of the PATTERNs; --list prints their names instead.
 */
int main(int argc, char **argv)
{
	struct unit_test *reversed = NULL, *t, *next;
	const char *env = getenv("UNIT_TEST_TIMEOUT");
	int failed = 0, count = 0, list = 0;
	unsigned ordinal = 0;
	sigset_t waited;

	if (argc > 1 && !strcmp(argv[1], "--list")) {
		list = 1;
		argc--;
		argv++;
	}
	if (argc > 1 && argv[1][0] == '-') {
		fprintf(stderr, "usage: unit-tests [--list] [PATTERN...]\n");
		return 2;
	}
	if (parse_kvm_filter() || parse_shard())
		return 2;
	if (env && *env) {
		timeout_s = atoi(env);
		if (timeout_s <= 0) {
			fprintf(stderr, "unit-tests: UNIT_TEST_TIMEOUT takes a number of seconds, not '%s'\n",
				env);
			return 2;
		}
	}
	/* constructors ran in file order, each pushing on the front */
	for (t = registered; t; t = next) {
		next = t->next;
		t->next = reversed;
		reversed = t;
	}
	for (t = reversed; t; t = t->next) {
		t->in_shard = selected(t, argv + 1, argc - 1) &&
			      ordinal++ % shard_count == shard_index;
		if (!t->in_shard)
			continue;
		count++;
		if (list)
			printf("%s\n", t->name);
	}
	if (list)
		return 0;
	if (!count && (kvm_filter != KVM_ALL || shard_count > 1))
		return 0;	/* that part of the selection is empty */
	if (!count) {
		fprintf(stderr, "unit-tests: no test's name contains '%s'\n",
			argv[1]);
		return 1;
	}

	result = mmap(NULL, sizeof(*result), PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (result == MAP_FAILED || setup_dirs())
		return 2;
	/* children are waited for, and signals that end the run taken,
	 * with sigtimedwait() */
	signal(SIGCHLD, SIG_DFL);
	sigemptyset(&waited);
	sigaddset(&waited, SIGCHLD);
	sigaddset(&waited, SIGINT);
	sigaddset(&waited, SIGTERM);
	sigaddset(&waited, SIGHUP);
	sigprocmask(SIG_BLOCK, &waited, &caller_mask);
	count = 0;
	for (t = reversed; t; t = t->next) {
		if (!t->in_shard)
			continue;
		if (run_test(t, ++count, &waited) == OUTCOME_FAIL)
			failed++;
		fflush(stdout);
	}
	remove_tree(run_dir);
	sigprocmask(SIG_SETMASK, &caller_mask, NULL);
	return failed ? 1 : 0;
}
