// SPDX-License-Identifier: MIT
/*
 * The runtime's ring-3 start: copy the boot information out of low memory
 * first, bring up the console, learn the machine, then run the workload
 * the command line names.
 */
#include "guest/bootinfo.h"
#include "guest/cmdline.h"
#include "guest/platform.h"
#include "guest/printf.h"
#include "guest/string.h"
#include "guest/uart.h"
#include "guest/ucall.h"
#include "guest/workload.h"

static struct cmdline cmdline;

static void list_workloads(void)
{
	unsigned int i;

	uart_printf("workloads:\n");
	for (i = 0; workloads[i]; i++)
		uart_printf("  %-10s %s\n", workloads[i]->name,
			    workloads[i]->usage);
}

static bool accepts(const struct workload *w, const char *key)
{
	unsigned int i;

	for (i = 0; w->params && w->params[i]; i++) {
		if (!strcmp(w->params[i], key))
			return true;
	}
	return false;
}

/* Kernel parameters a VMM or a user may add out of habit. */
static const char *const foreign_params[] = { "console", "earlyprintk",
					      NULL };

static bool is_foreign(const struct cmdline_param *p)
{
	unsigned int i;

	for (i = 0; foreign_params[i]; i++) {
		if (!strcmp(foreign_params[i], p->key))
			return true;
	}
	return false;
}

/* Unknown parameters are not fatal (a VMM may append its own), but they
 * are named so that a typo does not silently run with a default. */
static void warn_unknown_params(const struct workload *w)
{
	const struct cmdline_param *p;
	unsigned int i;

	for (i = 0; i < cmdline.nr_params; i++) {
		p = &cmdline.params[i];
		if (is_foreign(p))
			continue;
		if (p->bare || !accepts(w, p->key))
			GUEST_PRINTF("warning: %s ignores parameter '%s%s%s'",
				     w->name, p->key, p->bare ? "" : "=",
				     p->value);
	}
}

__attribute__((noreturn)) void runtime_main(void)
{
	const struct workload *w;

	bootinfo_copy();
	uart_init();
	if (!boot_info.valid) {
		uart_printf("guest: no PVH start info at 0x%x (bad magic)\n",
			    pvh_start_info_paddr);
		guest_done(1);
	}
	platform_probe();

	if (cmdline_parse(&cmdline, boot_info.cmdline))
		GUEST_PRINTF("warning: more than %d parameters, rest ignored",
			     CMDLINE_MAX_PARAMS);
	w = workload_find(cmdline.workload);
	if (!w) {
		uart_printf("guest: unknown workload '%s'\n", cmdline.workload);
		list_workloads();
		guest_assert_fail(__FILE__, __LINE__, "unknown workload '%s'",
				  cmdline.workload);
	}
	warn_unknown_params(w);
	w->run(&cmdline);
	guest_assert_fail(__FILE__, __LINE__,
			  "workload %s returned without guest_done()",
			  w->name);
}
