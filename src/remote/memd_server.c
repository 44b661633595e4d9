// SPDX-License-Identifier: MIT
/*
 * The memd server, see memd_server.h.
 *
 * Storage: pages live in slots of slabs mapped SLAB_PAGES at a time (data
 * first, page-aligned, then the checksums); a free slot keeps the number
 * of the next free one in its checksum field, so free slots cost nothing.
 * Each namespace maps page numbers to slots with an open-addressing hash
 * table (linear probing, backward-shift deletion, at most 3/4 full).
 *
 * A PUT is checked against the capacity as a whole first (new slots it
 * needs beyond the free ones, rounded up to slabs, plus the index table
 * it would grow to, which exists beside the old one while rehashing), the
 * memory is then reserved, and only then is any page written: a PUT is
 * stored entirely or not at all, and the writing cannot fail.
 */
#include "remote/memd_server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>
#include <xxhash.h>

#include "util/full_io.h"

#define SLAB_PAGES 512u
#define SLAB_BYTES ((size_t)SLAB_PAGES * (PAGE_STORE_PAGE + 8))
#define NO_SLOT UINT32_MAX
#define EMPTY_PAGE UINT64_MAX		/* never a page number (< 2^52) */
#define INDEX_MIN_SIZE 256u
#define BUF_KEEP (64u << 10)		/* larger idle buffers are freed */
#define OUT_HIGH MEMD_MAX_MSG		/* stop reading requests above this */
#define MAX_EVENTS 64
#define KEY_SIZE 192			/* >= XXH3_SECRET_SIZE_MIN */
#define REPLY_WRITTEN 0x100		/* a handler wrote its reply itself */

struct slabs {
	uint8_t **slab;			/* max_slabs pointers */
	uint32_t nslabs, max_slabs;
	uint32_t free_head;		/* NO_SLOT: none free */
	uint64_t nfree;
};

struct index_entry {
	uint64_t page;			/* EMPTY_PAGE: unused */
	uint32_t slot;
};

struct page_index {
	struct index_entry *e;
	uint64_t size;			/* a power of two */
	uint64_t count;
};

struct namespace {
	struct namespace *next;
	char name[MEMD_NAME_MAX + 1];
	XXH128_hash_t secret_hash;
	struct page_index index;
};

struct conn {
	struct conn *prev, *next;
	int fd;
	uint32_t events;		/* the epoll interest set now */
	char peer[64];
	struct namespace *ns;		/* after a successful HELLO */
	uint8_t *in;
	size_t in_len, in_cap;
	uint8_t *out;
	size_t out_head, out_len, out_cap;
	bool closing;			/* read no more; close once flushed */
};

/* Written by the loop thread, read by memd_server_stats() anywhere. */
struct counters {
	_Atomic uint64_t used, pages, namespaces, connections, pages_put,
		pages_got, pages_dropped, full_refusals, bad_secrets;
};

struct memd_server {
	int epoll_fd, listen_fd, stop_fd;
	struct sockaddr_storage addr;
	socklen_t addr_len;
	uint64_t capacity;
	unsigned max_clients;
	memd_log_fn log;
	void *log_opaque;
	uint8_t key[KEY_SIZE];
	struct slabs slabs;
	struct namespace *namespaces;
	struct conn *conns;
	bool accept_paused;		/* out of fds: wait for a close */
	bool full_logged;		/* said so since the last stored PUT */
	struct counters c;
};

static void counter_add(_Atomic uint64_t *c, int64_t delta)
{
	atomic_fetch_add_explicit(c, (uint64_t)delta, memory_order_relaxed);
}

