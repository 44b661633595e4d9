#!/usr/bin/env bash
# rackvm hostd (docs/hostd-api.yaml) with bundled guests: its document
# against its routes; two VMs started over the API and listed running;
# bad configs (a kernel that is not there, impossible sizes, an unknown
# key, a duplicate name) refused with the reason and nothing started; a
# budget below the VMs' minimums refused at POST, PATCH and start; the
# host's metrics and the balancer's decisions; a VM started by hand in
# the runtime directory adopted; hostd killed -9 and started again with
# every VM still running, re-adopted with its settings; a VM stopped
# with SIGSTOP marked unresponsive and left alone; a VM killed -9 seen as
# crashed while hostd runs on; DELETE stopping a VM; `rackvm ctl --host`
# and `rackvm top` showing hostd's view.
. "$(dirname "$0")/lib.sh"

out=$TEST_TMP/out
body=$TEST_TMP/body
rt=$TEST_TMP/run
hsock=$rt/hostd.sock
PY=/usr/bin/python3
hostd_pid=
x_pid=

# api METHOD PATH [BODY]: hostd's status; the body goes to $body.
api() {
	curl -s -m 20 --unix-socket "$hsock" -o "$body" -w '%{http_code}' \
		-X "$1" ${3:+--data-binary "$3"} "http://localhost$2"
}
# vm NAME FIELD: FIELD of GET /vms/NAME ("" if none)
vm() {
	api GET "/vms/$1" > /dev/null
	$PY -c 'import json, sys
v = json.load(open(sys.argv[1])).get(sys.argv[2])
print("" if v is None else v)' "$body" "$2" 2> /dev/null
}
# wait_state NAME STATE SECONDS: true once GET /vms/NAME says STATE
wait_state() {
	local i
	for ((i = 0; i < $3 * 4; i++)); do
		[ "$(vm "$1" state)" = "$2" ] && return 0
		sleep 0.25
	done
	return 1
}
start_hostd() {
	"$RACKVM" hostd --memory 300M --runtime-dir "$rt" --period 0.5 \
		--stop-timeout 2 "$@" < /dev/null >> "$TEST_TMP/hostd.log" 2>&1 &
	hostd_pid=$!
	for _ in $(seq 100); do
		[ "$(api GET /vms)" = 200 ] && return 0
		sleep 0.1
	done
	return 1
}
# alive PID: a process that has not ended (a zombie has)
alive() { [ -r "/proc/$1/stat" ] && ! awk '{ exit !($3 == "Z") }' "/proc/$1/stat"; }
vm_pids() { pgrep -f "config $rt/" ; [ -n "$x_pid" ] && echo "$x_pid"; }
cleanup() {
	[ -n "$hostd_pid" ] && kill -9 "$hostd_pid" 2> /dev/null
	for p in $(vm_pids); do kill -CONT "$p"; kill -9 "$p"; done 2> /dev/null
}
trap cleanup EXIT

# --- docs/hostd-api.yaml: well-formed OpenAPI 3 and hostd's very routes -----
"$RACKVM" ctl --host routes > "$TEST_TMP/routes" 2>&1
$PY tests/integration/openapi_routes.py docs/hostd-api.yaml "$TEST_TMP/routes" > "$TEST_TMP/doc" 2>&1
out=$TEST_TMP/doc check hostd_doc_is_openapi_and_matches_the_routes grep -q '^routes 7$' "$TEST_TMP/doc"

run_cmd 10 "$out" "$RACKVM" hostd --runtime-dir "$rt"
check hostd_needs_a_budget bash -c "[ $status -eq 2 ] && grep -q 'give --memory' '$out'"
run_cmd 10 "$out" "$RACKVM" hostd --memory 1G --runtime-dir "$rt" --swap nfs:/x
check hostd_refuses_a_bad_swap bash -c "[ $status -eq 2 ] && grep -q \"invalid --swap 'nfs:/x'\" '$out'"

if ! have_kvm; then
	skip hostd_guest_tests "no usable /dev/kvm"
	exit 0
fi

# --- two VMs started over the API --------------------------------------------
if ! start_hostd; then
	fail hostd_starts "$(tail -n 3 "$TEST_TMP/hostd.log" | tr '\n' '|')"
	exit 0
fi
check hostd_runtime_dir_is_private [ "$(stat -c %a "$rt")" = 700 ]
expect hostd_post_starts_a_vm 201 '"name":"a".*"state":"starting"' POST /vms \
	'{"name": "a", "mem": "128M", "cmdline": "compute seconds=600", "shares": 2000}'
expect hostd_post_starts_a_second_vm 201 '"name":"b"' POST /vms \
	'{"name": "b", "mem": "256M", "cmdline": "wsswork phases=w16,r32 phase_s=300", "min": "96M"}'
