/* SPDX-License-Identifier: MIT */
/*
 * JSON helpers of the API's handlers (src/api/, and hostd's API in
 * src/host/, which follows the same conventions): request
 * bodies into jansson objects with every mistake named, responses out of
 * them, and the errno -> HTTP status mapping all handlers share.
 */
#ifndef RACKVM_API_API_JSON_H
#define RACKVM_API_API_JSON_H

#include <jansson.h>

#include "api/api.h"

/* @body must be one JSON object (an empty body is an empty object when
 * @empty_ok); -EINVAL with the parser's complaint and its position
 * otherwise.  *out is a new reference on success. */
int api_json_object(const char *body, size_t len, bool empty_ok,
		    json_t **out, struct errmsg *err);
/* -EINVAL naming the first key of @o not in the NULL-terminated @keys,
 * and listing those. */
int api_json_known_keys(json_t *o, const char *const *keys,
			struct errmsg *err);
/* A size: a non-negative integer of bytes or a string like "512M". */
int api_json_size(json_t *v, const char *key, uint64_t *out,
		  struct errmsg *err);

/* Responses: @body is stolen (NULL: out of memory, answered 503). */
void api_reply_json(struct api_response *r, unsigned status, json_t *body);
void api_reply_error(struct api_response *r, unsigned status,
		     const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A machine call's -errno as a status: -EINVAL 400, -EBUSY, -ENOENT and
 * -ENOTSUP 409 (not possible in this state or configuration), anything
 * else 500 (rackvm's own failure). */
unsigned api_status_of(int ret);
/* The error reply for a failed machine call: @err's text, or strerror. */
void api_reply_failure(struct api_response *r, int ret,
		       const struct errmsg *err);

#endif
