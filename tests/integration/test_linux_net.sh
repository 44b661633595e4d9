#!/usr/bin/env bash
# Debian's cloud kernel drives rackvm's virtio-net (--net tap=NAME) with
# its own driver: one boot of the Linux test guest's "net" case
# (tests/linux/cases/net.sh) on a TAP whose host side has an address:
#   linux_net_ping_host       the guest pings the host
#   linux_net_ping_guest      the host pings the guest
#   linux_net_bulk_*          8 MiB each way over TCP, checksummed on both
#                             sides (busybox nc in the guest, Python here)
# The TAP and its addresses exist only inside the test host.
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
. tests/integration/linux_lib.sh

linux_prepare

TAP=rkvlnx$$
TAP=${TAP:0:15}
HOST_IP=10.77.100.1
GUEST_IP=10.77.100.2
server_pid=
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2> /dev/null
	ip link del "$TAP" 2> /dev/null
}
trap cleanup EXIT

if ! ip tuntap add dev "$TAP" mode tap 2> "$TEST_TMP/tap.err"; then
	fail linux_net_tap "cannot create a TAP device: $(head -c 200 "$TEST_TMP/tap.err")"
	exit 0
fi
sysctl -qw "net.ipv6.conf.$TAP.disable_ipv6=1" 2> /dev/null
ip addr add "$HOST_IP/24" dev "$TAP"
ip link set "$TAP" up

h2g=$TEST_TMP/h2g
g2h=$TEST_TMP/g2h
head -c 8M /dev/urandom > "$h2g"
h2g_sha=$(sha256sum < "$h2g" | cut -d' ' -f1)

# One connection each: port 7001 sends $h2g, port 7002 stores what comes.
cat > "$TEST_TMP/server.py" <<'EOF'
import socket, sys, threading
addr, send_path, recv_path = sys.argv[1], sys.argv[2], sys.argv[3]

def listener(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(1)
    s.settimeout(600)
    return s

def send(s):
    c, _ = s.accept()
    with open(send_path, "rb") as f:
        c.sendall(f.read())
    c.close()

def recv(s):
    c, _ = s.accept()
    c.settimeout(600)
    with open(recv_path, "wb") as f:
        while True:
            data = c.recv(1 << 16)
            if not data:
                break
            f.write(data)
    c.close()

listeners = (listener(7001), listener(7002))
print("ready", flush=True)
threads = [threading.Thread(target=send, args=(listeners[0],)),
           threading.Thread(target=recv, args=(listeners[1],))]
for t in threads:
    t.start()
for t in threads:
    t.join()
EOF
python3 "$TEST_TMP/server.py" "$HOST_IP" "$h2g" "$g2h" > "$TEST_TMP/server.out" 2>&1 &
server_pid=$!
for _ in $(seq 50); do
	grep -q ready "$TEST_TMP/server.out" && break
	sleep 0.1
done

LINUX_CPUS=2 linux_start linux_net net "$GUEST_IP" "$HOST_IP" "$h2g_sha" -- \
	--net "tap=$TAP"
pinged=0
if linux_wait_console '^# net ready for ping' 500; then
	if ping -c 3 -W 5 "$GUEST_IP" > "$TEST_TMP/ping.out" 2>&1; then
		pinged=1
	fi
	python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], 7003), 30).sendall(b"done\n")' \
		"$GUEST_IP" > "$TEST_TMP/done.out" 2>&1
fi
linux_finish
linux_check_status linux_net_poweroff 0

if [ "$pinged" -eq 1 ]; then
	ok linux_net_ping_guest
else
	fail linux_net_ping_guest "ping $GUEST_IP from the host: $(tail -n 3 "$TEST_TMP/ping.out" 2> /dev/null | tr '\n' '|')"
fi
want=$(sed -n 's/^# g2h_sha256=//p' "$out")
got=$(sha256sum < "$g2h" 2> /dev/null | cut -d' ' -f1)
if [ -n "$want" ] && [ "$got" = "$want" ]; then
	ok linux_net_bulk_guest_to_host_verified
else
	fail linux_net_bulk_guest_to_host_verified "the host received $(wc -c < "$g2h" 2> /dev/null) bytes hashing to $got, the guest sent '$want'"
fi
exit 0