wait_state a running 60 && wait_state b running 60
api GET /vms > /dev/null
out=$body check hostd_lists_both_running $PY -c 'import json, sys
vms = {v["name"]: v for v in json.load(open(sys.argv[1]))["vms"]}
assert vms["a"]["state"] == vms["b"]["state"] == "running", vms
assert vms["a"]["shares"] == 2000 and vms["b"]["min"] == 96 << 20
assert not vms["a"]["adopted"] and vms["a"]["pid"] > 0' "$body"
check hostd_vm_console_and_config_in_the_runtime_dir \
	bash -c "[ -f '$rt/a.console' ] && grep -q '\"api_socket\": \"$rt/a.sock\"' '$rt/a.json' && grep -q free_page_reporting '$rt/a.json'"

# --- bad configs: 400 with the reason, nothing started ------------------------
before=$(vm_pids | wc -l)
expect hostd_refuses_a_missing_kernel 400 'cannot read /nonexistent/vmlinuz' POST /vms \
	'{"name": "bad1", "kernel": "/nonexistent/vmlinuz"}'
expect hostd_refuses_an_impossible_size 400 'invalid --mem' POST /vms \
	'{"name": "bad2", "mem": "1000"}'
expect hostd_refuses_min_over_ram 400 'min.. \(134217728 bytes\) is more than the VM.s RAM' POST /vms \
	'{"name": "bad3", "mem": "64M", "min": "128M"}'
expect hostd_refuses_an_unknown_key 400 'memory' POST /vms \
	'{"name": "bad4", "memory": "1G"}'
expect hostd_refuses_a_duplicate_name 409 'a VM named a exists' POST /vms \
	'{"name": "a", "mem": "64M"}'
expect hostd_refuses_no_name 400 'name.. is missing' POST /vms '{"mem": "64M"}'
sleep 1
check hostd_bad_configs_start_nothing bash -c "[ $(vm_pids | wc -l) -eq $before ] && ! ls '$rt'/bad* 2> /dev/null"

# --- the budget holds the minimums --------------------------------------------
# budget 300M; minimums: a 64M (the default), b 96M
expect hostd_post_over_the_budget_is_409 409 'minimums would be 360 MiB, over hostd.s budget of 300 MiB' \
	POST /vms '{"name": "c", "mem": "512M", "min": "200M"}'
expect hostd_patch_over_the_budget_is_409 409 'minimums would be 314 MiB, over hostd.s budget' \
	PATCH /vms/b '{"min": "250M", "shares": 1}'
check hostd_refused_patch_changes_nothing [ "$(vm b shares).$(vm b min)" = 1000.0.$((96 << 20)) ]
expect hostd_patch_sets_shares 200 '"shares":3000' PATCH /vms/a '{"shares": 3000, "policy": "balloon"}'
expect hostd_patch_refuses_bad_values 400 'policy' PATCH /vms/a '{"policy": "fast"}'
run_cmd 20 "$out" "$RACKVM" hostd --memory 100M --runtime-dir "$rt"
check hostd_start_refuses_a_budget_below_the_minimums \
	bash -c "[ $status -eq 2 ] && grep -q 'budget (100 MiB) is smaller than the sum of the running VMs. minimums (160 MiB)' '$out'"

# --- metrics and the balancer's decisions -------------------------------------
sleep 1
api GET /metrics > /dev/null
out=$body check hostd_metrics_have_budget_and_targets \
	bash -c "grep -qx 'rackvm_host_budget_bytes 314572800' '$body' && grep -Eq '^rackvm_host_vm_target_bytes\{vm=\"a\"\} [0-9]+' '$body' && grep -Eq '^rackvm_host_vm_target_bytes\{vm=\"b\"\} [0-9]+' '$body'"
api GET /balancer/log > /dev/null
out=$body check hostd_balancer_log_has_decisions $PY -c 'import json, sys
lines = json.load(open(sys.argv[1]))["lines"]
assert lines, "no lines"
names = {v["vm"] for v in lines[-1]["vms"]}
assert names == {"a", "b"}, names' "$body"
check hostd_decision_log_file_grows [ "$(wc -l < "$rt/balancer.jsonl")" -ge 2 ]
expect hostd_balancer_log_since 200 '^\{"lines":\[\]\}' GET '/balancer/log?since=1e12'

# --- a VM started by hand in the runtime directory is adopted -----------------
"$RACKVM" run --api-socket "$rt/x.sock" --mem 64M --cmdline "compute seconds=600" \
	< /dev/null > "$TEST_TMP/x.log" 2>&1 &
x_pid=$!
wait_state x running 60
check hostd_adopts_a_hand_started_vm bash -c "[ '$(vm x adopted)' = True ] && [ '$(vm x pid)' = $x_pid ]"

# --- ctl --host and top ---------------------------------------------------------
"$RACKVM" ctl --host --socket "$hsock" vms > "$TEST_TMP/ctl" 2>&1
out=$TEST_TMP/ctl check hostd_ctl_lists_the_vms \
	bash -c "grep -q '^budget 300M' '$TEST_TMP/ctl' && grep -Eq '^a +running +128M' '$TEST_TMP/ctl' && grep -Eq '^x +running +64M' '$TEST_TMP/ctl'"
