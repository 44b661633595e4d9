// SPDX-License-Identifier: MIT
/* Gathering and formatting `rackvm top`'s table, see api_top.h. */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api_client.h"
#include "api/api_top.h"

int top_default_dir(char *buf, size_t len, struct errmsg *err)
{
	const char *dir = geteuid() == 0 ? "/run" : getenv("XDG_RUNTIME_DIR");
	int n;

	if (!dir || !*dir)
		return errmsg_set(err, -ENOENT, "XDG_RUNTIME_DIR is not set "
				  "(give --runtime-dir DIR)");
	n = snprintf(buf, len, "%s/rackvm", dir);
	if (n < 0 || (size_t)n >= len)
		return errmsg_set(err, -ENAMETOOLONG, "runtime directory too long");
	return 0;
}

/* GET @path on @socket as a JSON object; NULL with @row->problem set. */
static json_t *get_json(const char *socket, const char *path,
			struct top_row *row, long *status)
{
	struct api_client_reply reply;
	struct errmsg err = { "" };
	json_t *o;
	int ret = api_client_request(socket, "GET", path, NULL,
				     TOP_REQUEST_TIMEOUT_MS, &reply, &err);

	if (ret) {
		snprintf(row->problem, sizeof(row->problem), "%s",
			 ret == -ECONNREFUSED ? "unreachable (stale socket)" :
			 ret == -ETIMEDOUT ? "no reply in time" : "bad reply");
		return NULL;
	}
	*status = reply.status;
	o = json_loads(reply.body, 0, NULL);
	api_client_reply_free(&reply);
	if (!json_is_object(o)) {
		json_decref(o);
		snprintf(row->problem, sizeof(row->problem), "bad reply");
		return NULL;
	}
	return o;
}

/* A number field as a byte count, -1 if absent, null or not a number. */
static int64_t bytes(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_number(v) && json_number_value(v) >= 0 ?
	       (int64_t)json_number_value(v) : -1;
}

/* A name or state goes to a terminal: anything but printable ASCII (an
 * escape sequence in a socket's name or a VM's reply) becomes '?'. */
static void printable(char *text)
{
	for (; *text; text++)
		if (*text < 0x20 || *text > 0x7e)
			*text = '?';
}

static void fill_vm(json_t *vm, struct top_row *row)
{
	const char *state = json_string_value(json_object_get(vm, "state"));

	snprintf(row->state, sizeof(row->state), "%s", state ? state : "?");
	printable(row->state);
	row->vcpus = bytes(vm, "vcpus") > 0 ? (unsigned)bytes(vm, "vcpus") : 0;
}

static void fill_vcpus(json_t *o, struct top_row *row)
{
	json_t *list = json_object_get(o, "vcpus"), *v;
	size_t i;

	json_array_foreach(list, i, v) {
		if (bytes(v, "exits_total") >= 0)
			row->exits += (double)bytes(v, "exits_total");
		if (json_is_number(json_object_get(v, "cpu_seconds")))
			row->cpu_seconds += json_number_value(
				json_object_get(v, "cpu_seconds"));
	}
}

