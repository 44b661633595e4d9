#!/usr/bin/env bash
# Boots a real Linux kernel (Debian's cloud kernel, fetched by
# scripts/fetch-linux-kernel) far enough to see that rackvm hands it the
# right boot data: the banner, the exact command line and the e820 map.
# The VM is stopped with SIGTERM as soon as those are printed; a full boot
# is out of reach here (nested KVM emulates guest ring 0 ~1000x slower, and
# its emulator stops the kernel with a KVM internal error at the first
# lock cmpxchg16b, ~15 s of guest time in, under QEMU as well).
#
#   linux_pvh_*      build/linux/vmlinux (ELF, PVH entry note)
#   linux_bzimage_*  build/linux/vmlinuz (bzImage: Linux boot protocol,
#                    then the kernel's own LZ4 decompressor, which alone
#                    took ~57 s under QEMU on the reference machine)
#   linux_smp_*      the ELF with --cpus 2: the kernel must find 2 CPUs
#   linux_virtio_*   the ELF with --disk A --disk B --rng: the kernel's
#                    "Kernel command line:" must list every
#                    virtio_mmio.device= entry rackvm generated, in order
#
# Reference timings to the end of the e820 map (same kernel, 2-core
# nested-KVM machine): QEMU 7.2 microvm + vmlinux 9.7 s, microvm + bzImage
# 62 s, pc + bzImage 59 s; rackvm (ASan build) vmlinux 9 s, bzImage 59 s,
# vmlinux with 2 vCPUs to "smpboot: Allowing" 13 s.  The whole script
# takes ~80 s; the per-boot limit is generous.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

MEM=512M
BOOT_LIMIT=${LINUX_BOOT_LIMIT:-300}	# seconds for one boot to reach e820
TOKEN="rackvm_test=linux-$$-$RANDOM"
CMDLINE="console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1 $TOKEN"

if ! have_kvm; then
	for t in linux_pvh linux_bzimage linux_smp linux_virtio; do
		skip "$t" "/dev/kvm is missing or not accessible"
	done
	exit 0
fi

fetch_log=$TEST_TMP/fetch.log
scripts/fetch-linux-kernel > "$fetch_log" 2>&1
fetch_rc=$?
if [ "$fetch_rc" -eq 3 ]; then
	reason="cannot download the kernel: $(tail -n 1 "$fetch_log")"
	for t in linux_pvh linux_bzimage linux_smp linux_virtio; do
		skip "$t" "$reason"
	done
	exit 0
elif [ "$fetch_rc" -ne 0 ]; then
	fail linux_fetch "scripts/fetch-linux-kernel failed ($fetch_rc): $(tail -n 3 "$fetch_log" | tr '\n' '|')"
	exit 0
fi
ok linux_fetch

# size_bytes SIZE: 512M, 2G, 65536K or plain bytes -> bytes.
size_bytes() {
	local n=${1%[KkMmGg]}
	case $1 in
	*[Kk]) echo $((n << 10)) ;;
	*[Mm]) echo $((n << 20)) ;;
	*[Gg]) echo $((n << 30)) ;;
	*) echo "$n" ;;
	esac
}

# expected_e820 SIZE: the map rackvm gives a guest of SIZE (below the
# 32-bit PCI hole), in the kernel's own print format.
expected_e820() {
	local top
	top=$(($(size_bytes "$1") - 1))
	printf 'BIOS-e820: [mem 0x%016x-0x%016x] usable\n' 0 $((0x9fbff))
	printf 'BIOS-e820: [mem 0x%016x-0x%016x] reserved\n' $((0x9fc00)) $((0xfffff))
	printf 'BIOS-e820: [mem 0x%016x-0x%016x] usable\n' $((0x100000)) "$top"
}

# console_text FILE: the serial output without CRs or printk timestamps.
console_text() {
	tr -d '\r' < "$1" | sed -E 's/^.*\[ *[0-9]+\.[0-9]+\] //'
}

