// SPDX-License-Identifier: MIT
/*
 * migrate/kvm_state on real VMs running the bundled guest: state saved
 * from paused vCPUs and loaded back over clobbered registers lets the
 * guest finish (SMP and timer workloads, and into a second VM), a second
 * save while paused gives the same bytes but for the clocks, and corrupt
 * states are refused before anything is applied.
 */
#define UNIT_TESTS_NEED_KVM 1	/* harness.h: they create VMs */

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>

#include <linux/kvm.h>

#include "guest_machine.h"
#include "harness.h"
#include "machine/machine.h"
#include "migrate/kvm_state.h"
#include "util/state_buf.h"
#include "vm/vcpu.h"
#include "vm/vm.h"

#define MAX_CPUS 2
#define MAX_VIEWS 40
#define CPU_HEADER 12	/* version, vCPU id, part count */
#define VM_HEADER 8	/* version, part count */
#define MSR_IA32_TSC 0x10u
#define HV_MSR_VP_RUNTIME 0x40000010u
#define HV_MSR_TIME_REF_COUNT 0x40000020u
#define LAPIC_TMCCT 0x390u
#define TSC_FAR (1ull << 50)
/* A TSC loaded back may run this far past the value saved: the check
 * comes after the load, and KVM keeps vCPUs' TSCs in step within 1 s. */
#define TSC_SLACK 10000000000ull

static void sleep_ms(unsigned ms)
{
	nanosleep(&(struct timespec){ ms / 1000, (ms % 1000) * 1000000L }, NULL);
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static void wr32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* The machine for @workload on @cpus vCPUs, started; NULL or why skip. */
static const char *start_guest(const char *workload, unsigned cpus,
			       struct machine **m, int *ret)
{
	struct machine_config cfg;
	struct errmsg err = { "" };
	const char *skip;

	*m = NULL;
	skip = guest_machine_config(&cfg, workload, 64ull << 20);
	if (skip)
		return skip;
	cfg.cpus = cpus;
	skip = guest_machine_create(&cfg, m, ret);
	if (skip || *ret)
		return skip;
	*ret = machine_start(*m, &err);
	if (*ret)
		printf("machine_start: %s\n", err.text);
	return NULL;
}

/* Every vCPU's state into cpu[i], the VM's into *vms. */
static int save_all(struct vm *vm, struct state_buf *cpu, struct state_buf *vms)
{
	struct errmsg err = { "" };
	int ret = 0;

	for (unsigned i = 0; i < vm->ncpus; i++)
		state_buf_init(&cpu[i]);
	state_buf_init(vms);
	for (unsigned i = 0; i < vm->ncpus && !ret; i++)
		ret = kvm_state_save_cpu(&vm->vcpus[i], &cpu[i], &err);
	if (!ret)
		ret = kvm_state_save_vm(vm, vms, &err);
	if (ret)
		printf("save: %d %s\n", ret, err.text);
	return ret;
}

static int load_all(struct vm *vm, struct state_buf *cpu, struct state_buf *vms)
{
	struct errmsg err = { "" };
	struct state_reader r;
	int ret = 0;

	for (unsigned i = 0; i < vm->ncpus && !ret; i++) {
		state_reader_init(&r, cpu[i].data, cpu[i].len);
		ret = kvm_state_load_cpu(&vm->vcpus[i], &r, &err);
		if (!ret && state_reader_left(&r))
			ret = -EMSGSIZE;
	}
	if (!ret) {
		state_reader_init(&r, vms->data, vms->len);
		ret = kvm_state_load_vm(vm, &r, &err);
	}
	if (ret)
		printf("load: %d %s\n", ret, err.text);
	return ret;
}

static void release_all(unsigned n, struct state_buf *cpu, struct state_buf *vms)
{
	for (unsigned i = 0; i < n; i++)
		state_buf_release(&cpu[i]);
	state_buf_release(vms);
}

/* A state's parts, as offsets of their bytes. */
struct view {
	uint32_t tag;
	size_t off;
	uint32_t len;
};

static unsigned walk(const struct state_buf *b, size_t header, struct view *v)
{
	uint32_t count = rd32(b->data + header - 4);
	size_t pos = header;
	unsigned n = 0;

	for (uint32_t i = 0; i < count && n < MAX_VIEWS && pos + 8 <= b->len; i++) {
		v[n].tag = rd32(b->data + pos);
		v[n].len = rd32(b->data + pos + 4);
		v[n].off = pos + 8;
		pos += 8 + (size_t)v[n].len;
		n++;
	}
	return n;
}

static const struct view *find(const struct view *v, unsigned n, uint32_t tag)
{
	for (unsigned i = 0; i < n; i++)
		if (v[i].tag == tag)
			return &v[i];
	return NULL;
}

/* What a guest that lost its vCPU state would run with: RIP at garbage,
 * no stack, no page tables, a TSC days ahead (KVM takes a write within a
 * second of the TSC it expects as "keep in step with the other vCPUs"
 * and keeps its own), a blank local APIC, and every vCPU (APs waiting
 * for SIPI, halted ones) running. */
static int clobber(struct vcpu *vcpu)
{
	struct kvm_mp_state run = { KVM_MP_STATE_RUNNABLE };
	struct kvm_lapic_state blank;
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} tsc = { { .nmsrs = 1 }, { .index = MSR_IA32_TSC, .data = TSC_FAR } };
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	memset(&blank, 0, sizeof(blank));
	if (ioctl(vcpu->fd, KVM_GET_REGS, &regs) < 0 ||
	    ioctl(vcpu->fd, KVM_GET_SREGS, &sregs) < 0)
		return -errno;
	regs.rip = 0xdeadbeef000ull;
	regs.rsp = 0;
	sregs.cr3 = 0;
	if (ioctl(vcpu->fd, KVM_SET_REGS, &regs) < 0 ||
	    ioctl(vcpu->fd, KVM_SET_SREGS, &sregs) < 0 ||
	    ioctl(vcpu->fd, KVM_SET_MSRS, &tsc) != 1 ||
	    ioctl(vcpu->fd, KVM_SET_LAPIC, &blank) < 0 ||
	    ioctl(vcpu->fd, KVM_SET_MP_STATE, &run) < 0)
		return -errno;
	return 0;
}

