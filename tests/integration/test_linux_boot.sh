#!/usr/bin/env bash
# Debian's cloud kernel (scripts/fetch-linux-kernel) boots to userspace
# under rackvm with the Linux test guest (tests/linux/build-guest) and
# leaves through ACPI:
#   linux_pvh_*      build/linux/vmlinux through PVH, 1 vCPU, powers off
#                    (ACPI sleep register: rackvm exits 0)
#   linux_bzimage_*  build/linux/vmlinuz through the Linux boot protocol,
#                    4 vCPUs, reboots (ACPI reset register: rackvm exits
#                    with the guest-reset status, 4)
# In both the guest checks that it sees its vCPUs and that Linux did not
# probe for an i8042 keyboard controller.
#   linux_powerbutton_*  the ACPI power button: once Linux has bound it,
#                    `rackvm ctl --socket SOCK shutdown` presses it, the guest
#                    reads KEY_POWER from it and powers off (exit 0)  2 vCPUs and the virtio devices
# are test_linux_devices.sh's.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
. tests/integration/linux_lib.sh

linux_prepare

linux_run linux_pvh boot 1
linux_check_status linux_pvh_poweroff 0

sock=$TEST_TMP/powerbutton.sock
linux_start linux_powerbutton powerbutton -- --api-socket "$sock"
state=none
if linux_wait_console 'power button ready' 300; then
	state=$("$RACKVM" ctl --socket "$sock" shutdown 2>&1)
else
	"$RACKVM" ctl --socket "$sock" stop > /dev/null 2>&1
fi
linux_finish
linux_check_status linux_powerbutton_poweroff 0
case $state in
"state: shutting_down" | "state: stopped") ok linux_powerbutton_state_reply ;;
*) fail linux_powerbutton_state_reply "rackvm ctl shutdown said: $state" ;;
esac

LINUX_KERNEL=build/linux/vmlinuz LINUX_CPUS=4 linux_run linux_bzimage boot 4 reboot
linux_check_status linux_bzimage_reboot 4
exit 0
