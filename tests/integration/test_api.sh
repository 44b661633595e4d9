#!/usr/bin/env bash
# The control API (docs/api.yaml) with curl --unix-socket against running
# bundled guests: every route, pause and resume seen by the guest (no
# output while paused, its clock stopped with it; output again after), a
# mem_local cut
# that makes resident memory fall, a balloon target the guest's driver
# follows, /metrics in the Prometheus format, bad input of every kind
# answered with its error (malformed HTTP, a 10 MiB body, invalid JSON,
# wrong types, negative and huge sizes, unknown routes and methods, a
# client sending a byte a second), and 50 concurrent clients while the
# guest runs a checksummed workload that still verifies.
. "$(dirname "$0")/lib.sh"

out=$TEST_TMP/out
sock=$TEST_TMP/api.sock
body=$TEST_TMP/body
PY=/usr/bin/python3	# Debian's, with python3-prometheus-client

# api METHOD PATH [BODY]: prints the HTTP status; the body goes to $body.
api() {
	curl -s -m 20 --unix-socket "$sock" -o "$body" -w '%{http_code}' \
		-X "$1" ${3:+--data-binary "$3"} "http://localhost$2"
}
# field NAME: NAME's value in the JSON of $body (dots for nested keys)
field() {
	$PY -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v)' "$body" "$1" 2> /dev/null
}

# --- docs/api.yaml: well-formed OpenAPI 3 and the server's very routes ------
"$RACKVM" ctl routes > "$TEST_TMP/routes" 2>&1
$PY tests/integration/openapi_routes.py docs/api.yaml "$TEST_TMP/routes" > "$TEST_TMP/doc" 2>&1
out=$TEST_TMP/doc check api_doc_is_openapi_and_matches_the_routes grep -q '^routes 14$' "$TEST_TMP/doc"

run_cmd 10 "$out" "$RACKVM" run --name 'a/b'
check api_name_is_checked bash -c "[ $status -eq 2 ] && grep -q \"invalid --name 'a/b'\" '$out'"

if ! have_kvm; then
	skip api_guest_tests "no usable /dev/kvm"
	exit 0
fi

# --- the default socket of --name ------------------------------------------
name=apitest-$$
if [ "$(id -u)" -eq 0 ]; then dsock=/run/rackvm/$name.sock; else dsock=${XDG_RUNTIME_DIR:-}/rackvm/$name.sock; fi
if [ "$(id -u)" -ne 0 ] && [ -z "${XDG_RUNTIME_DIR:-}" ]; then
	skip api_default_socket "not root and no XDG_RUNTIME_DIR: no default socket"
else
"$RACKVM" run --name "$name" --cmdline "compute seconds=600" < /dev/null > "$out" 2>&1 &
pid=$!
if wait_sock "$dsock"; then
	mode=$(stat -c %a "$dsock") dmode=$(stat -c %a "$(dirname "$dsock")")
	sock=$dsock
	expect api_default_socket_serves_the_name 200 "\"name\":\"$name\"" GET /vm
	"$RACKVM" ctl --name "$name" info > "$TEST_TMP/ctl" 2>&1
	out=$TEST_TMP/ctl check api_ctl_finds_the_vm_by_name bash -c "[ $? -eq 0 ] && grep -qx 'name: $name' '$TEST_TMP/ctl'"
	check api_socket_mode_0600_in_0700_dir [ "$mode.$dmode" = 600.700 ]
	expect api_stop_ends_the_vm 200 '"state":"stopped"' PUT /vm/stop
else
	fail api_default_socket_serves_the_name "no socket at $dsock: $(tail -n 3 "$out" | tr '\n' '|')"
fi
for _ in $(seq 300); do kill -0 $pid 2> /dev/null || break; sleep 0.1; done
kill -9 $pid 2> /dev/null
wait $pid
status=$?
check api_stopped_vm_exits_0_and_removes_socket bash -c "[ $status -eq 0 ] && [ ! -e '$dsock' ]"
fi
sock=$TEST_TMP/api.sock

# --- the main guest: wsswork (checksummed), pager, WSS ----------------------
# 16 phases of 2 s (6 s) over a 32 MiB arena; it verifies every page at the end.
# It must outlast the requests below: in the emulated test host, where
# each curl and python costs ~0.5 s, phases three times as long.
con=$TEST_TMP/main.console
phases=w8,r8,w8,r8,w8,r8,w8,r8,w8,r8,w8,r8,w8,r8,w8,r8
phase_s=2
if in_test_host; then
	phase_s=6