static uint64_t read_tsc(struct vcpu *vcpu)
{
	struct {
		struct kvm_msrs hdr;
		struct kvm_msr_entry e;
	} tsc = { { .nmsrs = 1 }, { .index = MSR_IA32_TSC } };

	return ioctl(vcpu->fd, KVM_GET_MSRS, &tsc) == 1 ? tsc.e.data : 0;
}

/* The TSC saved in vCPU state @b (0 if none). */
static uint64_t saved_tsc(const struct state_buf *b)
{
	struct view v[MAX_VIEWS];
	const struct view *msrs = find(v, walk(b, CPU_HEADER, v),
				       KVM_STATE_CPU_MSRS);
	const uint8_t *e = msrs ? b->data + msrs->off + 4 : NULL;
	uint32_t count = e ? rd32(e - 4) : 0;
	uint64_t value = 0;

	for (uint32_t i = 0; i < count; i++, e += 12)
		if (rd32(e) == MSR_IA32_TSC)
			memcpy(&value, e + 4, sizeof(value));
	return value;
}

/*
 * Every vCPU's TSC goes on from the values saved, not from the clobber.
 * The vCPUs' TSCs are read one after the other while the VM is paused
 * (and still counting), so vCPU 1's saved value is a little later than
 * vCPU 0's; loading them, KVM takes writes this close to each other as
 * one synchronised TSC and may give vCPU 1 vCPU 0's.  Either way no
 * vCPU goes below the earliest value saved, which is at or after what
 * the guest last saw.
 */
static int check_tsc(struct vm *vm, const struct state_buf *cpu)
{
	uint64_t first = UINT64_MAX, last = 0;

	for (unsigned i = 0; i < vm->ncpus; i++) {
		uint64_t saved = saved_tsc(&cpu[i]);

		first = saved < first ? saved : first;
		last = saved > last ? saved : last;
	}
	for (unsigned i = 0; i < vm->ncpus; i++) {
		uint64_t saved = saved_tsc(&cpu[i]), now = read_tsc(&vm->vcpus[i]);

		if (!saved || now < first || (now > last && now - last > TSC_SLACK)) {
			printf("vCPU %u: TSC 0x%llx after the load, 0x%llx saved\n", i,
			       (unsigned long long)now, (unsigned long long)saved);
			return -1;
		}
	}
	return 0;
}

