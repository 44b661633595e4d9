#!/usr/bin/env bash
# rackvm's virtio-balloon and virtio-console through the CLI, with the
# bundled guest's drivers: the balloon follows targets set with
# `rackvm ctl --socket SOCK balloon SIZE` (the control API), inflated
# pages really leave the VMM
# (its VmRSS drops), deflate gives them back intact, statistics and free
# page reporting work; virtio-console output reaches its file and input
# reaches the guest.
. "$(dirname "$0")/lib.sh"

out=$TEST_TMP/out
sock=$TEST_TMP/ctl.sock

# --- options ---------------------------------------------------------------
run_cmd 10 "$out" "$RACKVM" run --balloon,sideways
check balloon_cli_rejects_bad_flag bash -c "[ $status -eq 2 ] && grep -q \"invalid --balloon flag 'sideways'\" '$out'"
run_cmd 10 "$out" "$RACKVM" run --balloon --balloon
check balloon_cli_rejects_two_balloons bash -c "[ $status -eq 2 ] && grep -q 'given twice' '$out'"
run_cmd 10 "$out" "$RACKVM" run --vconsole ""
check vconsole_cli_rejects_empty_file bash -c "[ $status -eq 2 ] && grep -q 'needs a file name' '$out'"
run_cmd 10 "$out" "$RACKVM" ctl --socket "$TEST_TMP/nobody.sock" info
check ctl_unreachable_exits_2 bash -c "[ $status -eq 2 ] && grep -q 'cannot reach' '$out'"

if ! have_kvm; then
	skip balloon_guest_tests "no usable /dev/kvm"
	exit 0
fi
run_cmd 30 "$out" "$RACKVM" run --cmdline nosuchworkload
if ! grep -q "^  balloon " "$out" || ! grep -q "^  vconsole " "$out"; then
	skip balloon_guest_tests "the bundled guest has no balloon/vconsole workload"
	exit 0
fi

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2> /dev/null; }

# --- balloon: RSS ----------------------------------------------------------
# The release binary: ASan keeps shadow memory and quarantines of its own,
# which move RSS by tens of MB on their own; the release build's RSS is
# guest RAM plus a small, steady rest.
#
# The guest first writes 98304 pages (384 MiB) for free page reporting
# (report=1), which rackvm discards, then writes them all again and frees
# them; its allocator reuses the most recently freed pages first, so the
# 65536 pages it inflates for a 256M balloon are pages it had written:
# RSS must fall by about 256 MiB.
rel=${RACKVM_RELEASE:-build/rackvm}
con=$TEST_TMP/rss.console
rm -f "$sock"
"$rel" run --mem 512M --balloon,free-page-reporting --api-socket "$sock" \
	--console "$con" --cmdline "balloon targets=2 seconds=100 verify=1 keep=1024 report=1 report_pages=98304" \
	< /dev/null > "$TEST_TMP/rss.err" 2>&1 &
pid=$!
out=$con
before= after= inflated=
if wait_for "$con" "^result: balloon report pages=98304 " 60; then
	sleep 0.5
	before=$(rss_kb "$pid")
	"$rel" ctl --socket "$sock" balloon 256M > "$TEST_TMP/ctl1" 2>&1
	ctl1=$?
	if wait_for "$con" "^result: balloon actual=65536 target=65536$" 60; then
		inflated=1
		after=$(rss_kb "$pid")
	fi
fi
echo "rss before=${before:-?} kB after inflate=${after:-?} kB" >> "$con"
echo "balloon RSS: before=${before:-?} kB after inflating 256M=${after:-?} kB"
check balloon_inflate_lowers_rss bash -c "[ -n '$inflated' ] && [ '${ctl1:-1}' -eq 0 ] && grep -qx 'balloon_target: 268435456' '$TEST_TMP/ctl1' &&
	[ $((${before:-0} - ${after:-0})) -ge $((200 * 1024)) ]"

# the guest's statistics: asked for by one read, shown by the next
"$rel" ctl --socket "$sock" --json memory > /dev/null 2>&1
sleep 1
"$rel" ctl --socket "$sock" --json memory > "$TEST_TMP/stats" 2>&1
out=$TEST_TMP/stats
check balloon_stats_in_the_api /usr/bin/python3 -c 'import json, sys
m = json.load(open(sys.argv[1]))
b = m["balloon"]
assert m["balloon_target"] == m["balloon_actual"] == 65536 * 4096, m
assert b["inflated_pages"] == 65536 and b["discard_errors"] == 0, b
assert b["guest_stats"]["mem_free"] > 0 and b["guest_stats"]["mem_total"] == 536870912, b' "$TEST_TMP/stats"
out=$con