fi
"$RACKVM" run --api-socket "$sock" --name main --mem 128M --mem-local 96M \
	--wss=500ms --console "$con" \
	--cmdline "wsswork phases=$phases phase_s=$phase_s arena=32" \
	< /dev/null > "$out" 2>&1 &
pid=$!
out=$con
wait_sock "$sock" && wait_for "$con" "^wsswork: phase=1 start" 120

expect api_get_vm 200 '"name":"main".*"state":"running"' GET /vm
expect api_get_vm_has_boot_config 200 '"config":\{.*"mem":134217728' GET /vm
expect api_get_vcpus 200 '"vcpus":\[\{"id":0,"state":"running","cpu_seconds":[0-9.e-]+,"exits_total":[1-9]' GET /vm/vcpus
expect api_get_devices 200 '"devices":\[\]' GET /vm/devices
expect api_get_memory 200 '"size":134217728,"resident":[1-9][0-9]*,.*"mem_local":100663296,.*"host_resident":[1-9][0-9]*' GET /vm/memory
expect api_get_pager 200 '"limit_pages":24576,.*"fault_latency":\{"p50_us"' GET /vm/memory/pager

# pause: the guest sees a gap of the pause's length in its clock
expect api_pause 200 '^\{"state":"paused"\}$' PUT /vm/state '{"state":"paused"}'
expect api_pause_is_idempotent 200 '"paused"' PUT /vm/state '{"state":"paused"}'
expect api_get_vm_paused 200 '"state":"paused"' GET /vm
expect api_metrics_state_paused 200 '^rackvm_vm_state\{vm="main",state="paused"\} 1$' GET /metrics
lines=$(wc -l < "$con")
sleep 3
lines_after=$(wc -l < "$con")
expect api_resume 200 '^\{"state":"running"\}$' PUT /vm/state '{"state":"running"}'
# a phase line every 2 s of guest time: none in 3 s paused, more after
check api_paused_guest_printed_nothing [ "$lines" = "$lines_after" ]
for _ in $(seq 100); do [ "$(wc -l < "$con")" -gt "$lines_after" ] && break; sleep 0.1; done
check api_resumed_guest_goes_on [ "$(wc -l < "$con")" -gt "$lines_after" ]

# the WSS series: points since a time
expect api_wss_series 200 '"points":\[\{"time":[0-9.]+,"wss_pages"' GET '/vm/memory/wss?since=0'
sleep 1
api GET /vm/memory/wss > /dev/null
last=$(field points.-1.time)
all=$($PY -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["points"]))' "$body" 2> /dev/null)
got=$(api GET "/vm/memory/wss?since=${last:-x}")
# only points after it: new ones may have come meanwhile (one per 500 ms;
# several, where a python start takes a second), never it or older ones
out=$body check api_wss_since_filters $PY -c 'import json, sys
p = json.load(open(sys.argv[1]))["points"]
assert sys.argv[2] == "200" and int(sys.argv[4]) > 0 and all(x["time"] > float(sys.argv[3]) for x in p)' "$body" "$got" "${last:-x}" "${all:-0}"

# /metrics: parsed by prometheus_client, every sample labelled vm="main"
api GET /metrics > /dev/null
if $PY -c 'import prometheus_client' 2> /dev/null; then
	$PY - "$body" > "$TEST_TMP/prom" 2>&1 <<'EOF'
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = list(text_string_to_metric_families(open(sys.argv[1]).read()))
names = {f.name for f in fams}
for f in fams:
    for s in f.samples:
        assert s.labels.get("vm") == "main", s
    if f.type == "counter":
        assert all(s.name.endswith("_total") for s in f.samples), f.name
need = {"rackvm_vm_state", "rackvm_vcpu_exits", "rackvm_vcpu_cpu_seconds", "rackvm_memory_resident_bytes",
        "rackvm_memory_local_limit_bytes", "rackvm_wss_bytes",
        "rackvm_pager_faults", "rackvm_pager_fault_latency_seconds"}
assert need <= names, need - names
print("families", len(fams))
EOF
	out=$TEST_TMP/prom check api_metrics_parse_as_prometheus grep -q '^families' "$TEST_TMP/prom"
else
	skip api_metrics_parse_as_prometheus "no python3-prometheus-client"
fi