/* The saved run state of each vCPU, for the log. */
static void print_mp_states(struct machine *m, unsigned round, unsigned n,
			    const struct state_buf *cpu)
{
	printf("round %u at %llu ms: MP states", round,
	       (unsigned long long)(machine_uptime_ns(m) / 1000000));
	for (unsigned i = 0; i < n; i++)
		/* MP_STATE is the first part: tag, length, value */
		printf(" %u", rd32(cpu[i].data + CPU_HEADER + 8));
	printf("\n");
}

/* Pauses @m at varied points (the first after @first_ms, then up to
 * @spread_ms apart) until its guest ends; each time saves all, clobbers
 * every vCPU, loads the state back and resumes.  The number of rounds,
 * or -1 on a failure. */
static int cycle_until_done(struct machine *m, unsigned max_rounds,
			    unsigned first_ms, unsigned spread_ms)
{
	struct vm *vm = machine_vm(m);
	struct state_buf cpu[MAX_CPUS], vms;
	int rounds = 0, ret;

	for (unsigned i = 0; i < max_rounds; i++) {
		/* the first round before the guest has gone far */
		sleep_ms(i ? 5 + (i * 97) % spread_ms : first_ms);
		ret = machine_pause(m);
		if (ret == -EBUSY)
			break;	/* the guest ended */
		if (ret)
			return -1;
		ret = save_all(vm, cpu, &vms);
		if (!ret)
			print_mp_states(m, i, vm->ncpus, cpu);
		for (unsigned c = 0; c < vm->ncpus && !ret; c++)
			ret = clobber(&vm->vcpus[c]);
		if (!ret)
			ret = load_all(vm, cpu, &vms);
		if (!ret)
			ret = check_tsc(vm, cpu);
		release_all(vm->ncpus, cpu, &vms);
		if (ret)
			return -1;
		if (machine_resume(m))
			return -1;
		rounds++;
	}
	return rounds;
}

static void check_guest_done(struct machine *m)
{
	struct vm_exit exit;

	machine_wait(m, &exit);
	printf("exit: %s %s\n", vm_exit_reason_name(exit.reason), exit.detail);
	CHECK_EQ(exit.reason, VM_EXIT_GUEST_DONE);
}

/* The bundled guest runs @workload on 2 vCPUs through cycle_until_done()
 * and must finish it. */
static void cycle_guest(const char *workload, unsigned max_rounds,
			unsigned first_ms, unsigned spread_ms)
{
	struct machine *m;
	const char *skip;
	int ret = 0, rounds;

	skip = start_guest(workload, 2, &m, &ret);
	if (skip)
		SKIP(skip);
	CHECK_EQ(ret, 0);
	rounds = cycle_until_done(m, max_rounds, first_ms, spread_ms);
	printf("%s: %d rounds\n", workload, rounds);
	CHECK(rounds >= 1);
	check_guest_done(m);
	machine_destroy(m);
}

/* The rounds catch the AP waiting for SIPI, getting it and halted. */
TEST(kvm_state_load_brings_back_a_clobbered_smp_guest)
{
	cycle_guest("smp", 40, 0, 60);
}

/* Idle phases sleep on the local APIC timer, so a timer the load lost
 * would hang the guest; the phases' checksums cover guest RAM.  The
 * rounds start once the guest has found its LAPIC (a blank one at boot
 * makes it spin instead of sleeping). */
TEST(kvm_state_load_brings_back_a_clobbered_sleeping_guest)
{
	cycle_guest("wsswork phases=i,i,w1,i,r1,i,i phase_ms=300", 14, 600, 300);
}

/* The MSRs in which two saves of one paused vCPU differ: only those
 * that count time on their own are allowed to. */
static bool msrs_differ_only_in_clocks(const uint8_t *a, const uint8_t *b,
				       uint32_t len)
{
	uint32_t count = rd32(a);
	bool ok = rd32(b) == count && len == 4 + count * 12u;

	for (uint32_t i = 0; ok && i < count; i++) {
		const uint8_t *ea = a + 4 + i * 12, *eb = b + 4 + i * 12;
		uint32_t index = rd32(ea);

		ok = rd32(eb) == index;
		if (!ok || !memcmp(ea + 4, eb + 4, 8))
			continue;
		printf("  MSR 0x%x moved\n", index);
		ok = index == MSR_IA32_TSC || index == HV_MSR_VP_RUNTIME ||
		     index == HV_MSR_TIME_REF_COUNT;
	}
	return ok;
}

