#!/usr/bin/env bash
# rackvm's virtio-net device on a TAP: the CLI's --net checks, then the
# bundled guest's netecho against a reflector on the host side of the
# TAP (python3, AF_PACKET: every frame of EtherType 0x88b5 comes back
# with the MAC addresses swapped, the setup of
# test_virtio_net_balloon_qemu.sh), with and without mergeable receive
# buffers and offloads, on the device's side and on the driver's.
source "$(dirname "$0")/lib.sh"

TIMEOUT=120
MAC=52:54:00:12:34:56

out=$TEST_TMP/out

# --- options ---------------------------------------------------------------
run_cmd 10 "$out" "$RACKVM" run --net mac=$MAC
check virtio_net_cli_needs_tap bash -c "[ $status -eq 2 ] && grep -q 'needs tap=NAME' '$out'"
run_cmd 10 "$out" "$RACKVM" run --net tap=x,mac=01:00:5e:00:00:01
check virtio_net_cli_rejects_multicast_mac bash -c "[ $status -eq 2 ] && grep -q 'invalid --net mac' '$out'"
run_cmd 10 "$out" "$RACKVM" run --net tap=x,speed=10G
check virtio_net_cli_rejects_unknown_item bash -c "[ $status -eq 2 ] && grep -q \"invalid --net item 'speed=10G'\" '$out'"
run_cmd 10 "$out" "$RACKVM" run --net tap=waytoolonginterfacename
check virtio_net_cli_rejects_long_name bash -c "[ $status -eq 2 ] && grep -q '1 to 15 characters' '$out'"

if ! have_kvm; then
	skip virtio_net_rackvm "/dev/kvm not usable"
	exit 0
fi
if [ ! -c /dev/net/tun ]; then
	skip virtio_net_rackvm "no /dev/net/tun"
	exit 0
fi
if ! command -v python3 > /dev/null 2>&1; then
	skip virtio_net_rackvm "python3 not installed"
	exit 0
fi

# A TAP that exists but is held by someone else: a clear error, status 2.
BUSY=rkvbusy$$
BUSY=${BUSY:0:15}
TAP=rkvnet$$
TAP=${TAP:0:15}
refl_pid=
holder_pid=
udp_pid=
cleanup() {
	[ -n "$refl_pid" ] && kill "$refl_pid" 2> /dev/null
	[ -n "$udp_pid" ] && kill "$udp_pid" 2> /dev/null
	[ -n "$holder_pid" ] && kill "$holder_pid" 2> /dev/null
	ip link del "$TAP" 2> /dev/null
	ip link del "$BUSY" 2> /dev/null
}
trap cleanup EXIT

if ! ip tuntap add dev "$TAP" mode tap 2> "$TEST_TMP/tap.err"; then
	skip virtio_net_rackvm "cannot create a TAP device: $(head -c 200 "$TEST_TMP/tap.err")"
	exit 0
fi

# tun only lets one fd attach to a single-queue TAP: hold one.
python3 - "$BUSY" > "$TEST_TMP/holder.out" 2>&1 <<'EOF' &
import fcntl, os, struct, sys, time
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", sys.argv[1].encode(), 0x0002 | 0x1000))
print("held", flush=True)
time.sleep(600)
EOF
holder_pid=$!
for _ in $(seq 50); do
	grep -q held "$TEST_TMP/holder.out" && break
	sleep 0.1
done
run_cmd 30 "$out" "$RACKVM" run --net "tap=$BUSY" --cmdline hello
check virtio_net_busy_tap_exits_2 bash -c "[ $status -eq 2 ] && grep -q 'tap $BUSY: TUNSETIFF: Device or resource busy' '$out'"
kill "$holder_pid" 2> /dev/null
wait "$holder_pid" 2> /dev/null
holder_pid=

# A device the guest never drives: the VM still runs and ends cleanly.
run_cmd 30 "$out" "$RACKVM" run --net "tap=$TAP" --cmdline hello
check virtio_net_idle_device bash -c "[ $status -eq 0 ] && grep -q 'Hello from the rackvm guest' '$out'"

# The bundled guest needs the netecho workload.
run_cmd 30 "$out" "$RACKVM" run --cmdline nosuchworkload
if ! grep -q "^  netecho " "$out"; then
	skip virtio_net_rackvm_guest "the bundled guest has no netecho workload"
	exit 0
fi

sysctl -qw "net.ipv6.conf.$TAP.disable_ipv6=1" 2> /dev/null
ip link set "$TAP" up

cat > "$TEST_TMP/reflector.py" <<'EOF'
# reflector.py IFNAME SECONDS: sends every frame of EtherType 0x88b5 that
# arrives on IFNAME back with source and destination swapped.
import select, socket, sys, time
ETH_P_ALL, ETHERTYPE, PACKET_OUTGOING = 3, 0x88b5, 4
ifname, seconds = sys.argv[1], float(sys.argv[2])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
s.bind((ifname, 0))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
print("ready", flush=True)
deadline = time.time() + seconds
while time.time() < deadline:
    if not select.select([s], [], [], 0.5)[0]:
        continue
    frame, addr = s.recvfrom(65536)
    if addr[2] == PACKET_OUTGOING or len(frame) < 14 or \
            int.from_bytes(frame[12:14], "big") != ETHERTYPE:
        continue
    s.send(frame[6:12] + frame[0:6] + frame[12:])
