// SPDX-License-Identifier: MIT
/*
 * The lifecycle on the control socket (until the REST API replaces it):
 * "state", "pause", "resume", "shutdown" (the ACPI power button) and
 * "stop".  Each is one machine_*() call; the state machine in
 * machine.h decides what is legal, so an illegal request is an error
 * reply naming the state, never a change.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "api/control.h"
#include "machine/machine_internal.h"

static int reply_state(struct machine *m, int ret, char *reply, size_t size)
{
	const char *state = machine_state_name(machine_state(m));

	if (ret == -EBUSY)
		snprintf(reply, size, "not possible while the machine is %s", state);
	else if (ret)
		snprintf(reply, size, "%s", strerror(-ret));
	else
		snprintf(reply, size, "state=%s", state);
	return ret;
}

static int cmd_state(void *opaque, int argc, char **argv, char *reply,
		     size_t size)
{
	(void)argc;
	(void)argv;
	return reply_state(opaque, 0, reply, size);
}

static int cmd_pause(void *opaque, int argc, char **argv, char *reply,
		     size_t size)
{
	(void)argc;
	(void)argv;
	return reply_state(opaque, machine_pause(opaque), reply, size);
}

static int cmd_resume(void *opaque, int argc, char **argv, char *reply,
		      size_t size)
{
	(void)argc;
	(void)argv;
	return reply_state(opaque, machine_resume(opaque), reply, size);
}

static int cmd_shutdown(void *opaque, int argc, char **argv, char *reply,
			size_t size)
{
	(void)argc;
	(void)argv;
	return reply_state(opaque, machine_request_shutdown(opaque), reply,
			   size);
}

static int cmd_stop(void *opaque, int argc, char **argv, char *reply,
		    size_t size)
{
	(void)argc;
	(void)argv;
	return reply_state(opaque, machine_stop(opaque), reply, size);
}

int machine_commands_register(struct machine *m, struct control_server *s)
{
	static const struct {
		const char *name, *help;
		control_handler_fn fn;
	} commands[] = {
		{ "state", "state: created, running, paused, shutting_down, "
			   "stopped or failed", cmd_state },
		{ "pause", "pause: stop every vCPU until resume", cmd_pause },
		{ "resume", "resume: run the vCPUs again", cmd_resume },
		{ "shutdown", "shutdown: press the ACPI power button", cmd_shutdown },
		{ "stop", "stop: end the VM now", cmd_stop },
	};
	int ret = 0;

	for (unsigned i = 0; !ret && i < sizeof(commands) / sizeof(commands[0]); i++)
		ret = control_server_register(s, commands[i].name, commands[i].help,
					      commands[i].fn, m);
	return ret;
}
