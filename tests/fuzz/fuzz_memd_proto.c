// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the memd protocol decoders, on arbitrary bytes: each
 * message is decoded as a request, as the server does, and as the reply
 * to a GET of its size, to a STATS, to a RELEASE and to both HELLO
 * steps, as a client does (input layout below).  Checks what the server
 * relies on: an accepted request stays within the limits, every page
 * record of a PUT and every field of a HELLO lies inside the body; and
 * what the client relies on: a reply the check accepts decodes, and the
 * page records it brings (here: bytes the "server" chose) never open
 * under this process's page seal (page_seal.h), sealed or plain: a
 * server cannot forge a page.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "remote/memd_proto.h"
#include "remote/page_seal.h"

static volatile uint8_t sink;

static void check(int cond)
{
	if (!cond)
		abort();
}

static void check_request(const struct memd_request *req,
			  const uint8_t *body, size_t len)
{
	uint64_t pages = 0;

	if (req->op == MEMD_OP_HELLO && req->hello_step == 1) {
		check(memd_valid_name(req->name, req->name_len));
		check(req->nonce >= body &&
		      req->nonce + MEMD_NONCE_SIZE <= (const uint8_t *)req->name);
		check((const uint8_t *)req->name + req->name_len == body + len);
		return;
	}
	if (req->op == MEMD_OP_HELLO) {
		check(req->hello_step == 2);
		check(req->proof >= body && req->proof + MEMD_KEY_SIZE <= body + len);
		check(!req->sealed == !(req->hello_flags & MEMD_HELLO_CREATE));
		check(!req->sealed || req->sealed + MEMD_SEALED_SIZE == body + len);
		sink ^= req->proof[MEMD_KEY_SIZE - 1];
		if (req->sealed)
			sink ^= req->sealed[MEMD_SEALED_SIZE - 1];
		return;
	}
	if (req->op == MEMD_OP_STATS || req->op == MEMD_OP_RELEASE) {
		check(len == 0);
		return;
	}
	check(req->nruns >= 1 && req->nruns <= MEMD_MAX_RUNS);
	for (size_t i = 0; i < req->nruns; i++) {
		const struct memd_run_ref *r = &req->runs[i];

		check(r->count >= 1 && r->first < MEMD_PAGE_LIMIT &&
		      r->count <= MEMD_PAGE_LIMIT - r->first);
		pages += r->count;
		if (req->op != MEMD_OP_PUT)
			continue;
		check(r->records >= body);
		check(r->records + (size_t)r->count * MEMD_RECORD <= body + len);
		/* touch the run's first and last byte: ASan checks both */
		sink ^= r->records[0] ^
			r->records[(size_t)r->count * MEMD_RECORD - 1];
	}
	check(pages == req->npages);
	check(pages <= (req->op == MEMD_OP_DROP ? MEMD_MAX_DROP_PAGES :
						   MEMD_MAX_PAGES));
}

/* The client's view: the same bytes as the reply to a GET, STATS,
 * RELEASE or HELLO step. */
static void check_as_reply(const struct memd_hdr *h, const uint8_t *body,
			   size_t len)
{
	static uint8_t pages[MEMD_MAX_PAGES * PAGE_STORE_PAGE];
	static uint8_t tags[MEMD_MAX_PAGES * MEMD_TAG_SIZE];
	static struct page_seal *sealed, *plain;
	struct page_run run = { .first = 0, .data = pages, .tags = tags };
	struct memd_challenge ch;
	struct memd_welcome w;
	struct memd_stats st;

	run.count = (uint32_t)(len / MEMD_RECORD);
	if (run.count >= 1 && run.count <= MEMD_MAX_PAGES) {
		bool accepted = !memd_check_reply(h, MEMD_OP_GET, h->id,
						  run.count, NULL) &&
				h->status == MEMD_ST_OK;
		int decoded = memd_decode_get_reply(body, len, &run, 1);

		/* a reply the check accepts always decodes */
		check(!accepted || decoded == 0);
		if (!sealed)
			check(!page_seal_create("fuzz", true, &sealed, NULL) &&
			      !page_seal_create("fuzz", false, &plain, NULL));
		/* and what it brings is no page of ours: a forgery opens
		 * with odds of 2^-128 sealed; plain, the fuzzer would have
		 * to find an XXH3-128 of a page seeded by our namespace */
		for (uint32_t k = 0; decoded == 0 && k < run.count; k++) {
			uint8_t *page = pages + (size_t)k * PAGE_STORE_PAGE;
			uint8_t *tag = tags + (size_t)k * MEMD_TAG_SIZE;

			check(page_seal_open(plain, k, 1, page, tag) != 0);
			check(page_seal_open(sealed, k, 1, page, tag) != 0);
		}
	}
	if (!memd_check_reply(h, MEMD_OP_STATS, h->id, 0, NULL) &&
	    h->status == MEMD_ST_OK)
		check(memd_decode_stats(body, len, &st) == 0);
	/* a RELEASE reply the check accepts has nothing after its header */
	if (!memd_check_reply(h, MEMD_OP_RELEASE, h->id, 0, NULL))
		check(len == 0);
	/* a HELLO reply the check accepts has the size its decoder wants
	 * (which may still refuse its flags and reserved bytes) */
	if (!memd_check_reply(h, MEMD_OP_HELLO, h->id, 1, NULL) &&
	    h->status == MEMD_ST_OK)
		check(len == MEMD_CHALLENGE_SIZE);
	if (!memd_check_reply(h, MEMD_OP_HELLO, h->id, 2, NULL) &&
	    h->status == MEMD_ST_OK)
		check(len == MEMD_WELCOME_SIZE);
	memd_decode_challenge(body, len, &ch);
	memd_decode_welcome(body, len, &w);
}

/* Decodes one message's @len body bytes as the server and as a client. */
static void one_message(struct memd_hdr *h, const uint8_t *data, size_t len,
			bool framed)
{
	struct memd_request req;
	/* a copy of exactly the body, so ASan catches any over-read */
	uint8_t *body = malloc(len ? len : 1);

	if (!body)
		return;
	memcpy(body, data, len);
	h->body_len = (uint32_t)len;
	if (framed && !memd_decode_request(h, body, &req, NULL)) {
		check(req.op == h->op && req.id == h->id);
		check_request(&req, body, len);
	}
	check_as_reply(h, body, len);
	free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Input: a mode byte.  Odd: one request, op in the next byte and the
 * rest its body, framed correctly (so the fuzzer spends its time on
 * bodies).  Even: a raw stream of messages as the server reads them
 * (each header, then the bytes it announces, or what is left).
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size >= 2 && (data[0] & 1)) {
		struct memd_hdr h = { .op = data[1] % 8, .id = size };

		if (size - 2 <= MEMD_MAX_BODY)
			one_message(&h, data + 2, size - 2, true);
		return 0;
	}
	if (size) {
		data++;
		size--;
	}
	while (size >= MEMD_HDR_SIZE) {
		struct memd_hdr h;
		int bad = memd_hdr_decode(data, &h);
		size_t len;

		data += MEMD_HDR_SIZE;
		size -= MEMD_HDR_SIZE;
		len = h.body_len < size ? h.body_len : size;
		one_message(&h, data, len, !bad);
		data += len;
		size -= len;
	}
	return 0;
}