# mem_local lowered: the pager evicts and resident memory falls
api GET /vm/memory > /dev/null
before=$(field resident)
expect api_patch_mem_local 200 '"mem_local":8388608' PATCH /vm/memory '{"mem_local":"8M"}'
after=
for _ in $(seq 100); do
	api GET /vm/memory > /dev/null
	after=$(field resident)
	[ -n "$after" ] && [ "$after" -le $((8 << 20)) ] && break
	sleep 0.2
done
echo "# resident before=$before after mem_local=8M: $after"
check api_mem_local_lowers_resident bash -c "[ ${before:-0} -gt $((16 << 20)) ] && [ ${after:-999999999} -le $((8 << 20)) ]"
expect api_patch_mem_local_raise 200 '"mem_local":100663296' PATCH /vm/memory '{"mem_local":100663296}'

# --- bad input: each gets its error, the VM runs on -------------------------
expect api_unknown_route_404 404 '"error":' GET /vm/nothing
expect api_wrong_method_405 405 '"error":"DELETE is not allowed' DELETE /vm/memory
expect api_invalid_json_400 400 '"error":"invalid JSON' PUT /vm/state '{"state":'
expect api_wrong_type_400 400 'must be \\"running\\" or \\"paused\\"' PUT /vm/state '{"state":true}'
expect api_unknown_field_400 400 'unknown field \\"memory\\"' PATCH /vm/memory '{"memory":"1G"}'
expect api_negative_size_400 400 'invalid \\"mem_local\\"' PATCH /vm/memory '{"mem_local":-4096}'
expect api_huge_size_400 400 'invalid \\"mem_local\\"' PATCH /vm/memory '{"mem_local":"999999999999T"}'
expect api_size_over_ram_400 400 'mem_local must be' PATCH /vm/memory '{"mem_local":"1T"}'
expect api_no_balloon_409 409 'no balloon' PATCH /vm/memory '{"balloon_target":"4M"}'
expect api_bad_since_400 400 'invalid since' GET '/vm/memory/wss?since=-3'
head -c $((10 << 20)) /dev/zero | tr '\0' 'x' > "$TEST_TMP/big"
expect api_10mib_body_413 413 'larger than 65536 bytes' PATCH /vm/memory "@$TEST_TMP/big"
# a bad header: 400; an unknown version: 505; bytes that are no request:
# the connection is closed (at once, or after the 10 s idle timeout)
$PY - "$sock" > "$TEST_TMP/raw" 2>&1 <<'EOF'
import socket, sys
for req in [b"GET /vm HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
            b"GET /vm HTTP/7.0\r\nHost: x\r\n\r\n",
            b"\x00\xff garbage \r\n\r\n"]:
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(30)
    s.connect(sys.argv[1])
    s.sendall(req)
    try:
        reply = s.recv(100)
        print(reply.split(b"\r\n")[0].decode() or "closed")
    except socket.timeout:
        print("still open after 30 s")
EOF
out=$TEST_TMP/raw check api_malformed_http_refused bash -c "[ \"\$(tr '\n' '|' < '$TEST_TMP/raw')\" = 'HTTP/1.1 400 Bad Request|HTTP/1.1 505 HTTP Version Not Supported|closed|' ]"
out=$con

# a client sending a byte a second does not hold up the others
$PY - "$sock" > "$TEST_TMP/slow" 2>&1 <<'EOF' &
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
for b in b"GET /vm HTTP/1.1\r\nHost: x\r\n\r\n"[:8]:
    s.send(bytes([b]))
    time.sleep(1)
print("slow client done")
EOF
slow=$!
sleep 1.5
t0=$(date +%s%N)
got=$(api GET /vm)
ms=$((($(date +%s%N) - t0) / 1000000))
wait $slow
check api_slow_client_does_not_block_others bash -c "[ '$got' = 200 ] && [ $ms -lt 3000 ]"

# 50 concurrent clients while the guest works
for i in $(seq 50); do
	p=$([ $((i % 2)) = 0 ] && echo /metrics || echo /vm)
	curl -s -m 60 --unix-socket "$sock" -o /dev/null -w '%{http_code}\n' "http://localhost$p" > "$TEST_TMP/c.$i" &
