// SPDX-License-Identifier: MIT
/*
 * The machine config as JSON (jansson), for the API, hostd and migration:
 *
 *   { "kernel": "bzImage", "initrd": null, "cmdline": "console=ttyS0",
 *     "console": "stdio", "mem": 268435456, "cpus": 2, "hugetlb": false,
 *     "exit_stats": false,
 *     "disks": [ { "path": "a.img", "ro": false, "direct": false } ],
 *     "nets": [ { "tap": "tap0", "mac": "52:54:00:12:34:56",
 *                 "offload": true } ],
 *     "rng": true,
 *     "balloon": { "deflate_on_oom": true, "free_page_reporting": false,
 *                  "stats_interval_ms": 1000 },
 *     "vconsole": { "path": "out.txt", "in": null },
 *     "name": "web1", "api_socket": null,
 *     "wss": { "interval_ns": 1000000000, "csv": null, "mode": "both",
 *              "log": "auto", "full": false, "sample_min": 100,
 *              "sample_max": 4096, "rel_error": 0.05 },
 *     "pager": { "mem_local": "64M", "backend": null, "namespace": null,
 *                "secret_file": null, "threads": 2 } }
 *
 * Absent keys keep their defaults; "balloon", "vconsole", "wss" and
 * "pager" absent or null mean no such thing.  Sizes are a byte count or a
 * string parse_size() reads.  The text is untrusted (an API client): any
 * unknown key, wrong type or bad value is -EINVAL naming it.
 */
#include "machine/config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "machine/config_text.h"
#include "memory/wss_monitor.h"
#include "util/parse.h"

static const char *const wss_modes[] = { NULL, "dirty", "sample", "both" };
static const char *const wss_logs[] = { NULL, "auto", "ring", "bitmap" };

/* ---- reading --------------------------------------------------------------- */

struct reader {
	struct machine_config *c;
	struct errmsg *err;
	const char *where;	/* "" or "disks[1]." and the like */
};

static int bad(struct reader *r, const char *key, const char *what)
{
	return errmsg_set(r->err, -EINVAL, "config: \"%s%s\" %s", r->where, key,
			  what);
}

static int get_string(struct reader *r, const char *key, json_t *v,
		      const char **field, bool nullable)
{
	if (json_is_null(v) && nullable) {
		*field = NULL;
		return 0;
	}
	if (!json_is_string(v) || strlen(json_string_value(v)) !=
				  json_string_length(v))
		return bad(r, key, nullable ? "must be a string or null" :
					      "must be a string");
	if (machine_config_set_string(r->c, field, json_string_value(v)))
		return errmsg_set(r->err, -ENOMEM, "out of memory");
	return 0;
}

static int get_bool(struct reader *r, const char *key, json_t *v, bool *out)
{
	if (!json_is_boolean(v))
		return bad(r, key, "must be true or false");
	*out = json_is_true(v);
	return 0;
}

static int get_uint(struct reader *r, const char *key, json_t *v,
		    uint64_t max, uint64_t *out)
{
	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    (uint64_t)json_integer_value(v) > max)
		return bad(r, key, "must be a whole number in range");
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

static int get_size(struct reader *r, const char *key, json_t *v,
		    uint64_t *out)
{
	if (json_is_string(v) && !parse_size(json_string_value(v), out))
		return 0;
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return 0;
	}
	return bad(r, key, "must be a size: bytes, or a string like \"512M\"");
}

static int get_word(struct reader *r, const char *key, json_t *v,
		    const char *const *words, unsigned n, unsigned *out)
{
	for (unsigned i = 0; json_is_string(v) && i < n; i++)
		if (words[i] && !strcmp(json_string_value(v), words[i])) {
			*out = i;
			return 0;
		}
	return bad(r, key, "is not one of the valid words");
}

/* Each object's keys go through a function that knows them. */
typedef int (*key_fn)(struct reader *r, void *obj, const char *key,
		      json_t *v);

static int walk(struct reader *r, const char *name, json_t *o, key_fn fn,
		void *obj)
{
	const char *key;
	json_t *v;
	int ret;

	if (!json_is_object(o))
		return bad(r, name, "must be an object");
	json_object_foreach(o, key, v) {
		ret = fn(r, obj, key, v);
		if (ret == -ENOENT)
			return bad(r, key, "is not a config field");
		if (ret)
			return ret;
	}
	return 0;
}

