// SPDX-License-Identifier: MIT
/*
 * `rackvm plot`'s loaders and chart, and `rackvm top`'s table, without a
 * VM: what a user sees of good input, and that bad input (missing
 * columns, negative or non-finite numbers, wrong JSON types) is refused
 * with the line or field named.
 */
#include <errno.h>
#include <math.h>
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