static uint64_t counter_get(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

__attribute__((format(printf, 3, 4)))
static void say(struct memd_server *s, enum memd_log_level level,
		const char *fmt, ...)
{
	char line[320];
	va_list ap;

	if (!s->log)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	s->log(s->log_opaque, level, line);
}

/* ---- budget ------------------------------------------------------------ */

static bool budget_allows(struct memd_server *s, uint64_t bytes)
{
	return bytes <= s->capacity - counter_get(&s->c.used);
}

/* ---- slabs -------------------------------------------------------------- */

static uint8_t *slot_data(const struct slabs *sl, uint32_t slot)
{
	return sl->slab[slot / SLAB_PAGES] +
	       (size_t)(slot % SLAB_PAGES) * PAGE_STORE_PAGE;
}

static uint64_t *slot_sum(const struct slabs *sl, uint32_t slot)
{
	uint8_t *sums = sl->slab[slot / SLAB_PAGES] +
			(size_t)SLAB_PAGES * PAGE_STORE_PAGE;

	return (uint64_t *)sums + slot % SLAB_PAGES;
}

static void slot_free(struct slabs *sl, uint32_t slot)
{
	*slot_sum(sl, slot) = sl->free_head;
	sl->free_head = slot;
	sl->nfree++;
}

static uint32_t slot_alloc(struct slabs *sl)
{
	uint32_t slot = sl->free_head;

	sl->free_head = (uint32_t)*slot_sum(sl, slot);
	sl->nfree--;
	return slot;
}

/* Maps @n more slabs (the caller checked the budget and max_slabs). */
static int slabs_grow(struct memd_server *s, uint32_t n)
{
	struct slabs *sl = &s->slabs;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t base = sl->nslabs * SLAB_PAGES;
		void *p = mmap(NULL, SLAB_BYTES, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (p == MAP_FAILED)
			return -errno;
		sl->slab[sl->nslabs++] = p;
		counter_add(&s->c.used, SLAB_BYTES);
		/* pushed backwards, so slots are handed out in address order */
		for (uint32_t j = SLAB_PAGES; j-- > 0;)
			slot_free(sl, base + j);
	}
	return 0;
}

/* ---- page index --------------------------------------------------------- */

static uint64_t mix64(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static uint64_t index_bytes(uint64_t size)
{
	return size * sizeof(struct index_entry);
}

/* The table size that holds @count pages at most 3/4 full. */
static uint64_t index_size_for(uint64_t count)
{
	uint64_t size = INDEX_MIN_SIZE;

	while (count > size / 4 * 3)
		size *= 2;
	return size;
}

static struct index_entry *index_alloc(uint64_t size)
{
	struct index_entry *e = malloc(index_bytes(size));

	if (e)
		for (uint64_t i = 0; i < size; i++)
			e[i].page = EMPTY_PAGE;
	return e;
}

static struct index_entry *index_find(const struct page_index *ix,
				      uint64_t page)
{
	uint64_t mask = ix->size - 1;

	for (uint64_t i = mix64(page) & mask;; i = (i + 1) & mask) {
		if (ix->e[i].page == page)
			return &ix->e[i];
		if (ix->e[i].page == EMPTY_PAGE)
			return NULL;
	}
}

/* @page is absent and the table has room. */
static void index_insert(struct page_index *ix, uint64_t page, uint32_t slot)
{
	uint64_t mask = ix->size - 1, i = mix64(page) & mask;

	while (ix->e[i].page != EMPTY_PAGE)
		i = (i + 1) & mask;
	ix->e[i] = (struct index_entry){ page, slot };
	ix->count++;
}

/* Returns the page's slot, or NO_SLOT if it was not there. */
static uint32_t index_remove(struct page_index *ix, uint64_t page)
{
	struct index_entry *hole = index_find(ix, page);
	uint64_t mask = ix->size - 1, i, j;
	uint32_t slot;

	if (!hole)
		return NO_SLOT;
	slot = hole->slot;
	i = (uint64_t)(hole - ix->e);
	/* shift back every entry whose probe sequence crosses the hole */
	for (j = (i + 1) & mask; ix->e[j].page != EMPTY_PAGE; j = (j + 1) & mask) {
		uint64_t home = mix64(ix->e[j].page) & mask;
		bool crosses = i <= j ? (home <= i || home > j) :
					(home <= i && home > j);

		if (crosses) {
			ix->e[i] = ix->e[j];
			i = j;
		}
	}
	ix->e[i].page = EMPTY_PAGE;
	ix->count--;
	return slot;
}

/* The budget for the new table was checked; old and new coexist here. */
static int index_resize(struct memd_server *s, struct page_index *ix,
			uint64_t size)
{
	struct page_index bigger = { index_alloc(size), size, 0 };

	if (!bigger.e)
		return -ENOMEM;
	counter_add(&s->c.used, (int64_t)index_bytes(size));
	for (uint64_t i = 0; i < ix->size; i++)
		if (ix->e[i].page != EMPTY_PAGE)
			index_insert(&bigger, ix->e[i].page, ix->e[i].slot);
	free(ix->e);
	counter_add(&s->c.used, -(int64_t)index_bytes(ix->size));
	*ix = bigger;
	return 0;
}

/* ---- namespaces ---------------------------------------------------------- */

static uint64_t namespace_bytes(void)
{
	return sizeof(struct namespace) + index_bytes(INDEX_MIN_SIZE);
}

/* Keyed, so a dump of the server's memory does not let anyone test
 * guesses of a secret offline without the key too. */
static XXH128_hash_t secret_hash(const struct memd_server *s,
				 const struct memd_request *req)
{
	uint8_t buf[2 + MEMD_NAME_MAX + MEMD_SECRET_MAX];
	XXH128_hash_t h;

	buf[0] = (uint8_t)req->name_len;
	memcpy(buf + 1, req->name, req->name_len);
	buf[1 + req->name_len] = (uint8_t)req->secret_len;
	memcpy(buf + 2 + req->name_len, req->secret, req->secret_len);
	h = XXH3_128bits_withSecret(buf, 2 + req->name_len + req->secret_len,
				    s->key, sizeof(s->key));
	explicit_bzero(buf, sizeof(buf));
	return h;
}

static bool hash_equal_ct(XXH128_hash_t a, XXH128_hash_t b)
{
	volatile uint64_t diff = (a.low64 ^ b.low64) | (a.high64 ^ b.high64);

	return diff == 0;
}

static struct namespace *namespace_find(struct memd_server *s,
					const char *name, size_t len)
{
	for (struct namespace *ns = s->namespaces; ns; ns = ns->next)
		if (strlen(ns->name) == len && !memcmp(ns->name, name, len))
			return ns;
	return NULL;
}

static void namespace_free(struct memd_server *s, struct namespace *ns)
{
	free(ns->index.e);
	counter_add(&s->c.used, -(int64_t)namespace_bytes());
	free(ns);
}

/* ---- connection buffers -------------------------------------------------- */

static size_t out_pending(const struct conn *c)
{
	return c->out_len - c->out_head;
}

/* Room for @n more bytes of replies; NULL when out of memory. */
static uint8_t *out_reserve(struct conn *c, size_t n)
{
	uint8_t *p;

	if (c->out_cap - c->out_len < n && c->out_head) {
		memmove(c->out, c->out + c->out_head, out_pending(c));
		c->out_len -= c->out_head;
		c->out_head = 0;
	}
	if (c->out_cap - c->out_len < n) {
		size_t cap = c->out_len + n < BUF_KEEP ? BUF_KEEP : c->out_len + n;

		p = realloc(c->out, cap);
		if (!p)
			return NULL;
		c->out = p;
		c->out_cap = cap;
	}
	p = c->out + c->out_len;
	c->out_len += n;
	return p;
}

static int reply_empty(struct conn *c, const struct memd_hdr *req,
		       uint8_t status)
{
	struct memd_hdr h = { .op = req->op, .status = status, .id = req->id };
	uint8_t *p = out_reserve(c, MEMD_HDR_SIZE);

	if (!p)
		return -ENOMEM;
	memd_hdr_encode(&h, p);
	return 0;
}

/* ---- requests ------------------------------------------------------------ */

static int handle_hello(struct memd_server *s, struct conn *c,
			const struct memd_request *req)
{
	XXH128_hash_t h;
	struct namespace *ns;

	if (c->ns)
		return MEMD_ST_BAD_REQUEST;
	h = secret_hash(s, req);
	ns = namespace_find(s, req->name, req->name_len);
	if (ns) {
		if (!hash_equal_ct(h, ns->secret_hash)) {
			counter_add(&s->c.bad_secrets, 1);
			say(s, MEMD_LOG_WARN, "refused %s: wrong secret for namespace '%s'",
			    c->peer, ns->name);
			c->closing = true;
			return MEMD_ST_BAD_SECRET;
		}
		c->ns = ns;
		return MEMD_ST_OK;
	}
	if (!budget_allows(s, namespace_bytes())) {
		counter_add(&s->c.full_refusals, 1);
		say(s, MEMD_LOG_INFO, "capacity reached: no room for namespace "
		    "'%.*s' of %s", (int)req->name_len, req->name, c->peer);
		return MEMD_ST_FULL;
	}
	ns = calloc(1, sizeof(*ns));
	if (ns)
		ns->index.e = index_alloc(INDEX_MIN_SIZE);
	if (!ns || !ns->index.e) {
		free(ns);
		return MEMD_ST_FULL;
	}
	ns->index.size = INDEX_MIN_SIZE;
	memcpy(ns->name, req->name, req->name_len);
	ns->secret_hash = h;
	ns->next = s->namespaces;
	s->namespaces = ns;
	counter_add(&s->c.used, (int64_t)namespace_bytes());
	counter_add(&s->c.namespaces, 1);
	c->ns = ns;
	say(s, MEMD_LOG_INFO, "namespace '%s' created by %s", ns->name, c->peer);
	return MEMD_ST_OK;
}

static int refuse_full(struct memd_server *s, struct conn *c, uint32_t pages)
{
	counter_add(&s->c.full_refusals, 1);
	if (!s->full_logged)
		say(s, MEMD_LOG_INFO, "capacity reached: refusing %u pages for "
		    "namespace '%s' of %s (%llu of %llu bytes used)", pages,
		    c->ns->name, c->peer,
		    (unsigned long long)counter_get(&s->c.used),
		    (unsigned long long)s->capacity);
	s->full_logged = true;
	return MEMD_ST_FULL;
}

/* Reserves slots and index room for @fresh new pages, or says FULL. */
static int reserve_for_put(struct memd_server *s, struct conn *c,
			   uint64_t fresh, uint32_t pages)
{
	struct slabs *sl = &s->slabs;
	struct page_index *ix = &c->ns->index;
	uint64_t short_slots = fresh > sl->nfree ? fresh - sl->nfree : 0;
	uint64_t new_slabs = (short_slots + SLAB_PAGES - 1) / SLAB_PAGES;
	uint64_t size = index_size_for(ix->count + fresh);
	uint64_t grow = size > ix->size ? index_bytes(size) : 0;
	int ret;

	if (new_slabs > sl->max_slabs - sl->nslabs ||
	    !budget_allows(s, new_slabs * SLAB_BYTES + grow))
		return refuse_full(s, c, pages);
	ret = slabs_grow(s, (uint32_t)new_slabs);
	if (!ret && grow)
		ret = index_resize(s, ix, size);
	if (ret) {
		say(s, MEMD_LOG_WARN, "cannot allocate memory for %u pages "
		    "within the capacity: %s", pages, strerror(-ret));
		return refuse_full(s, c, pages);
	}
	return MEMD_ST_OK;
}

static int handle_put(struct memd_server *s, struct conn *c,
		      const struct memd_request *req)
{
	struct page_index *ix;
	uint64_t fresh = 0;
	int status;

	if (!c->ns)
		return MEMD_ST_BAD_SECRET;
	ix = &c->ns->index;
	for (size_t i = 0; i < req->nruns; i++)
		for (uint32_t j = 0; j < req->runs[i].count; j++)
			fresh += !index_find(ix, req->runs[i].first + j);
	status = reserve_for_put(s, c, fresh, req->npages);
	if (status != MEMD_ST_OK)
		return status;
	for (size_t i = 0; i < req->nruns; i++) {
		const struct memd_run_ref *r = &req->runs[i];

		for (uint32_t j = 0; j < r->count; j++) {
			const uint8_t *rec = r->records + (size_t)j * MEMD_RECORD;
			struct index_entry *e = index_find(ix, r->first + j);
			uint32_t slot;

			if (e) {
				slot = e->slot;
			} else {
				slot = slot_alloc(&s->slabs);
				index_insert(ix, r->first + j, slot);
				counter_add(&s->c.pages, 1);
			}
			*slot_sum(&s->slabs, slot) = memd_record_sum(rec);
			memcpy(slot_data(&s->slabs, slot), memd_record_data(rec),
			       PAGE_STORE_PAGE);
		}
	}
	counter_add(&s->c.pages_put, req->npages);
	s->full_logged = false;
	return MEMD_ST_OK;
}

static int handle_get(struct memd_server *s, struct conn *c,
		      const struct memd_request *req)
{
	struct memd_hdr h = { .op = MEMD_OP_GET, .id = req->id };
	uint32_t slots[MEMD_MAX_PAGES], n = 0;
	uint8_t *p;

	if (!c->ns)
		return MEMD_ST_BAD_SECRET;
	for (size_t i = 0; i < req->nruns; i++) {
		for (uint32_t j = 0; j < req->runs[i].count; j++) {
			struct index_entry *e = index_find(&c->ns->index,
							   req->runs[i].first + j);

			if (!e)
				return MEMD_ST_NO_PAGE;
			slots[n++] = e->slot;
		}
	}
	h.body_len = n * MEMD_RECORD;
	p = out_reserve(c, MEMD_HDR_SIZE + h.body_len);
	if (!p)
		return -ENOMEM;
	memd_hdr_encode(&h, p);
	p += MEMD_HDR_SIZE;
	for (uint32_t i = 0; i < n; i++, p += MEMD_RECORD)
		memd_record_encode(p, *slot_sum(&s->slabs, slots[i]),
				   slot_data(&s->slabs, slots[i]));
	counter_add(&s->c.pages_got, n);
	return REPLY_WRITTEN;
}

static int handle_drop(struct memd_server *s, struct conn *c,
		       const struct memd_request *req)
{
	if (!c->ns)
		return MEMD_ST_BAD_SECRET;
	for (size_t i = 0; i < req->nruns; i++) {
		for (uint32_t j = 0; j < req->runs[i].count; j++) {
			uint32_t slot = index_remove(&c->ns->index,
						     req->runs[i].first + j);

			if (slot == NO_SLOT)
				continue;
			slot_free(&s->slabs, slot);
			counter_add(&s->c.pages, -1);
			counter_add(&s->c.pages_dropped, 1);
		}
	}
	return MEMD_ST_OK;
}

static int handle_stats(struct memd_server *s, struct conn *c,
			const struct memd_request *req)
{
	struct memd_hdr h = { .op = MEMD_OP_STATS, .id = req->id,
			      .body_len = MEMD_STATS_SIZE };
	struct memd_stats st;
	uint8_t *p = out_reserve(c, MEMD_HDR_SIZE + MEMD_STATS_SIZE);

	if (!p)
		return -ENOMEM;
	memd_server_stats(s, &st);
	st.namespace_pages = c->ns ? c->ns->index.count : 0;
	memd_hdr_encode(&h, p);
	memd_encode_stats(p + MEMD_HDR_SIZE, &st);
	return REPLY_WRITTEN;
}

/* Runs one well-framed request and queues its reply; -errno closes. */
static int conn_execute(struct memd_server *s, struct conn *c,
			const struct memd_hdr *h, const uint8_t *body)
{
	struct memd_request req;
	struct errmsg why;
	int ret;

	if (memd_decode_request(h, body, &req, &why)) {
		say(s, MEMD_LOG_WARN, "bad request from %s: %s", c->peer, why.text);
		return reply_empty(c, h, MEMD_ST_BAD_REQUEST);
	}
	switch (req.op) {
	case MEMD_OP_HELLO:
		ret = handle_hello(s, c, &req);
		break;
	case MEMD_OP_PUT:
		ret = handle_put(s, c, &req);
		break;
	case MEMD_OP_GET:
		ret = handle_get(s, c, &req);
		break;
	case MEMD_OP_DROP:
		ret = handle_drop(s, c, &req);
		break;
	default:
		ret = handle_stats(s, c, &req);
		break;
	}
	if (ret < 0 || ret == REPLY_WRITTEN)
		return ret < 0 ? ret : 0;
	return reply_empty(c, h, (uint8_t)ret);
}

/* ---- connections --------------------------------------------------------- */

static void format_addr(const struct sockaddr *sa, socklen_t len, char *buf,
			size_t size)
{
	char host[NI_MAXHOST], port[NI_MAXSERV];

	if (getnameinfo(sa, len, host, sizeof(host), port, sizeof(port),
			NI_NUMERICHOST | NI_NUMERICSERV)) {
		snprintf(buf, size, "?");
		return;
	}
	snprintf(buf, size, sa->sa_family == AF_INET6 ? "[%s]:%s" : "%s:%s",
		 host, port);
}

static void listen_interest(struct memd_server *s, bool on)
{
	struct epoll_event ev = { .events = on ? EPOLLIN : 0,
				  .data.ptr = &s->listen_fd };

	epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, s->listen_fd, &ev);
	s->accept_paused = !on;
}

static void conn_close(struct memd_server *s, struct conn *c)
{
	epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c->in);
	free(c->out);
	free(c);
	counter_add(&s->c.connections, -1);
	if (s->accept_paused)
		listen_interest(s, true);
}

