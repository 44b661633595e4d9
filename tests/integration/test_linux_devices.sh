#!/usr/bin/env bash
# Debian's cloud kernel drives rackvm's virtio devices with its own
# drivers, found through the ACPI DSDT (the kernel has no
# VIRTIO_MMIO_CMDLINE_DEVICES): one boot of the Linux test guest's
# "devices" case (tests/linux/cases/devices.sh) with 2 vCPUs and
#   --disk A --disk B,ro --rng --vconsole OUT,in=FIFO
# virtio-blk: a pattern written through the page cache and with parallel
# direct I/O reads back in the guest and is in image A afterwards; image B
# reads as the host filled it and is unchanged though the guest tried to
# write it.  virtio-rng: Linux's hw_random uses it.  virtio-console:
# /dev/hvc0 output lands in OUT, input written to FIFO reaches the guest.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
. tests/integration/linux_lib.sh

linux_prepare

disk_a=$TEST_TMP/a.img
disk_b=$TEST_TMP/b.img
vcon_out=$TEST_TMP/hvc.out
vcon_in=$TEST_TMP/hvc.in
token=rackvm-hvc-$$-$RANDOM
truncate -s 16M "$disk_a"
head -c 1M /dev/urandom > "$disk_b"
truncate -s 4M "$disk_b"
b_before=$(sha256sum < "$disk_b" | cut -d' ' -f1)
b_head=$(head -c 1M "$disk_b" | sha256sum | cut -d' ' -f1)
mkfifo "$vcon_in"
# Held open read-write so rackvm's open never blocks and the input never
# ends while the guest runs.
exec 7<> "$vcon_in"

# ~20 s in an idle test host; a guest that hangs is given up on after
# 5 minutes, not the default 10.
LINUX_CPUS=2 LINUX_TIMEOUT=300 linux_start linux_devices devices 4 2 "$token" -- \
	--disk "$disk_a" --disk "$disk_b,ro" --rng \
	--vconsole "$vcon_out,in=$vcon_in"
if linux_wait_console '^# hvc0 ready' 240; then
	echo "$token-in" >&7
	seq 1 2000 | sed "s/^/$token-in-/" >&7
fi
linux_finish
exec 7>&-
linux_check_status linux_devices_poweroff 0

# The host's view of what the guest did.
want=$(sed -n 's/^# vda_sha256=//p' "$out")
got=$(head -c 4M "$disk_a" | sha256sum | cut -d' ' -f1)
if [ -n "$want" ] && [ "$got" = "$want" ]; then
	ok linux_devices_blk_image
else
	fail linux_devices_blk_image "image A's first 4 MiB hash to $got, the guest wrote '$want'"
fi
want=$(sed -n 's/^# vda_direct_sha256=//p' "$out")
got=$(tail -c +$((4 * 1048576 + 1)) "$disk_a" | head -c 2M | sha256sum | cut -d' ' -f1)
if [ -n "$want" ] && [ "$got" = "$want" ]; then
	ok linux_devices_blk_image_direct
else
	fail linux_devices_blk_image_direct "image A's 2 MiB at 4 MiB hash to $got, the guest wrote '$want'"
fi
got=$(tail -c +$((8 * 1048576 + 1)) "$disk_a" | head -c 1M | tr -d '\0' | wc -c)
if [ "$got" -eq 0 ]; then
	ok linux_devices_blk_image_discarded
else
	fail linux_devices_blk_image_discarded "the MiB the guest discarded at 8 MiB still has $got non-zero bytes in image A"
fi
got=$(sed -n 's/^# vdb_sha256=//p' "$out")
if [ "$got" = "$b_head" ]; then
	ok linux_devices_blk_ro_read
else
	fail linux_devices_blk_ro_read "the guest read '$got' from vdb's first MiB, the image holds $b_head"
fi
got=$(sha256sum < "$disk_b" | cut -d' ' -f1)
if [ "$got" = "$b_before" ]; then
	ok linux_devices_blk_ro_unchanged
else
	fail linux_devices_blk_ro_unchanged "image B changed"
fi
if tr -d '\r' < "$vcon_out" | grep -q "^$token-out\$"; then
	ok linux_devices_console_output
else
	fail linux_devices_console_output "no '$token-out' line in the --vconsole file: '$(head -c 200 "$vcon_out" | tr '\n' '|')'"
fi
got=$(tr -d '\r' < "$vcon_out" | grep "^$token-line-" | sha256sum | cut -d' ' -f1)
want=$(seq 1 2000 | sed "s/^/$token-line-/" | sha256sum | cut -d' ' -f1)
if [ "$got" = "$want" ]; then
	ok linux_devices_console_output_bulk
else
	fail linux_devices_console_output_bulk "the --vconsole file has $(tr -d '\r' < "$vcon_out" | grep -c "^$token-line-") of the 2000 lines the guest wrote, or not in order"
fi
exit 0
