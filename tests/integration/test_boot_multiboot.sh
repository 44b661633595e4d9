#!/usr/bin/env bash
# Boots the Multiboot v1 test kernel (tests/images/multiboot) under rackvm
# and, as a cross-check of the kernel itself, under QEMU's pc machine.
# The kernel validates the Multiboot information, echoes the command line
# on COM1 and exits through isa-debug-exit: status 1 = pass, 3 = fail.
# The command line is "KERNEL ARGS" (argv[0] is the path given to --kernel
# or -kernel), as GRUB and QEMU pass it.
set -u
. "$(dirname "$0")/lib.sh"

IMAGE=${MB_TEST_ELF:-build/images/multiboot-test.elf}
CMDLINE="mbtest=hello rackvm-multiboot-check"
PASS_STATUS=1

if [ ! -f "$IMAGE" ]; then
	make -s images > "$TEST_TMP/images.log" 2>&1 ||
		{ fail boot_multiboot_build "$(tail -n 3 "$TEST_TMP/images.log" | tr '\n' '|')"; exit 0; }
fi

# expect_pass PREFIX OUTFILE: checks exit status, PASS line and cmdline echo
expect_pass() {
	local name=$1
	out=$2
	check "${name}_status" [ "$status" -eq "$PASS_STATUS" ]
	check "${name}_checks_pass" grep -q '^multiboot-test: PASS' "$out"
	check "${name}_cmdline_echoed" grep -qF "cmdline: " "$out"
	check "${name}_cmdline_argv0_is_kernel" grep -qxF "cmdline: $IMAGE $CMDLINE" "$out"
}

if ! have_kvm; then
	skip boot_multiboot_rackvm "no usable /dev/kvm"
	skip boot_multiboot_qemu "no usable /dev/kvm"
	exit 0
fi

if [ -x "$RACKVM" ]; then
	run_cmd 120 "$TEST_TMP/rackvm.out" "$RACKVM" run --kernel "$IMAGE" \
		--cmdline "$CMDLINE" --mem 128M
	expect_pass boot_multiboot_rackvm "$TEST_TMP/rackvm.out"
	# the memory map rackvm reports is exact: check the RAM above 1 MiB
	check boot_multiboot_rackvm_mem_upper \
		grep -q 'mem_upper=130048' "$TEST_TMP/rackvm.out"
	# the kernel really checks: without its token it must report failure
	run_cmd 120 "$TEST_TMP/rackvm-bad.out" "$RACKVM" run --kernel "$IMAGE" \
		--cmdline "no-token-here" --mem 128M
	out=$TEST_TMP/rackvm-bad.out
	check boot_multiboot_rackvm_detects_bad_cmdline \
		[ "$status" -eq 3 ]
else
	skip boot_multiboot_rackvm "$RACKVM not built"
fi

if command -v qemu-system-x86_64 > /dev/null; then
	# QEMU's isa-debug-exit defaults to port 0x501; the kernel uses 0xf4
	run_cmd 60 "$TEST_TMP/qemu.out" qemu-system-x86_64 -M pc -enable-kvm \
		-m 128M -kernel "$IMAGE" -append "$CMDLINE" \
		-device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-nographic -nodefaults -serial stdio
	expect_pass boot_multiboot_qemu "$TEST_TMP/qemu.out"
else
	skip boot_multiboot_qemu "qemu-system-x86_64 not installed"
fi