static int disk_key(struct reader *r, void *obj, const char *key, json_t *v)
{
	struct virtio_blk_options *d = obj;

	if (!strcmp(key, "path"))
		return get_string(r, key, v, &d->path, false);
	if (!strcmp(key, "ro"))
		return get_bool(r, key, v, &d->read_only);
	if (!strcmp(key, "direct"))
		return get_bool(r, key, v, &d->direct);
	return -ENOENT;
}

static int net_key(struct reader *r, void *obj, const char *key, json_t *v)
{
	struct virtio_net_options *n = obj;
	bool offload = !n->no_offloads;
	int ret;

	if (!strcmp(key, "tap"))
		return get_string(r, key, v, &n->tap, false);
	if (!strcmp(key, "mac")) {
		if (json_is_null(v)) {
			n->has_mac = false;
			return 0;
		}
		if (!json_is_string(v) ||
		    virtio_net_parse_mac(json_string_value(v), n->mac))
			return bad(r, key, "must be a MAC like 52:54:00:12:34:56, "
				   "not multicast");
		n->has_mac = true;
		return 0;
	}
	if (!strcmp(key, "offload")) {
		ret = get_bool(r, key, v, &offload);
		n->no_offloads = !offload;
		return ret;
	}
	return -ENOENT;
}

static int array_of(struct reader *r, const char *name, json_t *a, void *items,
		    size_t item_size, unsigned *count, key_fn fn)
{
	char where[32];
	size_t i;
	json_t *v;
	int ret;

	if (!json_is_array(a))
		return bad(r, name, "must be an array");
	if (json_array_size(a) > VIRTIO_MMIO_MAX_DEVICES)
		return bad(r, name, "has more than 16 devices");
	json_array_foreach(a, i, v) {
		snprintf(where, sizeof(where), "%s[%zu].", name, i);
		r->where = where;
		memset((char *)items + i * item_size, 0, item_size);
		ret = walk(r, "", v, fn, (char *)items + i * item_size);
		r->where = "";
		if (ret)
			return ret;
	}
	*count = (unsigned)json_array_size(a);
	return 0;
}

static int balloon_key(struct reader *r, void *obj, const char *key,
		       json_t *v)
{
	struct virtio_balloon_options *b = obj;
	uint64_t ms = 0;
	int ret;

	if (!strcmp(key, "deflate_on_oom"))
		return get_bool(r, key, v, &b->deflate_on_oom);
	if (!strcmp(key, "free_page_reporting"))
		return get_bool(r, key, v, &b->free_page_reporting);
	if (!strcmp(key, "stats_interval_ms")) {
		ret = get_uint(r, key, v, 3600000, &ms);
		b->stats_interval_ms = (unsigned)ms;
		return ret;
	}
	return -ENOENT;
}

static int vconsole_key(struct reader *r, void *obj, const char *key,
			json_t *v)
{
	struct virtio_console_options *c = obj;

	if (!strcmp(key, "path"))
		return get_string(r, key, v, &c->out_path, false);
	if (!strcmp(key, "in"))
		return get_string(r, key, v, &c->in_path, true);
	return -ENOENT;
}

static int wss_key(struct reader *r, void *obj, const char *key, json_t *v)
{
	struct machine_wss *w = obj;
	unsigned word = 0;
	int ret;

	if (!strcmp(key, "interval_ns"))
		return get_uint(r, key, v, UINT64_MAX / 2, &w->interval_ns);
	if (!strcmp(key, "csv"))
		return get_string(r, key, v, &w->csv, true);
	if (!strcmp(key, "full"))
		return get_bool(r, key, v, &w->full);
	if (!strcmp(key, "sample_min"))
		return get_uint(r, key, v, 1u << 30, &w->sample_min);
	if (!strcmp(key, "sample_max"))
		return get_uint(r, key, v, 1u << 30, &w->sample_max);
	if (!strcmp(key, "rel_error")) {
		if (!json_is_number(v))
			return bad(r, key, "must be a number");
		w->rel_error = json_number_value(v);
		return 0;
	}
	if (!strcmp(key, "mode")) {
		ret = get_word(r, key, v, wss_modes, 4, &word);
		w->mode = word;
		return ret;
	}
	if (!strcmp(key, "log")) {
		ret = get_word(r, key, v, wss_logs, 4, &word);
		w->log = (enum vm_dirty_log)word;
		return ret;
	}
	return -ENOENT;
}

