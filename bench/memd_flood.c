// SPDX-License-Identifier: MIT
/*
 * bench/memd_flood: how long a memd takes to store N pages whose numbers
 * were chosen to collide in its page index, against N sequential pages.
 *
 *   build/bench/memd_flood [PAGES]      (default 30000)
 *
 * Each pattern gets a fresh server (in this process, on 127.0.0.1) and
 * one client connection that sends PUTs of 64 one-page runs and waits for
 * each reply, so what is timed is the server's work per request.  The
 * crafted pages are those an attacker who knows the hash of memd before
 * issue 13 (an unkeyed, invertible 64-bit mix) would send: pages whose
 * hash has its low 20 bits clear, so all of them share one home bucket
 * in every index of up to 2^20 entries (tests/unit/memd_old_hash.h).
 * Against a keyed hash they are just pages.  Prints per pattern: total seconds, the slowest PUT, and
 * the ratio of crafted to sequential.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "memd_old_hash.h"		/* tests/unit */
#include "memd_test_util.h"		/* tests/unit: the handshake */
#include "remote/memd_proto.h"
#include "remote/memd_server.h"
#include "util/full_io.h"

#define CRAFT_BITS 20
#define BATCH 64

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct server {
	struct memd_server *s;
	pthread_t thread;
};

static void *loop(void *arg)
{
	struct server *sv = arg;

	memd_server_run(sv->s, NULL);
	return NULL;
}

static int connect_local(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons(port) };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		perror("connect");
		exit(1);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static int reply_status(int fd)
{
	static uint8_t body[MEMD_MAX_BODY];
	uint8_t hdr[MEMD_HDR_SIZE];
	struct memd_hdr h;

	if (read_full(fd, hdr, sizeof(hdr)) || memd_hdr_decode(hdr, &h) ||
	    read_full(fd, body, h.body_len)) {
		fprintf(stderr, "memd_flood: bad reply\n");
		exit(1);
	}
	return h.status;
}

struct timing {
	double total;
	double *put;			/* each PUT's round trip, sorted */
	size_t nput;
};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Stores @n pages, one PUT of BATCH at a time, timing each. */
static void run(const uint64_t *pages, size_t n, struct timing *t)
{
	static uint8_t msg[MEMD_MAX_MSG], data[BATCH][PAGE_STORE_PAGE];
	static uint8_t tags[BATCH][MEMD_TAG_SIZE];
	struct memd_server_config cfg = {
		.listen = "127.0.0.1:0",
		.capacity = (uint64_t)n * (PAGE_STORE_PAGE + 64) + (64ull << 20),
	};
	struct page_run runs[BATCH];
	struct server sv;
	double start;
	int fd;

	t->nput = 0;
	t->put = calloc(n / BATCH + 1, sizeof(*t->put));
	if (!t->put || memd_server_create(&cfg, &sv.s, NULL) ||
	    pthread_create(&sv.thread, NULL, loop, &sv)) {
		fprintf(stderr, "memd_flood: cannot start a server\n");
		exit(1);
	}
	fd = connect_local(memd_server_port(sv.s));
	if (wire_hello(fd, "flood", "s", NULL) != MEMD_ST_OK)
		exit(1);
	start = now_s();
	for (size_t i = 0; i < n; i += BATCH) {
		size_t k = n - i < BATCH ? n - i : BATCH, size;
		double t0 = now_s();

		for (size_t j = 0; j < k; j++)
			runs[j] = (struct page_run){ .first = pages[i + j], .count = 1,
						     .data = data[j], .tags = tags[j] };
		size = memd_encode_runs(msg, MEMD_OP_PUT, i + 2, runs, k);
		if (write_full(fd, msg, size) || reply_status(fd) != MEMD_ST_OK) {
			fprintf(stderr, "memd_flood: a PUT failed\n");
			exit(1);
		}
		t->put[t->nput++] = now_s() - t0;
	}
	t->total = now_s() - start;
	qsort(t->put, t->nput, sizeof(*t->put), cmp_double);
	close(fd);
	memd_server_stop(sv.s);
	pthread_join(sv.thread, NULL);
	memd_server_destroy(sv.s);
}

static void print(const char *name, const struct timing *t)
{
	printf("  %-10s %8.3f s   PUT p50 %7.3f ms  p99 %8.3f ms  max %8.3f ms\n",
	       name, t->total, t->put[t->nput / 2] * 1e3,
	       t->put[t->nput * 99 / 100] * 1e3, t->put[t->nput - 1] * 1e3);
}

int main(int argc, char **argv)
{
	size_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : 30000;
	uint64_t *seq = calloc(n, sizeof(*seq)), *crafted = calloc(n, sizeof(*crafted));
	struct timing t_seq, t_crafted;

	if (!n || !seq || !crafted)
		return 1;
	for (size_t i = 0; i < n; i++)
		seq[i] = i;
	old_hash_collisions(crafted, n, CRAFT_BITS);
	run(seq, n, &t_seq);
	run(crafted, n, &t_crafted);
	printf("memd_flood: %zu pages in PUTs of %d\n", n, BATCH);
	print("sequential", &t_seq);
	print("crafted", &t_crafted);
	printf("  crafted / sequential: %.1f\n", t_crafted.total / t_seq.total);
	free(t_seq.put);
	free(t_crafted.put);
	free(seq);
	free(crafted);
	return 0;
}
