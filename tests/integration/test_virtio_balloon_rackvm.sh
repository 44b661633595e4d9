#!/usr/bin/env bash
# rackvm's virtio-balloon and virtio-console through the CLI, with the
# bundled guest's drivers: the balloon follows targets set with
# `rackvm control SOCK balloon SIZE`, inflated pages really leave the VMM
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
run_cmd 10 "$out" "$RACKVM" control "$TEST_TMP/nobody.sock" help
check control_unreachable_exits_2 bash -c "[ $status -eq 2 ] && grep -q 'cannot reach' '$out'"

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
"$rel" run --mem 512M --balloon,free-page-reporting --control "$sock" \
	--console "$con" --cmdline "balloon targets=2 seconds=100 verify=1 keep=1024 report=1 report_pages=98304" \
	< /dev/null > "$TEST_TMP/rss.err" 2>&1 &
pid=$!
out=$con
before= after= inflated=
if wait_for "$con" "^result: balloon report pages=98304 " 60; then
	sleep 0.5
	before=$(rss_kb "$pid")
	"$rel" control "$sock" balloon 256M > "$TEST_TMP/ctl1" 2>&1
	ctl1=$?
	if wait_for "$con" "^result: balloon actual=65536 target=65536$" 60; then
		inflated=1
		after=$(rss_kb "$pid")
	fi
fi
echo "rss before=${before:-?} kB after inflate=${after:-?} kB" >> "$con"
echo "balloon RSS: before=${before:-?} kB after inflating 256M=${after:-?} kB"
check balloon_inflate_lowers_rss bash -c "[ -n '$inflated' ] && [ '${ctl1:-1}' -eq 0 ] && grep -qx ok '$TEST_TMP/ctl1' &&
	[ $((${before:-0} - ${after:-0})) -ge $((200 * 1024)) ]"

"$rel" control "$sock" balloon-stats > "$TEST_TMP/stats" 2>&1
out=$TEST_TMP/stats
check balloon_stats_command bash -c "grep -Eq '^ok target_pages=65536 actual_pages=65536 inflated_pages=65536 .* discard_errors=0 .* mem_free=[1-9][0-9]* .*mem_total=536870912 ' '$TEST_TMP/stats'"
out=$con

"$rel" control "$sock" balloon 64M > "$TEST_TMP/ctl2" 2>&1
wait "$pid"
status=$?
check balloon_deflate_and_verify bash -c "[ $status -eq 0 ] &&
	grep -q '^result: balloon actual=16384 target=16384$' '$con' &&
	grep -Eq '^result: balloon done actual=16384 reached=2 stats=[1-9][0-9]* .* verified=[1-9][0-9]* deflated_checked=49152$' '$con'"
check balloon_free_page_reporting bash -c "grep -q '^result: balloon report pages=98304 runs=[0-9]* requests=[1-9][0-9]* zeroed=98304 usable=98304$' '$con'"
check control_socket_removed_at_exit bash -c "[ ! -e '$sock' ]"

# --- balloon under the sanitizers: control errors, deflate-on-oom ----------
con=$TEST_TMP/asan.console
out=$TEST_TMP/asan.err
rm -f "$sock"
"$RACKVM" run --mem 256M --balloon,deflate-on-oom --control "$sock" \
	--console "$con" --cmdline "balloon targets=1 seconds=100 linger_ms=500" \
	< /dev/null > "$out" 2>&1 &
pid=$!
wait_for "$con" "^balloon: features " 60
"$RACKVM" control "$sock" balloon lots > "$TEST_TMP/e1" 2>&1; e1=$?
"$RACKVM" control "$sock" balloon 1G > "$TEST_TMP/e2" 2>&1; e2=$?
"$RACKVM" control "$sock" balloon 4097 > "$TEST_TMP/e3" 2>&1; e3=$?
"$RACKVM" control "$sock" frobnicate > "$TEST_TMP/e4" 2>&1; e4=$?
"$RACKVM" control "$sock" help > "$TEST_TMP/help" 2>&1
check control_rejects_bad_commands bash -c "[ $e1 -eq 1 ] && grep -q \"^error: invalid size 'lots'\" '$TEST_TMP/e1' &&
	[ $e2 -eq 1 ] && grep -q 'larger than guest RAM' '$TEST_TMP/e2' &&
	[ $e3 -eq 1 ] && grep -q 'not a multiple of 4K' '$TEST_TMP/e3' &&
	[ $e4 -eq 1 ] && grep -q \"unknown command 'frobnicate'\" '$TEST_TMP/e4' &&
	grep -q '^ok help: .*balloon SIZE' '$TEST_TMP/help'"
"$RACKVM" control "$sock" balloon 32M > /dev/null 2>&1
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