static void fill_memory(json_t *o, struct top_row *row)
{
	json_t *wss = json_object_get(o, "wss");

	row->size = bytes(o, "size");
	row->resident = bytes(o, "resident");
	row->remote = bytes(o, "remote");
	row->balloon = bytes(o, "balloon_actual");
	row->wss = json_is_object(wss) ? bytes(wss, "estimate") : -1;
	row->wss_error = json_is_object(wss) ? bytes(wss, "error") : -1;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One VM's row: whatever of the four requests answers. */
static void gather_one(const char *socket, struct top_row *row)
{
	static const char *const paths[] = {
		"/vm", "/vm/vcpus", "/vm/memory", "/vm/memory/pager",
	};
	long status = 0;

	row->faults = -1;
	row->size = row->resident = row->remote = -1;
	row->wss = row->wss_error = row->balloon = -1;
	row->when = now_seconds();
	for (unsigned i = 0; i < 4 && !row->problem[0]; i++) {
		json_t *o = get_json(socket, paths[i], row, &status);

		if (!o)
			break;
		if (status == 200) {
			if (i == 0)
				fill_vm(o, row);
			else if (i == 1)
				fill_vcpus(o, row);
			else if (i == 2)
				fill_memory(o, row);
			else if (bytes(o, "faults") >= 0)
				row->faults = (double)bytes(o, "faults");
		} else if (i == 0) {
			snprintf(row->problem, sizeof(row->problem),
				 "HTTP %ld", status);
		}
		json_decref(o);
	}
	if (row->problem[0])
		snprintf(row->state, sizeof(row->state), "-");
}

static void rates(struct top_row *row, const struct top_table *prev)
{
	row->cpu_pct = row->exits_rate = row->fault_rate = -1;
	for (size_t i = 0; prev && i < prev->n && !row->problem[0]; i++) {
		const struct top_row *p = &prev->rows[i];
		double dt = row->when - p->when;

		if (strcmp(p->name, row->name) || p->problem[0] || dt <= 0)
			continue;
		row->cpu_pct = 100 * (row->cpu_seconds - p->cpu_seconds) / dt;
		row->exits_rate = (row->exits - p->exits) / dt;
		if (row->faults >= 0 && p->faults >= 0)
			row->fault_rate = (row->faults - p->faults) / dt;
		/* a restarted VM of the same name counts from zero again */
		if (row->cpu_pct < 0 || row->exits_rate < 0)
			row->cpu_pct = row->exits_rate = -1;
		if (row->fault_rate < 0)
			row->fault_rate = -1;
	}
}

/* NAME.sock and a socket: the name, else false. */
static bool socket_name(const char *dir, const char *entry, char *name,
			size_t len, char *path, size_t path_len)
{
	size_t n = strlen(entry);
	struct stat st;

	if (n <= 5 || n - 5 >= len || strcmp(entry + n - 5, ".sock") ||
	    !strcmp(entry, TOP_HOSTD_SOCKET))
		return false;
	if ((size_t)snprintf(path, path_len, "%s/%s", dir, entry) >= path_len)
		return false;
	if (lstat(path, &st) < 0 || !S_ISSOCK(st.st_mode))
		return false;
	memcpy(name, entry, n - 5);
	name[n - 5] = 0;
	printable(name);
	return true;
}

int top_gather(const char *dir, const struct top_table *prev,
	       struct top_table *out, struct errmsg *err)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[4096];

	memset(out, 0, sizeof(*out));
	if (!d)
		return errno == ENOENT ? 0 :
		       errmsg_set(err, -errno, "%s: %s", dir, strerror(errno));
	out->rows = calloc(TOP_MAX_VMS, sizeof(*out->rows));
	if (!out->rows) {
		closedir(d);
		return errmsg_set(err, -ENOMEM, "out of memory");
	}
	while ((e = readdir(d)) && out->n < TOP_MAX_VMS) {
		struct top_row *row = &out->rows[out->n];

		if (!socket_name(dir, e->d_name, row->name, sizeof(row->name),
				 path, sizeof(path)))
			continue;
		gather_one(path, row);
		row->target = -1;
		rates(row, prev);
		out->n++;
	}
	closedir(d);
	top_gather_host(dir, out);
	return 0;
}

static enum top_key sort_key;

static int64_t memory_of(const struct top_row *r)
{
	return r->resident >= 0 ? r->resident : r->size;
}

/* Largest first for figures; the name breaks ties and sorts by name. */
static int compare(const void *a, const void *b)
{
	const struct top_row *x = a, *y = b;

	if (sort_key == TOP_SORT_MEMORY && memory_of(x) != memory_of(y))
		return memory_of(x) < memory_of(y) ? 1 : -1;
	if (sort_key == TOP_SORT_CPU && x->cpu_pct != y->cpu_pct)
		return x->cpu_pct < y->cpu_pct ? 1 : -1;
	return strcmp(x->name, y->name);
}

