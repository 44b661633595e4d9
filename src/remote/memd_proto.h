/* SPDX-License-Identifier: MIT */
/*
 * The memd wire protocol, version 3: how a page store client
 * (store_memd.c) talks to `rackvm memd` (memd_server.c) over TCP.
 *
 * Every message, in both directions, is a 16-byte header and then
 * body_len bytes of body.  All integers are little-endian.
 *
 *   header   offset size
 *            0      4    body_len   bytes after the header, at most
 *                                   MEMD_MAX_BODY
 *            4      1    op         MEMD_OP_*; a reply repeats its
 *                                   request's op
 *            5      1    status     0 in requests; MEMD_ST_* in replies
 *            6      2    reserved   0
 *            8      8    id         chosen by the client, echoed in the
 *                                   reply
 *
 * A run header (16 bytes) names contiguous pages:
 *            0      8    first      page number, first + count <=
 *                                   MEMD_PAGE_LIMIT
 *            8      4    count      >= 1
 *            12     4    reserved   0
 * A page record (MEMD_RECORD = 4112 bytes) is one page with its tag,
 * both of which the server stores and hands back unchanged; the client
 * sealed the page (page_seal.h: XChaCha20-Poly1305 under a key only the
 * VM's process has, the tag is Poly1305's) unless it runs with
 * seal=off, when data is in clear and the tag an XXH3-128:
 *            0      16   tag
 *            16     4096 data
 * (Version 2 had an 8-byte checksum; a version 2 peer is refused with
 * "protocol version 2 is not 3" at HELLO.)
 *
 * Requests (bodies):
 *   HELLO  the handshake, two requests on a new connection before any
 *          PUT, GET, DROP or RELEASE (see "The handshake" below).  Each
 *          body starts with version (2 bytes, MEMD_VERSION) and step (1):
 *            step 1: name_len (1), client nonce (32), then name_len bytes
 *                    of name ([A-Za-z0-9._-], 1..64);
 *            step 2: flags (1: bit 0 CREATE, others 0), client proof
 *                    (32), then with CREATE the sealed verifier
 *                    (MEMD_SEALED_SIZE bytes), else nothing.
 *   PUT    nruns (2 bytes, 1..MEMD_MAX_RUNS), reserved (2, 0), then per
 *          run its header followed by count page records.  At most
 *          MEMD_MAX_PAGES pages in all.  Stores (or replaces) every
 *          page, or none of them.
 *   GET    nruns (2), reserved (2, 0), nruns run headers; at most
 *          MEMD_MAX_PAGES pages in all.
 *   DROP   as GET, at most MEMD_MAX_DROP_PAGES pages.  Forgetting a page
 *          that is not stored is not an error.
 *   STATS  empty.  Allowed before HELLO.
 *   RELEASE  empty; after the handshake.  Drops the whole namespace:
 *          every page and the namespace itself (its name may then be
 *          created anew, with any secret).  The client sends it when the
 *          VM's store is destroyed.  The server answers OK and then
 *          closes this connection and every other one in the namespace.
 *
 * Replies carry a status and, only for these, a body:
 *   HELLO step 1 OK   MEMD_CHALLENGE_SIZE bytes: server identity (16),
 *              flags (1: bit 0 KNOWN, the namespace exists here),
 *              reserved (7, 0), server nonce (32), the server's sealing
 *              public key (32, X25519);
 *   HELLO step 2 OK   MEMD_WELCOME_SIZE bytes: flags (1: bit 0 CREATED,
 *              this HELLO created the namespace), reserved (7, 0),
 *              server proof (32);
 *   GET OK     one page record per requested page, in request order;
 *   STATS OK   MEMD_STATS_SIZE bytes: the fields of struct memd_stats in
 *              order, 8 bytes each.
 * Statuses: OK; NO_PAGE (GET: some page is not stored, nothing is
 * returned); FULL (PUT, or the HELLO that would create a namespace: the
 * server's capacity, or for a PUT the namespace's quota, would be
 * exceeded; nothing was stored); BAD_SECRET (HELLO step 2: the proof is
 * wrong, or the namespace is unknown and the step did not CREATE it, and
 * the server closes the connection after the reply; PUT, GET, DROP,
 * RELEASE: no handshake yet); BAD_REQUEST (malformed body, unknown op,
 * another protocol version, a HELLO step out of order).
 *
 * The handshake.  A namespace is guarded by a secret (1..64 bytes) that
 * never crosses the wire.  Both sides derive from it:
 *   key       K = BLAKE2b-256("rackvm memd 2 key" || name_len || name ||
 *                 secret_len || secret), once per client;
 *   verifier  V = BLAKE2b-256(key K, "rackvm memd 2 verifier" ||
 *                 identity), per server instance: the server keeps only V
 *                 (a copy of its memory gives neither the secret nor
 *                 access to another server, or to this one once it
 *                 restarted);
 *   proofs    BLAKE2b-256(key V, "rackvm memd 2 client" or "... server"
 *                 || identity || client nonce || server nonce ||
 *                 name_len || name || flags), flags being the step 2
 *                 request's for the client, the reply's for the server.
 * Step 1 sends a fresh client nonce; the reply brings the server's
 * identity (16 random bytes drawn when it started: a new identity means
 * a server that lost everything), a fresh server nonce, whether the
 * namespace exists, and the server's sealing key.  Step 2 proves the
 * client knows V; when the namespace does not exist the client creates
 * it by sending V sealed to the server's key (crypto_box_seal: only that
 * server reads it).  The reply says whether this HELLO created the
 * namespace, and proves the server knows V, which the client checks:
 * another server, or a namespace another secret created, fails it.
 * Fresh nonces on both sides make a recorded handshake useless.  What it
 * does not stop: a man in the middle who pretends the namespace is new
 * gets V for that server instance (there is no server key to check);
 * what V gives is the namespace's pages as sealed by the VM, which the
 * VM alone can open and the VM refuses if swapped, replayed or forged
 * (with seal=off, in clear).  A namespace that was RELEASEd or expired (below) no longer exists: the next HELLO creates it anew,
 * with whatever secret that client has, and says CREATED.
 *
 * Sharing a namespace: any number of connections, from any number of
 * clients, may be in one namespace, each having passed the handshake
 * with K; they see the same pages.  A VM that migrates with its pages
 * left in place (remote/store_handover.h) uses exactly that, with no
 * message or flag of its own: the destination joins the namespace with
 * the K the source hands it in the migration stream (a client without
 * it fails step 2 with BAD_SECRET, as any stranger), the source then
 * closes its connections without RELEASE, and the namespace lives on as
 * long as the destination holds a connection.  A HELLO that finds the
 * namespace gone (expired, or the server restarted: another identity)
 * creates it empty, which the destination, knowing the identity the
 * source saw, takes as that server's copies lost.  The clients agree
 * among themselves that only one writes at a time; the server neither
 * knows nor enforces it (RELEASE by either drops the namespace for
 * both).
 *
 * Framing errors (reserved header bytes set, body_len over the limit)
 * get a BAD_REQUEST reply and the connection is closed: the stream
 * cannot be trusted any further.  The server answers a connection's
 * requests in order; a client may pipeline any number of them (the
 * server stops reading while the client does not read its replies).
 *
 * What the server keeps, and for how long (its flags say how much and how
 * long; `rackvm memd --help`):
 *   - a namespace holds at most the server's namespace quota of pages;
 *   - a namespace that has had no connection for the namespace TTL is
 *     dropped with its pages, as if RELEASEd;
 *   - a connection that has not finished the handshake (both HELLO
 *     steps answered OK) within the HELLO timeout, or has moved no bytes
 *     for the idle timeout, is closed without a reply
 *     (a client that keeps a connection open to hold its namespace sends
 *     a request, STATS say, more often than that);
 *   - a peer (an IPv4 address, an IPv6 /64) has at most the per-peer
 *     limit of connections; when every slot is taken, a new connection
 *     takes the slot of the oldest one that has not finished its
 *     handshake yet, or is closed at once.
 *
 * Everything decoded here comes from the network: the decoders are pure,
 * check every length against the bytes present and the limits below, and
 * never read outside the buffer they are given.
 */
