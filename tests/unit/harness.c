// SPDX-License-Identifier: MIT
#include "harness.h"

#include <stdarg.h>
#include <string.h>

static struct unit_test *registered;
static int current_failed;
static int current_skipped;
static char current_message[512];

void harness_register(struct unit_test *t)
{
	t->next = registered;
	registered = t;
}

void harness_fail(const char *file, int line, const char *fmt, ...)
{
	va_list ap;
	int n;

	current_failed = 1;
	n = snprintf(current_message, sizeof(current_message), "%s:%d: ", file,
		     line);
	va_start(ap, fmt);
	vsnprintf(current_message + n, sizeof(current_message) - n, fmt, ap);
	va_end(ap);
}

void harness_skip(const char *reason)
{
	current_skipped = 1;
	snprintf(current_message, sizeof(current_message), "%s", reason);
}

int harness_failed(void)
{
	return current_failed;
}

/* Runs every test, or only those whose name contains argv[1]. */
int main(int argc, char **argv)
{
	struct unit_test *reversed = NULL, *t, *next;
	int failed = 0;

	/* constructors ran in file order, each pushing on the front */
	for (t = registered; t; t = next) {
		next = t->next;
		t->next = reversed;
		reversed = t;
	}
	for (t = reversed; t; t = t->next) {
		if (argc > 1 && !strstr(t->name, argv[1]))
			continue;
		current_failed = current_skipped = 0;
		current_message[0] = 0;
		t->fn();
		if (current_failed) {
			printf("FAIL %s: %s\n", t->name, current_message);
			failed++;
		} else if (current_skipped) {
			printf("skip %s: %s\n", t->name, current_message);
		} else {
			printf("ok %s\n", t->name);
		}
		fflush(stdout);
	}
	return failed ? 1 : 0;
}
