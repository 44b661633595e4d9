// SPDX-License-Identifier: MIT
/*
 * farmem_floor: the floor under a far-memory page fault on this machine,
 * what no pager can beat, for bench/farmem to set its fault latencies
 * against:
 *
 *   (a) a bare userfaultfd round trip: one thread touches a missing page
 *       of a registered mapping, another (blocked in poll(), as a pager's
 *       fault thread is) reads the event and resolves it with
 *       UFFDIO_COPY; timed from the touch to its return.  On a memfd
 *       mapping (MAP_SHARED, like rackvm's guest RAM) and on private
 *       anonymous memory.  Between sweeps the pages are made missing
 *       again (hole punch / MADV_DONTNEED), outside the timed part.
 *   (b) a loopback TCP round trip with TCP_NODELAY: a small request, a
 *       4 KiB + header response (the shape of a page fetch), timed at the
 *       client from send to the last byte received.
 *
 * Usage: farmem_floor [SAMPLES]     (default 10000 per figure)
 * Prints, for scripts to parse (microseconds):
 *   floor: uffd_memfd samples=N p50_us=X p90_us=Y p99_us=Z
 *   floor: uffd_anon samples=N p50_us=X p90_us=Y p99_us=Z
 *   floor: tcp_loopback samples=N req_bytes=R resp_bytes=S p50_us=X p90_us=Y p99_us=Z
 * and for a figure it could not measure (no userfaultfd permission, ...)
 *   floor: NAME n/a reason=...
 * Exit status 0 unless the arguments are bad: a missing floor is a
 * figure, not a failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096ul
#define SWEEP_PAGES 1024ul	/* pages faulted between two resets */
#define REQ_BYTES 32u
#define RESP_BYTES (4096u + 32u)
#define WARMUP 200u
#define MAX_SAMPLES 10000000ul

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The @pct percentile of @n sorted samples, nearest rank. */
static double percentile_us(const uint64_t *sorted, size_t n, unsigned int pct)
{
	size_t rank = (n * pct + 99) / 100;

	return (double)sorted[rank ? rank - 1 : 0] / 1000.0;
}

static void report(const char *name, const char *extra, uint64_t *ns,
		   size_t n)
{
	qsort(ns, n, sizeof(*ns), cmp_u64);
	printf("floor: %s samples=%zu%s p50_us=%.1f p90_us=%.1f p99_us=%.1f\n",
	       name, n, extra, percentile_us(ns, n, 50),
	       percentile_us(ns, n, 90), percentile_us(ns, n, 99));
}

static void report_na(const char *name, const char *what, int err)
{
	printf("floor: %s n/a reason=%s:%s\n", name, what, strerror(err));
}

/* ------------------------------------------------------------------ */
/* (a) userfaultfd                                                     */

struct uffd_bench {
	int uffd, stop_fd;	/* stop_fd: an eventfd that ends the server */
	int memfd;		/* -1: private anonymous memory */
	uint8_t *area;
	uint8_t *source;	/* one page, what UFFDIO_COPY copies */
	int server_err;		/* errno of the server's failure, or 0 */
};

static int resolve_fault(struct uffd_bench *b, const struct uffd_msg *msg)
{
	struct uffdio_copy copy = {
		.dst = msg->arg.pagefault.address & ~(PAGE - 1),
		.src = (uintptr_t)b->source,
		.len = PAGE,
	};

	if (ioctl(b->uffd, UFFDIO_COPY, &copy) < 0 && errno != EEXIST)
		return errno;
	return 0;
}

static void *uffd_server(void *arg)
{
	struct uffd_bench *b = arg;
	struct pollfd fds[2] = {
		{ .fd = b->uffd, .events = POLLIN },
		{ .fd = b->stop_fd, .events = POLLIN },
	};
	struct uffd_msg msg;
	ssize_t n;

	for (;;) {
		if (poll(fds, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			b->server_err = errno;
			return NULL;
		}
		if (fds[1].revents)
			return NULL;
		n = read(b->uffd, &msg, sizeof(msg));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n != sizeof(msg)) {
			b->server_err = n < 0 ? errno : EIO;
			return NULL;
		}
		if (msg.event != UFFD_EVENT_PAGEFAULT)
			continue;
		b->server_err = resolve_fault(b, &msg);
		if (b->server_err)
			return NULL;
	}
}

