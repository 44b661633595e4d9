// SPDX-License-Identifier: MIT
/* A client of the control API, see api_client.h. */
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_client.h"

static size_t on_data(char *data, size_t size, size_t n, void *opaque)
{
	struct api_client_reply *r = opaque;
	size_t len = size * n;
	char *grown;

	if (len > API_CLIENT_REPLY_MAX - r->len)
		return 0;	/* curl fails the transfer: CURLE_WRITE_ERROR */
	grown = realloc(r->body, r->len + len + 1);
	if (!grown)
		return 0;
	memcpy(grown + r->len, data, len);
	r->body = grown;
	r->len += len;
	r->body[r->len] = 0;
	return len;
}

static int curl_error(CURLcode c, const char *socket, struct errmsg *err)
{
	switch (c) {
	case CURLE_COULDNT_CONNECT:
		return errmsg_set(err, -ECONNREFUSED, "cannot reach the VM's API "
				  "socket %s (no such socket, no VM serving it, or "
				  "no permission)", socket);
	case CURLE_OPERATION_TIMEDOUT:
		return errmsg_set(err, -ETIMEDOUT, "no reply on %s in time", socket);
	case CURLE_WRITE_ERROR:
		return errmsg_set(err, -EMSGSIZE, "the reply on %s is larger than "
				  "%u bytes", socket, API_CLIENT_REPLY_MAX);
	case CURLE_OUT_OF_MEMORY:
		return errmsg_set(err, -ENOMEM, "out of memory");
	default:
		return errmsg_set(err, -EPROTO, "%s: %s", socket,
				  curl_easy_strerror(c));
	}
}

int api_client_request(const char *socket, const char *method,
		       const char *path, const char *body,
		       unsigned timeout_ms, struct api_client_reply *out,
		       struct errmsg *err)
{
	struct curl_slist *headers = NULL;
	char url[1024];
	CURLcode c;
	CURL *h;
	int ret = 0;

	memset(out, 0, sizeof(*out));
	if ((size_t)snprintf(url, sizeof(url), "http://localhost%s", path) >=
	    sizeof(url))
		return errmsg_set(err, -EINVAL, "the path is too long");
	h = curl_easy_init();
	if (!h)
		return errmsg_set(err, -ENOMEM, "out of memory");
	curl_easy_setopt(h, CURLOPT_UNIX_SOCKET_PATH, socket);
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
	if (body) {
		headers = curl_slist_append(NULL, "Content-Type: application/json");
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	}
	c = curl_easy_perform(h);
	if (c == CURLE_OK)
		curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
	else
		ret = curl_error(c, socket, err);
	curl_slist_free_all(headers);
	curl_easy_cleanup(h);
	if (!ret && !out->body && !(out->body = strdup("")))
		ret = errmsg_set(err, -ENOMEM, "out of memory");
	if (ret)
		api_client_reply_free(out);
	return ret;
}

void api_client_reply_free(struct api_client_reply *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}
