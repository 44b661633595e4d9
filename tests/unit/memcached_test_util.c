// SPDX-License-Identifier: MIT
/* What the memcached store's tests share, see memcached_test_util.h. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "memcached_test_util.h"

struct pages {
	uint8_t *data;
	uint8_t *tags;
	uint32_t *gens;
};

struct page_store_params params(const char *ns, const uint8_t *secret,
				size_t secret_len)
{
	return (struct page_store_params){
		.namespace_name = ns,
		.secret = secret,
		.secret_len = secret_len,
		.ram_pages = RAM_PAGES,
	};
}

double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

void nap_ms(unsigned ms)
{
	struct timespec t = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&t, NULL);
}

/* --- memcached processes -------------------------------------------------- */

static unsigned free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	unsigned port = 0;

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0)
		return 0;
	if (!bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
	    !getsockname(fd, (struct sockaddr *)&a, &len))
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int connect_port(unsigned port)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	struct timeval tv = { 2, 0 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	return fd;
}

int mc_server_start(struct mc_server *m)
{
	char port[16];
	double deadline;

	snprintf(port, sizeof(port), "%u", m->port);
	m->pid = fork();
	if (m->pid < 0)
		return -errno;
	if (m->pid == 0) {
		const char *argv[16] = { "memcached", "-p", port, "-U", "0",
					 "-l", "127.0.0.1", "-m",
					 m->megabytes ? m->megabytes : "64" };
		int argc = 9, null = open("/dev/null", O_RDWR);

		if (m->no_evict)
			argv[argc++] = "-M";
		if (geteuid() == 0) {	/* memcached will not run as root */
			argv[argc++] = "-u";
			argv[argc++] = getpwnam("nobody") ? "nobody" : "root";
		}
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(null, 1);
		dup2(null, 2);
		execv(MEMCACHED_BIN, (char **)argv);
		_exit(127);
	}
	/* ready when it accepts connections */
	for (deadline = now_s() + 10; now_s() < deadline; nap_ms(10)) {
		int fd = connect_port(m->port);

		if (fd >= 0) {
			close(fd);
			return 0;
		}
		if (waitpid(m->pid, NULL, WNOHANG) == m->pid) {
			m->pid = 0;
			return -ECHILD;
		}
	}
	return -ETIMEDOUT;
}

void mc_server_stop(struct mc_server *m)
{
	if (m->pid > 0) {
		kill(m->pid, SIGKILL);
		waitpid(m->pid, NULL, 0);
	}
	m->pid = 0;
}