static int open_uffd(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	/* Unprivileged users may still trap their own user-mode faults. */
	if (fd < 0 && errno == EPERM)
		fd = (int)syscall(SYS_userfaultfd,
				  O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	return fd;
}

/* Maps and registers the area; on failure returns the step that failed
 * with errno set. */
static const char *uffd_setup(struct uffd_bench *b, bool use_memfd)
{
	size_t len = SWEEP_PAGES * PAGE;
	struct uffdio_api api = { .api = UFFD_API };
	struct uffdio_register reg = {
		.mode = UFFDIO_REGISTER_MODE_MISSING,
	};

	b->memfd = -1;
	b->uffd = open_uffd();
	if (b->uffd < 0)
		return "userfaultfd";
	if (ioctl(b->uffd, UFFDIO_API, &api) < 0)
		return "UFFDIO_API";
	b->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (b->stop_fd < 0)
		return "eventfd";
	if (use_memfd) {
		b->memfd = memfd_create("farmem_floor", MFD_CLOEXEC);
		if (b->memfd < 0)
			return "memfd_create";
		if (ftruncate(b->memfd, (off_t)len) < 0)
			return "ftruncate";
		b->area = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED,
			       b->memfd, 0);
	} else {
		b->area = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	}
	if (b->area == MAP_FAILED) {
		b->area = NULL;
		return "mmap";
	}
	b->source = aligned_alloc(PAGE, PAGE);
	if (!b->source)
		return "aligned_alloc";
	memset(b->source, 0x5a, PAGE);
	reg.range.start = (uintptr_t)b->area;
	reg.range.len = len;
	if (ioctl(b->uffd, UFFDIO_REGISTER, &reg) < 0)
		return "UFFDIO_REGISTER";
	return NULL;
}

static void uffd_teardown(struct uffd_bench *b)
{
	if (b->area)
		munmap(b->area, SWEEP_PAGES * PAGE);
	free(b->source);
	if (b->memfd >= 0)
		close(b->memfd);
	if (b->stop_fd >= 0)
		close(b->stop_fd);
	if (b->uffd >= 0)
		close(b->uffd);
}

/* Makes every page of the area missing again. */
static int uffd_reset(struct uffd_bench *b)
{
	size_t len = SWEEP_PAGES * PAGE;

	if (b->memfd >= 0)
		return fallocate(b->memfd,
				 FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				 0, (off_t)len);
	return madvise(b->area, len, MADV_DONTNEED);
}

/* Touches @n pages (warm-up first, not kept); fills @ns. */
static const char *uffd_measure(struct uffd_bench *b, uint64_t *ns, size_t n)
{
	volatile uint8_t *p;
	size_t i, page = SWEEP_PAGES;
	uint64_t t0;

	for (i = 0; i < n + WARMUP; i++) {
		if (page == SWEEP_PAGES) {
			if (uffd_reset(b) < 0)
				return "reset";
			page = 0;
		}
		p = b->area + page++ * PAGE;
		t0 = now_ns();
		(void)*p;
		if (i >= WARMUP)
			ns[i - WARMUP] = now_ns() - t0;
		if (b->server_err) {
			errno = b->server_err;
			return "UFFDIO_COPY";
		}
	}
	return NULL;
}

static void bench_uffd(const char *name, bool use_memfd, uint64_t *ns,
		       size_t n)
{
	struct uffd_bench b = { .uffd = -1, .stop_fd = -1, .memfd = -1 };
	const char *failed;
	uint64_t one = 1;
	pthread_t server;
	int err;

	failed = uffd_setup(&b, use_memfd);
	if (failed) {
		report_na(name, failed, errno);
		uffd_teardown(&b);
		return;
	}
	err = pthread_create(&server, NULL, uffd_server, &b);
	if (err) {
		report_na(name, "pthread_create", err);
		uffd_teardown(&b);
		return;
	}
	failed = uffd_measure(&b, ns, n);
	err = errno;
	if (write(b.stop_fd, &one, sizeof(one)) != sizeof(one))
		abort();	/* the server would never return */
	pthread_join(server, NULL);
	if (failed)
		report_na(name, failed, err);
	else
		report(name, "", ns, n);
	uffd_teardown(&b);
}

/* ------------------------------------------------------------------ */
/* (b) loopback TCP                                                    */

struct tcp_bench {
	int listen_fd;
	size_t rounds;
	int server_err;
};