"$rel" ctl --socket "$sock" balloon 64M > "$TEST_TMP/ctl2" 2>&1
wait "$pid"
status=$?
# rackvm's own last words, for the checks' failure reports
tail -n 3 "$TEST_TMP/rss.err" >> "$con"
check balloon_deflate_and_verify bash -c "[ $status -eq 0 ] &&
	grep -q '^result: balloon actual=16384 target=16384$' '$con' &&
	grep -Eq '^result: balloon done actual=16384 reached=2 stats=[1-9][0-9]* .* verified=[1-9][0-9]* deflated_checked=49152$' '$con'"
check balloon_free_page_reporting bash -c "grep -q '^result: balloon report pages=98304 runs=[0-9]* requests=[1-9][0-9]* zeroed=98304 usable=98304$' '$con'"
check api_socket_removed_at_exit bash -c "[ ! -e '$sock' ]"

# --- balloon under the sanitizers: refused sizes, deflate-on-oom ------------
con=$TEST_TMP/asan.console
out=$TEST_TMP/asan.err
rm -f "$sock"
"$RACKVM" run --mem 256M --balloon,deflate-on-oom --api-socket "$sock" \
	--console "$con" --cmdline "balloon targets=1 seconds=100 linger_ms=500" \
	< /dev/null > "$out" 2>&1 &
pid=$!
wait_for "$con" "^balloon: features " 60
"$RACKVM" ctl --socket "$sock" balloon lots > "$TEST_TMP/e1" 2>&1; e1=$?
"$RACKVM" ctl --socket "$sock" balloon 1G > "$TEST_TMP/e2" 2>&1; e2=$?
"$RACKVM" ctl --socket "$sock" balloon 4097 > "$TEST_TMP/e3" 2>&1; e3=$?
"$RACKVM" ctl --socket "$sock" frobnicate > "$TEST_TMP/e4" 2>&1; e4=$?
check ctl_rejects_bad_balloon_sizes bash -c "[ $e1 -eq 1 ] && grep -q 'invalid \"balloon_target\"' '$TEST_TMP/e1' &&
	[ $e2 -eq 1 ] && grep -q 'at most the guest.s RAM' '$TEST_TMP/e2' &&
	[ $e3 -eq 1 ] && grep -q 'multiple of 4K' '$TEST_TMP/e3' &&
	[ $e4 -eq 2 ] && grep -q \"unknown command or wrong arguments: 'frobnicate'\" '$TEST_TMP/e4'"
"$RACKVM" ctl --socket "$sock" balloon 32M > /dev/null 2>&1
wait "$pid"
status=$?
cat "$con" >> "$out"
check balloon_asan_deflate_on_oom bash -c "[ $status -eq 0 ] && grep -q 'deflate_on_oom=1' '$con' &&
	grep -q '^result: balloon actual=8192 target=8192$' '$con'"

# --- virtio-console ----------------------------------------------------------
vc=$TEST_TMP/vconsole.txt
out=$TEST_TMP/vc.out
run_cmd 60 "$out" "$RACKVM" run --vconsole "$vc" --cmdline "vconsole word=rackvm-check"
check vconsole_output_reaches_file bash -c "[ $status -eq 0 ] && grep -q '^result: vconsole wrote=' '$out' &&
	grep -qx 'rackvm guest virtio-console: rackvm-check' '$vc'"

fifo=$TEST_TMP/vc.in
mkfifo "$fifo"
(sleep 1; echo from-the-host > "$fifo") &
writer=$!
run_cmd 60 "$out" "$RACKVM" run --balloon --vconsole "$vc,in=$fifo" --cmdline "vconsole word=echo echo=1"
wait "$writer" 2> /dev/null
check vconsole_input_reaches_guest bash -c "[ $status -eq 0 ] && grep -q '^result: vconsole wrote=[0-9]* read=from-the-host$' '$out' &&
	grep -qx 'rackvm guest virtio-console: echo' '$vc'"
