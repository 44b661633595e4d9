// SPDX-License-Identifier: MIT
/*
 * `rackvm plot`'s loaders and charts (one series, or hostd's balancer
 * log as panels), and `rackvm top`'s table, without a VM: what a user
 * sees of good input, and that bad input (missing columns, negative or
 * non-finite numbers, wrong JSON types) is refused with the line or
 * field named.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_top.h"
#include "api/plot_svg.h"
#include "harness.h"

static const char csv[] =
	"time,wss_pages,error_pages,written_pages,sampled\n"
	"1.0,100,10,100,100\n"
	"2.0,300,20,300,100\n"
	"3.0,50,5,40,100\n";

static unsigned count(const char *text, const char *what)
{
	unsigned n = 0;

	for (const char *p = text; (p = strstr(p, what)); p++)
		n++;
	return n;
}

TEST(plot_csv_is_read_by_column_name_in_bytes)
{
	struct plot_series s = { 0 };
	struct errmsg err = { "" };

	CHECK_EQ(plot_series_from_csv(csv, 4096, &s, &err), 0);
	CHECK_EQ(s.n, 3u);
	CHECK(s.p[1].t == 2.0);
	CHECK(s.p[1].v[PLOT_WSS] == 300.0 * 4096);
	CHECK(s.p[1].v[PLOT_WSS_ERROR] == 20.0 * 4096);
	CHECK(isnan(s.p[1].v[PLOT_RESIDENT]));
	plot_series_free(&s);
}

TEST(plot_csv_refuses_bad_input_naming_the_line)
{
	static const struct {
		const char *text, *says;
	} bad[] = {
		{ "", "empty" },
		{ "time,error_pages\n1,2\n", "no column 'wss_pages'" },
		{ "time,wss_pages,error_pages\n1,2,3\n2,-5,1\n", "line 3" },
		{ "time,wss_pages,error_pages\n1,nan,3\n", "line 2" },
		{ "time,wss_pages,error_pages\n1,inf,3\n", "line 2" },
		{ "time,wss_pages,error_pages\n1,2\n", "column 'error_pages'" },
		{ "time,wss_pages,error_pages\n1,2x,3\n", "column 'wss_pages'" },
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct plot_series s = { 0 };
		struct errmsg err = { "" };

		CHECK_EQ(plot_series_from_csv(bad[i].text, 4096, &s, &err), -EINVAL);
		CHECK(strstr(err.text, bad[i].says) != NULL);
		plot_series_free(&s);
	}
}

TEST(plot_api_replies_are_checked)
{
	struct plot_series s = { 0 };
	struct errmsg err = { "" };

	CHECK_EQ(plot_series_from_wss_json("{\"page_size\":4096,\"points\":["
		"{\"time\":1.5,\"wss_pages\":10,\"error_pages\":1}]}", &s, &err), 0);
	CHECK_EQ(plot_series_from_memory_json("{\"resident\":1048576,"
		"\"remote\":null,\"balloon_actual\":0}", 2, &s, &err), 0);
	CHECK_EQ(s.n, 2u);
	CHECK(s.p[0].v[PLOT_WSS] == 40960.0);
	CHECK(s.p[1].v[PLOT_RESIDENT] == 1048576.0);
	CHECK(isnan(s.p[1].v[PLOT_REMOTE]));
	CHECK_EQ(plot_series_from_wss_json("{\"page_size\":4096,\"points\":["
		"{\"time\":\"x\",\"wss_pages\":1,\"error_pages\":1}]}", &s, &err),
		-EINVAL);
	CHECK(strstr(err.text, "point 0") != NULL);
	CHECK_EQ(plot_series_from_wss_json("[]", &s, &err), -EINVAL);
	CHECK_EQ(plot_series_from_memory_json("{\"resident\":-1}", 3, &s, &err),
		 -EINVAL);
	CHECK_EQ(s.n, 2u);
	plot_series_free(&s);
}

TEST(plot_svg_has_axes_legend_band_and_escaped_title)
{
	struct plot_series s = { 0 };
	struct errmsg err = { "" };
	struct plot_point *p;
	char *svg;

	CHECK_EQ(plot_series_from_csv(csv, 4096, &s, &err), 0);
	CHECK_EQ(plot_series_add(&s, 2.5, &p, &err), 0);
	p->v[PLOT_RESIDENT] = 2 << 20;
	plot_series_sort(&s);
	CHECK(s.p[2].t == 2.5);
	svg = plot_svg(&s, "a <b> & \"c\"", &err);
	CHECK(svg != NULL);
	CHECK(!strncmp(svg, "<?xml", 5));
	CHECK_EQ(count(svg, "<svg "), 1u);
	CHECK_EQ(count(svg, "</svg>"), 1u);
	CHECK(strstr(svg, ">a &lt;b&gt; &amp; &quot;c&quot;</text>") != NULL);
	CHECK(strstr(svg, "time (s)") && strstr(svg, "memory (MiB)"));
	/* two lines with data (WSS, resident): two polylines, two legend
	 * entries and the band's; none for remote or the balloon */
	CHECK_EQ(count(svg, "<polyline"), 2u);
	CHECK(strstr(svg, ">WSS estimate<") && strstr(svg, ">resident<"));
	CHECK(strstr(svg, "95% error band") && strstr(svg, "<polygon"));
	CHECK(!strstr(svg, ">remote<") && !strstr(svg, ">balloon<"));
	CHECK(!strstr(svg, "nan") && !strstr(svg, "inf"));
	free(svg);
	plot_series_free(&s);
	CHECK(plot_svg(&s, "empty", &err) == NULL);
	CHECK(strstr(err.text, "no points") != NULL);
}