#ifndef RACKVM_REMOTE_MEMD_PROTO_H
#define RACKVM_REMOTE_MEMD_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "remote/page_store.h"
#include "util/errmsg.h"

#define MEMD_VERSION 3

#define MEMD_HDR_SIZE 16
#define MEMD_RUN_HDR_SIZE 16
#define MEMD_TAG_SIZE PAGE_TAG_SIZE	/* 16 */
#define MEMD_RECORD (MEMD_TAG_SIZE + PAGE_STORE_PAGE)
#define MEMD_BATCH_HDR_SIZE 4		/* nruns, reserved */

#define MEMD_MAX_RUNS 64		/* runs in one PUT, GET or DROP */
#define MEMD_MAX_PAGES 64		/* pages in one PUT or GET */
#define MEMD_MAX_DROP_PAGES 65536	/* pages in one DROP */
#define MEMD_PAGE_LIMIT (1ull << 52)	/* page numbers are below: 2^64 bytes */
#define MEMD_NAME_MAX 64
#define MEMD_SECRET_MAX 64
#define MEMD_ID_SIZE 16			/* a server's identity */
#define MEMD_NONCE_SIZE 32
#define MEMD_KEY_SIZE 32		/* K, V, proofs */
#define MEMD_SEAL_PK_SIZE 32		/* crypto_box_PUBLICKEYBYTES */
#define MEMD_SEALED_SIZE (MEMD_KEY_SIZE + 48)	/* + crypto_box_SEALBYTES */
#define MEMD_CHALLENGE_SIZE (MEMD_ID_SIZE + 8 + MEMD_NONCE_SIZE + \
			     MEMD_SEAL_PK_SIZE)
