// SPDX-License-Identifier: MIT
/*
 * Polled 16550 output.  Waiting for THRE keeps characters from being
 * dropped on a real or slow UART; the wait is bounded so that a missing
 * UART (reads return 0xff, THRE set) or a stuck one cannot hang the
 * guest.
 */
#include "guest/io.h"
#include "guest/tsc.h"
#include "guest/uart.h"

#define UART_THR 0	/* transmit holding register (DLAB=0) */
#define UART_DLL 0	/* divisor latch low (DLAB=1) */
#define UART_IER 1
#define UART_DLM 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5

#define LCR_DLAB 0x80
#define LCR_8N1 0x03
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define UART_RBR 0

#define THRE_SPIN_LIMIT 100000

void uart_init(void)
{
	outb(COM1_BASE + UART_IER, 0);		/* polled: no interrupts */
	outb(COM1_BASE + UART_LCR, LCR_DLAB);
	outb(COM1_BASE + UART_DLL, 1);		/* 115200 baud */
	outb(COM1_BASE + UART_DLM, 0);
	outb(COM1_BASE + UART_LCR, LCR_8N1);
	outb(COM1_BASE + UART_FCR, 0x07);	/* enable and clear FIFOs */
	outb(COM1_BASE + UART_MCR, 0x03);	/* DTR, RTS */
}

void uart_putc(char c)
{
	unsigned int spins = 0;

	while (!(inb(COM1_BASE + UART_LSR) & LSR_THRE) &&
	       ++spins < THRE_SPIN_LIMIT)
		cpu_relax();
	outb(COM1_BASE + UART_THR, (uint8_t)c);
}

void uart_write(const char *s, size_t len)
{
	while (len--)
		uart_putc(*s++);
}

void uart_puts(const char *s)
{
	while (*s)
		uart_putc(*s++);
}

int uart_getc_timeout(uint64_t timeout_ns)
{
	uint64_t deadline = rdtsc() + ns_to_tsc(timeout_ns);

	do {
		if (inb(COM1_BASE + UART_LSR) & LSR_DR)
			return inb(COM1_BASE + UART_RBR);
		cpu_relax();
	} while (rdtsc() < deadline);
	return -1;
}