/* One VM's entry of a balancer log line, as balancer_log_line() has it. */
#define LOG_VM(name, ram, wss, target, resident)				\
	"{\"vm\":\"" name "\",\"policy\":\"both\",\"shares\":1000.0,"		\
	"\"responsive\":true,\"ram\":" #ram ",\"wss\":" wss ","		\
	"\"resident\":" #resident ",\"remote\":0,\"fault_rate\":0.0,"		\
	"\"active\":" #target ",\"active_from\":\"resident\",\"target\":"	\
	#target ",\"reason\":\"cut to fit the budget\",\"balloon_target\":"	\
	"null,\"mem_local\":" #target ",\"balloon_actual\":0,\"min\":67108864}"
#define WSS(est, err) "{\"estimate\":" #est ",\"error\":" #err "}"

/* a from the start, b from the second line, a missing from the third;
 * the fifth line is being written */
static const char balancer_log[] =
	"{\"t\":100.0,\"budget\":3000000,\"targets\":1000000,\"vms\":["
	LOG_VM("a", 2000000, "null", 1000000, 1500000) "]}\n"
	"{\"t\":102.0,\"budget\":3000000,\"targets\":2500000,\"vms\":["
	LOG_VM("a", 2000000, WSS(400000, 50000), 900000, 1000000) ","
	LOG_VM("b", 2000000, "null", 1600000, 700000) "]}\n"
	"\n"
	"{\"t\":104.5,\"budget\":3000000,\"targets\":2000000,\"vms\":["
	LOG_VM("b", 2000000, WSS(1200000, 100000), 2000000, 1800000) "]}\n"
	"{\"t\":106.0,\"budget\":3000000,\"targets\":2500000,\"vms\":["
	LOG_VM("a", 2000000, WSS(500000, 40000), 600000, 800000) ","
	LOG_VM("b", 2000000, WSS(1300000, 90000), 1900000, 1900000) "]}\n"
	"{\"t\":108.0,\"budget\":3000000,\"targ";

TEST(plot_balancer_log_is_a_panel_per_vm_with_gaps)
{
	struct plot_balancer b = { 0 };
	struct errmsg err = { "" };
	const struct plot_series *host, *a, *vb;

	CHECK_EQ(plot_balancer_from_log(balancer_log, NULL, 0, &b, &err), 0);
	CHECK_EQ(b.n, 3u);
	CHECK_EQ(b.lines, 4u);
	CHECK(b.truncated);
	CHECK(!strcmp(b.panel[0].name, "host") && b.panel[0].own_scale);
	CHECK(!strcmp(b.panel[1].name, "a") && !strcmp(b.panel[2].name, "b"));
	CHECK(!strcmp(b.panel[1].note, "policy both, shares 1000"));
	host = &b.panel[0].s;
	a = &b.panel[1].s;
	vb = &b.panel[2].s;
	/* the host: budget, the logged sum of targets, resident summed */
	CHECK_EQ(host->n, 4u);
	CHECK(host->p[1].t == 2.0 && host->p[2].t == 4.5);
	CHECK(host->p[1].v[PLOT_BUDGET] == 3e6);
	CHECK(host->p[1].v[PLOT_TARGET] == 2.5e6);
	CHECK(host->p[1].v[PLOT_RESIDENT] == 1.7e6);
	/* a: no estimate at first, then a gap at 4.5 s (every value NAN) */
	CHECK_EQ(a->n, 4u);
	CHECK(a->p[0].t == 0 && isnan(a->p[0].v[PLOT_WSS]));
	CHECK(a->p[0].v[PLOT_RAM] == 2e6 && a->p[0].v[PLOT_TARGET] == 1e6);
	CHECK(a->p[1].v[PLOT_WSS] == 4e5 && a->p[1].v[PLOT_WSS_ERROR] == 5e4);
	CHECK(a->p[2].t == 4.5 && isnan(a->p[2].v[PLOT_TARGET]) &&
	      isnan(a->p[2].v[PLOT_RAM]));
	CHECK(a->p[3].v[PLOT_RESIDENT] == 8e5);
	/* b: from 2 s on, no gap */
	CHECK_EQ(vb->n, 3u);
	CHECK(vb->p[0].t == 2.0 && vb->p[2].v[PLOT_TARGET] == 1.9e6);
	plot_balancer_free(&b);
}