#define MEMD_WELCOME_SIZE (8 + MEMD_KEY_SIZE)
/* The longer HELLO: step 2 with CREATE (step 1 is at most 116 bytes). */
#define MEMD_HELLO_MAX (MEMD_HDR_SIZE + 4 + MEMD_KEY_SIZE + MEMD_SEALED_SIZE)

/* HELLO flags */
#define MEMD_HELLO_CREATE 1		/* step 2 request */
#define MEMD_HELLO_KNOWN 1		/* step 1 reply */
#define MEMD_HELLO_CREATED 1		/* step 2 reply */
#define MEMD_HOST_MAX 256		/* host part of HOST:PORT, with NUL */

/* The largest body: a PUT of MEMD_MAX_PAGES pages in MEMD_MAX_RUNS runs
 * (a GET reply is smaller: MEMD_MAX_PAGES records). */
#define MEMD_MAX_BODY (MEMD_BATCH_HDR_SIZE + MEMD_MAX_RUNS * MEMD_RUN_HDR_SIZE + \
		       MEMD_MAX_PAGES * MEMD_RECORD)
#define MEMD_MAX_MSG (MEMD_HDR_SIZE + MEMD_MAX_BODY)

enum memd_op {
	MEMD_OP_HELLO = 1,
	MEMD_OP_PUT = 2,
	MEMD_OP_GET = 3,
	MEMD_OP_DROP = 4,
	MEMD_OP_STATS = 5,
	MEMD_OP_RELEASE = 6,
};

enum memd_status {
	MEMD_ST_OK = 0,
	MEMD_ST_NO_PAGE = 1,
	MEMD_ST_FULL = 2,
	MEMD_ST_BAD_SECRET = 3,
	MEMD_ST_BAD_REQUEST = 4,
};

struct memd_hdr {
	uint32_t body_len;
	uint8_t op;
	uint8_t status;
	uint64_t id;
};

/* A decoded run; @records points into the message (PUT only). */
struct memd_run_ref {
	uint64_t first;
	uint32_t count;
	const uint8_t *records;
};

/* A decoded request.  Pointers point into the body it was decoded from. */
struct memd_request {
	uint8_t op;
	uint64_t id;
	/* HELLO */
	uint8_t hello_step;		/* 1 or 2 */
	const char *name;		/* step 1; not NUL-terminated */
	size_t name_len;
	const uint8_t *nonce;		/* step 1: MEMD_NONCE_SIZE */
	uint8_t hello_flags;		/* step 2 */
	const uint8_t *proof;		/* step 2: MEMD_KEY_SIZE */
	const uint8_t *sealed;		/* step 2 with CREATE: MEMD_SEALED_SIZE */
	/* PUT, GET, DROP */
	size_t nruns;
	uint32_t npages;
	struct memd_run_ref runs[MEMD_MAX_RUNS];
};

/* Server counters, the STATS reply. */
struct memd_stats {
	uint64_t capacity;		/* bytes the server may use for pages */
	uint64_t used;			/* bytes of those in use (pages, index) */
	uint64_t pages;			/* pages stored, all namespaces */
	uint64_t namespace_pages;	/* pages of the asking connection's */
	uint64_t namespaces;
	uint64_t connections;
	uint64_t pages_put;
	uint64_t pages_got;
	uint64_t pages_dropped;
	uint64_t full_refusals;		/* PUTs and HELLOs refused as FULL */
	uint64_t bad_secrets;
};
#define MEMD_STATS_FIELDS 11
#define MEMD_STATS_SIZE (MEMD_STATS_FIELDS * 8)

/* "OK", "NO_PAGE", ...; "?" for an unknown value. */
const char *memd_status_name(unsigned status);

void memd_hdr_encode(const struct memd_hdr *h, uint8_t *out);
/* 0, -EBADMSG (reserved bytes set) or -EMSGSIZE (body_len over the
 * limit); @h is filled either way, so that an error reply can carry the
 * id. */
int memd_hdr_decode(const uint8_t *in, struct memd_hdr *h);

/*
 * Server side: decodes the body of the request @h announces (@body holds
 * h->body_len bytes).  0, or -EBADMSG with the reason in @err; a
 * request op that is not known is -EBADMSG too.
 */
int memd_decode_request(const struct memd_hdr *h, const uint8_t *body,
			struct memd_request *req, struct errmsg *err);