EOF
python3 "$TEST_TMP/reflector.py" "$TAP" $((TIMEOUT * 8)) > "$TEST_TMP/reflector.out" 2>&1 &
refl_pid=$!
for _ in $(seq 50); do
	grep -q ready "$TEST_TMP/reflector.out" && break
	sleep 0.1
done

# netecho NAME NETOPTS CMDLINE: output in $out, status in $status.
netecho() {
	out="$TEST_TMP/$1.out"
	run_cmd "$TIMEOUT" "$out" "$RACKVM" run --net "tap=$TAP$2" --cmdline "$3"
}
passed() { [ "$status" -eq 0 ]; }
has() { grep -Eq -- "$1" "$out"; }

netecho echo ",mac=$MAC" "netecho frames=2000 size=256 depth=8"
check virtio_net_echo eval 'passed &&
	has "^virtio: virtio_mmio\.device=4K@0x[0-9a-f]+:[0-9]+: device 1 version 2 " &&
	has "^netecho: mac 52:54:00:12:34:56 " &&
	has "^result: netecho frames=2000 size=256 seconds=[0-9.]+ pps=[1-9][0-9]* mrg_rxbuf=1 csum=1 guest_csum=1 tso4=1 "'

# the default MAC comes from the device index (0 here)
netecho full "" "netecho frames=1000 size=1514 depth=16"
check virtio_net_echo_full_size eval 'passed &&
	has "^netecho: mac 52:54:00:72:6b:00 " &&
	has "^result: netecho frames=1000 size=1514 .* merged=0 max_bufs=1 "'

# 256-byte receive buffers: each 1514-byte frame spans 6 of them.
netecho mrg "" "netecho frames=500 size=1514 mrg=1 rxbuf=256"
check virtio_net_mrg_rxbuf eval 'passed &&
	has "^result: netecho frames=500 size=1514 .* mrg_rxbuf=1 .* rxbuf=256 merged=500 max_bufs=6 "'

# The smallest buffers the driver posts: 64 bytes, 24 per frame (1526 bytes with the header).
netecho mrg_tiny "" "netecho frames=300 size=1514 mrg=1 rxbuf=64 depth=4"
check virtio_net_mrg_rxbuf_tiny_buffers eval 'passed &&
	has "^result: netecho frames=300 size=1514 .* rxbuf=64 merged=300 max_bufs=24 "'

# The driver asks for nothing beyond VERSION_1 and MAC.
netecho plain "" "netecho frames=500 size=1000 mrg_rxbuf=0 offload=0"
check virtio_net_driver_no_offloads eval 'passed &&
	has "^result: netecho frames=500 size=1000 .* mrg_rxbuf=0 csum=0 guest_csum=0 tso4=0 rxbuf=2048 merged=0 "'

# The device offers none: the driver computes its checksums itself.
netecho devoff ",offload=off" "netecho frames=500 size=512"
check virtio_net_device_no_offloads eval 'passed &&
	has "^result: netecho frames=500 size=512 .* mrg_rxbuf=1 csum=0 guest_csum=0 tso4=0 "'

# Receive checksum offload for real: UDP from the host's stack to the
# guest's MAC.  With GUEST_CSUM negotiated the TAP hands the frames over
# with partial checksums (NEEDS_CSUM), which the guest driver completes;
# without it the kernel must have finished them (TUNSETOFFLOAD follows
# the driver).  netecho counts those frames as ignored.
ip addr add 198.18.213.1/30 dev "$TAP"
ip neigh replace 198.18.213.2 lladdr "$MAC" dev "$TAP" nud permanent
cat > "$TEST_TMP/udp.py" <<'EOF'
# udp.py DST SECONDS: a steady stream of small UDP datagrams to DST.
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + float(sys.argv[2])
first = True
while time.time() < end:
    s.sendto(b"rackvm" * 30, (sys.argv[1], 9))
    if first:
        print("sending", flush=True)
        first = False
    time.sleep(0.0002)
EOF
python3 "$TEST_TMP/udp.py" 198.18.213.2 $((TIMEOUT * 2)) > "$TEST_TMP/udp.out" 2>&1 &
udp_pid=$!
# the stream must flow before the guest listens (python starts slowly in
# the emulated test host)
for _ in $(seq 300); do
	grep -q sending "$TEST_TMP/udp.out" && break
	sleep 0.1
done
netecho csum ",mac=$MAC" "netecho frames=10000 size=256 offload=1"
check virtio_net_guest_csum_offload eval 'passed &&
	has "^result: netecho frames=10000 .* guest_csum=1 .* ignored=[1-9][0-9]* csum_completed=[1-9][0-9]*$"'
netecho nocsum ",mac=$MAC" "netecho frames=10000 size=256 offload=0"
check virtio_net_no_guest_csum_offload eval 'passed &&
	has "^result: netecho frames=10000 .* guest_csum=0 .* ignored=[1-9][0-9]* csum_completed=0$"'
kill "$udp_pid" 2> /dev/null
wait "$udp_pid" 2> /dev/null
udp_pid=

# Small buffers without MRG_RXBUF are refused by the driver, cleanly.
netecho refuse "" "netecho frames=1 mrg_rxbuf=0 rxbuf=256"
check virtio_net_small_buffers_need_mrg eval '[ "$status" -eq 8 ] &&
	has "256-byte receive buffers need MRG_RXBUF"'
