// SPDX-License-Identifier: MIT
/*
 * hostd's GET /metrics: the host's budget and the balancer's view of
 * each VM in the Prometheus text format (0.0.4), named and labelled as
 * the VMs' own /metrics are (rackvm_host_* here, a "vm" label per VM),
 * so that one scrape config takes hostd and its VMs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api_json.h"
#include "host/hostd_internal.h"

static void family(FILE *f, const char *name, const char *type,
		   const char *help)
{
	fprintf(f, "# HELP rackvm_host_%s %s\n# TYPE rackvm_host_%s %s\n", name,
		help, name, type);
}

static void host_gauge(FILE *f, const char *name, const char *help, double v)
{
	family(f, name, "gauge", help);
	fprintf(f, "rackvm_host_%s %.17g\n", name, v);
}

/* One family over the live VMs that have a value for it. */
typedef bool (*vm_value_fn)(const struct hostd_vm *vm, double *out);

static void per_vm(FILE *f, const struct hostd *h, const char *name,
		   const char *help, vm_value_fn value)
{
	double v;

	family(f, name, "gauge", help);
	for (size_t i = 0; i < h->nvms; i++)
		if (hostd_vm_live(h->vms[i]->state) && value(h->vms[i], &v))
			fprintf(f, "rackvm_host_vm_%s{vm=\"%s\"} %.17g\n",
				name + strlen("vm_"), h->vms[i]->name, v);
}

static bool ram(const struct hostd_vm *vm, double *out)
{
	*out = (double)vm->ram;
	return true;
}

static bool target(const struct hostd_vm *vm, double *out)
{
	*out = (double)vm->bal.out.target;
	return vm->bal.prev.seen;
}

static bool resident(const struct hostd_vm *vm, double *out)
{
	*out = (double)vm->bal.in.resident;
	return vm->bal.prev.seen;
}

static bool wss(const struct hostd_vm *vm, double *out)
{
	*out = (double)vm->bal.in.wss_estimate;
	return vm->bal.prev.seen && vm->bal.in.wss_valid;
}

static bool shares(const struct hostd_vm *vm, double *out)
{
	*out = vm->set.shares;
	return true;
}

static bool responsive(const struct hostd_vm *vm, double *out)
{
	*out = vm->state == HOSTD_VM_RUNNING;
	return true;
}

void hostd_api_metrics(struct hostd *h, struct api_response *resp)
{
	uint64_t committed = 0, res = 0;
	char *text = NULL;
	size_t len = 0;
	unsigned live = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f) {
		api_reply_error(resp, 503, "out of memory");
		return;
	}
	pthread_mutex_lock(&h->lock);
	for (size_t i = 0; i < h->nvms; i++) {
		if (!hostd_vm_live(h->vms[i]->state))
			continue;
		live++;
		committed += h->vms[i]->ram;
		res += h->vms[i]->bal.in.resident;
	}
	host_gauge(f, "budget_bytes", "The memory all VMs' targets must fit in "
		   "(--memory).", (double)h->cfg.params.budget);
	host_gauge(f, "committed_bytes", "The sum of the running VMs' RAM.",
		   (double)committed);
	host_gauge(f, "resident_bytes", "The sum of the running VMs' resident "
		   "memory, as last observed.", (double)res);
	host_gauge(f, "min_bytes", "The sum of the running VMs' minimums.",
		   (double)hostd_sum_of_mins(h, 0));
	host_gauge(f, "vms", "VMs with a process (starting, running, "
		   "unresponsive, stopping).", live);
	host_gauge(f, "over_budget", "1 if the VMs' minimums alone exceed the "
		   "budget at the last period.", h->last_decide != 0);
	family(f, "balancer_periods_total", "counter", "Balancer periods run.");
	fprintf(f, "rackvm_host_balancer_periods_total %llu\n",
		(unsigned long long)h->periods);
	per_vm(f, h, "vm_ram_bytes", "The VM's guest RAM.", ram);
	per_vm(f, h, "vm_target_bytes", "The balancer's target of resident "
	       "memory for the VM.", target);
	per_vm(f, h, "vm_resident_bytes", "The VM's resident memory, as last "
	       "observed.", resident);
	per_vm(f, h, "vm_wss_bytes", "The VM's working set estimate.", wss);
	per_vm(f, h, "vm_shares", "The VM's shares.", shares);
	per_vm(f, h, "vm_responsive", "1 if the VM's API answered the last "
	       "period.", responsive);
	pthread_mutex_unlock(&h->lock);
	if (fclose(f) || !text) {
		free(text);
		api_reply_error(resp, 503, "out of memory");
		return;
	}
	resp->status = 200;
	resp->body = text;
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
