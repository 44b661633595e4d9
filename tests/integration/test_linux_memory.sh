#!/usr/bin/env bash
# Debian's cloud kernel under rackvm's memory management, checked from both
# sides: the Linux test guest's memfill (tests/linux/progs/memfill.c)
# fills memory with a pattern per page and pass and reads it back (bad=0
# or the check fails), while the host measures what rackvm did.
#   - virtio-balloon: Linux's own driver follows the target set with
#     `rackvm ctl --socket SOCK balloon SIZE`: MemTotal falls by the
#     balloon, rackvm's VmRSS really falls, GET /vm/memory agrees, deflating gives
#     MemTotal back, memory held meanwhile is intact and the memory given
#     back is usable (case balloon.sh);
#   - free page reporting (--balloon,free-page-reporting): memory the
#     guest filled and freed leaves rackvm's RSS, and is usable again
#     (case page_reporting.sh);
#   - the pager (--mem-local) on a file: store and on rackvm memd over
#     loopback, memfill bigger than the local budget: bad=0 every pass,
#     the pager's stats line shows evictions and faults, resident within
#     the budget;
#   - --wss while memfill keeps a known set in use: estimates are there,
#     and within generous bounds of memfill's set (Linux's own pages add
#     to it).
# Runs in the emulated test host (linux_prepare): figures it measures are
# printed as "# ..." lines.  LINUX_MEMORY_PARTS picks parts (default
# "balloon reporting paging wss").
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh
. tests/integration/linux_lib.sh

linux_prepare

# 256 MiB guests: in the emulated test host the guest's first touch of
# each page is most of a case's time, and 256 MiB shows every effect.
export LINUX_MEM=256M
PAGES_PER_MIB=256
parts=" ${LINUX_MEMORY_PARTS:-balloon reporting paging wss} "
part() { [ -z "${parts##* $1 *}" ]; }

# rackvm_pid: the rackvm that linux_start started (under timeout).
rackvm_pid() { pgrep -P "$linux_pid" | head -n 1; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2> /dev/null; }
# at_most A B: A <= B, both numbers.
at_most() { [ -n "$1" ] && [ -n "$2" ] && [ "$1" -le "$2" ]; }

# --- the balloon --------------------------------------------------------------
if part balloon; then
sock=$TEST_TMP/balloon.sock
linux_start linux_balloon balloon 32 96 -- --balloon --api-socket "$sock"
before= after= ctl=1
if linux_wait_console '^# balloon ready' 300; then
	pid=$(rackvm_pid)
	before=$(rss_kib "$pid")
	"$RACKVM" ctl --socket "$sock" balloon 96M > "$TEST_TMP/ctl" 2>&1 && ctl=0
	if linux_wait_console '^# inflated' 240; then
		sleep 1
		after=$(rss_kib "$pid")
		"$RACKVM" ctl --socket "$sock" --json memory > "$TEST_TMP/stats" 2>&1
	fi
	"$RACKVM" ctl --socket "$sock" balloon 0 > /dev/null 2>&1
fi
linux_finish
linux_check_status linux_balloon_poweroff 0
echo "# linux_balloon: rackvm VmRSS before=${before:-?} kB, after inflating 96 MiB=${after:-?} kB"
check linux_balloon_control_accepted bash -c "[ $ctl -eq 0 ]"
check linux_balloon_rss_falls at_most "${after:-}" "$((${before:-0} - 72 * 1024))"
check linux_balloon_stats bash -c "grep -q '\"balloon_target\":100663296,\"balloon_actual\":100663296,' '$TEST_TMP/stats'"
fi

# --- free page reporting -------------------------------------------------------
if part reporting; then
sock=$TEST_TMP/reporting.sock
linux_start linux_reporting page_reporting -- --balloon,free-page-reporting \
	--api-socket "$sock"
peak=0 low= mib=
if linux_wait_console '^# filling mib=' 300; then
	pid=$(rackvm_pid)
	mib=$(sed -n 's/^# filling mib=//p' "$out" | head -n 1)
	# the highest RSS while memfill runs, until its memory is free again
	while kill -0 "$pid" 2> /dev/null; do
		r=$(rss_kib "$pid")
		[ -n "$r" ] && [ "$r" -gt "$peak" ] && peak=$r
		linux_console
		grep -q '^# freed' "$out" && break
		sleep 0.2
	done
	# then reporting must take at least half of memfill's memory away
	for _ in $(seq 600); do
		low=$(rss_kib "$pid")
		at_most "$low" "$((peak - mib * 1024 / 2))" && break
		sleep 0.2
	done
	"$RACKVM" ctl --socket "$sock" balloon 16M > /dev/null 2>&1
fi
linux_finish
linux_check_status linux_reporting_poweroff 0
echo "# linux_reporting: memfill ${mib:-?} MiB; rackvm VmRSS peak=$peak kB, after reporting=${low:-?} kB"
check linux_reporting_rss_falls at_most "${low:-}" "$((peak - ${mib:-0} * 1024 / 2))"
fi

# --- the pager ---------------------------------------------------------------------
# pager_ok LIMIT_MIB: the stats line in $err shows paging within the limit.
pager_ok() {
	local line
	line=$(grep -E '^pager: resident=' "$err" | tail -n 1)
	echo "# $linux_name: $line"
	[ -n "$line" ] &&
		[ "$(echo "$line" | sed -n 's/.* evictions=\([0-9]*\).*/\1/p')" -gt 0 ] &&
		[ "$(echo "$line" | sed -n 's/.* faults=\([0-9]*\).*/\1/p')" -gt 0 ] &&
		[ "$(echo "$line" | sed -n 's/^pager: resident=\([0-9]*\).*/\1/p')" -le $(($1 * PAGES_PER_MIB)) ]
}

