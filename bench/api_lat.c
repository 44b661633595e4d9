// SPDX-License-Identifier: MIT
/*
 * bench/api's client of the control API (libcurl, one handle, so the
 * connection to the Unix socket stays open as a long-lived monitoring
 * client's would):
 *
 *   api_lat ready SOCKET CMD...   starts CMD, asks GET /vm every 100 us
 *       until it answers 200; prints "ready_us=T cpu_us=C vmm_cpu_us=V": the time
 *       from just before the fork, and the CPU time (user + system, all
 *       threads, from /proc/PID/task/STAR/schedstat) CMD had used by then,
 *       and that without its vCPU threads' (the guest runs from the
 *       start); then kills CMD
 *   api_lat cpu CMD...            runs CMD to its end; prints "cpu_us=C",
 *       its user + system time (wait4's rusage)
 *   api_lat lat SOCKET PATH N     N GETs of PATH; prints
 *       "n=N p50_us=.. p99_us=.. max_us=.."
 *   api_lat poll SOCKET PATH HZ   GETs PATH HZ times a second until
 *       SIGTERM; prints "requests=N failed=F"
 */
#include <curl/curl.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static size_t discard(char *d, size_t s, size_t n, void *o)
{
	(void)d;
	(void)o;
	return s * n;
}

static CURL *handle(const char *socket, const char *path, long timeout_ms)
{
	char url[512];
	CURL *h = curl_easy_init();

	if (!h)
		exit(2);
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, socket);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
	return h;
}

/* 0 if a GET answered 200. */
static int get(CURL *h)
{
	long status = 0;

	if (curl_easy_perform(h) != CURLE_OK)
		return -1;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	return status == 200 ? 0 : -1;
}

/* CPU time of every thread of @pid so far, in us; *@vcpu_us the part
 * of the vCPU threads (named vcpuN), i.e. the guest's own running. */
static double cpu_us(pid_t pid, double *vcpu_us)
{
	char path[64];
	double total = 0;
	struct dirent *e;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	while (d && (e = readdir(d))) {
		unsigned long long ns;
		char p[320], comm[32] = "";
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/proc/%d/task/%s/comm", (int)pid, e->d_name);
		f = fopen(p, "r");
		if (f && !fgets(comm, sizeof(comm), f))
			comm[0] = 0;
		if (f)
			fclose(f);
		snprintf(p, sizeof(p), "/proc/%d/task/%s/schedstat", (int)pid, e->d_name);
		f = fopen(p, "r");
		if (f && fscanf(f, "%llu", &ns) == 1) {
			total += ns / 1e3;
			if (!strncmp(comm, "vcpu", 4))
				*vcpu_us += ns / 1e3;
		}
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return total;
}

static int ready(const char *socket, char **cmd)
{
	CURL *h = handle(socket, "/vm", 1000);
	double t0 = now_us(), t, total, vcpu = 0;
	pid_t pid = fork();

	if (pid == 0) {
		execvp(cmd[0], cmd);
		_exit(127);
	}
	for (;;) {
		if (get(h) == 0)
			break;
		if (waitpid(pid, NULL, WNOHANG) == pid) {
			fprintf(stderr, "api_lat: %s ended before answering\n", cmd[0]);
			return 1;
		}
		usleep(100);
	}
	t = now_us() - t0;
	total = cpu_us(pid, &vcpu);
	printf("ready_us=%.0f cpu_us=%.0f vmm_cpu_us=%.0f\n", t, total,
	       total - vcpu);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	unlink(socket);
	curl_easy_cleanup(h);
	return 0;
}

static int cpu(char **cmd)
{
	struct rusage ru;
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		if (!freopen("/dev/null", "w", stdout))
			_exit(127);
		execvp(cmd[0], cmd);
		_exit(127);
	}
	if (pid < 0 || wait4(pid, &status, 0, &ru) != pid)
		return 1;
	printf("cpu_us=%ld\n", (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000L +
	       ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
	return 0;
}

static int by_value(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int lat(const char *socket, const char *path, long n)
{
	CURL *h = handle(socket, path, 5000);
	double *t = malloc(n * sizeof(*t));

	if (!t || n < 1)
		return 2;
	for (long i = 0; i < n; i++) {
		double t0 = now_us();

		if (get(h)) {
			fprintf(stderr, "api_lat: GET %s failed\n", path);
			return 1;
		}
		t[i] = now_us() - t0;
	}
	qsort(t, n, sizeof(*t), by_value);
	printf("n=%ld p50_us=%.1f p99_us=%.1f max_us=%.1f\n", n, t[n / 2],
	       t[(long)(n * 0.99)], t[n - 1]);
	free(t);
	curl_easy_cleanup(h);
	return 0;
}

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static int poll_at(const char *socket, const char *path, double hz)
{
	CURL *h = handle(socket, path, 5000);
	double period = 1e6 / hz, next = now_us();
	long n = 0, failed = 0;

	signal(SIGTERM, on_term);
	while (!stop) {
		failed += get(h) != 0;
		n++;
		next += period;
		double wait = next - now_us();
		if (wait > 0)
			usleep((useconds_t)wait);
	}
	printf("requests=%ld failed=%ld\n", n, failed);
	curl_easy_cleanup(h);
	return 0;
}

int main(int argc, char **argv)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (argc >= 4 && !strcmp(argv[1], "ready"))
		return ready(argv[2], argv + 3);
	if (argc >= 3 && !strcmp(argv[1], "cpu"))
		return cpu(argv + 2);
	if (argc == 5 && !strcmp(argv[1], "lat"))
		return lat(argv[2], argv[3], atol(argv[4]));
	if (argc == 5 && !strcmp(argv[1], "poll"))
		return poll_at(argv[2], argv[3], atof(argv[4]));
	fprintf(stderr, "usage: api_lat ready SOCKET CMD... | cpu CMD... | "
		"lat SOCKET PATH N |"
		" poll SOCKET PATH HZ\n");
	return 2;
}