static int conn_update_interest(struct memd_server *s, struct conn *c)
{
	uint32_t want = 0;
	struct epoll_event ev;

	if (!c->closing && out_pending(c) <= OUT_HIGH)
		want |= EPOLLIN;
	if (out_pending(c))
		want |= EPOLLOUT;
	if (want == c->events)
		return 0;
	ev = (struct epoll_event){ .events = want, .data.ptr = c };
	if (epoll_ctl(s->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev))
		return -errno;
	c->events = want;
	return 0;
}

static void accept_clients(struct memd_server *s)
{
	for (;;) {
		struct sockaddr_storage addr;
		socklen_t len = sizeof(addr);
		struct epoll_event ev;
		struct conn *c;
		int one = 1, fd;

		fd = accept4(s->listen_fd, (struct sockaddr *)&addr, &len,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			if (errno != EAGAIN) {
				/* out of fds or memory: the listening socket
				 * would stay readable; wait for a close */
				say(s, MEMD_LOG_WARN, "accept: %s; pausing until a "
				    "client leaves", strerror(errno));
				listen_interest(s, false);
			}
			return;
		}
		if (counter_get(&s->c.connections) >= s->max_clients) {
			char peer[64];

			format_addr((struct sockaddr *)&addr, len, peer, sizeof(peer));
			say(s, MEMD_LOG_WARN, "refused %s: %u clients already",
			    peer, s->max_clients);
			close(fd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->fd = fd;
		format_addr((struct sockaddr *)&addr, len, c->peer, sizeof(c->peer));
		/* replies are small and awaited: do not let Nagle hold them */
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->events = EPOLLIN;
		ev = (struct epoll_event){ .events = EPOLLIN, .data.ptr = c };
		if (epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev)) {
			close(fd);
			free(c);
			continue;
		}
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		counter_add(&s->c.connections, 1);
	}
}

static int conn_read(struct conn *c)
{
	size_t want = BUF_KEEP;
	struct memd_hdr h;
	ssize_t n;

	/* room for the whole message being received (its length was
	 * checked when it was first seen complete enough to decode) */
	if (c->in_len >= MEMD_HDR_SIZE && !memd_hdr_decode(c->in, &h) &&
	    MEMD_HDR_SIZE + h.body_len > want)
		want = MEMD_HDR_SIZE + h.body_len;
	if (c->in_cap < want) {
		uint8_t *p = realloc(c->in, want);

		if (!p)
			return -ENOMEM;
		c->in = p;
		c->in_cap = want;
	}
	if (c->in_len == c->in_cap)
		return 0;
	n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
	if (n > 0) {
		c->in_len += (size_t)n;
		return 0;
	}
	if (n == 0)
		return -ECONNRESET;
	return errno == EAGAIN || errno == EINTR ? 0 : -errno;
}

/* Executes the complete requests received, while the replies fit. */
static int conn_process(struct memd_server *s, struct conn *c)
{
	size_t pos = 0;
	int ret = 0;

	while (!c->closing && out_pending(c) <= OUT_HIGH &&
	       c->in_len - pos >= MEMD_HDR_SIZE) {
		struct memd_hdr h;
		int bad = memd_hdr_decode(c->in + pos, &h);

		if (bad) {
			say(s, MEMD_LOG_WARN, "bad request from %s: %s; closing",
			    c->peer, bad == -EMSGSIZE ? "message too long" :
			    "reserved header bytes set");
			c->closing = true;
			ret = reply_empty(c, &h, MEMD_ST_BAD_REQUEST);
			break;
		}
		if (c->in_len - pos - MEMD_HDR_SIZE < h.body_len)
			break;
		ret = conn_execute(s, c, &h, c->in + pos + MEMD_HDR_SIZE);
		if (ret)
			break;
		pos += MEMD_HDR_SIZE + h.body_len;
	}
	if (pos) {
		memmove(c->in, c->in + pos, c->in_len - pos);
		c->in_len -= pos;
	}
	if (!c->in_len && c->in_cap > BUF_KEEP) {
		free(c->in);
		c->in = NULL;
		c->in_cap = 0;
	}
	return ret;
}

static int conn_flush(struct conn *c)
{
	size_t sent;
	int ret = send_some(c->fd, c->out + c->out_head, out_pending(c), &sent);

	c->out_head += sent;
	if (ret || out_pending(c))
		return ret;
	c->out_head = c->out_len = 0;
	if (c->out_cap > BUF_KEEP) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
	return 0;
}

static void conn_event(struct memd_server *s, struct conn *c, uint32_t events)
{
	int ret = events & EPOLLERR ? -EIO : 0;

	if (!ret && (events & EPOLLOUT))
		ret = conn_flush(c);
	if (!ret && (events & (EPOLLIN | EPOLLHUP)) && !c->closing)
		ret = conn_read(c);
	/* requests left in the buffer while the replies were too many: a
	 * flush that makes room must get to them, no event will */
	while (!ret) {
		size_t before = c->in_len;

		ret = conn_process(s, c);
		if (!ret)
			ret = conn_flush(c);
		if (c->in_len == before || c->in_len < MEMD_HDR_SIZE ||
		    c->closing || out_pending(c) > OUT_HIGH)
			break;
	}
	if (ret == -ENOMEM)
		say(s, MEMD_LOG_WARN, "closing %s: out of memory for its buffers",
		    c->peer);
	if (!ret && !(c->closing && !out_pending(c)))
		ret = conn_update_interest(s, c);
	if (ret || (c->closing && !out_pending(c)))
		conn_close(s, c);
}

/* ---- the server ---------------------------------------------------------- */

static int open_listener(struct memd_server *s, const char *listen_addr,
			 struct errmsg *err)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC,
				  .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	char host[MEMD_HOST_MAX], port[8];
	uint16_t port_num;
	int ret, one = 1;

	ret = memd_parse_hostport(listen_addr, host, sizeof(host), &port_num, err);
	if (ret)
		return ret;
	snprintf(port, sizeof(port), "%u", port_num);
	ret = getaddrinfo(host, port, &hints, &res);
	if (ret)
		return errmsg_set(err, -EINVAL, "cannot listen on %s: %s",
				  listen_addr, gai_strerror(ret));
	ret = -EADDRNOTAVAIL;
	for (ai = res; ai; ai = ai->ai_next) {
		int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
				SOCK_CLOEXEC, ai->ai_protocol);

		if (fd < 0) {
			ret = -errno;
			continue;
		}
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, 128)) {
			ret = -errno;
			close(fd);
			continue;
		}
		s->listen_fd = fd;
		s->addr_len = sizeof(s->addr);
		getsockname(fd, (struct sockaddr *)&s->addr, &s->addr_len);
		ret = 0;
		break;
	}
	freeaddrinfo(res);
	if (ret)
		return errmsg_set(err, ret, "cannot listen on %s: %s", listen_addr,
				  strerror(-ret));
	return 0;
}

