#!/usr/bin/env bash
# Peer cross-check of the bundled guest's virtio-net and virtio-balloon
# drivers against QEMU's own devices (microvm, virtio-mmio).
#
# Net: a TAP device (rkvtapN) with a reflector on it (python3, AF_PACKET:
# every frame of EtherType 0x88b5 the guest sends comes back with the
# MAC addresses swapped); the guest's netecho checks every frame.
# Balloon: QMP over a unix socket sets the target (QMP "balloon" takes the
# guest's memory in bytes, RAM - balloon) and reads query-balloon
# ("actual" is RAM - the guest's `actual' pages) and the device's
# guest-stats (polling enabled with qom-set guest-stats-polling-interval).
#
# QEMU facts (7.2): see test_virtio_qemu.sh (force-legacy=false,
# acpi=off); virtio-balloon creates its stats queue whatever is
# negotiated, so the reporting queue is index 3 (no free-page-hint).
source "$(dirname "$0")/lib.sh"

QEMU=qemu-system-x86_64
TIMEOUT=120
RAM_MB=256
MAC=52:54:00:12:34:56

if ! command -v "$QEMU" > /dev/null 2>&1; then
	skip virtio_net_balloon_qemu "$QEMU not installed"
	exit 0
fi
if ! have_kvm; then
	skip virtio_net_balloon_qemu "/dev/kvm not usable"
	exit 0
fi
if ! command -v python3 > /dev/null 2>&1; then
	skip virtio_net_balloon_qemu "python3 not installed"
	exit 0
fi
if [ ! -f "$GUEST_ELF" ]; then
	fail virtio_net_balloon_qemu "no guest image at $GUEST_ELF (make guest)"
	exit 0
fi

# boot NAME CMDLINE [QEMU ARGS...]: output in $out, status in $status.
boot() {
	local name=$1 cmdline=$2
	shift 2
	out="$TEST_TMP/$name.out"
	run_cmd "$TIMEOUT" "$out" "$QEMU" -M microvm,acpi=off -enable-kvm \
		-cpu host -m "$RAM_MB" -nodefaults -no-user-config -nographic \
		-serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-global virtio-mmio.force-legacy=false \
		-kernel "$GUEST_ELF" -append "$cmdline" "$@"
}

passed() { [ "$status" -eq 1 ]; }
has() { grep -Eq -- "$1" "$out"; }

# ---------------------------------------------------------------- balloon

cat > "$TEST_TMP/qmp_balloon.py" <<'EOF'
# qmp_balloon.py SOCKET RAM_MB DEVICE_PATH BALLOON_MB...: sets each
# balloon size in turn, waits for query-balloon to show it, and after the
# first one waits for live guest statistics.  One line per step.
import json, socket, sys, time

class QMP:
    def __init__(self, path, timeout=20):
        deadline = time.time() + timeout
        while True:
            self.s = socket.socket(socket.AF_UNIX)
            try:
                self.s.connect(path)
                break
            except OSError:
                self.s.close()
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        self.f = self.s.makefile("rw")
        self.read()                     # the greeting
        self.cmd("qmp_capabilities")

    def read(self):
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("QMP connection closed")
            msg = json.loads(line)
            if "event" not in msg:
                return msg

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        r = self.read()
        if "error" in r:
            raise RuntimeError("%s: %s" % (name, r["error"]))
        return r["return"]

