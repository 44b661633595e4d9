#!/bin/sh
# boot.sh CPUS [reboot]: the guest reached userspace (this line runs in
# it), Linux brought up exactly CPUS vCPUs and did not probe for an i8042
# keyboard controller (rackvm's FADT says there is none).  With "reboot"
# the guest resets instead of powering off.
. /lib/rackvm.sh

ok userspace
note "$(uname -sr)"
n=$(nproc)
online=$(cat /sys/devices/system/cpu/online)
want=0
[ "$1" -gt 1 ] && want="0-$(($1 - 1))"
if [ "$n" = "$1" ] && [ "$online" = "$want" ]; then
	ok cpus
else
	fail cpus "want $1 CPUs online ($want), nproc says $n, online $online"
fi
if dmesg | grep -Eq "i8042: (Probing ports directly|Can't read CTR)"; then
	fail no_i8042_probe "$(dmesg | grep i8042 | tr '\n' '|')"
else
	ok no_i8042_probe
fi
if [ "${2:-}" = reboot ]; then
	request_reboot
fi
exit 0
