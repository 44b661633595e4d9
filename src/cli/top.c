// SPDX-License-Identifier: MIT
/*
 * `rackvm top`: every VM of a runtime directory in one table, refreshed
 * every second (api_top.h gathers and formats).  Plain ANSI: the
 * alternate screen, cleared and redrawn a frame at a time; the terminal
 * is put back as it was on every way out (q, EOF, SIGINT, SIGTERM).
 */
#include <curl/curl.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "api/api_top.h"
#include "cli/cli.h"

#define REFRESH_MS 1000

void print_top_usage(FILE *out)
{
	fprintf(out,
		"usage: rackvm top [--runtime-dir DIR] [--once]\n"
		"  every VM with an API socket (rackvm run --name NAME) in DIR\n"
		"  (default $XDG_RUNTIME_DIR/rackvm, /run/rackvm as root),\n"
		"  refreshed every second; keys: q quit, m sort by memory,\n"
		"  c by CPU, n by name\n"
		"  --once  print one table (rates over one second) and exit\n"
		"  when rackvm hostd runs there (DIR/hostd.sock), its budget and\n"
		"  each VM's target and lever are shown too\n");
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* Two samples a second apart: the table with its rates. */
static int sample(const char *dir, struct top_table *prev,
		  struct top_table *now, struct errmsg *err)
{
	int ret = top_gather(dir, prev, now, err);

	top_table_free(prev);
	*prev = *now;
	return ret;
}

static int print_once(const char *dir, enum top_key key)
{
	struct top_table prev = { 0 }, now;
	struct errmsg err = { "" };
	char *text;
	int ret = top_gather(dir, NULL, &prev, &err);

	if (!ret) {
		usleep(REFRESH_MS * 1000);
		ret = sample(dir, &prev, &now, &err);
	}
	if (ret) {
		top_table_free(&prev);
		fprintf(stderr, "rackvm top: %s\n", err.text);
		return EXIT_HOST_ERROR;
	}
	top_sort(&now, key);
	text = top_format(&now, key);
	if (text)
		fputs(text, stdout);
	free(text);
	top_table_free(&now);
	return text ? 0 : EXIT_HOST_ERROR;
}

/* A key, or 0 after @ms without one; -1 on EOF or a signal. */
static int read_key(int ms)
{
	struct pollfd p = { .fd = STDIN_FILENO, .events = POLLIN };
	char c;

	if (stop)
		return -1;
	if (poll(&p, 1, ms) <= 0)
		return stop ? -1 : 0;
	if (read(STDIN_FILENO, &c, 1) != 1)
		return -1;
	return (unsigned char)c;
}

static int live(const char *dir, enum top_key key)
{
	struct top_table prev = { 0 }, now;
	struct termios saved, raw;
	struct errmsg err = { "" };
	bool tty = tcgetattr(STDIN_FILENO, &saved) == 0;
	int ret = 0, c = 0;

	if (tty) {
		raw = saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	fputs("\033[?1049h\033[?25l", stdout);	/* alternate screen, no cursor */
	while (c >= 0 && c != 'q') {
		char *text;

		if (c == 'm' || c == 'c' || c == 'n')
			key = c == 'm' ? TOP_SORT_MEMORY :
			      c == 'c' ? TOP_SORT_CPU : TOP_SORT_NAME;
		if (c == 0 || (c == 'm' || c == 'c' || c == 'n')) {
			if (c == 0 && (ret = sample(dir, &prev, &now, &err)))
				break;
			top_sort(&prev, key);
			text = top_format(&prev, key);
			printf("\033[H\033[2Jrackvm top - %s  (q quit, m memory, "
			       "c CPU, n name)\n\n%s", dir, text ? text : "");
			fflush(stdout);
			free(text);
		}
		c = read_key(REFRESH_MS);
	}
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	if (tty)
		tcsetattr(STDIN_FILENO, TCSANOW, &saved);
	top_table_free(&prev);
	if (ret) {
		fprintf(stderr, "rackvm top: %s\n", err.text);
		return EXIT_HOST_ERROR;
	}
	return 0;
}

int cmd_top(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	enum top_key key = TOP_SORT_NAME;
	const char *dir = NULL;
	struct errmsg err = { "" };
	bool once = false;
	char buf[4096];
	int ret;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			print_top_usage(stdout);
			return 0;
		} else if (!strcmp(argv[i], "--once")) {
			once = true;
		} else if (!strcmp(argv[i], "--runtime-dir") && i + 1 < argc) {
			dir = argv[++i];
		} else {
			fprintf(stderr, "rackvm top: unknown option '%s'\n", argv[i]);
			print_top_usage(stderr);
			return EXIT_HOST_ERROR;
		}
	}
	if (!dir) {
		if (top_default_dir(buf, sizeof(buf), &err)) {
			fprintf(stderr, "rackvm top: %s\n", err.text);
			return EXIT_HOST_ERROR;
		}
		dir = buf;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	ret = once ? print_once(dir, key) : live(dir, key);
	curl_global_cleanup();
	return ret;
}
