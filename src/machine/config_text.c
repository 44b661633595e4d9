// SPDX-License-Identifier: MIT
/*
 * The device specs of the machine config in text ("PATH,ro",
 * "tap=NAME,mac=MAC", ...), read and written, and the small printers the
 * flag and JSON writers share.
 */
#include "machine/config_text.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Calls @item for each comma-separated item of a copy of @spec (an empty
 * or NULL spec has none); stops at the first error. */
static int for_each_item(const char *spec, bool skip_first,
			 int (*item)(void *ctx, char *text, struct errmsg *err),
			 void *ctx, struct errmsg *err)
{
	char *copy, *rest, *text;
	int ret = 0;

	if (!spec || !*spec)
		return 0;
	copy = strdup(spec);
	if (!copy)
		return errmsg_set(err, -ENOMEM, "out of memory");
	rest = copy;
	if (skip_first) {
		rest = strchr(rest, ',');
		if (rest)
			rest++;
	}
	while (rest && !ret) {
		text = rest;
		rest = strchr(rest, ',');
		if (rest)
			*rest++ = 0;
		ret = item(ctx, text, err);
	}
	free(copy);
	return ret;
}

static int disk_flag(void *ctx, char *flag, struct errmsg *err)
{
	struct virtio_blk_options *d = ctx;

	if (!strcmp(flag, "ro"))
		d->read_only = true;
	else if (!strcmp(flag, "direct"))
		d->direct = true;
	else
		return errmsg_set(err, -EINVAL, "invalid --disk flag '%s': give ro "
				  "or direct", flag);
	return 0;
}

int config_text_parse_disk(struct machine_config *c, const char *spec,
			   struct virtio_blk_options *d, struct errmsg *err)
{
	size_t len = strcspn(spec, ",");
	char *path;
	int ret;

	*d = (struct virtio_blk_options){ 0 };
	if (!len)
		return errmsg_set(err, -EINVAL, "--disk needs a file name");
	ret = for_each_item(spec, true, disk_flag, d, err);
	if (ret)
		return ret;
	path = strndup(spec, len);
	ret = path ? machine_config_set_string(c, &d->path, path) : -ENOMEM;
	free(path);
	return ret ? errmsg_set(err, ret, "out of memory") : 0;
}

struct net_ctx {
	struct machine_config *c;
	struct virtio_net_options *n;
};

static int net_item(void *ctx, char *item, struct errmsg *err)
{
	struct net_ctx *x = ctx;
	struct virtio_net_options *n = x->n;

	if (!strncmp(item, "tap=", 4)) {
		if (machine_config_set_string(x->c, &n->tap, item + 4))
			return errmsg_set(err, -ENOMEM, "out of memory");
	} else if (!strncmp(item, "mac=", 4)) {
		if (virtio_net_parse_mac(item + 4, n->mac))
			return errmsg_set(err, -EINVAL, "invalid --net mac '%s': give six "
					  "hex pairs like 52:54:00:12:34:56, not a "
					  "multicast address", item + 4);
		n->has_mac = true;
	} else if (!strcmp(item, "offload=off") || !strcmp(item, "offload=on")) {
		n->no_offloads = !strcmp(item, "offload=off");
	} else {
		return errmsg_set(err, -EINVAL, "invalid --net item '%s': give "
				  "tap=NAME, mac=MAC or offload=on|off", item);
	}
	return 0;
}

int config_text_parse_net(struct machine_config *c, const char *spec,
			  struct virtio_net_options *n, struct errmsg *err)
{
	struct net_ctx x = { c, n };
	int ret;

	*n = (struct virtio_net_options){ 0 };
	ret = for_each_item(spec, false, net_item, &x, err);
	if (ret)
		return ret;
	if (!n->tap || !*n->tap || strlen(n->tap) >= 16)
		return errmsg_set(err, -EINVAL, "--net needs tap=NAME, an interface "
				  "name of 1 to 15 characters");
	return 0;
}

