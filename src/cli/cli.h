/* SPDX-License-Identifier: MIT */
/*
 * Command-line front end.  Only this folder prints to the user and exits.
 *
 * `rackvm doctor` exits 0 if `rackvm run` can work on this host, 2 if not.
 *
 * Process exit status of `rackvm run`:
 *   0   guest finished (bundled guest reported success, or powered off)
 *   2   rackvm could not start or run the VM (usage, /dev/kvm, bad image)
 *   4   guest reset (keyboard controller or KVM reset event)
 *   6   triple fault
 *   8   guest failure (assertion, exception, reported failure status)
 *   10  KVM internal error (e.g. emulation failure)
 *   odd (code << 1) | 1 from the QEMU-compatible isa-debug-exit port
 *   128 + N  ended by signal N (SIGINT 130, SIGTERM 143)
 */
#ifndef RACKVM_CLI_CLI_H
#define RACKVM_CLI_CLI_H

#include <stdbool.h>
#include <stdio.h>

#define EXIT_HOST_ERROR 2
#define EXIT_GUEST_RESET 4
#define EXIT_TRIPLE_FAULT 6
#define EXIT_GUEST_FAILED 8
#define EXIT_KVM_INTERNAL_ERROR 10

#include "rackvm/version.h"

int cmd_run(int argc, char **argv);
void print_run_usage(FILE *out);
int cmd_ctl(int argc, char **argv);
/* rackvm ctl's shared parts (ctl.c, ctl_host.c) */
#define CTL_TIMEOUT_MS 15000
#define EXIT_REFUSED 1
void ctl_print_human(const char *body);
void ctl_print_error(const char *body, long status);
struct api_client_reply;
/* One request (curl initialised by cmd_ctl): 0 with *@reply, or
 * EXIT_HOST_ERROR, said on stderr. */
int ctl_send(const char *socket, const char *method, const char *path,
	     const char *body, struct api_client_reply *reply);
/* A refused request said (and printed as it came with @json):
 * EXIT_REFUSED. */
int ctl_refused(const struct api_client_reply *reply, bool json);
/* `rackvm ctl migrate URI [--mode M] [--precopy-rounds N]`
 * (ctl_migrate.c; argv[0] is "migrate"): the exit status. */
int ctl_migrate(const char *socket, int argc, char **argv, bool json);
/* `rackvm ctl --host COMMAND...` (@socket NULL: the default) */
int ctl_host(int argc, char **argv, const char *socket, bool json);
void print_ctl_usage(FILE *out);
int cmd_top(int argc, char **argv);
void print_top_usage(FILE *out);
int cmd_plot(int argc, char **argv);
void print_plot_usage(FILE *out);
int cmd_memd(int argc, char **argv);
int cmd_hostd(int argc, char **argv);
void print_hostd_usage(FILE *out);
int cmd_doctor(int argc, char **argv);
void print_doctor_usage(FILE *out);

#endif
