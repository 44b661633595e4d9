#!/usr/bin/env bash
# Peer cross-check of the bundled guest runtime: boots the same ELF that
# rackvm embeds under QEMU's microvm (PVH entry, isa-debug-exit) and checks
# what each workload reports.  If the image misbehaves here too, the bug is
# in the guest, not in rackvm.
#
# isa-debug-exit is placed at 0xf4 (DEBUG_EXIT_PORT), so QEMU exits with
# status 1 when the guest passes and 3 when it fails.
source "$(dirname "$0")/lib.sh"

QEMU=qemu-system-x86_64
# Ring 0 is emulated (slowly) on some hosts: generous timeouts.
TIMEOUT=180

if ! command -v "$QEMU" > /dev/null 2>&1; then
	skip guest_qemu "$QEMU not installed"
	exit 0
fi
if ! have_kvm; then
	skip guest_qemu "/dev/kvm not usable"
	exit 0
fi
if [ ! -f "$GUEST_ELF" ]; then
	fail guest_qemu "no guest image at $GUEST_ELF (make guest)"
	exit 0
fi

# boot NAME CPUS CMDLINE: runs the guest, output in $out, status in $status.
boot() {
	out="$TEST_TMP/$1.out"
	run_cmd "$TIMEOUT" "$out" "$QEMU" -M microvm -enable-kvm -cpu host \
		-m 256 -smp "$2" -nodefaults -no-user-config -nographic \
		-serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-kernel "$GUEST_ELF" -append "$3"
}

passed() { [ "$status" -eq 1 ]; }
failed() { [ "$status" -eq 3 ]; }
has() { grep -Eq -- "$1" "$out"; }

boot hello 2 "hello"
check guest_qemu_hello eval 'passed &&
	has "^Hello from the rackvm guest runtime: 2 CPUs, 256 MiB RAM$"'

boot selftest 1 "selftest"
check guest_qemu_selftest eval 'passed && has "^pass: cmdline$" &&
	has "^pass: syscall$"'

boot memtouch 1 "memtouch pages=4096 pattern=0x5a mode=verify"
check guest_qemu_memtouch_verify eval 'passed &&
	has "^result: memtouch pages=4096 mode=verify seconds=[0-9.]+ pages_per_sec=[1-9][0-9]*$"'

boot compute 1 "compute ms=300"
check guest_qemu_compute eval 'passed &&
	has "^result: compute iterations=[1-9][0-9]* seconds=0\.3[0-9]* iter_per_sec=[1-9][0-9]*$"'

boot pio 1 "pio iterations=500"
check guest_qemu_pio eval 'passed &&
	has "^result: pio iterations=500 ns_per_exit=[1-9][0-9]*$"'

boot wsswork 1 "wsswork phases=w4,r4,r4@4,m8,i phase_ms=300"
check guest_qemu_wsswork eval 'passed &&
	has "^wsswork: phase=1 start kind=write pages=1024 first_page=0 " &&
	has "^result: wsswork phase=5 kind=idle pages=0 first_page=0 start_s=[0-9.]+ end_s=[0-9.]+ passes=0 " &&
	has "^result: wsswork phase=4 kind=mixed pages=2048 .* passes=[1-9][0-9]* " &&
	has "^result: wsswork verify pages=2048 bad=0$"'

boot smp 2 "smp"
check guest_qemu_smp eval 'passed &&
	has "^result: smp cpus_online=2 nb_cpus=2 cpuid_cpus=2$"'

boot assertfail 1 "assertfail"
check guest_qemu_assertfail eval 'failed &&
	has "^guest/workloads/assertfail\.c:[0-9]+: assertion failed: 1 \+ 1 == 3"'

boot pagefault 1 "pagefault"
check guest_qemu_pagefault eval 'failed &&
	has "^exception: vector 14 \(#PF\) .* rip=0x[0-9a-f]+ .*cr2=0x8000000000 "'

boot unknown 1 "no-such-workload"
check guest_qemu_unknown_workload eval 'failed &&
	has "unknown workload .no-such-workload." && has "^  memtouch "'

# Far-memory workloads, small: the checksum of kmeans is bit-exact, so
# test_guest_farmem_workloads.sh compares rackvm's with QEMU's; here the
# guest must simply run them to the end under a second hypervisor.
boot kmeans 1 "kmeans points=20000 dims=8 k=4 iters=5 seed=7"
check guest_qemu_kmeans eval 'passed &&
	has "^result: kmeans points=20000 dims=8 k=4 iters=5 bytes=640000 seconds=[0-9.]+ checksum=0x[0-9a-f]{16}$"'

boot pagestress 1 "pagestress mib=32 passes=2 order=random"
check guest_qemu_pagestress eval 'passed &&
	has "^result: pagestress mib=32 passes=2 bad=0 seconds=[0-9.]+$"'

# A page changed behind the workload's back must be caught (else bad=0
# above proves nothing).
boot pagestress_corrupt 1 "pagestress mib=4 passes=1 corrupt=100"
check guest_qemu_pagestress_detects eval 'failed &&
	has "^result: pagestress mib=4 passes=1 bad=1 " &&
	has "^pagestress: bad page 100 "'
