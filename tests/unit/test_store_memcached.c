// SPDX-License-Identifier: MIT
/*
 * The memcached page store against real memcached processes on free
 * loopback ports, started and killed by the tests themselves.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "harness.h"
#include "remote/page_store.h"

#define MEMCACHED_BIN "/usr/bin/memcached"
#define RAM_PAGES 4096
#define MAX_TEST_SERVERS 3

static const uint8_t test_secret[] = "memcached-secret";

struct mc_server {
	pid_t pid;
	unsigned port;
	const char *megabytes;	/* memcached -m */
	bool no_evict;		/* memcached -M */
};

struct fixture {
	struct mc_server srv[MAX_TEST_SERVERS];
	int n;
	char spec[256];
	struct page_store *s;
};

static struct page_store_params params(const char *ns, const uint8_t *secret,
				       size_t secret_len)
{
	return (struct page_store_params){
		.namespace_name = ns,
		.secret = secret,
		.secret_len = secret_len,
		.ram_pages = RAM_PAGES,
	};
}

static double now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec * 1e-9;
}

static void nap_ms(unsigned ms)
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

static int server_start(struct mc_server *m)
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

static void server_stop(struct mc_server *m)
{
	if (m->pid > 0) {
		kill(m->pid, SIGKILL);
		waitpid(m->pid, NULL, 0);
	}
	m->pid = 0;
}