static void print_msrs(unsigned cpu, const uint8_t *p)
{
	uint32_t count = rd32(p);

	printf("vCPU %u: %u MSRs:", cpu, count);
	for (uint32_t i = 0; i < count; i++)
		printf("%s0x%x", i % 8 ? " " : "\n  ", rd32(p + 4 + i * 12));
	printf("\n");
}

/* Which parts of two saves differ; false if one that must not did. */
static bool same_but_clocks(const struct state_buf *a, const struct state_buf *b,
			    size_t header, bool cpu)
{
	struct view va[MAX_VIEWS], vb[MAX_VIEWS];
	unsigned na = walk(a, header, va), nb = walk(b, header, vb);
	bool ok = na == nb && a->len == b->len && !memcmp(a->data, b->data, header);

	for (unsigned i = 0; ok && i < na; i++) {
		const uint8_t *pa = a->data + va[i].off, *pb = b->data + vb[i].off;

		ok = va[i].tag == vb[i].tag && va[i].len == vb[i].len;
		if (!ok || !memcmp(pa, pb, va[i].len))
			continue;
		printf(" %s part %u differs\n", cpu ? "vCPU" : "VM", va[i].tag);
		if (cpu && va[i].tag == KVM_STATE_CPU_MSRS)
			ok = msrs_differ_only_in_clocks(pa, pb, va[i].len);
		else if (cpu && va[i].tag == KVM_STATE_CPU_LAPIC)
			/* the timer's current count runs down */
			ok = !memcmp(pa, pb, LAPIC_TMCCT) &&
			     !memcmp(pa + LAPIC_TMCCT + 4, pb + LAPIC_TMCCT + 4,
				     va[i].len - LAPIC_TMCCT - 4);
		else
			ok = !cpu && va[i].tag == KVM_STATE_VM_CLOCK;
	}
	return ok;
}

TEST(kvm_state_saves_the_same_bytes_twice_while_paused_but_the_clocks)
{
	struct state_buf a[MAX_CPUS], b[MAX_CPUS], avm, bvm;
	struct view v[MAX_VIEWS];
	struct machine *m;
	struct vm *vm;
	const char *skip;
	int ret = 0;

	skip = start_guest("wsswork phases=i,w1 phase_ms=20000", 2, &m, &ret);
	if (skip)
		SKIP(skip);
	CHECK_EQ(ret, 0);
	vm = machine_vm(m);
	sleep_ms(1500);		/* into the phases: the timer is armed */
	CHECK_EQ(machine_pause(m), 0);
	CHECK_EQ(save_all(vm, a, &avm), 0);
	sleep_ms(100);
	CHECK_EQ(save_all(vm, b, &bvm), 0);
	for (unsigned i = 0; i < vm->ncpus; i++) {
		unsigned n = walk(&a[i], CPU_HEADER, v);
		const struct view *msrs = find(v, n, KVM_STATE_CPU_MSRS);

		CHECK(msrs != NULL);
		print_msrs(i, a[i].data + msrs->off);
		CHECK(same_but_clocks(&a[i], &b[i], CPU_HEADER, true));
	}
	CHECK(same_but_clocks(&avm, &bvm, VM_HEADER, false));
	release_all(vm->ncpus, a, &avm);
	release_all(vm->ncpus, b, &bvm);
	CHECK_EQ(machine_stop(m), 0);
	machine_destroy(m);
}

/* @src rebuilt with part @drop left out, part @grow @delta bytes longer
 * (zeros) or shorter, and the part count as @count_delta says. */
static void rebuild(struct state_buf *out, const struct state_buf *src,
		    size_t header, uint32_t drop, uint32_t grow, int delta,
		    int count_delta)
{
	struct view v[MAX_VIEWS];
	unsigned n = walk(src, header, v);
	uint8_t zeros[256] = { 0 };

	state_buf_init(out);
	state_put_bytes(out, src->data, header - 4);
	state_put_u32(out, rd32(src->data + header - 4) + count_delta);
	for (unsigned i = 0; i < n; i++) {
		uint32_t len = v[i].len;

		if (v[i].tag == drop)
			continue;
		if (v[i].tag == grow)
			len = (uint32_t)((int)len + delta);
		state_put_u32(out, v[i].tag);
		state_put_u32(out, len);
		state_put_bytes(out, src->data + v[i].off,
				len < v[i].len ? len : v[i].len);
		if (len > v[i].len)
			state_put_bytes(out, zeros, len - v[i].len);
	}
}

