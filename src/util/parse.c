// SPDX-License-Identifier: MIT
#include "util/parse.h"

#include <ctype.h>
#include <errno.h>
#include <strings.h>

/* Parses the leading decimal digits; -EINVAL if there are none. */
static int parse_digits(const char **p, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = *p;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	for (; isdigit((unsigned char)*s); s++) {
		unsigned d = (unsigned)(*s - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return 0;
}

static int suffix_shift(const char *s, unsigned *shift)
{
	static const char units[] = "KMGT";

	if (!*s) {
		*shift = 0;
		return 0;
	}
	for (unsigned i = 0; units[i]; i++) {
		if (toupper((unsigned char)*s) != units[i])
			continue;
		s++;
		if (*s && strcasecmp(s, "B") && strcasecmp(s, "iB"))
			return -EINVAL;
		*shift = 10 * (i + 1);
		return 0;
	}
	return strcasecmp(s, "B") ? -EINVAL : (*shift = 0, 0);
}

int parse_size(const char *text, uint64_t *out)
{
	const char *p = text;
	unsigned shift;
	uint64_t v;
	int ret;

	if (!text)
		return -EINVAL;
	ret = parse_digits(&p, &v);
	if (ret)
		return ret;
	ret = suffix_shift(p, &shift);
	if (ret)
		return ret;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

int parse_uint(const char *text, unsigned min, unsigned max, unsigned *out)
{
	const char *p = text;
	uint64_t v;
	int ret;

	if (!text)
		return -EINVAL;
	ret = parse_digits(&p, &v);
	if (ret)
		return ret;
	if (*p)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = (unsigned)v;
	return 0;
}

int parse_duration_ns(const char *text, uint64_t *out)
{
	uint64_t whole, frac = 0, frac_scale = 1, unit, v;
	const char *s = text;
	int ret = parse_digits(&s, &whole);

	if (ret)
		return ret;
	if (*s == '.') {
		s++;
		if (!isdigit((unsigned char)*s))
			return -EINVAL;
		/* nanosecond precision at most: further digits are dropped */
		for (; isdigit((unsigned char)*s); s++)
			if (frac_scale < 1000000000ull) {
				frac = frac * 10 + (uint64_t)(*s - '0');
				frac_scale *= 10;
			}
	}
	if (!*s || !strcasecmp(s, "s"))
		unit = 1000000000ull;
	else if (!strcasecmp(s, "ms"))
		unit = 1000000ull;
	else if (!strcasecmp(s, "us"))
		unit = 1000ull;
	else
		return -EINVAL;
	if (whole > UINT64_MAX / unit)
		return -ERANGE;
	v = whole * unit + frac * unit / frac_scale;
	*out = v;
	return 0;
}