"$RACKVM" ctl --host --socket "$hsock" set a shares=2500 > "$TEST_TMP/ctl" 2>&1
out=$TEST_TMP/ctl check hostd_ctl_set grep -qx 'shares: 2500.0' "$TEST_TMP/ctl"
"$RACKVM" top --runtime-dir "$rt" --once > "$TEST_TMP/top" 2>&1
out=$TEST_TMP/top check hostd_top_shows_targets_and_levers \
	bash -c "grep -q '^hostd: budget 300M' '$TEST_TMP/top' && grep -q 'TARGET LEVER' '$TEST_TMP/top' && grep -Eq '^a .* [0-9.]+[KMG] [a-z+]+$' '$TEST_TMP/top' && ! grep -q '^hostd ' '$TEST_TMP/top'"

# --- kill -9 hostd: every VM lives on, re-adopted with its settings -------------
a_pid=$(vm a pid) b_pid=$(vm b pid)
kill -9 "$hostd_pid"
wait "$hostd_pid" 2> /dev/null
sleep 1
all_alive() { for p; do alive "$p" || return 1; done; }
check hostd_killed_vms_live_on all_alive "$a_pid" "$b_pid" "$x_pid"
start_hostd
wait_state a running 10
api GET /vms > /dev/null
out=$body check hostd_restarted_readopts_with_settings $PY -c 'import json, sys
vms = {v["name"]: v for v in json.load(open(sys.argv[1]))["vms"]}
a, b = vms["a"], vms["b"]
assert a["state"] == "running" and a["adopted"] and a["pid"] == int(sys.argv[2]), a
assert a["shares"] == 2500 and a["policy"] == "balloon", a
assert b["min"] == 96 << 20 and b["pid"] == int(sys.argv[3]), b
assert vms["x"]["state"] == "running", vms["x"]' "$body" "$a_pid" "$b_pid"

# --- unresponsive: marked, left alone ------------------------------------------
kill -STOP "$b_pid"
wait_state b unresponsive 10
check hostd_stopped_vm_is_unresponsive [ "$(vm b state)" = unresponsive ]
sleep 2
left_alone() { alive "$b_pid" && [ "$(vm b state)" = unresponsive ]; }
check hostd_leaves_an_unresponsive_vm_alone left_alone
kill -CONT "$b_pid"
wait_state b running 10
check hostd_unresponsive_vm_comes_back [ "$(vm b state)" = running ]

# --- crashes: hostd runs on ----------------------------------------------------
kill -9 "$x_pid"
wait "$x_pid" 2> /dev/null
x_pid=
wait_state x gone 10
check hostd_sees_a_killed_adopted_vm_gone [ "$(vm x state)" = gone ]
expect hostd_post_after_restart 201 '"name":"c"' POST /vms \
	'{"name": "c", "mem": "64M", "cmdline": "compute seconds=600"}'
wait_state c running 60
c_pid=$(vm c pid)
kill -9 "$c_pid"
wait_state c crashed 10
check hostd_sees_its_child_crash bash -c "[ '$(vm c state)' = crashed ] && [ '$(vm c why)' = 'killed by signal 9 (Killed)' ] && kill -0 $hostd_pid"
expect hostd_delete_forgets_an_ended_vm 200 '"state":"forgotten"' DELETE /vms/c
check hostd_forgotten_vm_files_removed bash -c "[ ! -e '$rt/c.json' ] && [ ! -e '$rt/c.settings' ]"

# --- DELETE: shutdown, stop, gone ----------------------------------------------
expect hostd_delete_stops_a_vm 202 '"state":"stopping"' DELETE /vms/b
for _ in $(seq 80); do [ "$(api GET /vms/b)" = 404 ] && break; sleep 0.25; done
forgotten() { [ "$(api GET "/vms/$1")" = 404 ] && ! alive "$2"; }
out=$body check hostd_deleted_vm_is_gone forgotten b "$b_pid"
"$RACKVM" ctl --host --socket "$hsock" stop a > "$TEST_TMP/ctl" 2>&1
out=$TEST_TMP/ctl check hostd_ctl_stop_waits_until_gone grep -qx 'a: stopped' "$TEST_TMP/ctl"
check hostd_ctl_stopped_vm_is_gone forgotten a "$a_pid"
expect hostd_unknown_vm_404 404 'no VM named zz' GET /vms/zz

# --- a clean end: SIGTERM, exit 0 (and no leak) -----------------------------------
kill -TERM "$hostd_pid"
wait "$hostd_pid"
status=$?
out=$TEST_TMP/hostd.log check hostd_sigterm_exits_0 [ "$status" -eq 0 ]
hostd_pid=