/* Loads @bytes into @vcpu (NULL: the VM): it must fail with @want and
 * say why, naming @who. */
static bool refused(struct vm *vm, struct vcpu *vcpu, const uint8_t *bytes,
		    size_t len, int want, const char *who)
{
	struct errmsg err = { "" };
	struct state_reader r;
	int ret;

	state_reader_init(&r, bytes, len);
	ret = vcpu ? kvm_state_load_cpu(vcpu, &r, &err) :
		     kvm_state_load_vm(vm, &r, &err);
	if (ret == want && strstr(err.text, who))
		return true;
	printf("load of %zu bytes: %d (want %d): %s\n", len, ret, want, err.text);
	return false;
}

static bool refused_buf(struct vcpu *vcpu, struct state_buf *b, int want)
{
	bool ok = refused(vcpu->vm, vcpu, b->data, b->len, want, "vCPU 0");

	state_buf_release(b);
	return ok;
}

/* vCPU 0's state with its registers replaced by garbage: still a valid
 * state, so a load that applied any of it before refusing the rest would
 * crash the guest. */
static void poison(struct state_buf *b)
{
	struct view v[MAX_VIEWS];
	unsigned n = walk(b, CPU_HEADER, v);
	const struct view *regs = find(v, n, KVM_STATE_CPU_REGS);
	struct kvm_regs bad;

	memset(&bad, 0, sizeof(bad));
	bad.rip = 0xdeadbeef000ull;
	bad.rflags = 2;
	if (regs && regs->len == sizeof(bad))
		memcpy(b->data + regs->off, &bad, sizeof(bad));
}

static bool cpu_corruptions_refused(struct vcpu *vcpu, struct state_buf *p)
{
	struct view v[MAX_VIEWS];
	unsigned n = walk(p, CPU_HEADER, v);
	const struct view *msrs = find(v, n, KVM_STATE_CPU_MSRS);
	const struct view *mp = find(v, n, KVM_STATE_CPU_MP_STATE);
	const struct view *ev = find(v, n, KVM_STATE_CPU_EVENTS);
	struct state_buf c;
	bool ok = msrs && mp && ev;
	uint8_t *d;

	for (size_t len = 0; ok && len < p->len; len++)
		ok = refused(vcpu->vm, vcpu, p->data, len, -EBADMSG, "vCPU 0");
	d = malloc(p->len);
	if (!d)
		return false;
#define MUTATED(off, val, want)						\
	(memcpy(d, p->data, p->len), wr32(d + (off), (val)),		\
	 refused(vcpu->vm, vcpu, d, p->len, (want), "vCPU 0"))
	ok = ok && MUTATED(0, KVM_STATE_CPU_VERSION + 1, -EBADMSG);
	ok = ok && MUTATED(4, 1, -EINVAL);			/* vCPU 1's */
	ok = ok && MUTATED(8, 1000, -EBADMSG);			/* part count */
	ok = ok && MUTATED(msrs->off, 0x7fffffff, -EBADMSG);	/* MSR count */
	ok = ok && MUTATED(msrs->off, KVM_STATE_MAX_MSRS + 1, -EBADMSG);
	ok = ok && MUTATED(msrs->off, rd32(p->data + msrs->off) + 1, -EBADMSG);
	ok = ok && MUTATED(msrs->off - 8, 99, -EBADMSG);		/* unknown tag */
	ok = ok && MUTATED(msrs->off - 8, KVM_STATE_CPU_REGS, -EBADMSG); /* twice */
	ok = ok && MUTATED(mp->off, 77, -EINVAL);		/* MP state */
	ok = ok && MUTATED(ev->off + offsetof(struct kvm_vcpu_events, flags),
			   0x80000000u, -EINVAL);
#undef MUTATED
	free(d);
	/* another host's XSAVE size, a part's length, a part missing */
	rebuild(&c, p, CPU_HEADER, 0, KVM_STATE_CPU_XSAVE, 64, 0);
	ok = ok && refused_buf(vcpu, &c, -EINVAL);
	rebuild(&c, p, CPU_HEADER, 0, KVM_STATE_CPU_XSAVE, -64, 0);
	ok = ok && refused_buf(vcpu, &c, -EINVAL);
	rebuild(&c, p, CPU_HEADER, 0, KVM_STATE_CPU_SREGS, 8, 0);
	ok = ok && refused_buf(vcpu, &c, -EBADMSG);
	rebuild(&c, p, CPU_HEADER, KVM_STATE_CPU_MSRS, 0, 0, -1);
	ok = ok && refused_buf(vcpu, &c, -EBADMSG);
	return ok;
}

