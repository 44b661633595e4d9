// SPDX-License-Identifier: MIT
/*
 * chaos-proxy: a TCP proxy in front of one server that can be told to
 * misbehave like a network, for the chaos suite (tests/chaos/chaos.py).
 *
 *   chaos-proxy LISTEN_PORT BACKEND_PORT     (both on 127.0.0.1; a
 *                                            LISTEN_PORT of 0 picks one)
 *
 * It prints "chaos-proxy: listening on 127.0.0.1:PORT" when ready, then
 * reads commands on stdin, one a line, each answered with one line on
 * stdout once it is in effect:
 *   pass        forward both ways as they come
 *   drop        forward nothing either way (a partition: connections stay
 *               open, new ones are accepted, bytes wait, in the proxy or
 *               in the kernel, until pass or delay)
 *   delay MS    forward every chunk MS milliseconds after it arrived
 *   cut         close every connection, and every new one at once, until
 *               pass, drop or delay
 *   stats       "ok conns=N bytes=N" (connections open, bytes forwarded)
 *   quit        (or end of input) exits
 * Replies are "ok ..." or "error: ...".
 *
 * One thread, poll(); each direction of a connection has a queue of
 * chunks stamped with the time they may leave.  A direction holding
 * QUEUE_MAX bytes stops reading, so a slow or dropped peer pushes back
 * on the sender as a network would.  The proxy trusts no peer: a reset
 * or an error on either side closes that connection, nothing else.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 256
#define CHUNK 65536
#define QUEUE_MAX (4u << 20)

struct chunk {
	struct chunk *next;
	int64_t due_ms;
	size_t len, off;
	uint8_t data[];
};

/* Bytes from fd[from] waiting to go to fd[!from]. */
struct queue {
	struct chunk *head, *tail;
	size_t bytes;
};

struct pair {
	int fd[2];			/* client, backend; -1: unused */
	struct queue q[2];		/* q[i]: read from fd[i] */
};

enum mode { MODE_PASS, MODE_DROP, MODE_DELAY, MODE_CUT };

static struct pair pairs[MAX_CONNS];
static enum mode mode = MODE_PASS;
static int64_t delay_ms;
static uint64_t forwarded;

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void queue_free(struct queue *q)
{
	while (q->head) {
		struct chunk *c = q->head;

		q->head = c->next;
		free(c);
	}
	*q = (struct queue){ 0 };
}

static void pair_close(struct pair *p)
{
	for (int i = 0; i < 2; i++) {
		if (p->fd[i] >= 0)
			close(p->fd[i]);
		p->fd[i] = -1;
		queue_free(&p->q[i]);
	}
}

static int listen_on(uint16_t port, uint16_t *bound)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons(port) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 128) ||
	    getsockname(fd, (struct sockaddr *)&a, &len)) {
		close(fd);
		return -1;
	}
	*bound = ntohs(a.sin_port);
	return fd;
}

/* A non-blocking connection to the backend, or -1 (it is down). */
static int connect_backend(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	/* loopback: refused or accepted (by the kernel's backlog) at once */
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		close(fd);
		return -1;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

static void accept_one(int lfd, uint16_t backend)
{
	int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC), b, one = 1;
	struct pair *p = NULL;

	if (c < 0)
		return;
	for (int i = 0; i < MAX_CONNS && !p; i++)
		if (pairs[i].fd[0] < 0)
			p = &pairs[i];
	b = p && mode != MODE_CUT ? connect_backend(backend) : -1;
	if (b < 0) {
		close(c);
		return;
	}
	setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	p->fd[0] = c;
	p->fd[1] = b;
}

/* Reads what fd[from] has into its queue; false: the pair is done. */
static bool pump_in(struct pair *p, int from)
{
	struct chunk *c = malloc(sizeof(*c) + CHUNK);
	ssize_t n;

	if (!c)
		return false;
	n = recv(p->fd[from], c->data, CHUNK, MSG_DONTWAIT);
	if (n <= 0) {
		free(c);
		return n < 0 && (errno == EAGAIN || errno == EINTR);
	}
	*c = (struct chunk){ .len = (size_t)n,
			     .due_ms = now_ms() + (mode == MODE_DELAY ? delay_ms : 0) };
	if (p->q[from].tail)
		p->q[from].tail->next = c;
	else
		p->q[from].head = c;
	p->q[from].tail = c;
	p->q[from].bytes += (size_t)n;
	return true;
}