static int balloon_flag(void *ctx, char *flag, struct errmsg *err)
{
	struct virtio_balloon_options *b = ctx;

	if (!strcmp(flag, "deflate-on-oom"))
		b->deflate_on_oom = true;
	else if (!strcmp(flag, "free-page-reporting"))
		b->free_page_reporting = true;
	else
		return errmsg_set(err, -EINVAL, "invalid --balloon flag '%s': give "
				  "deflate-on-oom or free-page-reporting", flag);
	return 0;
}

int config_text_parse_balloon(const char *spec,
			      struct virtio_balloon_options *b,
			      struct errmsg *err)
{
	/* the guest's statistics are asked for every second */
	*b = (struct virtio_balloon_options){ .stats_interval_ms = 1000 };
	return for_each_item(spec, false, balloon_flag, b, err);
}

int config_text_parse_vconsole(struct machine_config *c, const char *spec,
			       struct virtio_console_options *v,
			       struct errmsg *err)
{
	const char *in = strstr(spec, ",in=");
	size_t len = in ? (size_t)(in - spec) : strlen(spec);
	char *out;
	int ret;

	*v = (struct virtio_console_options){ 0 };
	if (!len)
		return errmsg_set(err, -EINVAL, "--vconsole needs a file name");
	if (in && !in[4])
		return errmsg_set(err, -EINVAL, "--vconsole in= needs a path");
	out = strndup(spec, len);
	ret = out ? machine_config_set_string(c, &v->out_path, out) : -ENOMEM;
	free(out);
	if (!ret && in)
		ret = machine_config_set_string(c, &v->in_path, in + 4);
	return ret ? errmsg_set(err, ret, "out of memory") : 0;
}

/* ---- printers ------------------------------------------------------------ */

void strbuf_printf(struct strbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->failed)
		return;
	for (;;) {
		size_t room = b->cap - b->len;
		char *grown;

		va_start(ap, fmt);
		n = vsnprintf(b->text ? b->text + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			break;
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		grown = realloc(b->text, b->cap + (size_t)n + 256);
		if (!grown)
			break;
		b->text = grown;
		b->cap += (size_t)n + 256;
	}
	free(b->text);
	*b = (struct strbuf){ .failed = true };
}

char *strbuf_finish(struct strbuf *b)
{
	char *text = b->failed ? NULL : b->text;

	if (!b->failed && !text)
		text = strdup("");
	*b = (struct strbuf){ 0 };
	return text;
}

void config_text_size(char *out, size_t len, uint64_t bytes)
{
	static const char units[] = "KMGT";
	unsigned i = 0;

	while (bytes && !(bytes & 1023) && i < 4) {
		bytes >>= 10;
		i++;
	}
	if (i)
		snprintf(out, len, "%llu%c", (unsigned long long)bytes, units[i - 1]);
	else
		snprintf(out, len, "%llu", (unsigned long long)bytes);
}

void config_text_duration(char *out, size_t len, uint64_t ns)
{
	if (ns % 1000000000ull == 0)
		snprintf(out, len, "%llus", (unsigned long long)(ns / 1000000000ull));
	else if (ns % 1000000ull == 0)
		snprintf(out, len, "%llums", (unsigned long long)(ns / 1000000ull));
	else
		snprintf(out, len, "%lluus", (unsigned long long)(ns / 1000ull));
}

void config_text_disk(struct strbuf *b, const struct virtio_blk_options *d)
{
	strbuf_printf(b, "%s%s%s", d->path, d->read_only ? ",ro" : "",
		      d->direct ? ",direct" : "");
}

void config_text_net(struct strbuf *b, const struct virtio_net_options *n)
{
	strbuf_printf(b, "tap=%s", n->tap);
	if (n->has_mac)
		strbuf_printf(b, ",mac=%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0],
			      n->mac[1], n->mac[2], n->mac[3], n->mac[4],
			      n->mac[5]);
	if (n->no_offloads)
		strbuf_printf(b, ",offload=off");
}