/* A page record's tag and data. */
static inline const uint8_t *memd_record_tag(const uint8_t *record)
{
	return record;
}
static inline const uint8_t *memd_record_data(const uint8_t *record)
{
	return record + MEMD_TAG_SIZE;
}
/* Writes a page record. */
void memd_record_encode(uint8_t *out, const uint8_t *tag, const void *data);

/*
 * Client side encoders.  Each writes a whole message (header included)
 * into @out and returns its length.
 *
 * memd_runs_size() is the length a PUT, GET or DROP of @runs takes, or 0
 * if they break a limit (too many runs or pages, an empty run, a page
 * number at or over MEMD_PAGE_LIMIT); memd_encode_runs() needs @out of
 * that size (data and sums are read only for PUT).
 */
size_t memd_runs_size(uint8_t op, const struct page_run *runs, size_t n);
size_t memd_encode_runs(uint8_t *out, uint8_t op, uint64_t id,
			const struct page_run *runs, size_t n);
size_t memd_encode_stats_request(uint8_t *out, uint64_t id);
/* MEMD_HDR_SIZE bytes. */
size_t memd_encode_release(uint8_t *out, uint64_t id);

/* Server side: a STATS reply body (MEMD_STATS_SIZE bytes). */
void memd_encode_stats(uint8_t *out, const struct memd_stats *st);

/*
 * Client side: checks a reply header against the request it answers
 * (@op, @id, and @arg: for GET the pages asked for, for HELLO the step):
 * known status, and a body_len that is exactly what that status carries.
 * 0 or -EBADMSG with the reason in @err.  A client can then read exactly
 * body_len bytes.
 */
int memd_check_reply(const struct memd_hdr *h, uint8_t op, uint64_t id,
		     uint32_t arg, struct errmsg *err);
/* Copies a GET OK reply's records into the runs' data and sums;
 * -EBADMSG if @len is not exactly their pages' records. */
int memd_decode_get_reply(const uint8_t *body, size_t len,
			  const struct page_run *runs, size_t n);
int memd_decode_stats(const uint8_t *body, size_t len, struct memd_stats *st);

/* True for a valid namespace name: [A-Za-z0-9._-]{1,64}. */
bool memd_valid_name(const char *name, size_t len);

/*
 * "HOST:PORT" or "[IPV6]:PORT" into @host (NUL-terminated, at most
 * @host_size bytes with the NUL) and @port (0..65535).  -EINVAL with the
 * reason in @err.
 */
int memd_parse_hostport(const char *text, char *host, size_t host_size,
			uint16_t *port, struct errmsg *err);

/* ---- memd_hello.c: the handshake ------------------------------------------ */

/* What both proofs cover. */
struct memd_transcript {
	const uint8_t *identity;	/* MEMD_ID_SIZE */
	const uint8_t *client_nonce;	/* MEMD_NONCE_SIZE */
	const uint8_t *server_nonce;
	const char *name;
	size_t name_len;
};

/* A step 1 reply, decoded. */
struct memd_challenge {
	uint8_t identity[MEMD_ID_SIZE];
	bool known;
	uint8_t nonce[MEMD_NONCE_SIZE];
	uint8_t seal_pk[MEMD_SEAL_PK_SIZE];
};

/* A step 2 reply, decoded. */
struct memd_welcome {
	bool created;
	uint8_t proof[MEMD_KEY_SIZE];
};

/* K, V and the proofs, as above (the caller called sodium_init()). */
void memd_derive_key(uint8_t *key, const char *name, size_t name_len,
		     const uint8_t *secret, size_t secret_len);
void memd_derive_verifier(uint8_t *verifier, const uint8_t *key,
			  const uint8_t *identity);
void memd_proof(uint8_t *out, const uint8_t *verifier, bool server,
		const struct memd_transcript *t, uint8_t flags);

/* Client side encoders: the whole message into @out (MEMD_HELLO_MAX
 * bytes), its length returned; -EINVAL for a bad name.  @sealed NULL: no
 * CREATE. */
int memd_encode_hello1(uint8_t *out, uint64_t id, const char *name,
		       const uint8_t *nonce);
size_t memd_encode_hello2(uint8_t *out, uint64_t id, const uint8_t *proof,
			  const uint8_t *sealed);
/* Server side: the reply bodies. */
void memd_encode_challenge(uint8_t *out, const struct memd_challenge *c);
void memd_encode_welcome(uint8_t *out, const struct memd_welcome *w);
/* Client side: the reply bodies; -EBADMSG unless exactly the size, with
 * reserved bytes 0 and known flags only. */
int memd_decode_challenge(const uint8_t *body, size_t len,
			  struct memd_challenge *out);
int memd_decode_welcome(const uint8_t *body, size_t len,
			struct memd_welcome *out);

/* Server side: a HELLO body (after version and step were found). */
int memd_decode_hello(const uint8_t *body, size_t len,
		      struct memd_request *req, struct errmsg *err);

#endif
