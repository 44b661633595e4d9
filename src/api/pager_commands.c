// SPDX-License-Identifier: MIT
/* The pager's control command, see pager_commands.h. */
#include <inttypes.h>
#include <stdio.h>

#include "api/pager_commands.h"

static int cmd_pager_stats(void *opaque, int argc, char **argv, char *reply,
			   size_t size)
{
	struct pager_stats st;

	(void)argc;
	(void)argv;
	pager_get_stats(opaque, &st);
	snprintf(reply, size, "resident=%" PRIu64 " remote=%" PRIu64
		 " zero=%" PRIu64 " stored=%" PRIu64 " under_replicated=%" PRIu64
		 " lost=%" PRIu64 " unreachable=%" PRIu64 " faults=%" PRIu64
		 " evictions=%" PRIu64, st.resident, st.remote, st.zero,
		 st.store_pages, st.under_replicated, st.store_lost,
		 st.unreachable, st.faults, st.evictions);
	return 0;
}

int pager_commands_register(struct control_server *s, struct pager *p)
{
	return control_server_register(s, "pager-stats",
				       "pager-stats: the pager's counters and "
				       "its store's copies now", cmd_pager_stats,
				       p);
}
