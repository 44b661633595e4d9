// SPDX-License-Identifier: MIT
/*
 * vconsole: writes one line to virtio-console port 0,
 * "rackvm guest virtio-console: <word>\n" (word= from the command line,
 * default "hello"), so that the host can find it in whatever the port
 * is connected to.  With echo=1 it then waits up to 10 s for one line
 * from the host and reports it.
 */
#include "guest/printf.h"
#include "guest/string.h"
#include "guest/tsc.h"
#include "guest/ucall.h"
#include "guest/virtio_console.h"
#include "guest/workload.h"

static struct virtio_console con;
static char line[128];
static char in[VIRTIO_CONSOLE_RX_BUF + 1];

static void vconsole_run(const struct cmdline *c)
{
	const char *word = cmdline_get(c, "word");
	uint64_t echo = cmdline_u64(c, "echo", 0);
	int n, err;

	err = virtio_console_init(&con, c);
	GUEST_ASSERT_MSG(err == 0, "vconsole: virtio-console: %s",
			 virtio_strerror(err));
	n = snprintf(line, sizeof(line), "rackvm guest virtio-console: %s\n",
		     word ? word : "hello");
	err = virtio_console_write(&con, line, n);
	GUEST_ASSERT_MSG(err == 0, "vconsole: write: %s",
			 virtio_strerror(err));
	if (echo) {
		n = virtio_console_read(&con, in, sizeof(in) - 1,
					10 * NSEC_PER_SEC);
		GUEST_ASSERT_MSG(n > 0, "vconsole: nothing from the host: %s",
				 n ? virtio_strerror(n) : "timed out");
		in[n] = '\0';
		if (strchr(in, '\n'))
			*strchr(in, '\n') = '\0';
		guest_result("vconsole wrote=%d read=%s", (int)strlen(line),
			     in);
	} else {
		guest_result("vconsole wrote=%d", (int)strlen(line));
	}
	guest_done(0);
}

static const char *const vconsole_params[] = { "word", "echo", NULL };

const struct workload workload_vconsole = {
	.name = "vconsole",
	.usage = "word=WORD echo=0|1: a line to virtio-console port 0",
	.params = vconsole_params,
	.run = vconsole_run,
};