static int epoll_add(struct memd_server *s, int fd, void *tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };

	return epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, fd, &ev) ? -errno : 0;
}

int memd_server_create(const struct memd_server_config *cfg,
		       struct memd_server **out, struct errmsg *err)
{
	struct memd_server *s;
	int ret;

	if (cfg->capacity < MEMD_MIN_CAPACITY || cfg->capacity > MEMD_MAX_CAPACITY)
		return errmsg_set(err, -EINVAL, "the capacity must be 4M to 16T, "
				  "not %llu bytes", (unsigned long long)cfg->capacity);
	s = calloc(1, sizeof(*s));
	if (!s)
		return errmsg_set(err, -ENOMEM, "out of memory");
	s->epoll_fd = s->listen_fd = s->stop_fd = -1;
	s->capacity = cfg->capacity;
	s->max_clients = cfg->max_clients ? cfg->max_clients :
					    MEMD_DEFAULT_MAX_CLIENTS;
	s->log = cfg->log;
	s->log_opaque = cfg->log_opaque;
	s->slabs.free_head = NO_SLOT;
	s->slabs.max_slabs = (uint32_t)(cfg->capacity / SLAB_BYTES);
	s->slabs.slab = calloc(s->slabs.max_slabs, sizeof(uint8_t *));
	if (!s->slabs.slab) {
		free(s);
		return errmsg_set(err, -ENOMEM, "out of memory");
	}
	counter_add(&s->c.used, (int64_t)(s->slabs.max_slabs * sizeof(uint8_t *)));
	if (getrandom(s->key, sizeof(s->key), 0) != sizeof(s->key)) {
		ret = errmsg_set(err, -EIO, "getrandom: %s", strerror(errno));
		goto fail;
	}
	ret = open_listener(s, cfg->listen, err);
	if (ret)
		goto fail;
	s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	s->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->epoll_fd < 0 || s->stop_fd < 0 ||
	    epoll_add(s, s->listen_fd, &s->listen_fd) ||
	    epoll_add(s, s->stop_fd, &s->stop_fd)) {
		ret = errmsg_set(err, -errno, "epoll: %s", strerror(errno));
		goto fail;
	}
	*out = s;
	return 0;
