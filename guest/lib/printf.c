// SPDX-License-Identifier: MIT
/*
 * A small vsnprintf.  Integers are formatted from unsigned long long so
 * that one path serves every length modifier; no floating point (the
 * runtime is built general-registers-only, rates are printed as fixed
 * point by their callers).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "guest/printf.h"
#include "guest/string.h"
#include "guest/uart.h"

struct out {
	char *buf;
	size_t size;
	size_t len;		/* what would have been written */
};

static void out_char(struct out *o, char c)
{
	if (o->len + 1 < o->size)
		o->buf[o->len] = c;
	o->len++;
}

static void out_padding(struct out *o, char c, int n)
{
	while (n-- > 0)
		out_char(o, c);
}

struct spec {
	bool left;		/* '-' */
	bool zero;		/* '0' */
	int width;
	int length;		/* number of 'l' (z counts as 1) */
};

static void out_string(struct out *o, const struct spec *sp, const char *s)
{
	int len = (int)strlen(s);

	if (!sp->left)
		out_padding(o, ' ', sp->width - len);
	while (*s)
		out_char(o, *s++);
	if (sp->left)
		out_padding(o, ' ', sp->width - len);
}

static void out_number(struct out *o, const struct spec *sp,
		       unsigned long long v, unsigned int base, bool negative,
		       bool upper, const char *prefix)
{
	const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
	char tmp[24];
	int n = 0, len, plen = (int)strlen(prefix);

	do {
		tmp[n++] = digits[v % base];
		v /= base;
	} while (v);
	len = n + (negative ? 1 : 0) + plen;

	if (!sp->left && !sp->zero)
		out_padding(o, ' ', sp->width - len);
	if (negative)
		out_char(o, '-');
	while (*prefix)
		out_char(o, *prefix++);
	if (!sp->left && sp->zero)
		out_padding(o, '0', sp->width - len);
	while (n)
		out_char(o, tmp[--n]);
	if (sp->left)
		out_padding(o, ' ', sp->width - len);
}

static unsigned long long arg_unsigned(va_list *ap, int length)
{
	if (length >= 2)
		return va_arg(*ap, unsigned long long);
	if (length == 1)
		return va_arg(*ap, unsigned long);
	return va_arg(*ap, unsigned int);
}

static long long arg_signed(va_list *ap, int length)
{
	if (length >= 2)
		return va_arg(*ap, long long);
	if (length == 1)
		return va_arg(*ap, long);
	return va_arg(*ap, int);
}

static const char *parse_spec(const char *f, struct spec *sp, va_list *ap)
{
	*sp = (struct spec){ 0 };
	for (;; f++) {
		if (*f == '-')
			sp->left = true;
		else if (*f == '0')
			sp->zero = true;
		else
			break;
	}
	if (*f == '*') {
		sp->width = va_arg(*ap, int);
		if (sp->width < 0) {
			sp->left = true;
			sp->width = -sp->width;
		}
		f++;
	}
	while (*f >= '0' && *f <= '9')
		sp->width = sp->width * 10 + (*f++ - '0');
	while (*f == 'l' || *f == 'z') {
		sp->length++;
		f++;
	}
	return f;
}

static void format_one(struct out *o, char conv, const struct spec *sp,
		       va_list *ap)
{
	long long s;
	const char *str;
	char c;

	switch (conv) {
	case 'd':
	case 'i':
		s = arg_signed(ap, sp->length);
		out_number(o, sp, s < 0 ? 0ull - (unsigned long long)s : (unsigned long long)s,
			   10, s < 0, false, "");
		break;
	case 'u':
		out_number(o, sp, arg_unsigned(ap, sp->length), 10, false,
			   false, "");
		break;
	case 'x':
	case 'X':
		out_number(o, sp, arg_unsigned(ap, sp->length), 16, false,
			   conv == 'X', "");
		break;
	case 'p':
		out_number(o, sp, (uintptr_t)va_arg(*ap, void *), 16, false,
			   false, "0x");
		break;
	case 'c':
		c = (char)va_arg(*ap, int);
		if (!sp->left)
			out_padding(o, ' ', sp->width - 1);
		out_char(o, c);
		if (sp->left)
			out_padding(o, ' ', sp->width - 1);
		break;
	case 's':
		str = va_arg(*ap, const char *);
		out_string(o, sp, str ? str : "(null)");
		break;
	case '%':
		out_char(o, '%');
		break;
	default:		/* unknown: print it as is */
		out_char(o, '%');
		out_char(o, conv);
		break;
	}
}

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap)
{
	struct out o = { .buf = buf, .size = size };
	struct spec sp;
	va_list aq;

	va_copy(aq, ap);
	while (*fmt) {
		if (*fmt != '%') {
			out_char(&o, *fmt++);
			continue;
		}
		fmt = parse_spec(fmt + 1, &sp, &aq);
		if (!*fmt)
			break;
		format_one(&o, *fmt++, &sp, &aq);
	}
	va_end(aq);
	if (size)
		buf[o.len < size ? o.len : size - 1] = '\0';
	return (int)o.len;
}

int snprintf(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, size, fmt, ap);
	va_end(ap);
	return n;
}

void uart_printf(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	uart_write(buf, n < (int)sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}