/* Sends a text-protocol command and reads the reply up to @end. */
static int server_command(unsigned port, const void *cmd, size_t len,
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

static long server_items(unsigned port)
{
	char reply[8192];
	const char *p;

	if (server_command(port, "stats\r\n", 7, "END\r\n", reply, sizeof(reply)))
		return -1;
	p = strstr(reply, "STAT curr_items ");
	return p ? strtol(p + 16, NULL, 10) : -1;
}

static int server_flush(unsigned port)
{
	char reply[64];

	return server_command(port, "flush_all\r\n", 11, "OK\r\n", reply,
			      sizeof(reply));
}

static void fixture_stop(struct fixture *f)
{
	page_store_destroy(f->s);
	f->s = NULL;
	for (int i = 0; i < f->n; i++)
		server_stop(&f->srv[i]);
}

/* Starts @n servers (memory and -M as set in f->srv beforehand) and opens
 * a store on them. */
static int fixture_start(struct fixture *f, int n, struct errmsg *err)
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
			ret = f->srv[i].port ? server_start(&f->srv[i]) : -EIO;
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

static bool have_memcached(void)
{
	return access(MEMCACHED_BIN, X_OK) == 0;
}

#define SKIP_WITHOUT_MEMCACHED()                                              \
	do {                                                                  \
		if (!have_memcached())                                        \
			SKIP(MEMCACHED_BIN " is not installed (scripts/install-deps)"); \
	} while (0)

/* --- page helpers ------------------------------------------------------- */

static void fill_page(uint8_t *data, uint64_t page, unsigned gen)
{
	for (unsigned i = 0; i < PAGE_STORE_PAGE; i++)
		data[i] = (uint8_t)(page * 29 + i * 3 + gen * 57);
}

static uint64_t test_sum(uint64_t page, unsigned gen)
{
	return 0xc0ffee0000000000ull ^ (page << 12) ^ gen;
}

struct pages {
	uint8_t *data;
	uint64_t *sums;
};

static int pages_alloc(struct pages *p, uint32_t count)
{
	p->data = malloc((size_t)count * PAGE_STORE_PAGE);
	p->sums = malloc(count * sizeof(*p->sums));
	return p->data && p->sums ? 0 : -ENOMEM;
}

static void pages_free(struct pages *p)
{
	free(p->data);
	free(p->sums);
}

/* Puts @nruns runs given as (first, count) pairs in one batch. */
static int put_runs(struct page_store *s, const uint64_t (*shape)[2],
		    size_t nruns, unsigned gen, struct errmsg *err)
{
	struct page_run runs[8] = { 0 };
	struct pages bufs[8] = { 0 };
	int ret = 0;

	for (size_t r = 0; r < nruns; r++) {
		uint32_t count = (uint32_t)shape[r][1];

		ret = pages_alloc(&bufs[r], count);
		runs[r] = (struct page_run){ shape[r][0], count, bufs[r].data,
					     bufs[r].sums };
		for (uint32_t i = 0; i < count && !ret; i++) {
			fill_page(bufs[r].data + (size_t)i * PAGE_STORE_PAGE,
				  shape[r][0] + i, gen);
			bufs[r].sums[i] = test_sum(shape[r][0] + i, gen);
		}
	}
	if (!ret)
		ret = page_store_put(s, runs, nruns, err);
	for (size_t r = 0; r < nruns; r++)
		pages_free(&bufs[r]);
	return ret;
}

/* Gets the runs in one batch; -EBADMSG if any page or checksum differs
 * from generation @gen. */
static int check_runs(struct page_store *s, const uint64_t (*shape)[2],
		      size_t nruns, unsigned gen, struct errmsg *err)
{
	struct page_run runs[8] = { 0 };
	struct pages bufs[8] = { 0 };
	uint8_t want[PAGE_STORE_PAGE];
	int ret = 0;

	for (size_t r = 0; r < nruns; r++) {
		ret |= pages_alloc(&bufs[r], (uint32_t)shape[r][1]);
		runs[r] = (struct page_run){ shape[r][0], (uint32_t)shape[r][1],
					     bufs[r].data, bufs[r].sums };
	}
	if (!ret)
		ret = page_store_get(s, runs, nruns, err);
	for (size_t r = 0; r < nruns && !ret; r++) {
		for (uint32_t i = 0; i < runs[r].count && !ret; i++) {
			fill_page(want, runs[r].first + i, gen);
			if (memcmp(want, bufs[r].data + (size_t)i * PAGE_STORE_PAGE,
				   PAGE_STORE_PAGE) ||
			    bufs[r].sums[i] != test_sum(runs[r].first + i, gen))
				ret = -EBADMSG;
		}
	}
	for (size_t r = 0; r < nruns; r++)
		pages_free(&bufs[r]);
	return ret;
}

static int put_one(struct page_store *s, uint64_t page, unsigned gen,
		   struct errmsg *err)
{
	const uint64_t shape[1][2] = { { page, 1 } };

	return put_runs(s, shape, 1, gen, err);
}

static int check_one(struct page_store *s, uint64_t page, unsigned gen,
		     struct errmsg *err)
{
	const uint64_t shape[1][2] = { { page, 1 } };

	return check_runs(s, shape, 1, gen, err);
}

/* --- tests ----------------------------------------------------------------- */

static void round_trips(struct fixture *f)
{
	const uint64_t batch[3][2] = { { 0, 40 }, { 100, 24 }, { 4095, 1 } };
	const uint64_t reshaped[2][2] = { { 10, 100 }, { 4095, 1 } };
	struct errmsg err = { "" };
	char desc[512];
	long total = 0;

	CHECK_EQ(put_runs(f->s, batch, 3, 0, &err), 0);
	CHECK_EQ(check_runs(f->s, batch, 3, 0, &err), 0);
	CHECK_EQ(check_runs(f->s, batch + 1, 1, 0, &err), 0);
	/* a get batch need not have the shape of the puts */
	CHECK_EQ(put_runs(f->s, (const uint64_t[][2]){ { 40, 60 } }, 1, 0, &err), 0);
	CHECK_EQ(check_runs(f->s, reshaped, 2, 0, &err), 0);
	/* rewriting replaces */
	CHECK_EQ(put_one(f->s, 101, 5, &err), 0);
	CHECK_EQ(check_one(f->s, 101, 5, &err), 0);
	CHECK_EQ(check_one(f->s, 100, 0, &err), 0);
	/* consistent hashing spread the batch over every server */
	for (int i = 0; i < f->n; i++) {
		long items = server_items(f->srv[i].port);

		CHECK(items > 0);
		total += items;
	}
	CHECK_EQ(total, 125);
	f->s->ops->describe(f->s, desc, sizeof(desc));
	CHECK(strstr(desc, f->spec + strlen("memcached:")) != NULL);
}

TEST(memcached_store_round_trips_over_three_servers)
{
	struct fixture f = { 0 };
	struct errmsg err = { "" };

	SKIP_WITHOUT_MEMCACHED();
	if (fixture_start(&f, 3, &err)) {
		fixture_stop(&f);
		harness_fail(__FILE__, __LINE__, "%s", err.text);
		return;
	}
	round_trips(&f);
	fixture_stop(&f);
}

static void missing_pages(struct fixture *f)
{
	const uint64_t batch[1][2] = { { 200, 32 } };
	struct page_run drop = { 210, 2, NULL, NULL };
	struct page_run never = { 3000, 9, NULL, NULL };
	struct errmsg err = { "" };

	CHECK_EQ(check_one(f->s, 7, 0, &err), -ENOENT);
	CHECK(strstr(err.text, "page 0x7 ") != NULL);
	CHECK(strstr(err.text, "127.0.0.1:") != NULL);
	CHECK_EQ(put_runs(f->s, batch, 1, 0, &err), 0);
	CHECK_EQ(page_store_drop(f->s, &drop, 1, &err), 0);
	CHECK_EQ(page_store_drop(f->s, &never, 1, &err), 0);
	CHECK_EQ(check_one(f->s, 209, 0, &err), 0);
	CHECK_EQ(check_one(f->s, 210, 0, &err), -ENOENT);
	CHECK(strstr(err.text, "0xd2") != NULL);
	CHECK_EQ(check_runs(f->s, batch, 1, 0, &err), -ENOENT);
	CHECK_EQ(check_one(f->s, 212, 0, &err), 0);
	/* memcached forgets everything: the store says which page, where */
	for (int i = 0; i < f->n; i++)
		CHECK_EQ(server_flush(f->srv[i].port), 0);
	CHECK_EQ(check_one(f->s, 212, 0, &err), -ENOENT);
	CHECK(strstr(err.text, "0xd4") != NULL);
	CHECK(strstr(err.text, "evicted") != NULL);
	CHECK_EQ(check_runs(f->s, batch, 1, 0, &err), -ENOENT);
}

TEST(memcached_store_missing_pages_are_enoent)
{
	struct fixture f = { 0 };
	struct errmsg err = { "" };

	SKIP_WITHOUT_MEMCACHED();
	if (fixture_start(&f, 2, &err)) {
		fixture_stop(&f);
		harness_fail(__FILE__, __LINE__, "%s", err.text);
		return;
	}
	missing_pages(&f);
	fixture_stop(&f);
}

/* Overwrites page @page's value behind the store's back with @len bytes,
 * through the text protocol, under the key the store uses. */
static int plant_value(unsigned port, uint64_t page, size_t len)
{
	char key[128], head[200], reply[64];
	char *cmd;
	int hlen, ret;

	snprintf(key, sizeof(key), "vm-mc:%016llx:%llx",
		 (unsigned long long)XXH3_64bits(test_secret,
						 sizeof(test_secret) - 1),
		 (unsigned long long)page);
	hlen = snprintf(head, sizeof(head), "set %s 0 0 %zu\r\n", key, len);
	cmd = malloc((size_t)hlen + len + 2);
	if (!cmd)
		return -1;
	memcpy(cmd, head, (size_t)hlen);
	memset(cmd + hlen, 'x', len);
	memcpy(cmd + hlen + len, "\r\n", 2);
	ret = server_command(port, cmd, (size_t)hlen + len + 2, "STORED\r\n",
			     reply, sizeof(reply));
	free(cmd);
	return ret;
}

static void bad_lengths(struct fixture *f)
{
	const uint64_t batch[1][2] = { { 6, 3 } };
	struct errmsg err = { "" };

	CHECK_EQ(put_runs(f->s, batch, 1, 0, &err), 0);
	CHECK_EQ(check_runs(f->s, batch, 1, 0, &err), 0);
	/* the key format is what the store documents */
	CHECK_EQ(plant_value(f->srv[0].port, 7, 100), 0);
	CHECK_EQ(check_one(f->s, 7, 0, &err), -EBADMSG);
	CHECK(strstr(err.text, "100 bytes") != NULL);
	CHECK(strstr(err.text, "0x7") != NULL);
	CHECK_EQ(check_runs(f->s, batch, 1, 0, &err), -EBADMSG);
	CHECK_EQ(plant_value(f->srv[0].port, 7, 0), 0);
	CHECK_EQ(check_one(f->s, 7, 0, &err), -EBADMSG);
	CHECK(strstr(err.text, "0 bytes") != NULL);
	CHECK_EQ(plant_value(f->srv[0].port, 8, 4096 + 8 + 1), 0);
	CHECK_EQ(check_one(f->s, 8, 0, &err), -EBADMSG);
	/* the neighbour is untouched and the connection still in step */
	CHECK_EQ(check_one(f->s, 6, 0, &err), 0);
	/* a put repairs */
	CHECK_EQ(put_runs(f->s, batch, 1, 1, &err), 0);
	CHECK_EQ(check_runs(f->s, batch, 1, 1, &err), 0);
}

TEST(memcached_store_rejects_values_of_wrong_length)
{
	struct fixture f = { 0 };
	struct errmsg err = { "" };

	SKIP_WITHOUT_MEMCACHED();
	if (fixture_start(&f, 1, &err)) {
		fixture_stop(&f);
		harness_fail(__FILE__, __LINE__, "%s", err.text);
		return;
	}
	bad_lengths(&f);
	fixture_stop(&f);
}

static void secrets(struct fixture *f)
{
	static const uint8_t other[] = "another-secret";
	struct page_store_params same =
		params("vm-mc", test_secret, sizeof(test_secret) - 1);
	struct page_store_params diff = params("vm-mc", other, sizeof(other) - 1);
	struct page_store_params ns =
		params("vm-other", test_secret, sizeof(test_secret) - 1);
	struct page_store *a = NULL, *b = NULL, *c = NULL;
	struct errmsg err = { "" };
	int r_same, r_diff, r_ns;

	CHECK_EQ(put_one(f->s, 9, 0, &err), 0);
	CHECK_EQ(page_store_open(f->spec, &same, &a, &err), 0);
	r_same = check_one(a, 9, 0, &err);
	page_store_destroy(a);
	CHECK_EQ(page_store_open(f->spec, &diff, &b, &err), 0);
	r_diff = check_one(b, 9, 0, &err);
	page_store_destroy(b);
	CHECK_EQ(page_store_open(f->spec, &ns, &c, &err), 0);
	r_ns = check_one(c, 9, 0, &err);
	page_store_destroy(c);
	CHECK_EQ(r_same, 0);
	CHECK_EQ(r_diff, -ENOENT);
	CHECK_EQ(r_ns, -ENOENT);
}

TEST(memcached_store_keys_depend_on_namespace_and_secret)
{
	struct fixture f = { 0 };
	struct errmsg err = { "" };

	SKIP_WITHOUT_MEMCACHED();
	if (fixture_start(&f, 1, &err)) {
		fixture_stop(&f);
		harness_fail(__FILE__, __LINE__, "%s", err.text);
		return;
	}
	secrets(&f);
	fixture_stop(&f);
}

static void outage(struct fixture *f)
{
	const uint64_t batch[1][2] = { { 0, 64 } };
	struct page_run drop = { 0, 64, NULL, NULL };
	struct errmsg err = { "" };
	char port_b[16];
	int on_a = -1, on_b = -1, r;
	double deadline;

	CHECK_EQ(put_runs(f->s, batch, 1, 0, &err), 0);
	/* B goes away: its pages are -EAGAIN, A's still there */
	server_stop(&f->srv[1]);
	snprintf(port_b, sizeof(port_b), ":%u", f->srv[1].port);
	for (int page = 0; page < 64; page++) {
		r = check_one(f->s, (uint64_t)page, 0, &err);
		CHECK(r == 0 || r == -EAGAIN);
		if (r == 0) {
			on_a = page;
		} else {
			on_b = page;
			CHECK(strstr(err.text, port_b) != NULL);
		}
	}
	CHECK(on_a >= 0 && on_b >= 0);
	CHECK_EQ(check_runs(f->s, batch, 1, 0, &err), -EAGAIN);
	CHECK_EQ(put_one(f->s, (uint64_t)on_b, 1, &err), -EAGAIN);
	CHECK_EQ(put_one(f->s, (uint64_t)on_a, 1, &err), 0);
	CHECK_EQ(check_one(f->s, (uint64_t)on_a, 1, &err), 0);

	/* all servers down: every op says try again */
	server_stop(&f->srv[0]);
	CHECK_EQ(put_runs(f->s, batch, 1, 2, &err), -EAGAIN);
	CHECK_EQ(check_runs(f->s, batch, 1, 0, &err), -EAGAIN);
	CHECK_EQ(check_one(f->s, (uint64_t)on_a, 1, &err), -EAGAIN);
	CHECK_EQ(page_store_drop(f->s, &drop, 1, &err), -EAGAIN);

	/* B comes back (empty: memcached keeps nothing over a restart) and
	 * is used again once libmemcached's retry timeout has passed */
	CHECK_EQ(server_start(&f->srv[1]), 0);
	deadline = now_s() + 15;
	do {
		r = put_one(f->s, (uint64_t)on_b, 3, &err);
		if (r == -EAGAIN)
			nap_ms(100);
	} while (r == -EAGAIN && now_s() < deadline);
	CHECK_EQ(r, 0);
	CHECK_EQ(check_one(f->s, (uint64_t)on_b, 3, &err), 0);
	CHECK_EQ(check_one(f->s, (uint64_t)on_a, 1, &err), -EAGAIN);
}

TEST(memcached_store_unreachable_servers_are_eagain_then_recover)
{
	struct fixture f = { 0 };
	struct errmsg err = { "" };

	SKIP_WITHOUT_MEMCACHED();
	if (fixture_start(&f, 2, &err)) {
		fixture_stop(&f);
		harness_fail(__FILE__, __LINE__, "%s", err.text);
		return;
	}
	outage(&f);
	fixture_stop(&f);
}

static void full_server(struct fixture *f)
{
	const uint64_t first[1][2] = { { 0, 32 } };
	struct errmsg err = { "" };
	uint64_t page = 0;
	int r = 0;

	/* -m 2 -M holds a few hundred pages, then refuses */
	while (!r && page < RAM_PAGES) {
		const uint64_t batch[1][2] = { { page, 32 } };

		r = put_runs(f->s, batch, 1, 0, &err);
		page += 32;
	}
	CHECK_EQ(r, -ENOSPC);
	CHECK(strstr(err.text, "full") != NULL);
	CHECK(page > 32);
	/* with -M nothing stored before was evicted */
	CHECK_EQ(check_runs(f->s, first, 1, 0, &err), 0);
}

TEST(memcached_store_full_server_is_enospc)
{
	struct fixture f = { 0 };
	struct errmsg err = { "" };

	SKIP_WITHOUT_MEMCACHED();
	f.srv[0].megabytes = "2";
	f.srv[0].no_evict = true;
	if (fixture_start(&f, 1, &err)) {
		fixture_stop(&f);
		harness_fail(__FILE__, __LINE__, "%s", err.text);
		return;
	}
	full_server(&f);
	fixture_stop(&f);
}

struct worker {
	struct page_store *s;
	uint64_t first;
	int failures;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct errmsg err;

	for (unsigned gen = 0; gen < 25; gen++) {
		const uint64_t batch[2][2] = {
			{ w->first + gen % 8, 1 + gen % 5 },
			{ w->first + 20, 4 },
		};

		if (put_runs(w->s, batch, 2, gen, &err) ||
		    check_runs(w->s, batch, 2, gen, &err))
			w->failures++;
	}
	return NULL;
}

TEST(memcached_store_concurrent_threads)
{
	struct fixture f = { 0 };
	struct errmsg err = { "" };
	struct worker w[4];
	pthread_t t[4];

	SKIP_WITHOUT_MEMCACHED();
	if (fixture_start(&f, 2, &err)) {
		fixture_stop(&f);
		harness_fail(__FILE__, __LINE__, "%s", err.text);
		return;
	}
	for (int i = 0; i < 4; i++) {
		w[i] = (struct worker){ f.s, (uint64_t)i * 100, 0 };
		pthread_create(&t[i], NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	fixture_stop(&f);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(w[i].failures, 0);
}

TEST(memcached_store_rejects_bad_specs)
{
	static const char *const bad[] = {
		"memcached:",
		"memcached:localhost",
		"memcached:localhost:",
		"memcached::11211",
		"memcached:localhost:0",
		"memcached:localhost:65536",
		"memcached:localhost:11x",
		"memcached:a:1,,b:2",
		"memcached:a:1,",
		"memcached:,a:1",
		"memcached:::1:11211",
		"memcached:[]:11211",
		"memcached:a b:1",
		"memcached:a/b:1",
		"memcached:a:1,a:1",
		"memcached:a:1,replicas=2",
	};
	struct page_store_params p =
		params("vm-mc", test_secret, sizeof(test_secret) - 1);
	struct page_store *s = NULL;
	struct errmsg err;
	char many[1024];
	size_t len = 0;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err.text[0] = 0;
		if (page_store_open(bad[i], &p, &s, &err) != -EINVAL) {
			harness_fail(__FILE__, __LINE__, "accepted '%s'", bad[i]);
			page_store_destroy(s);
			return;
		}
		CHECK(!strncmp(err.text, "memcached: ", 11));
	}
	CHECK(s == NULL);
	len = (size_t)snprintf(many, sizeof(many), "memcached:");
	for (int i = 0; i < 65; i++)
		len += (size_t)snprintf(many + len, sizeof(many) - len,
					"%sh:%d", i ? "," : "", 1000 + i);
	CHECK_EQ(page_store_open(many, &p, &s, &err), -EINVAL);
	CHECK(strstr(err.text, "at most") != NULL);
	/* these are fine (nothing is contacted at open) */
	CHECK_EQ(page_store_open("memcached:[::1]:11211,10.0.0.2:11211,"
				 "mc-3.rack.example:7000", &p, &s, &err), 0);
	page_store_destroy(s);
	p.ram_pages = 0;
	CHECK_EQ(page_store_open("memcached:a:1", &p, &s, &err), -EINVAL);
}
