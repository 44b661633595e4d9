// SPDX-License-Identifier: MIT
/* uartecho: reads one line from the UART and prints it back, so tests can
 * check that host input reaches the guest through the receive path. */
#include "guest/tsc.h"
#include "guest/uart.h"
#include "guest/ucall.h"
#include "guest/workload.h"

#define LINE_MAX 128
#define INPUT_TIMEOUT_NS (20 * NSEC_PER_SEC)

static void uartecho_run(const struct cmdline *c)
{
	char line[LINE_MAX];
	unsigned int len = 0;
	int ch;

	(void)c;
	GUEST_PRINTF("uartecho: waiting for a line");
	while (len < LINE_MAX - 1) {
		ch = uart_getc_timeout(INPUT_TIMEOUT_NS);
		GUEST_ASSERT_MSG(ch >= 0, "no input within 20 s (got %u bytes)", len);
		if (ch == '\n' || ch == '\r')
			break;
		line[len++] = (char)ch;
	}
	line[len] = 0;
	GUEST_PRINTF("echo: %s", line);
	guest_done(0);
}

const struct workload workload_uartecho = {
	.name = "uartecho",
	.usage = "(no parameters) echoes one line read from the UART",
	.run = uartecho_run,
};