/* Writes the due chunks of fd[from]'s queue to the other side. */
static bool pump_out(struct pair *p, int from, int64_t now)
{
	struct queue *q = &p->q[from];

	while (q->head && q->head->due_ms <= now) {
		struct chunk *c = q->head;
		ssize_t n = send(p->fd[!from], c->data + c->off, c->len - c->off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);

		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		c->off += (size_t)n;
		q->bytes -= (size_t)n;
		forwarded += (size_t)n;
		if (c->off < c->len)
			return true;
		q->head = c->next;
		if (!q->head)
			q->tail = NULL;
		free(c);
	}
	return true;
}

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* One command line; false: quit. */
static bool command(char *line)
{
	unsigned conns = 0;
	long ms;

	line[strcspn(line, "\r\n")] = 0;
	if (!strcmp(line, "pass")) {
		mode = MODE_PASS;
		delay_ms = 0;
	} else if (!strcmp(line, "drop")) {
		mode = MODE_DROP;
	} else if (sscanf(line, "delay %ld", &ms) == 1 && ms >= 0 && ms < 600000) {
		mode = MODE_DELAY;
		delay_ms = ms;
	} else if (!strcmp(line, "cut")) {
		mode = MODE_CUT;
		for (int i = 0; i < MAX_CONNS; i++)
			pair_close(&pairs[i]);
	} else if (!strcmp(line, "stats")) {
		for (int i = 0; i < MAX_CONNS; i++)
			conns += pairs[i].fd[0] >= 0;
		reply("ok conns=%u bytes=%llu", conns,
		      (unsigned long long)forwarded);
		return true;
	} else if (!strcmp(line, "quit")) {
		reply("ok");
		return false;
	} else {
		reply("error: unknown command '%.40s'", line);
		return true;
	}
	reply("ok");
	return true;
}

int main(int argc, char **argv)
{
	char line[128];
	uint16_t port;
	long lp, bp;
	int lfd;

	if (argc != 3 || (lp = strtol(argv[1], NULL, 10)) < 0 || lp > 65535 ||
	    (bp = strtol(argv[2], NULL, 10)) <= 0 || bp > 65535) {
		fprintf(stderr, "usage: chaos-proxy LISTEN_PORT BACKEND_PORT\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	lfd = listen_on((uint16_t)lp, &port);
	if (lfd < 0) {
		fprintf(stderr, "chaos-proxy: cannot listen on port %ld: %s\n",
			lp, strerror(errno));
		return 1;
	}
	for (int i = 0; i < MAX_CONNS; i++)
		pairs[i].fd[0] = pairs[i].fd[1] = -1;
	printf("chaos-proxy: listening on 127.0.0.1:%u\n", port);
	fflush(stdout);
	setvbuf(stdin, NULL, _IOLBF, 0);

	for (;;) {
		struct pollfd pfd[2 + 2 * MAX_CONNS];
		int map[2 + 2 * MAX_CONNS], n = 0, timeout = -1;
		int64_t now = now_ms();
		bool moving = mode == MODE_PASS || mode == MODE_DELAY;

		pfd[n++] = (struct pollfd){ .fd = 0, .events = POLLIN };
		pfd[n++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (int i = 0; i < MAX_CONNS; i++) {
			struct pair *p = &pairs[i];

			if (p->fd[0] < 0)
				continue;
			for (int k = 0; k < 2; k++) {
				struct queue *in = &p->q[k], *out = &p->q[!k];
				short ev = 0;

				if (moving && in->bytes < QUEUE_MAX)
					ev |= POLLIN;
				if (moving && out->head) {
					int64_t wait = out->head->due_ms - now;

					if (wait <= 0)
						ev |= POLLOUT;
					else if (timeout < 0 || wait < timeout)
						timeout = (int)wait;
				}
				map[n] = i * 2 + k;
				pfd[n++] = (struct pollfd){ .fd = p->fd[k], .events = ev };
			}
		}
		if (poll(pfd, (nfds_t)n, timeout) < 0 && errno != EINTR)
			return 1;
		if (pfd[0].revents) {
			if (!fgets(line, sizeof(line), stdin) || !command(line))
				break;
			continue;	/* the mode may have closed pairs */
		}
		if (pfd[1].revents & POLLIN)
			accept_one(lfd, (uint16_t)bp);
		now = now_ms();
		for (int j = 2; j < n; j++) {
			struct pair *p = &pairs[map[j] / 2];
			int k = map[j] % 2;
			bool ok = true;

			if (p->fd[0] < 0 || !pfd[j].revents)
				continue;
			if (pfd[j].revents & (POLLERR | POLLNVAL))
				ok = false;
			else if (pfd[j].revents & (POLLIN | POLLHUP))
				ok = pump_in(p, k);
			/* what came from the other side, now due */
			if (ok && (pfd[j].revents & POLLOUT))
				ok = pump_out(p, !k, now);
			if (!ok)
				pair_close(p);
		}
		if (moving)
			for (int i = 0; i < MAX_CONNS; i++)
				if (pairs[i].fd[0] >= 0 &&
				    (!pump_out(&pairs[i], 0, now) ||
				     !pump_out(&pairs[i], 1, now)))
					pair_close(&pairs[i]);
	}
	for (int i = 0; i < MAX_CONNS; i++)
		pair_close(&pairs[i]);
	close(lfd);
	return 0;
}