static int pager_key(struct reader *r, void *obj, const char *key, json_t *v)
{
	struct machine_pager *p = obj;
	uint64_t n = 0;
	int ret;

	if (!strcmp(key, "mem_local"))
		return get_size(r, key, v, &p->local_bytes);
	if (!strcmp(key, "backend"))
		return get_string(r, key, v, &p->backend, true);
	if (!strcmp(key, "namespace"))
		return get_string(r, key, v, &p->ns, true);
	if (!strcmp(key, "secret_file"))
		return get_string(r, key, v, &p->secret_file, true);
	if (!strcmp(key, "threads")) {
		ret = get_uint(r, key, v, MACHINE_MAX_PAGER_THREADS, &n);
		p->threads = (unsigned)n;
		return ret;
	}
	return -ENOENT;
}

/* "balloon", "vconsole", "wss", "pager": null or absent means off. */
static int optional_section(struct reader *r, const char *key, json_t *v,
			    bool *enabled, key_fn fn, void *obj)
{
	char where[16];
	int ret;

	if (json_is_null(v)) {
		*enabled = false;
		return 0;
	}
	*enabled = true;
	snprintf(where, sizeof(where), "%s.", key);
	r->where = where;
	ret = walk(r, key, v, fn, obj);
	r->where = "";
	return ret;
}

static int section_key(struct reader *r, struct machine_config *c,
		       const char *key, json_t *v)
{
	bool on;
	int ret;

	if (!strcmp(key, "disks"))
		return array_of(r, key, v, c->disks, sizeof(c->disks[0]),
				&c->ndisks, disk_key);
	if (!strcmp(key, "nets"))
		return array_of(r, key, v, c->nets, sizeof(c->nets[0]), &c->nnets,
				net_key);
	if (!strcmp(key, "balloon"))
		return optional_section(r, key, v, &c->balloon, balloon_key,
					&c->balloon_opts);
	if (!strcmp(key, "wss"))
		return optional_section(r, key, v, &c->wss.enabled, wss_key,
					&c->wss);
	if (!strcmp(key, "pager"))
		return optional_section(r, key, v, &c->pager.enabled, pager_key,
					&c->pager);
	if (!strcmp(key, "vconsole")) {
		ret = optional_section(r, key, v, &on, vconsole_key, &c->vconsole);
		if (!ret && on && !c->vconsole.out_path)
			return bad(r, "vconsole.path", "is missing");
		if (!on)
			c->vconsole = (struct virtio_console_options){ 0 };
		return ret;
	}
	return -ENOENT;
}

static int top_key(struct reader *r, void *obj, const char *key, json_t *v)
{
	struct machine_config *c = obj;
	uint64_t n = 0;
	int ret;

	if (!strcmp(key, "kernel"))
		return get_string(r, key, v, &c->kernel, true);
	if (!strcmp(key, "initrd"))
		return get_string(r, key, v, &c->initrd, true);
	if (!strcmp(key, "cmdline"))
		return get_string(r, key, v, &c->cmdline, true);
	if (!strcmp(key, "console"))
		return get_string(r, key, v, &c->console, false);
	if (!strcmp(key, "name"))
		return get_string(r, key, v, &c->name, true);
	if (!strcmp(key, "api_socket"))
		return get_string(r, key, v, &c->api_socket, true);
	if (!strcmp(key, "mem"))
		return get_size(r, key, v, &c->mem_size);
	if (!strcmp(key, "cpus")) {
		ret = get_uint(r, key, v, MACHINE_MAX_CPUS, &n);
		c->cpus = (unsigned)n;
		return ret;
	}
	if (!strcmp(key, "hugetlb"))
		return get_bool(r, key, v, &c->hugetlb);
	if (!strcmp(key, "exit_stats"))
		return get_bool(r, key, v, &c->exit_stats);
	if (!strcmp(key, "rng"))
		return get_bool(r, key, v, &c->rng);
	return section_key(r, c, key, v);
}

int machine_config_from_json(struct machine_config *c, const char *text,
			     size_t len, struct errmsg *err)
{
	struct reader r = { .c = c, .err = err, .where = "" };
	json_error_t jerr;
	json_t *root;
	int ret;

	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return errmsg_set(err, -EINVAL, "config: not JSON: %s at line %d "
				  "column %d", jerr.text, jerr.line, jerr.column);
	ret = walk(&r, "(the config)", root, top_key, c);
	json_decref(root);
	return ret ? ret : machine_config_validate(c, err);
}

int machine_config_from_json_file(struct machine_config *c, const char *path,
				  struct errmsg *err)
{
	char *text = NULL;
	size_t len = 0;
	int ret;
	FILE *f = fopen(path, "r");