def wait_for(fn, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = fn()
        if v is not None:
            return v
        time.sleep(0.1)
    return None

def main():
    sock, ram_mb, dev = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    mib = 1 << 20
    q = QMP(sock)
    q.cmd("qom-set", path=dev, property="guest-stats-polling-interval",
          value=1)
    for i, t in enumerate(int(x) for x in sys.argv[4:]):
        want = (ram_mb - t) * mib
        q.cmd("balloon", value=want)
        a = wait_for(lambda: want if q.cmd("query-balloon")["actual"] == want
                     else None, 60)
        print("target%d balloon_mb=%d actual=%d %s" %
              (i + 1, t, q.cmd("query-balloon")["actual"],
               "ok" if a else "timeout"), flush=True)
        if not a:
            return 1
        if i:
            continue
        def live_stats():
            # Fresh figures: free memory no longer counts the balloon.
            r = q.cmd("qom-get", path=dev, property="guest-stats")
            s = r["stats"]
            total = s.get("stat-total-memory", -1)
            if r["last-update"] and total > 0 and \
                    0 < s.get("stat-free-memory", -1) <= total - t * mib:
                return r
            return None
        r = wait_for(live_stats, 20)
        if not r:
            print("stats timeout %r" %
                  q.cmd("qom-get", path=dev, property="guest-stats"))
            return 1
        s = r["stats"]
        print("stats total=%d free=%d available=%d ok" %
              (s["stat-total-memory"], s["stat-free-memory"],
               s.get("stat-available-memory", -1)), flush=True)
    return 0

sys.exit(main())
EOF

sock="$TEST_TMP/qmp.sock"
qmp_out="$TEST_TMP/qmp.out"
python3 "$TEST_TMP/qmp_balloon.py" "$sock" "$RAM_MB" \
	/machine/peripheral/bal0 64 16 > "$qmp_out" 2>&1 &
qmp_pid=$!
boot balloon "balloon targets=2 seconds=100 verify=1 report=1" \
	-device virtio-balloon-device,id=bal0,deflate-on-oom=on,free-page-reporting=on \
	-qmp "unix:$sock,server=on,wait=off"
wait "$qmp_pid"
cat "$qmp_out" >> "$out"
check virtio_qemu_balloon_inflate eval 'passed &&
	has "^result: balloon actual=16384 target=16384$" &&
	grep -qx "target1 balloon_mb=64 actual=$(((RAM_MB - 64) << 20)) ok" "$qmp_out"'
check virtio_qemu_balloon_deflate eval 'passed &&
	has "^result: balloon actual=4096 target=4096$" &&
	grep -qx "target2 balloon_mb=16 actual=$(((RAM_MB - 16) << 20)) ok" "$qmp_out" &&
	has "^result: balloon done actual=4096 reached=2 .* deflated_checked=12288$"'
check virtio_qemu_balloon_stats eval 'passed &&
	grep -Eq "^stats total=$((RAM_MB << 20)) free=[1-9][0-9]* available=[1-9][0-9]* ok$" "$qmp_out" &&
	has "^result: balloon done .* stats=[1-9][0-9]* "'
check virtio_qemu_balloon_verify eval 'passed &&
	has "^result: balloon done .* verified=[1-9][0-9]* "'
# QEMU discards reported pages (MADV_DONTNEED): they read back as zeroes.
check virtio_qemu_balloon_free_page_reporting eval 'passed &&
	has "^result: balloon report pages=4096 runs=[0-9]+ requests=[1-9][0-9]* zeroed=4096 usable=4096$"'

# -------------------------------------------------------------------- net

if [ ! -c /dev/net/tun ]; then
	skip virtio_qemu_net "no /dev/net/tun"
	exit 0
fi
TAP=rkvtap$$
TAP=${TAP:0:15}
if ! ip tuntap add dev "$TAP" mode tap 2> "$TEST_TMP/tap.err"; then
	skip virtio_qemu_net "cannot create a TAP device: $(head -c 200 "$TEST_TMP/tap.err")"
	exit 0
fi
refl_pid=
cleanup() {
	[ -n "$refl_pid" ] && kill "$refl_pid" 2> /dev/null
	ip link del "$TAP" 2> /dev/null
}
trap cleanup EXIT
# The host's own chatter (IPv6 router solicitations...) is ignored by the
# guest anyway; keep it quiet.
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
n = 0
deadline = time.time() + seconds
while time.time() < deadline:
    if not select.select([s], [], [], 0.5)[0]:
        continue
    frame, addr = s.recvfrom(65536)
    if addr[2] == PACKET_OUTGOING or len(frame) < 14 or \
            int.from_bytes(frame[12:14], "big") != ETHERTYPE:
        continue
    s.send(frame[6:12] + frame[0:6] + frame[12:])
    n += 1
    if n % 1000 == 0:
        print("reflected %d" % n, flush=True)
EOF
python3 "$TEST_TMP/reflector.py" "$TAP" $((TIMEOUT * 5)) > "$TEST_TMP/reflector.out" 2>&1 &
refl_pid=$!
for _ in $(seq 50); do
	grep -q ready "$TEST_TMP/reflector.out" && break
	sleep 0.1
done

net_args=(-netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no"
	  -device "virtio-net-device,netdev=n0,mac=$MAC")

boot netecho "netecho frames=2000 size=256 depth=8" "${net_args[@]}"
check virtio_qemu_net_echo eval 'passed &&
	has "^virtio: virtio_mmio\.device=[0-9]+@0x[0-9a-f]+:[0-9]+: device 1 version 2 " &&
	has "^netecho: mac 52:54:00:12:34:56 " &&
	has "^result: netecho frames=2000 size=256 seconds=[0-9.]+ pps=[1-9][0-9]* mrg_rxbuf=1 csum=1 guest_csum=1 tso4=1 "'

boot netecho_full "netecho frames=1000 size=1514 depth=16" "${net_args[@]}"
check virtio_qemu_net_echo_full_size eval 'passed &&
	has "^result: netecho frames=1000 size=1514 .* merged=0 max_bufs=1 "'

# 256-byte receive buffers: each 1514-byte frame spans 6 of them.
boot netecho_mrg "netecho frames=500 size=1514 mrg=1 rxbuf=256" "${net_args[@]}"
check virtio_qemu_net_mrg_rxbuf eval 'passed &&
	has "^result: netecho frames=500 size=1514 .* mrg_rxbuf=1 .* rxbuf=256 merged=500 max_bufs=6 "'

# Nothing beyond VERSION_1 and MAC: whole-frame buffers, no offloads.
boot netecho_plain "netecho frames=500 size=1000 mrg_rxbuf=0 offload=0" "${net_args[@]}"
check virtio_qemu_net_no_offloads eval 'passed &&
	has "^result: netecho frames=500 size=1000 .* mrg_rxbuf=0 csum=0 guest_csum=0 tso4=0 rxbuf=2048 merged=0 "'

# Small buffers without MRG_RXBUF are refused by the driver, cleanly.
boot netecho_refuse "netecho frames=1 mrg_rxbuf=0 rxbuf=256" "${net_args[@]}"
check virtio_qemu_net_small_buffers_need_mrg eval '[ "$status" -eq 3 ] &&
	has "256-byte receive buffers need MRG_RXBUF"'