if part paging; then
# a smaller VM and one pass (filled beyond the budget, then read back):
# in the emulated test host every page beyond the budget costs ~4 ms.
# Pages travel in clear here (seal=off): TCG runs libsodium's vector code
# ~100x slower, which made this part take 10 minutes; Linux's paging
# does not depend on it, and test_pager and test_chaos page sealed.
LINUX_MEM=256M LINUX_TIMEOUT=600 linux_run linux_paging_file memfill 128 1 -- \
	--mem-local 96M --mem-backend "file:$TEST_TMP/pages,seal=off"
linux_check_status linux_paging_file_poweroff 0
out=$err check linux_paging_file_stats pager_ok 96

"$RACKVM" memd --listen 127.0.0.1:0 --capacity 1G > "$TEST_TMP/memd.log" 2>&1 &
memd_pid=$!
memd_addr=
for _ in $(seq 100); do
	memd_addr=$(sed -n 's/^memd: listening on \([^,]*\),.*/\1/p' "$TEST_TMP/memd.log" | head -n 1)
	[ -n "$memd_addr" ] && break
	sleep 0.1
done
if [ -n "$memd_addr" ]; then
	LINUX_MEM=256M LINUX_TIMEOUT=600 linux_run linux_paging_memd memfill 128 1 -- \
		--mem-local 96M --mem-backend "memd:$memd_addr,seal=off"
	linux_check_status linux_paging_memd_poweroff 0
	out=$err check linux_paging_memd_stats pager_ok 96
else
	fail linux_paging_memd "rackvm memd did not start: $(tail -n 2 "$TEST_TMP/memd.log" | tr '\n' '|')"
fi
kill "$memd_pid" 2> /dev/null
wait "$memd_pid" 2> /dev/null
fi

# --- working-set estimation ----------------------------------------------------------
# memfill keeps WSS_MIB in use for many passes; the estimates of the
# intervals that lie wholly inside its run are compared with that set.
if part wss; then
# memfill keeps WSS_MIB in use pass after pass for WSS_SECONDS; the
# estimates of the intervals that lie wholly inside the passes after the
# first (which faults everything in) are compared with the pages it
# touches in one interval: all of its set when a pass is shorter than an
# interval, else the share of a pass an interval covers.
WSS_MIB=${WSS_MIB:-32}
WSS_INTERVAL=${WSS_INTERVAL:-2}
t0=$EPOCHREALTIME
export LINUX_TIMEOUT=900
linux_start linux_wss memfill "$WSS_MIB" "${WSS_SECONDS:-20}s" -- --wss="${WSS_INTERVAL}s"
# rackvm's interval clock starts after it loaded the guest: its offset
# from ours is taken from when its first estimate line shows up
offset=
for _ in $(seq 3000); do
	first=$(grep -m1 -E '^wss: t=' "$err" 2> /dev/null)
	if [ -n "$first" ]; then
		offset=$(echo "$first" | awk -v a="$t0" -v b="$EPOCHREALTIME" \
			'{ sub(/^wss: t=/, ""); print b - a - $1 + 0 }')
		break
	fi
	kill -0 "$linux_pid" 2> /dev/null || break
	sleep 0.1
done
ts= te=
linux_wait_console '^memfill: pass=1 ' 300 &&
	ts=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')
linux_wait_console '^memfill: done' 900 &&
	te=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { print b - a }')
linux_finish
unset LINUX_TIMEOUT
linux_check_status linux_wss_poweroff 0
grep -E '^wss: t=' "$err" | sed -n 's/^wss: t=\([0-9.]*\)s wss=\([0-9]*\) .*/\1 \2/p' |
	awk -v s="${ts:-1e9}" -v e="${te:-0}" -v i="$WSS_INTERVAL" -v o="${offset:-0}" \
		'$1 + o >= s + i + 0.5 && $1 + o <= e - 0.5 { print $2 }' |
	sort -n > "$TEST_TMP/wss.est"
n=$(wc -l < "$TEST_TMP/wss.est")
median=$(awk '{ v[NR] = $1 } END { if (NR) print v[int((NR + 1) / 2)] }' "$TEST_TMP/wss.est")
# a steady pass: (all passes' time - the first's) / (passes - 1)
pass_s=$(awk '/^memfill: pass=1 / { sub(/.*seconds=/, ""); first = $0 }
	/^memfill: done / { for (i = 1; i <= NF; i++) { split($i, kv, "=");
		if (kv[1] == "passes") n = kv[2]; if (kv[1] == "seconds") t = kv[2] } }
	END { if (n > 1) printf "%.3f", (t - first) / (n - 1) }' "$out")
set_pages=$((WSS_MIB * PAGES_PER_MIB))
expect=$(awk -v p="$set_pages" -v i="$WSS_INTERVAL" -v s="${pass_s:-0}" \
	'BEGIN { f = s > i ? i / s : 1; printf "%d", p * f }')
echo "# linux_wss: memfill $WSS_MIB MiB ($set_pages pages), a pass in ${pass_s:-?} s, so ~$expect pages per ${WSS_INTERVAL} s interval; from ${ts:-?} s to ${te:-?} s (rackvm's clock ${offset:-?} s behind): $n estimates inside, median ${median:-?}: $(tr '\n' ' ' < "$TEST_TMP/wss.est")"
check linux_wss_estimates_present bash -c "[ $n -ge 2 ]"
# generous: at least half of that, at most the set plus 128 MiB of Linux
check linux_wss_estimate_plausible bash -c "[ -n '$median' ] &&
	[ '$median' -ge $((expect / 2)) ] &&
	[ '$median' -le $(((WSS_MIB + 128) * PAGES_PER_MIB)) ]"
fi
exit 0
