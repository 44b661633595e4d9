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
# probe for an i8042 keyboard controller.  2 vCPUs and the virtio devices
# are test_linux_devices.sh's.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
. tests/integration/linux_lib.sh

linux_prepare

linux_run linux_pvh boot 1
linux_check_status linux_pvh_poweroff 0

LINUX_KERNEL=build/linux/vmlinuz LINUX_CPUS=4 linux_run linux_bzimage boot 4 reboot
linux_check_status linux_bzimage_reboot 4
exit 0
