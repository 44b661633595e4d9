/* SPDX-License-Identifier: MIT */
/* Polled 16550 UART on COM1: the console under rackvm and QEMU alike. */
#ifndef GUEST_UART_H
#define GUEST_UART_H

#include <stddef.h>
#include <stdint.h>

#define COM1_BASE 0x3f8

void uart_init(void);
void uart_putc(char c);
void uart_write(const char *s, size_t len);
void uart_puts(const char *s);
/* The next received byte, or -1 if none arrived within @timeout_ns. */
int uart_getc_timeout(uint64_t timeout_ns);

#endif