static bool vm_corruptions_refused(struct vm *vm, const struct state_buf *s)
{
	struct view v[MAX_VIEWS];
	unsigned n = walk(s, VM_HEADER, v);
	const struct view *pit = find(v, n, KVM_STATE_VM_PIT);
	bool ok = pit != NULL;
	uint8_t *d;

	for (size_t len = 0; ok && len < s->len; len++)
		ok = refused(vm, NULL, s->data, len, -EBADMSG, "VM");
	d = malloc(s->len);
	if (!d)
		return false;
	memcpy(d, s->data, s->len);
	wr32(d, KVM_STATE_VM_VERSION + 7);
	ok = ok && refused(vm, NULL, d, s->len, -EBADMSG, "VM");
	memcpy(d, s->data, s->len);
	wr32(d + pit->off + offsetof(struct kvm_pit_state2, flags), 0x100);
	ok = ok && refused(vm, NULL, d, s->len, -EINVAL, "VM");
	free(d);
	return ok;
}

TEST(kvm_state_load_refuses_corrupt_states_and_applies_nothing)
{
	struct state_buf cpu[MAX_CPUS], vms;
	struct kvm_regs before, after;
	struct machine *m;
	struct vm *vm;
	const char *skip;
	int ret = 0;

	skip = start_guest("compute seconds=3", 2, &m, &ret);
	if (skip)
		SKIP(skip);
	CHECK_EQ(ret, 0);
	vm = machine_vm(m);
	sleep_ms(300);
	CHECK_EQ(machine_pause(m), 0);
	CHECK_EQ(save_all(vm, cpu, &vms), 0);
	CHECK_EQ(ioctl(vm->vcpus[0].fd, KVM_GET_REGS, &before), 0);
	poison(&cpu[0]);
	CHECK(cpu_corruptions_refused(&vm->vcpus[0], &cpu[0]));
	CHECK(vm_corruptions_refused(vm, &vms));
	CHECK_EQ(ioctl(vm->vcpus[0].fd, KVM_GET_REGS, &after), 0);
	CHECK(!memcmp(&before, &after, sizeof(before)));
	release_all(vm->ncpus, cpu, &vms);
	CHECK_EQ(machine_resume(m), 0);
	check_guest_done(m);
	machine_destroy(m);
}

/* The restore path proper: the state goes into a second VM built from the
 * same config whose vCPUs never ran, with a copy of guest RAM (rackvm's
 * own devices keep their reset state: this guest does not mind). */
TEST(kvm_state_moves_a_running_guest_into_a_new_vm)
{
	struct state_buf cpu[MAX_CPUS], vms;
	struct machine_config cfg;
	struct errmsg err = { "" };
	struct machine *a, *b = NULL;
	struct vm *va, *vb;
	const char *workload = "wsswork phases=w1,i,r1,i,w1 phase_ms=600";
	const char *skip;
	int ret = 0;

	skip = start_guest(workload, 2, &a, &ret);
	if (skip)
		SKIP(skip);
	CHECK_EQ(ret, 0);
	va = machine_vm(a);
	sleep_ms(1200);
	CHECK_EQ(machine_pause(a), 0);
	CHECK_EQ(save_all(va, cpu, &vms), 0);
	CHECK(guest_machine_config(&cfg, workload, 64ull << 20) == NULL);
	cfg.cpus = 2;
	ret = machine_create_for_restore(&cfg, NULL, &b, &err);
	if (ret)
		printf("machine_create_for_restore: %s\n", err.text);
	CHECK_EQ(ret, 0);
	vb = machine_vm(b);
	CHECK(vb->mem.size == va->mem.size);
	memcpy(vb->mem.base, va->mem.base, va->mem.size);
	CHECK_EQ(machine_stop(a), 0);
	CHECK_EQ(load_all(vb, cpu, &vms), 0);
	release_all(vb->ncpus, cpu, &vms);
	CHECK_EQ(machine_start(b, &err), 0);
	check_guest_done(b);
	machine_destroy(b);
	machine_destroy(a);
}
