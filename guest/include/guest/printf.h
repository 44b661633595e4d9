/* SPDX-License-Identifier: MIT */
/*
 * printf-style formatting without libc.  Conversions: d i u x X c s p %,
 * length modifiers l and ll (and z), flags '-' and '0', field width
 * (also '*').  Output is always NUL-terminated and never overruns.
 */
#ifndef GUEST_PRINTF_H
#define GUEST_PRINTF_H

#include <stdarg.h>
#include <stddef.h>

__attribute__((format(printf, 3, 0)))
int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
__attribute__((format(printf, 3, 4)))
int snprintf(char *buf, size_t size, const char *fmt, ...);

/* UART only; no ucall.  For the runtime's own diagnostics. */
__attribute__((format(printf, 1, 2)))
void uart_printf(const char *fmt, ...);

#endif
