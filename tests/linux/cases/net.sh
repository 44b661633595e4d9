#!/bin/sh
# net.sh GUEST_IP HOST_IP H2G_SHA256: Linux's virtio_net on a host TAP,
# with tests/integration/test_linux_net.sh on the host side:
#   ping the host; fetch a file from HOST_IP:7001 (its sha256 must be
#   H2G_SHA256); send 8 MiB of random data to HOST_IP:7002 and print
#   "# g2h_sha256=H"; then print "# net ready for ping" and wait for the
#   host (which pings the guest) to connect to port 7003.
. /lib/rackvm.sh

guest=$1 host=$2 h2g_sha=$3

if [ ! -e /sys/class/net/eth0 ]; then
	fail net_device "no eth0: $(ls /sys/class/net | tr '\n' ' ')"
	exit 0
fi
ok net_device
# The negotiated feature bits, bit N at character N + 1.
features=$(cat /sys/class/net/eth0/device/features 2> /dev/null)
bit() { echo "$features" | cut -c$(($1 + 1)); }
note "negotiated: csum=$(bit 0) guest_csum=$(bit 1) guest_tso4=$(bit 7) host_tso4=$(bit 11) mrg_rxbuf=$(bit 15)"
# rackvm always offers mergeable receive buffers
check mrg_rxbuf [ "$(bit 15)" = 1 ]
ip addr add "$guest/24" dev eth0
ip link set eth0 up
wait_for 10 grep -q 1 /sys/class/net/eth0/carrier

check ping_host ping -c 3 -W 5 "$host"

# host -> guest (the host's TCP sends large segments: mergeable receive
# buffers, and checksum offload where negotiated)
if nc "$host" 7001 > /tmp/h2g 2> /tmp/nc.err; then
	got=$(sha256sum < /tmp/h2g | cut -d' ' -f1)
	if [ "$got" = "$h2g_sha" ]; then
		ok bulk_host_to_guest
	else
		fail bulk_host_to_guest "received $(wc -c < /tmp/h2g) bytes hashing to $got, want $h2g_sha"
	fi
else
	fail bulk_host_to_guest "nc $host 7001: $(tr '\n' ' ' < /tmp/nc.err)"
fi

# guest -> host
dd if=/dev/urandom of=/tmp/g2h bs=1M count=8 2> /dev/null
note "g2h_sha256=$(sha256sum < /tmp/g2h | cut -d' ' -f1)"
check bulk_guest_to_host nc "$host" 7002 < /tmp/g2h

# The driver lets go of the device (a device reset) and takes it again:
# the NIC must work as before.
dev=$(basename "$(readlink /sys/class/net/eth0/device)")
echo "$dev" > /sys/bus/virtio/drivers/virtio_net/unbind
echo "$dev" > /sys/bus/virtio/drivers/virtio_net/bind
if wait_for 10 test -e /sys/class/net/eth0; then
	ip addr add "$guest/24" dev eth0
	ip link set eth0 up
	wait_for 10 grep -q 1 /sys/class/net/eth0/carrier
	check rebind_ping_host ping -c 3 -W 5 "$host"
else
	fail rebind_ping_host "no eth0 after $dev was unbound and bound again"
fi

# the host pings us, then says so on port 7003
note "net ready for ping"
if timeout 300 nc -l -p 7003 > /tmp/done 2> /tmp/nc.err &&
	grep -q done /tmp/done; then
	ok host_done
else
	fail host_done "no 'done' from the host on port 7003: $(tr '\n' ' ' < /tmp/nc.err)"
fi
exit 0