# e820_done FILE: true once the e820 block has been printed in full (a
# line follows the last BIOS-e820 line).
e820_done() {
	console_text "$1" | awk '
		/BIOS-provided physical RAM map:/ { inmap = 1; next }
		inmap && /^BIOS-e820: / { seen = 1; next }
		inmap && seen { done = 1; exit }
		END { exit !done }'
}

# boot NAME KERNEL CPUS [EXTRA-REGEX]: boots KERNEL, reading the console as
# it arrives, and stops the VM with SIGTERM once the banner, the command
# line, the whole e820 map (and EXTRA-REGEX if given) have been printed.
# Sets $out (console), $err (rackvm's stderr), $status (rackvm's exit
# status), $elapsed (seconds until seen or given up) and $seen (1/0).
boot() {
	local name=$1 kernel=$2 cpus=$3 extra=${4:-} pid start n
	# extra rackvm arguments: the caller's boot_args array, if any
	local -a args=("${boot_args[@]}")
	out=$TEST_TMP/$name.out
	err=$TEST_TMP/$name.err
	seen=0
	waiting_for="the banner, command line and e820 map${extra:+ and /$extra/}"
	: > "$out"
	: > "$err"
	start=$SECONDS
	"$RACKVM" run --kernel "$kernel" --mem "$MEM" --cpus "$cpus" \
		--console stdio --cmdline "$CMDLINE" "${args[@]}" \
		< /dev/null > "$out" 2> "$err" &
	pid=$!
	while [ $((SECONDS - start)) -lt "$BOOT_LIMIT" ]; do
		if grep -q 'Linux version' "$out" && grep -q 'Command line:' "$out" &&
			e820_done "$out" &&
			{ [ -z "$extra" ] || console_text "$out" | grep -Eq "$extra"; }; then
			seen=1
			break
		fi
		kill -0 "$pid" 2> /dev/null || break
		sleep 0.2
	done
	elapsed=$((SECONDS - start))
	kill -TERM "$pid" 2> /dev/null
	for n in $(seq 50); do
		kill -0 "$pid" 2> /dev/null || break
		sleep 0.2
	done
	kill -KILL "$pid" 2> /dev/null
	wait "$pid"
	status=$?
}

# why: the reason for a failed boot, with the end of both outputs.
why() {
	local what
	if [ "$seen" -eq 0 ] && [ "$elapsed" -ge "$BOOT_LIMIT" ]; then
		what="no $waiting_for after ${BOOT_LIMIT}s"
	else
		what="rackvm exited with status $status after ${elapsed}s, before $waiting_for"
	fi
	echo "$what; console: $(tr -d '\r' < "$out" | tail -n 4 | tr '\n' '|') stderr: $(tail -n 3 "$err" | tr '\n' '|')"
}

# check_boot NAME: the checks shared by every kernel format.
check_boot() {
	local name=$1 got want
	if [ "$seen" -ne 1 ]; then
		fail "${name}_boot" "$(why)"
		return 1
	fi
	ok "${name}_boot"
	echo "# $name: banner, command line and e820 map after ${elapsed}s"

	got=$(console_text "$out" | grep -m1 'Linux version' || true)
	echo "# $name: ${got:0:100}"

	# rackvm may append to the command line (e.g. virtio_mmio devices
	# later), so ours must be there in full, as the start.
	got=$(console_text "$out" | grep -m1 '^Command line:' || true)
	if [[ "$got" == "Command line: $CMDLINE"* ]]; then
		ok "${name}_cmdline"
	else
		fail "${name}_cmdline" "want 'Command line: $CMDLINE...', got '$got'"
	fi

	got=$(console_text "$out" | grep '^BIOS-e820: ')
	want=$(expected_e820 "$MEM")
	if [ "$got" = "$want" ]; then
		ok "${name}_e820"
	else
		fail "${name}_e820" "want $(echo "$want" | tr '\n' '|') got $(echo "$got" | tr '\n' '|')"
	fi

	if [ "$status" -eq 143 ]; then
		ok "${name}_sigterm_status"
	else
		fail "${name}_sigterm_status" "want exit status 143 (128+SIGTERM), got $status"
	fi
}