TEST(plot_balancer_log_chooses_vms_but_sums_all)
{
	static const char *const only[] = { "b" }, *const ghost[] = { "b", "c" };
	struct plot_balancer b = { 0 };
	struct errmsg err = { "" };

	CHECK_EQ(plot_balancer_from_log(balancer_log, only, 1, &b, &err), 0);
	CHECK_EQ(b.n, 2u);
	CHECK(!strcmp(b.panel[1].name, "b") && b.panel[1].s.n == 3);
	CHECK(b.panel[0].s.p[1].v[PLOT_RESIDENT] == 1.7e6);
	plot_balancer_free(&b);
	CHECK_EQ(plot_balancer_from_log(balancer_log, ghost, 2, &b, &err), -EINVAL);
	CHECK(strstr(err.text, "VM 'c' is not in the balancer log") != NULL);
	plot_balancer_free(&b);
}

TEST(plot_balancer_log_refuses_bad_lines_naming_them)
{
	static const struct {
		const char *text, *says;
	} bad[] = {
		{ "", "no lines" },
		{ "{\"t\":1,\"budget\":1,\"targets\":1,\"vms\":[]}\n{\"t\":2,\"bud\n"
		  "{\"t\":3,\"budget\":1,\"targets\":1,\"vms\":[]}\n",
		  "line 2 is not JSON" },
		{ "[1]\n", "line 1 is not a JSON object" },
		{ "{\"t\":-1,\"budget\":1,\"targets\":1,\"vms\":[]}\n",
		  "line 1: field 't' is not a number >= 0" },
		{ "{\"t\":1,\"budget\":\"x\",\"targets\":1,\"vms\":[]}",
		  "line 1: field 'budget'" },
		{ "{\"t\":1,\"budget\":1,\"targets\":1,\"vms\":{}}",
		  "line 1: field 'vms' is not an array" },
		{ "{\"t\":5,\"budget\":1,\"targets\":1,\"vms\":[]}\n"
		  "{\"t\":4,\"budget\":1,\"targets\":1,\"vms\":[]}\n",
		  "line 2: field 't' goes back in time" },
		{ "{\"t\":1,\"budget\":1,\"targets\":1,\"vms\":[7]}",
		  "line 1: vms[0]: field 'vms' holds something not an object" },
		{ "{\"t\":1,\"budget\":1,\"targets\":1,\"vms\":["
		  LOG_VM("a", 2000000, "null", 1000000, 1500000) ",{\"vm\":\"\"}]}",
		  "line 1: vms[1]: field 'vm' is not a name" },
		{ "{\"t\":1,\"budget\":1,\"targets\":1,\"vms\":["
		  LOG_VM("a", 2000000, "[1]", 1000000, 1500000) "]}",
		  "vms[0]: field 'wss' is neither null nor an object" },
		{ "{\"t\":1,\"budget\":1,\"targets\":1,\"vms\":["
		  LOG_VM("a", 2000000, WSS(-1, 3), 1000000, 1500000) "]}",
		  "vms[0]: field 'wss' has no estimate and error >= 0" },
		{ "{\"t\":1,\"budget\":1,\"targets\":1,\"vms\":["
		  LOG_VM("a", 2000000, "null", -5, 1500000) "]}",
		  "vms[0]: field 'target' is not a number >= 0" },
		{ "{\"t\":1,\"budget\":1e999,\"targets\":1,\"vms\":[]}\n",
		  "line 1 is not JSON" },
		{ "{\"t\":1,\"budget\":1,\"targets\":1,\"vms\":["
		  LOG_VM("a", 2000000, "null", 1, 1) "," LOG_VM("a", 2000000, "null",
		  1, 1) "]}", "line 1: VM 'a' is in it twice" },
	};

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct plot_balancer b = { 0 };
		struct errmsg err = { "" };

		CHECK_EQ(plot_balancer_from_log(bad[i].text, NULL, 0, &b, &err),
			 -EINVAL);
		if (!strstr(err.text, bad[i].says))
			fprintf(stderr, "case %u: %s\n", i, err.text);
		CHECK(strstr(err.text, bad[i].says) != NULL);
		plot_balancer_free(&b);
	}
}