fail:
	memd_server_destroy(s);
	return ret;
}

int memd_server_run(struct memd_server *s, struct errmsg *err)
{
	struct epoll_event evs[MAX_EVENTS];

	for (;;) {
		int n = epoll_wait(s->epoll_fd, evs, MAX_EVENTS, -1);
		bool stop = false;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errmsg_set(err, -errno, "epoll_wait: %s", strerror(errno));
		for (int i = 0; i < n; i++) {
			void *tag = evs[i].data.ptr;
			uint64_t v;

			if (tag == &s->stop_fd)
				stop = read(s->stop_fd, &v, sizeof(v)) == sizeof(v);
			else if (tag == &s->listen_fd)
				accept_clients(s);
			else
				conn_event(s, tag, evs[i].events);
		}
		if (stop)
			return 0;
	}
}

void memd_server_stop(struct memd_server *s)
{
	uint64_t one = 1;
	ssize_t n = write(s->stop_fd, &one, sizeof(one));

	(void)n;	/* a full counter already means "stop" */
}

void memd_server_address(const struct memd_server *s, char *buf, size_t len)
{
	format_addr((const struct sockaddr *)&s->addr, s->addr_len, buf, len);
}

uint16_t memd_server_port(const struct memd_server *s)
{
	if (s->addr.ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)&s->addr)->sin6_port);
	return ntohs(((const struct sockaddr_in *)&s->addr)->sin_port);
}