boot_args=()
boot linux_pvh build/linux/vmlinux 1
check_boot linux_pvh

boot linux_bzimage build/linux/vmlinuz 1
check_boot linux_bzimage

# With 2 vCPUs the kernel must see both; it says so in "smpboot: Allowing
# 2 CPUs, 0 hotplug CPUs", ~4 s of guest time after the e820 map.  Debian's
# cloud kernel has no MP-table parser (CONFIG_X86_MPPARSE unset): it finds
# CPUs only through ACPI's MADT, so without an RSDP from rackvm it can only
# see one; that is reported as a skip naming the reason, not a failure.
boot linux_smp build/linux/vmlinux 2 'smpboot: Allowing [0-9]+ CPUs'
if check_boot linux_smp; then
	got=$(console_text "$out" | grep -Em1 'smpboot: Allowing [0-9]+ CPUs' || true)
	if [[ "$got" == *"Allowing 2 CPUs"* ]]; then
		ok linux_smp_cpus
	elif grep -q '^# CONFIG_X86_MPPARSE is not set' build/linux/config 2> /dev/null &&
		console_text "$out" | grep -q 'A valid RSDP was not found'; then
		skip linux_smp_cpus "the kernel finds CPUs only via ACPI (CONFIG_X86_MPPARSE unset) and rackvm gives it no RSDP: '$got'"
	else
		fail linux_smp_cpus "want 'smpboot: Allowing 2 CPUs', got '$got'"
	fi
fi

# --- virtio-mmio devices on the command line ------------------------------
# Two disks and an rng: rackvm appends one virtio_mmio.device=4K@<base>:<gsi>
# per device (device i at 0xd0000000 + i * 4K on GSI 5 + i, disks first,
# README "Using it").  What rackvm generated is taken from rackvm itself:
# the bundled guest prints every entry it finds on its command line; it
# must match the documented layout, and Linux must print all of them, in
# that order, in its "Kernel command line:".
disk_a=$TEST_TMP/virtio-a.img
disk_b=$TEST_TMP/virtio-b.img
truncate -s 1M "$disk_a" "$disk_b"
boot_args=(--disk "$disk_a" --disk "$disk_b,ro" --rng)

want_entries=""
for i in 0 1 2; do
	want_entries+="${want_entries:+ }$(printf 'virtio_mmio.device=4K@0x%x:%d' $((0xd0000000 + i * 0x1000)) $((5 + i)))"
done
gen_out=$TEST_TMP/virtio-generated.out
run_cmd 60 "$gen_out" "$RACKVM" run "${boot_args[@]}" --cmdline "rng bytes=16"
generated=$(tr -d '\r' < "$gen_out" | sed -n 's/^virtio: \(virtio_mmio\.device=[^ ]*\): device .*/\1/p' | tr '\n' ' ')
generated=${generated% }
if [ "$status" -eq 0 ] && [ "$generated" = "$want_entries" ]; then
	ok linux_virtio_generated_entries
else
	fail linux_virtio_generated_entries "bundled guest (status $status) saw '$generated', want '$want_entries'"
fi

boot linux_virtio build/linux/vmlinux 1 'Kernel command line:'
if check_boot linux_virtio; then
	got=$(console_text "$out" | grep -m1 '^Kernel command line:' || true)
	# every entry as a whole word, in order, after our own command line
	got_entries=$(tr ' ' '\n' <<< "${got#Kernel command line: }" |
		grep '^virtio_mmio\.device=' | tr '\n' ' ')
	got_entries=${got_entries% }
	if [[ "$got" == "Kernel command line: $CMDLINE "* ]] &&
		[ "$got_entries" = "$want_entries" ]; then
		ok linux_virtio_kernel_cmdline
	else
		fail linux_virtio_kernel_cmdline "want 'Kernel command line: $CMDLINE ... $want_entries', got '$got'"
	fi
fi
exit 0