static int send_all(int fd, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : EPIPE;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int recv_all(int fd, void *buf, size_t len)
{
	uint8_t *p = buf;
	ssize_t n;

	while (len) {
		n = recv(fd, p, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? errno : ECONNRESET;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void set_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Answers every request with a page-sized response. */
static void *tcp_server(void *arg)
{
	struct tcp_bench *t = arg;
	static uint8_t resp[RESP_BYTES];
	uint8_t req[REQ_BYTES];
	size_t i;
	int fd;

	fd = accept(t->listen_fd, NULL, NULL);
	if (fd < 0) {
		t->server_err = errno;
		return NULL;
	}
	set_nodelay(fd);
	memset(resp, 0xa5, sizeof(resp));
	for (i = 0; i < t->rounds; i++) {
		t->server_err = recv_all(fd, req, sizeof(req));
		if (!t->server_err)
			t->server_err = send_all(fd, resp, sizeof(resp));
		if (t->server_err)
			break;
	}
	close(fd);
	return NULL;
}

/* A listening socket on 127.0.0.1, any port, its address in @addr.
 * Returns NULL, or the step that failed with errno set. */
static const char *tcp_listen(int *fd_out, struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return "socket";
	*fd_out = fd;
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)) < 0)
		return "bind";
	if (listen(fd, 1) < 0)
		return "listen";
	if (getsockname(fd, (struct sockaddr *)addr, &len) < 0)
		return "getsockname";
	return NULL;
}

static const char *tcp_measure(int fd, uint64_t *ns, size_t n)
{
	static uint8_t resp[RESP_BYTES];
	uint8_t req[REQ_BYTES];
	uint64_t t0;
	size_t i;
	int err;

	memset(req, 0x3c, sizeof(req));
	for (i = 0; i < n + WARMUP; i++) {
		t0 = now_ns();
		err = send_all(fd, req, sizeof(req));
		if (!err)
			err = recv_all(fd, resp, sizeof(resp));
		if (err) {
			errno = err;
			return "round trip";
		}
		if (i >= WARMUP)
			ns[i - WARMUP] = now_ns() - t0;
	}
	return NULL;
}

static void bench_tcp(uint64_t *ns, size_t n)
{
	struct tcp_bench t = { .listen_fd = -1, .rounds = n + WARMUP };
	struct sockaddr_in addr;
	const char *failed;
	char extra[64];
	pthread_t server;
	int fd = -1, err;

	failed = tcp_listen(&t.listen_fd, &addr);
	if (failed)
		goto out;
	err = pthread_create(&server, NULL, tcp_server, &t);
	if (err) {
		errno = err;
		failed = "pthread_create";
		goto out;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		failed = "connect";
		err = errno;
		/* unblocks the server's accept(), whose failure ends it */
		shutdown(t.listen_fd, SHUT_RDWR);
		pthread_join(server, NULL);
		errno = err;
		goto out;
	}
	set_nodelay(fd);
	failed = tcp_measure(fd, ns, n);
	err = errno;
	shutdown(fd, SHUT_RDWR);	/* a server still in recv() returns */
	pthread_join(server, NULL);
	errno = err;
out:
	if (failed) {
		report_na("tcp_loopback", failed, errno);
	} else {
		snprintf(extra, sizeof(extra), " req_bytes=%u resp_bytes=%u",
			 REQ_BYTES, RESP_BYTES);
		report("tcp_loopback", extra, ns, n);
	}
	if (fd >= 0)
		close(fd);
	if (t.listen_fd >= 0)
		close(t.listen_fd);
}

int main(int argc, char **argv)
{
	unsigned long samples = 10000;
	uint64_t *ns;
	char *end;

	if (argc > 2 || (argc == 2 && argv[1][0] == '-')) {
		fprintf(stderr, "usage: farmem_floor [SAMPLES]\n");
		return 2;
	}
	if (argc == 2) {
		errno = 0;
		samples = strtoul(argv[1], &end, 10);
		if (errno || *end || samples < 1 || samples > MAX_SAMPLES) {
			fprintf(stderr, "farmem_floor: SAMPLES must be 1..%lu\n",
				MAX_SAMPLES);
			return 2;
		}
	}
	ns = calloc(samples, sizeof(*ns));
	if (!ns) {
		fprintf(stderr, "farmem_floor: out of memory\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	bench_uffd("uffd_memfd", true, ns, samples);
	bench_uffd("uffd_anon", false, ns, samples);
	bench_tcp(ns, samples);
	free(ns);
	return 0;
}
