// SPDX-License-Identifier: MIT
/* Command-line parsing (guest/cmdline.h).  Works in place on a copy. */
#include "guest/cmdline.h"
#include "guest/string.h"
#include "guest/ucall.h"

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Splits off the next whitespace-separated token, NUL-terminating it. */
static char *next_token(char **cursor)
{
	char *p = *cursor, *tok;

	while (is_space(*p))
		p++;
	if (!*p)
		return NULL;
	tok = p;
	while (*p && !is_space(*p))
		p++;
	if (*p)
		*p++ = '\0';
	*cursor = p;
	return tok;
}

int cmdline_parse(struct cmdline *c, const char *text)
{
	char *cursor, *tok, *eq;
	struct cmdline_param *p;
	int ret = 0;

	strlcpy(c->buf, text, sizeof(c->buf));
	c->workload = "";
	c->nr_params = 0;
	c->nr_foreign = 0;
	cursor = c->buf;
	while ((tok = next_token(&cursor))) {
		if (strchr(tok, '.')) {
			/* Someone else's parameter: not the workload's, but
			 * the drivers may want it (virtio_mmio.device=). */
			if (c->nr_foreign < CMDLINE_MAX_FOREIGN)
				c->foreign[c->nr_foreign++] = tok;
			continue;
		}
		eq = strchr(tok, '=');
		if (!*c->workload && !eq && c->nr_params == 0) {
			c->workload = tok;
			continue;
		}
		if (c->nr_params == CMDLINE_MAX_PARAMS) {
			ret = -1;
			continue;
		}
		p = &c->params[c->nr_params++];
		p->key = tok;
		p->bare = !eq;
		p->value = "";
		if (eq) {
			*eq = '\0';
			p->value = eq + 1;
		}
	}
	if (!*c->workload)
		c->workload = "hello";
	return ret;
}

const char *cmdline_get(const struct cmdline *c, const char *key)
{
	unsigned int i;

	/* The last occurrence wins, as with kernel parameters. */
	for (i = c->nr_params; i-- > 0;) {
		if (!c->params[i].bare && !strcmp(c->params[i].key, key))
			return c->params[i].value;
	}
	return NULL;
}

static int digit_value(char ch, unsigned int base)
{
	int d;

	if (ch >= '0' && ch <= '9')
		d = ch - '0';
	else if (ch >= 'a' && ch <= 'f')
		d = ch - 'a' + 10;
	else if (ch >= 'A' && ch <= 'F')
		d = ch - 'A' + 10;
	else
		return -1;
	return d < (int)base ? d : -1;
}

bool parse_u64(const char *s, uint64_t *out)
{
	unsigned int base = 10;
	uint64_t v = 0;
	int d;

	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (!*s)
		return false;
	for (; *s; s++) {
		d = digit_value(*s, base);
		if (d < 0 || v > (UINT64_MAX - d) / base)
			return false;
		v = v * base + d;
	}
	*out = v;
	return true;
}

uint64_t cmdline_u64(const struct cmdline *c, const char *key, uint64_t def)
{
	const char *s = cmdline_get(c, key);
	uint64_t v;

	if (!s)
		return def;
	GUEST_ASSERT_MSG(parse_u64(s, &v),
			 "parameter %s=%s: not a decimal or 0x hex number",
			 key, s);
	return v;
}
