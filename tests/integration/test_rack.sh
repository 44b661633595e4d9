#!/usr/bin/env bash
# The emulated test host itself (tests/rack/host), which every VM test on
# a machine without a usable /dev/kvm runs in: exit status carried out
# exactly, the machine's directory and environment, stdout and stderr kept
# apart, writes that vanish, a /dev/kvm that runs the bundled guest, NUMA
# nodes, two hosts on one rack network, and the timeout.  tests/run runs
# this script on the machine itself (it starts test hosts).
. "$(dirname "$0")/lib.sh"

HOST=tests/rack/host
# a host that froze (the emulated machine halted for good) is replaced
# once, as the suite does for the groups in its lanes
export RACK_RETRY_HUNG=1
out=$TEST_TMP/out
err=$TEST_TMP/err

run_cmd 10 "$out" "$HOST" run --cpus x -- true
check rack_rejects_bad_cpus bash -c "[ $status -eq 125 ] && grep -q 'positive number' '$out'"

# --- one host: status, directory, environment, streams, overlay, KVM ------
marker=build/rack-test-marker-$$
export RACK_TEST_VALUE="a value with spaces and 'quotes'"
timeout -k 5 300 "$HOST" run --quiet -- bash -c '
	echo "pwd=$PWD"
	echo "value=$RACK_TEST_VALUE"
	echo "to stderr" >&2
	echo written > '"$marker"' && echo "wrote=$(cat '"$marker"')"
	[ -c /dev/kvm ] && echo "kvm=yes"
	echo "procsub=$(cat <(echo works))"
	"$RACKVM" run --kernel "$GUEST_ELF" --cmdline hello > /dev/null 2>&1 && echo "guest=ok"
	exit 200' < /dev/null > "$out" 2> "$err"
status=$?
check rack_exit_status_exact bash -c "[ $status -eq 200 ]"
check rack_same_directory grep -qx "pwd=$PWD" "$out"
check rack_same_environment grep -qxF "value=$RACK_TEST_VALUE" "$out"
check rack_stdout_and_stderr_apart bash -c "grep -qx 'to stderr' '$err' && ! grep -q 'to stderr' '$out'"
check rack_writes_stay_inside bash -c "grep -qx 'wrote=written' '$out' && [ ! -e '$marker' ]"
check rack_dev_fd_for_process_substitution grep -qx "procsub=works" "$out"
check rack_has_kvm_that_runs_the_guest bash -c "grep -qx 'kvm=yes' '$out' && grep -qx 'guest=ok' '$out'"

# --- NUMA -------------------------------------------------------------------
run_cmd 300 "$out" "$HOST" run --quiet --numa 2 --cpus 2 -- \
	bash -c 'ls -d /sys/devices/system/node/node[0-9]* | wc -l; cat /sys/devices/system/node/node1/cpulist'
check rack_numa_two_nodes bash -c "[ $status -eq 0 ] && [ \"\$(head -n 1 '$out')\" = 2 ] && [ \"\$(sed -n 2p '$out')\" = 1 ]"

# --- two hosts on one rack network ------------------------------------------
# B serves 4 MiB of random bytes over TCP; A pings B, fetches the bytes and
# both print their checksum.  The network name is unique to this run, so a
# concurrent run on the same machine is on another segment.
net=rack-test-$$-$RANDOM
payload=$TEST_TMP/payload
head -c 4194304 /dev/urandom > "$payload"
want=$(sha256sum < "$payload" | cut -d' ' -f1)
timeout -k 5 400 "$HOST" run --quiet --net "$net" --addr 10.77.0.2/24 --name hostb -- \
	python3 -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.77.0.2", 7070))
s.listen(1)
s.settimeout(300)
c, _ = s.accept()
c.sendall(open(sys.argv[1], "rb").read())
c.shutdown(socket.SHUT_WR)
c.recv(1)  # the client closes once it has everything
print("served")
' "$payload" < /dev/null > "$TEST_TMP/b.out" 2>&1 &
b_pid=$!
timeout -k 5 400 "$HOST" run --quiet --net "$net" --addr 10.77.0.1/24 --name hosta -- bash -c '
	for i in $(seq 120); do ping -c 1 -W 1 10.77.0.2 > /dev/null 2>&1 && break; done
	ping -c 3 -W 2 10.77.0.2 > /dev/null && echo "ping=ok"
	python3 -c "
import socket, hashlib, time
for i in range(120):
    try:
        s = socket.create_connection((\"10.77.0.2\", 7070), timeout=5)
        break
    except OSError:
        time.sleep(1)
h = hashlib.sha256()
while True:
    d = s.recv(65536)
    if not d:
        break
    h.update(d)
s.close()
print(\"sha=\" + h.hexdigest())
"' < /dev/null > "$TEST_TMP/a.out" 2>&1
a_status=$?
wait "$b_pid"
b_status=$?
out=$TEST_TMP/a.out
check rack_network_ping bash -c "[ $a_status -eq 0 ] && grep -qx 'ping=ok' '$out'"
check rack_network_tcp_transfer grep -qx "sha=$want" "$out"
out=$TEST_TMP/b.out
check rack_network_server_side bash -c "[ $b_status -eq 0 ] && grep -qx served '$out'"

# --- timeout ----------------------------------------------------------------
out=$TEST_TMP/out
run_cmd 120 "$out" "$HOST" run --timeout 3 -- sleep 600
check rack_timeout_stops_the_host bash -c "[ $status -eq 125 ] && grep -q 'after --timeout 3 s' '$out'"