void memd_server_stats(struct memd_server *s, struct memd_stats *out)
{
	*out = (struct memd_stats){
		.capacity = s->capacity,
		.used = counter_get(&s->c.used),
		.pages = counter_get(&s->c.pages),
		.namespaces = counter_get(&s->c.namespaces),
		.connections = counter_get(&s->c.connections),
		.pages_put = counter_get(&s->c.pages_put),
		.pages_got = counter_get(&s->c.pages_got),
		.pages_dropped = counter_get(&s->c.pages_dropped),
		.full_refusals = counter_get(&s->c.full_refusals),
		.bad_secrets = counter_get(&s->c.bad_secrets),
	};
}

void memd_server_destroy(struct memd_server *s)
{
	if (!s)
		return;
	while (s->conns)
		conn_close(s, s->conns);
	while (s->namespaces) {
		struct namespace *ns = s->namespaces;

		s->namespaces = ns->next;
		namespace_free(s, ns);
	}
	for (uint32_t i = 0; i < s->slabs.nslabs; i++)
		munmap(s->slabs.slab[i], SLAB_BYTES);
	free(s->slabs.slab);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->stop_fd >= 0)
		close(s->stop_fd);
	if (s->epoll_fd >= 0)
		close(s->epoll_fd);
	explicit_bzero(s->key, sizeof(s->key));
	free(s);
}