done
wait $(jobs -p | grep -v "^$pid$") 2> /dev/null
codes=$(cat "$TEST_TMP"/c.* | sort | uniq -c | tr -s ' ' | tr '\n' '|')
echo "# 50 clients: $codes"
check api_50_concurrent_clients [ "$codes" = " 50 200|" ]
# the VM is still there after all that; in a slow test host the
# workload may have ended by now, its end (status 0, data verified) is
# then what proves it, checked below
# (one request decides: the workload may end between two)
: > "$body"
code=$(api GET /vm)
if [ "$code" = 200 ] && grep -q '"state":"running"' "$body"; then
	ok api_vm_still_running
elif grep -q '^result: wsswork verify ' "$con"; then
	echo "# api: the guest's workload ended before this check (GET /vm -> $code $(field state))"
	ok api_vm_still_running
else
	fail api_vm_still_running "GET /vm -> $code $(head -c 300 "$body")"
fi

wait $pid
status=$?
out=$con
check api_guest_workload_verifies bash -c "[ $status -eq 0 ] && grep -q '^result: wsswork verify pages=8192 bad=0$' '$con'"
check api_socket_removed_at_exit [ ! -e "$sock" ]

# --- the balloon: a target the guest's driver follows ------------------------
con=$TEST_TMP/balloon.console
"$RACKVM" run --api-socket "$sock" --mem 128M --balloon --console "$con" \
	--cmdline "balloon targets=3 seconds=100" < /dev/null > "$TEST_TMP/b.err" 2>&1 &
pid=$!
out=$con
wait_sock "$sock" && wait_for "$con" "^balloon: features " 60
expect api_get_devices_balloon 200 '"name":"virtio-balloon0"' GET /vm/devices
expect api_balloon_over_ram_400 400 'at most the guest' PATCH /vm/memory '{"balloon_target":"129M"}'
expect api_no_pager_409 409 'no pager' PATCH /vm/memory '{"mem_local":"64M"}'
expect api_patch_balloon 200 '"balloon_target":33554432' PATCH /vm/memory '{"balloon_target":"32M"}'
wait_for "$con" "^result: balloon actual=8192 target=8192$" 60
expect api_balloon_actual_follows 200 '"balloon_actual":33554432' GET /vm/memory
# rackvm ctl: 0 done, 1 refused by the VM (its error said), 2 unreachable
# or bad usage
ctl() { "$RACKVM" ctl --socket "$sock" "$@" > "$TEST_TMP/ctl.out" 2> "$TEST_TMP/ctl.err"; echo $?; }
r1=$(ctl pause); g1=$(cat "$TEST_TMP/ctl.out")
r2=$(ctl resume)
r3=$(ctl balloon 16M)
r4=$(ctl balloon lots); e4=$(cat "$TEST_TMP/ctl.err")
r5=$(ctl mem-local 64M); e5=$(cat "$TEST_TMP/ctl.err")
r6=$(ctl --json info); j6=$($PY -c 'import json, sys; print(json.load(open(sys.argv[1]))["state"])' "$TEST_TMP/ctl.out" 2>&1)
r7=$(ctl raw GET /nope)
r8=$(ctl wss); e8=$(cat "$TEST_TMP/ctl.err")
r9=$(ctl metrics); m9=$(grep -c '^rackvm_balloon_target_bytes{vm=".*"} 16777216$' "$TEST_TMP/ctl.out")
r10=$(ctl frobnicate)
r11=$("$RACKVM" ctl --socket "$TEST_TMP/nobody.sock" info 2> "$TEST_TMP/ctl.err"; echo $?); e11=$(cat "$TEST_TMP/ctl.err")
got="$r1 $g1|$r2|$r3|$r4 $e4|$r5 $e5|$r6 $j6|$r7|$r8 $e8|$r9 $m9|$r10|$r11 $e11"
echo "# ctl: $got"
want='0 state: paused|0|0|1 rackvm ctl: invalid "balloon_target": *|1 rackvm ctl: this VM has no pager*|0 running|1|1 rackvm ctl: this VM has no WSS monitor*|0 1|2|2 rackvm ctl: cannot reach*'
check api_ctl_commands_and_exit_codes bash -c '[[ $1 == $2 ]]' _ "$got" "$want"

expect api_shutdown_without_acpi_listener 200 '"state":"shutting_down"' PUT /vm/shutdown
expect api_pause_while_shutting_down_409 409 'not possible while the VM is shutting_down' PUT /vm/state '{"state":"paused"}'
expect api_stop_after_shutdown 200 '"state":"stopped"' PUT /vm/stop
wait $pid
status=$?
check api_balloon_vm_ends bash -c "[ $status -eq 0 ] && [ ! -e '$sock' ]"
