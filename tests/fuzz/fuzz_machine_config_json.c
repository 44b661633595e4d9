// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the machine config's JSON reader (API clients and
 * hostd send it).  Any input is either refused with -EINVAL or -ENOMEM
 * and a message, or accepted as a config that passes validation and
 * survives the round trip through JSON and flags unchanged.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "machine/config.h"

static void check(int cond)
{
	if (!cond)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct machine_config c, back;
	struct errmsg err = { "" };
	char *json;
	int ret;

	machine_config_init(&c);
	ret = machine_config_from_json(&c, (const char *)data, size, &err);
	if (ret) {
		check(ret == -EINVAL || ret == -ENOMEM);
		check(err.text[0] != 0);
		machine_config_release(&c);
		return 0;
	}
	check(machine_config_validate(&c, &err) == 0);
	json = machine_config_to_json(&c);
	check(json != NULL);
	machine_config_init(&back);
	check(machine_config_from_json(&back, json, strlen(json), &err) == 0);
	check(machine_config_equal(&c, &back));
	free(json);
	machine_config_release(&back);
	machine_config_release(&c);
	return 0;
}