	if (!f)
		return errmsg_set(err, -errno, "--config %s: %s", path,
				  strerror(errno));
	text = malloc(MACHINE_CONFIG_JSON_MAX + 1);
	if (!text) {
		fclose(f);
		return errmsg_set(err, -ENOMEM, "out of memory");
	}
	len = fread(text, 1, MACHINE_CONFIG_JSON_MAX + 1, f);
	if (ferror(f))
		ret = errmsg_set(err, -EIO, "--config %s: read error", path);
	else if (len > MACHINE_CONFIG_JSON_MAX)
		ret = errmsg_set(err, -EFBIG, "--config %s: larger than %u bytes",
				 path, MACHINE_CONFIG_JSON_MAX);
	else
		ret = machine_config_from_json(c, text, len, err);
	fclose(f);
	free(text);
	return ret;
}

/* ---- writing ------------------------------------------------------------- */

static json_t *string_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

static json_t *devices_json(const struct machine_config *c, json_t *o)
{
	json_t *disks = json_array(), *nets = json_array();
	char mac[18];

	for (unsigned i = 0; i < c->ndisks; i++)
		json_array_append_new(disks, json_pack("{s:s, s:b, s:b}",
			"path", c->disks[i].path, "ro", c->disks[i].read_only,
			"direct", c->disks[i].direct));
	for (unsigned i = 0; i < c->nnets; i++) {
		const struct virtio_net_options *n = &c->nets[i];

		snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x",
			 n->mac[0], n->mac[1], n->mac[2], n->mac[3], n->mac[4],
			 n->mac[5]);
		json_array_append_new(nets, json_pack("{s:s, s:o, s:b}",
			"tap", n->tap, "mac", n->has_mac ? json_string(mac) :
			json_null(), "offload", !n->no_offloads));
	}
	json_object_set_new(o, "disks", disks);
	json_object_set_new(o, "nets", nets);
	json_object_set_new(o, "rng", json_boolean(c->rng));
	json_object_set_new(o, "balloon", c->balloon ?
		json_pack("{s:b, s:b, s:i}",
			  "deflate_on_oom", c->balloon_opts.deflate_on_oom,
			  "free_page_reporting", c->balloon_opts.free_page_reporting,
			  "stats_interval_ms",
			  (json_int_t)c->balloon_opts.stats_interval_ms) :
		json_null());
	json_object_set_new(o, "vconsole", c->vconsole.out_path ?
		json_pack("{s:s, s:o}", "path", c->vconsole.out_path, "in",
			  string_or_null(c->vconsole.in_path)) : json_null());
	json_object_set_new(o, "name", string_or_null(c->name));
	json_object_set_new(o, "api_socket", string_or_null(c->api_socket));
	return o;
}

static json_t *wss_json(const struct machine_wss *w)
{
	if (!w->enabled)
		return json_null();
	return json_pack("{s:I, s:o, s:s, s:s, s:b, s:I, s:I, s:f}",
			 "interval_ns", (json_int_t)w->interval_ns,
			 "csv", string_or_null(w->csv),
			 "mode", w->mode <= WSS_MODE_BOTH && w->mode ?
				 wss_modes[w->mode] : "both",
			 "log", w->log <= VM_DIRTY_LOG_BITMAP && w->log ?
				wss_logs[w->log] : "auto",
			 "full", w->full,
			 "sample_min", (json_int_t)w->sample_min,
			 "sample_max", (json_int_t)w->sample_max,
			 "rel_error", w->rel_error);
}

static json_t *pager_json(const struct machine_pager *p)
{
	if (!p->enabled)
		return json_null();
	return json_pack("{s:I, s:o, s:o, s:o, s:i}",
			 "mem_local", (json_int_t)p->local_bytes,
			 "backend", string_or_null(p->backend),
			 "namespace", string_or_null(p->ns),
			 "secret_file", string_or_null(p->secret_file),
			 "threads", (int)p->threads);
}

char *machine_config_to_json(const struct machine_config *c)
{
	json_t *o;
	char *text;

	o = json_pack("{s:o, s:o, s:o, s:s, s:I, s:i, s:b, s:b}",
		      "kernel", string_or_null(c->kernel),
		      "initrd", string_or_null(c->initrd),
		      "cmdline", string_or_null(c->cmdline),
		      "console", c->console,
		      "mem", (json_int_t)c->mem_size,
		      "cpus", (int)c->cpus,
		      "hugetlb", c->hugetlb,
		      "exit_stats", c->exit_stats);
	if (!o)
		return NULL;
	devices_json(c, o);
	json_object_set_new(o, "wss", wss_json(&c->wss));
	json_object_set_new(o, "pager", pager_json(&c->pager));
	text = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
}