void top_sort(struct top_table *t, enum top_key key)
{
	sort_key = key;
	if (t->n)
		qsort(t->rows, t->n, sizeof(*t->rows), compare);
}

const char *top_size_text(int64_t v, char *buf, size_t len)
{
	static const char units[] = "KMGTP";
	double x = (double)v;
	unsigned u = 0;

	if (v < 0)
		return "-";
	if (v < 1024) {
		snprintf(buf, len, "%lld", (long long)v);
		return buf;
	}
	for (x /= 1024; x >= 1024 && u < 4; u++)
		x /= 1024;
	snprintf(buf, len, x < 10 && x != (int64_t)x ? "%.1f%c" : "%.0f%c", x,
		 units[u]);
	return buf;
}

static const char *rate_text(double v, const char *fmt, char *buf, size_t len)
{
	if (v < 0)
		return "-";
	snprintf(buf, len, fmt, v);
	return buf;
}

char *top_format(const struct top_table *t, enum top_key key)
{
	static const char *const keys[] = { "name", "memory", "cpu" };
	char a0[16], b0[16], c0[16];
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	if (t->host)
		fprintf(f, "hostd: budget %s, committed %s, resident %s\n",
			top_size_text(t->budget, a0, sizeof(a0)),
			top_size_text(t->committed, b0, sizeof(b0)),
			top_size_text(t->host_resident, c0, sizeof(c0)));
	fprintf(f, "%-16s %-9s %4s %6s %9s %7s %8s %14s %7s %8s %7s",
		"NAME", "STATE", "VCPU", "CPU%", "EXITS/s", "MEM", "RESIDENT",
		"WSS(+-)", "REMOTE", "FAULTS/s", "BALLOON");
	fprintf(f, t->host ? " %7s %s\n" : "\n", "TARGET", "LEVER");
	for (size_t i = 0; i < t->n; i++) {
		const struct top_row *r = &t->rows[i];
		char a[16], b[16], c[16], d[16], e[16], g[16], h[16], k[16];
		char wss[40];

		if (r->problem[0]) {
			fprintf(f, "%-16.16s %-9s %s\n", r->name, "-", r->problem);
			continue;
		}
		if (r->wss >= 0)
			snprintf(wss, sizeof(wss), "%s+-%s",
				 top_size_text(r->wss, a, sizeof(a)),
				 top_size_text(r->wss_error, b, sizeof(b)));
		else
			snprintf(wss, sizeof(wss), "-");
		fprintf(f, "%-16.16s %-9.9s %4u %6s %9s %7s %8s %14s %7s %8s %7s",
			r->name, r->state, r->vcpus,
			rate_text(r->cpu_pct, "%.1f", c, sizeof(c)),
			rate_text(r->exits_rate, "%.0f", d, sizeof(d)),
			top_size_text(r->size, e, sizeof(e)),
			top_size_text(r->resident, g, sizeof(g)), wss,
			top_size_text(r->remote, h, sizeof(h)),
			rate_text(r->fault_rate, "%.0f", k, sizeof(k)),
			top_size_text(r->balloon, a, sizeof(a)));
		if (t->host)
			fprintf(f, " %7s %s", top_size_text(r->target, b, sizeof(b)),
				r->lever[0] ? r->lever : "-");
		fputc('\n', f);
	}
	fprintf(f, "%zu VM%s, sorted by %s\n", t->n, t->n == 1 ? "" : "s",
		keys[key]);
	if (fclose(f)) {
		free(text);
		return NULL;
	}
	return text;
}

void top_table_free(struct top_table *t)
{
	free(t->rows);
	t->rows = NULL;
	t->n = 0;
}