int mc_command(unsigned port, const void *cmd, size_t len,
	       const char *end, char *reply, size_t reply_len)
{
	int fd = connect_port(port);
	size_t got = 0;

	if (fd < 0)
		return -1;
	if (write(fd, cmd, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	reply[0] = 0;
	while (got + 1 < reply_len && !strstr(reply, end)) {
		ssize_t n = read(fd, reply + got, reply_len - 1 - got);

		if (n <= 0)
			break;
		got += (size_t)n;
		reply[got] = 0;
	}
	close(fd);
	return strstr(reply, end) ? 0 : -1;
}

long mc_items(unsigned port)
{
	char reply[8192];
	const char *p;

	if (mc_command(port, "stats\r\n", 7, "END\r\n", reply, sizeof(reply)))
		return -1;
	p = strstr(reply, "STAT curr_items ");
	return p ? strtol(p + 16, NULL, 10) : -1;
}

int mc_flush(unsigned port)
{
	char reply[64];

	return mc_command(port, "flush_all\r\n", 11, "OK\r\n", reply,
			  sizeof(reply));
}

void fixture_stop(struct fixture *f)
{
	page_store_destroy(f->s);
	f->s = NULL;
	for (int i = 0; i < f->n; i++)
		mc_server_stop(&f->srv[i]);
}

int fixture_start(struct fixture *f, int n, struct errmsg *err)
{
	struct page_store_params p =
		params("vm-mc", test_secret, sizeof(test_secret) - 1);
	size_t len = 0;

	f->n = n;
	f->s = NULL;
	for (int i = 0; i < n; i++) {
		int ret = -EIO;

		/* someone may take the free port before memcached does */
		for (int attempt = 0; attempt < 5 && ret; attempt++) {
			f->srv[i].port = free_port();
			ret = f->srv[i].port ? mc_server_start(&f->srv[i]) : -EIO;
		}
		if (ret)
			return errmsg_set(err, ret, "could not start %s: %s",
					  MEMCACHED_BIN, strerror(-ret));
		len += (size_t)snprintf(f->spec + len, sizeof(f->spec) - len,
					"%s127.0.0.1:%u", i ? "," : "memcached:",
					f->srv[i].port);
	}
	return page_store_open(f->spec, &p, &f->s, err);
}

bool fixture_up(struct fixture *f, int n)
{
	struct errmsg err = { "" };

	if (!fixture_start(f, n, &err))
		return true;
	fixture_stop(f);
	harness_fail(__FILE__, __LINE__, "%s", err.text);
	return false;
}

bool have_memcached(void)
{
	return access(MEMCACHED_BIN, X_OK) == 0;
}

/* --- page helpers ------------------------------------------------------- */

static void fill_page(uint8_t *data, uint64_t page, unsigned gen)
{
	for (unsigned i = 0; i < PAGE_STORE_PAGE; i++)
		data[i] = (uint8_t)(page * 29 + i * 3 + gen * 57);
}

/* Buffers for @count pages at generation @gen. */
static int pages_alloc(struct pages *p, uint32_t count, unsigned gen)
{
	p->data = malloc((size_t)count * PAGE_STORE_PAGE);
	p->tags = malloc((size_t)count * PAGE_TAG_SIZE);
	p->gens = malloc(count * sizeof(*p->gens));
	for (uint32_t i = 0; p->gens && i < count; i++)
		p->gens[i] = gen;
	return p->data && p->tags && p->gens ? 0 : -ENOMEM;
}

static void pages_free(struct pages *p)
{
	free(p->data);
	free(p->tags);
	free(p->gens);
}

int put_runs(struct page_store *s, const uint64_t (*shape)[2],
	     size_t nruns, unsigned gen, struct errmsg *err)
{
	struct page_run runs[8] = { 0 };
	struct pages bufs[8] = { 0 };
	int ret = 0;

	for (size_t r = 0; r < nruns; r++) {
		uint32_t count = (uint32_t)shape[r][1];

		ret = pages_alloc(&bufs[r], count, gen);
		runs[r] = (struct page_run){ shape[r][0], count, bufs[r].data,
					     bufs[r].tags, bufs[r].gens };
		for (uint32_t i = 0; i < count && !ret; i++)
			fill_page(bufs[r].data + (size_t)i * PAGE_STORE_PAGE,
				  shape[r][0] + i, gen);
	}
	if (!ret)
		ret = page_store_put(s, runs, nruns, err);
	for (size_t r = 0; r < nruns; r++)
		pages_free(&bufs[r]);
	return ret;
}

int check_runs(struct page_store *s, const uint64_t (*shape)[2],
	       size_t nruns, unsigned gen, struct errmsg *err)
{
	struct page_run runs[8] = { 0 };
	struct pages bufs[8] = { 0 };
	uint8_t want[PAGE_STORE_PAGE];
	int ret = 0;

	for (size_t r = 0; r < nruns; r++) {
		ret |= pages_alloc(&bufs[r], (uint32_t)shape[r][1], gen);
		runs[r] = (struct page_run){ shape[r][0], (uint32_t)shape[r][1],
					     bufs[r].data, bufs[r].tags, bufs[r].gens };
	}
	if (!ret)
		ret = page_store_get(s, runs, nruns, err);
	for (size_t r = 0; r < nruns && !ret; r++) {
		for (uint32_t i = 0; i < runs[r].count && !ret; i++) {
			fill_page(want, runs[r].first + i, gen);
			if (memcmp(want, bufs[r].data + (size_t)i * PAGE_STORE_PAGE,
				   PAGE_STORE_PAGE))
				ret = -EBADMSG;
		}
	}
	for (size_t r = 0; r < nruns; r++)
		pages_free(&bufs[r]);
	return ret;
}

int put_one(struct page_store *s, uint64_t page, unsigned gen,
	    struct errmsg *err)
{
	const uint64_t shape[1][2] = { { page, 1 } };

	return put_runs(s, shape, 1, gen, err);
}

int check_one(struct page_store *s, uint64_t page, unsigned gen,
	      struct errmsg *err)
{
	const uint64_t shape[1][2] = { { page, 1 } };

	return check_runs(s, shape, 1, gen, err);
}