TEST(plot_balancer_log_caps_vms_and_points)
{
	struct plot_balancer b = { 0 };
	struct errmsg err = { "" };
	char *log = malloc(64 * (PLOT_POINTS_MAX + 1)), *p = log;

	/* 17 VMs on one line */
	p += sprintf(p, "{\"t\":1,\"budget\":1,\"targets\":1,\"vms\":[");
	for (unsigned i = 0; i <= PLOT_VMS_MAX; i++)
		p += sprintf(p, "%s{\"vm\":\"v%u\",\"ram\":1,\"resident\":1,"
			     "\"target\":1,\"wss\":null}", i ? "," : "", i);
	strcpy(p, "]}\n");
	CHECK_EQ(plot_balancer_from_log(log, NULL, 0, &b, &err), -E2BIG);
	CHECK(strstr(err.text, "v16") && strstr(err.text, "--vms"));
	plot_balancer_free(&b);
	/* one line more than a chart holds */
	p = log;
	for (unsigned i = 0; i <= PLOT_POINTS_MAX; i++)
		p += sprintf(p, "{\"t\":%u,\"budget\":1,\"targets\":1,"
			     "\"vms\":[]}\n", i);
	CHECK_EQ(plot_balancer_from_log(log, NULL, 0, &b, &err), -E2BIG);
	CHECK(strstr(err.text, "line 8193: more than the 8192 lines") != NULL);
	plot_balancer_free(&b);
	free(log);
}

TEST(plot_svg_panels_has_a_panel_per_vm_with_its_target)
{
	struct plot_balancer b = { 0 };
	struct errmsg err = { "" };
	char *svg;

	CHECK_EQ(plot_balancer_from_log(balancer_log, NULL, 0, &b, &err), 0);
	snprintf(b.panel[1].name, sizeof(b.panel[1].name), "a<&>");
	svg = plot_svg_panels(b.panel, b.n, "hostd", &err);
	CHECK(svg != NULL);
	CHECK_EQ(count(svg, "<svg "), 1u);
	CHECK_EQ(count(svg, "<g class=\"panel\""), 3u);
	CHECK(strstr(svg, "data-name=\"a&lt;&amp;&gt;\"") != NULL);
	/* the target on the host's and each VM's, a's in two runs (its gap) */
	CHECK_EQ(count(svg, "<polyline class=\"target\""), 4u);
	CHECK_EQ(count(svg, "<polyline class=\"budget\""), 1u);
	CHECK_EQ(count(svg, "<polyline class=\"ram\""), 3u);
	/* a is absent at 4.5 s, b until 2 s: shaded */
	CHECK_EQ(count(svg, "class=\"absent\""), 2u);
	/* one legend: each label once, plus the time axis once */
	CHECK_EQ(count(svg, ">target</text>"), 1u);
	CHECK_EQ(count(svg, ">budget</text>"), 1u);
	CHECK_EQ(count(svg, ">time (s)</text>"), 1u);
	CHECK(!strstr(svg, "nan") && !strstr(svg, "inf"));
	free(svg);
	plot_balancer_free(&b);
	CHECK(plot_svg_panels(b.panel, 0, "none", &err) == NULL);
	CHECK(strstr(err.text, "no points") != NULL);
}

TEST(top_table_shows_unknowns_as_dashes_and_sorts)
{
	struct top_row rows[3] = {
		{ .name = "small", .state = "running", .vcpus = 1, .size = 64 << 20,
		  .resident = 8 << 20, .remote = 56 << 20, .wss = 4 << 20,
		  .wss_error = 512 << 10, .balloon = -1, .cpu_pct = 50,
		  .exits_rate = 10, .fault_rate = -1 },
		{ .name = "big", .state = "paused", .vcpus = 2, .size = 1 << 30,
		  .resident = -1, .remote = -1, .wss = -1, .wss_error = -1,
		  .balloon = 0, .cpu_pct = -1, .exits_rate = -1, .fault_rate = -1 },
		{ .name = "ghost", .problem = "unreachable (stale socket)" },
	};
	struct top_table t = { rows, 3 };
	char *text;

	top_sort(&t, TOP_SORT_MEMORY);
	CHECK(!strcmp(rows[0].name, "big") && !strcmp(rows[1].name, "small"));
	text = top_format(&t, TOP_SORT_MEMORY);
	CHECK(text != NULL);
	CHECK(!strncmp(text, "NAME ", 5));
	CHECK(strstr(text, "\nbig              paused       2      -         -      1G") != NULL);
	CHECK(strstr(text, "4M+-512K") != NULL);
	CHECK(strstr(text, "ghost            -         unreachable (stale socket)") != NULL);
	CHECK(strstr(text, "3 VMs, sorted by memory") != NULL);
	free(text);
	top_sort(&t, TOP_SORT_NAME);
	CHECK(!strcmp(rows[0].name, "big") && !strcmp(rows[1].name, "ghost"));
}
