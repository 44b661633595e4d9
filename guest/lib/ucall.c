// SPDX-License-Identifier: MIT
/*
 * Result channel and test helpers (guest/ucall.h).
 *
 * Each CPU owns one struct ucall (indexed by APIC ID), so CPUs never
 * share a struct; the host copies it during the OUT, so it can be reused
 * right after.  The image is identity mapped below 4 GiB, so the
 * struct's address is its physical address and fits the 32-bit OUT.
 */
#include <stdarg.h>
#include <stdint.h>

#include "guest/io.h"
#include "guest/printf.h"
#include "guest/smp.h"
#include "guest/string.h"
#include "guest/syscall.h"
#include "guest/uart.h"
#include "guest/ucall.h"

/* QEMU's isa-debug-exit listens at 0x501 unless told otherwise; writing
 * there too lets a plain "-device isa-debug-exit" end the guest. */
#define QEMU_DEFAULT_DEBUG_EXIT_PORT 0x501

static struct ucall ucalls[MAX_CPUS] __attribute__((aligned(64)));

void ucall_send(uint32_t type, const char *file, uint32_t line,
		const uint64_t *args, unsigned int nargs, const char *message)
{
	uint32_t cpu = this_cpu_apic_id();
	struct ucall *uc = &ucalls[cpu % MAX_CPUS];
	unsigned int i;

	memset(uc, 0, sizeof(*uc));
	uc->magic = UCALL_MAGIC;
	uc->type = type;
	uc->vcpu_id = cpu;
	uc->line = line;
	for (i = 0; i < nargs && i < UCALL_MAX_ARGS; i++)
		uc->args[i] = args[i];
	if (file)
		strlcpy(uc->file, file, sizeof(uc->file));
	if (message)
		strlcpy(uc->message, message, sizeof(uc->message));
	outl(UCALL_PORT, (uint32_t)(uintptr_t)uc);
}

static void send_text(uint32_t type, const char *prefix, const char *fmt,
		      va_list ap)
{
	char msg[UCALL_MESSAGE_LEN];

	vsnprintf(msg, sizeof(msg), fmt, ap);
	uart_puts(prefix);
	uart_puts(msg);
	uart_putc('\n');
	ucall_send(type, NULL, 0, NULL, 0, msg);
}

void guest_printf(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	send_text(UCALL_PRINT, "", fmt, ap);
	va_end(ap);
}

void guest_result(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	send_text(UCALL_RESULT, "result: ", fmt, ap);
	va_end(ap);
}

void guest_pass(const char *name)
{
	uart_printf("pass: %s\n", name);
	ucall_send(UCALL_PASS, NULL, 0, NULL, 0, name);
}

void guest_exit_now(uint8_t debug_exit_code)
{
	outb(DEBUG_EXIT_PORT, debug_exit_code);
	outb(QEMU_DEFAULT_DEBUG_EXIT_PORT, debug_exit_code);
	/* Still running: no debug-exit device.  Halt for good. */
	if (current_cpl() == 0) {
		for (;;)
			asm volatile("cli; hlt");
	}
	for (;;)
		syscall3(SYS_HALT, 0, 0, 0);
}

void guest_done(uint64_t status)
{
	if (status)
		uart_printf("guest: FAIL (status %llu)\n",
			    (unsigned long long)status);
	ucall_send(UCALL_DONE, NULL, 0, &status, 1, NULL);
	guest_exit_now(status ? GUEST_DEBUG_EXIT_FAIL : GUEST_DEBUG_EXIT_PASS);
}

void guest_assert_fail(const char *file, unsigned int line,
		       const char *fmt, ...)
{
	char msg[UCALL_MESSAGE_LEN];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	uart_printf("%s:%u: assertion failed: %s\n", file, line, msg);
	ucall_send(UCALL_FAIL, file, line, NULL, 0, msg);
	guest_done(1);
}
