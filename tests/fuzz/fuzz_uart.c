// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: random register accesses to the 16550A UART of a bare
 * VM.  Each input is a list of 3-byte operations
 *	[flags] [value] [value2]
 * flags bit 7: write; bits 2-0: register; bits 4-3: access size 1/2/4/1.
 * Besides the sanitizers, it checks invariants a driver relies on.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "devices/devices.h"

static int null_fd = -1;

static void check(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned sizes[4] = { 1, 2, 4, 1 };
	struct vm vm;
	size_t i;

	if (null_fd < 0)
		null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	vm_init_bare(&vm);
	if (uart16550_create(&vm, COM1_PORT, COM1_IRQ, null_fd, -1))
		abort();

	for (i = 0; i + 3 <= size; i += 3) {
		uint8_t flags = data[i];
		unsigned reg = flags & 7, len = sizes[(flags >> 3) & 3];
		uint8_t d[4] = { data[i + 1], data[i + 2], data[i + 1],
				 data[i + 2] };
		bool is_write = flags & 0x80;
		int ret;

		ret = bus_access(&vm.pio_bus, 0, COM1_PORT + reg, d, len,
				 is_write);
		check(ret == 0 || (ret == -EINVAL && reg + len > 8));
		if (is_write || ret)
			continue;
		/* IIR bits 5:4 are always 0 on a 16550A */
		if (reg == 2 && len == 1)
			check((d[0] & 0x30) == 0);
		/* the transmitter is never busy: THRE and TEMT */
		if (reg == 5 && len == 1)
			check((d[0] & 0x60) == 0x60);
	}
	vm_destroy(&vm);
	return 0;
}
