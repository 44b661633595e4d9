#!/usr/bin/env bash
# Working-set estimation (rackvm run --wss) against the ground truth of
# the bundled guest's wsswork workload: phases with a known set of pages
# read, written or both, then idle.  How estimates are lined up with
# phases is described in wss_lib.sh.
#
# Truth per phase: the pages of the phase's set plus the runtime's own
# baseline (code, stack, data and page-table pages it touches while a
# phase runs: measured exactly by the --wss-sample full run below, at
# most WSS_BASELINE pages).  Checks:
#   - modes both (the default) and sample: every phase's estimate within
#     ±10% of the truth; the idle phase, whose truth is a few pages, within 1% of
#     guest RAM (one touched page in a 100-page sample of N pages already
#     estimates N/100: that is the sampler's resolution, not an error);
#   - mode dirty: write phases still within ±10%, read phases estimated
#     below half their truth (write logging cannot see reads: why
#     reference sampling exists);
#   - --wss-sample full on a small VM: within WSS_FULL_SLACK pages;
#   - the guest's checksum of its whole arena holds after every run (no
#     page lost or corrupted by revoking and restoring access), and the
#     check itself catches a corrupted page.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/wss_lib.sh"

out=$TEST_TMP/out
WSS_BASELINE=${WSS_BASELINE:-16}	# pages the runtime itself touches (4-6 measured)
WSS_FULL_SLACK=${WSS_FULL_SLACK:-4}
# Sizes of the runs.  The guest must sweep a phase's set in under half an
# interval while every sampled page faults.  In the emulated test host a
# fault costs ~0.15-1 ms instead of 30-200 us, so there the sets are an
# eighth (the mixed one a sixteenth), in a VM an eighth the size (the
# same shares of RAM, so the sampler's statistics are alike), with 1 s
# intervals.  The full-mode sets are a quarter of those here: at up to
# ~4 ms a fault under ASan there, a 1 MiB set took the guest up to 2 s
# to sweep, twice the interval.
if in_test_host; then
	INTERVAL_MS=1000 ival=1 PHASE_S=4 VM_MIB=128 FULL_MIB=64
	PHASES="w1,r16,r16@16,w1@16,m2,i" DIRTY_PHASES="w1,r16,r16@16,w1@16"
	FULL_PHASES="r256k,w128k@1,m256k,i"
else
	INTERVAL_MS=500 ival=0.5 PHASE_S=3 VM_MIB=1024 FULL_MIB=64
	PHASES="w16,r128,r128@128,w16@128,m32,i" DIRTY_PHASES="w16,r128,r128@128,w16@128"
	FULL_PHASES="r4,w2@4,m6,i"
fi

if ! have_kvm; then
	skip wss_tests "no usable /dev/kvm"
	exit 0
fi

# The checksum is the guest's alone: check it catches corruption first.
run_cmd 60 "$out" "$RACKVM" run --kernel "$GUEST_ELF" --mem 64M \
	--cmdline "wsswork phases=w1,r1@1,i phase_ms=200 corrupt=300"
check wsswork_verify_catches_corruption bash -c "[ $status -eq 8 ] && grep -q 'wsswork: 1 bad pages; first: arena page 300 ' '$out'"

if ! "$RACKVM" run --help 2>&1 | grep -q -- '--wss'; then
	skip wss_tests "rackvm has no --wss yet"
	exit 0
fi

# Accuracy runs use the release build next to $RACKVM when there is one:
# under ASan rackvm's sampler and its userfaultfd fault thread run several
# times slower, which delays the guest on every sampled page and skews the
# estimator's CPU figures, though not what it should find.  The full-mode
# run, which traps every page every interval and so exercises the
# no-data-loss path hardest, stays on $RACKVM (the sanitizer build).
WSS_RACKVM=$RACKVM
case $RACKVM in
*/asan/rackvm) [ -x "${RACKVM%/asan/rackvm}/rackvm" ] && WSS_RACKVM=${RACKVM%/asan/rackvm}/rackvm ;;
esac

# within EST TRUTH PCT [FLOOR]: |EST - TRUTH| <= max(PCT% of TRUTH, FLOOR)
within() {
	awk -v e="$1" -v t="$2" -v p="$3" -v f="${4:-0}" 'BEGIN {
		if (e !~ /^[0-9.]+$/) exit 1
		d = e - t; if (d < 0) d = -d
		tol = t * p / 100; if (tol < f) tol = f
		exit !(d <= tol) }'
}

# wss_case NAME MEM_MIB SECS RACKVM_ARGS... -- CMDLINE: runs wsswork under
# --wss and leaves the per-phase table in $TEST_TMP/NAME/phases, the
# console and stderr in $TEST_TMP/NAME/out, the status in $case_status.
wss_case() {
	local name=$1 mem=$2 secs=$3 dir=$TEST_TMP/$1 args=() cmdline
	shift 3
	while [ "$1" != -- ]; do args+=("$1"); shift; done
	cmdline=$2
	mkdir -p "$dir"
	wss_run "$dir" "$secs" "$WSS_BIN" run --kernel "$GUEST_ELF" \
		--mem "${mem}M" --wss=${INTERVAL_MS}ms --wss-csv "$dir/wss.csv" \
		"${args[@]}" --cmdline "$cmdline"
	cut -d' ' -f2- "$dir/con" "$dir/err" > "$dir/out"
	if [ -s "$dir/wss.csv" ]; then
		wss_phases "$dir" "$dir/wss.csv" "$ival" > "$dir/phases"
	else
		: > "$dir/phases"
	fi
	case_status=$status
}

# check_run NAME: the run ended well, the guest's checksums held.
check_run() {
	local dir=$TEST_TMP/$1 summary
	out=$dir/out
	summary=$(tail -n 1 "$dir/phases" 2>/dev/null)
	check "wss_${1}_run_ok" bash -c "[ $case_status -eq 0 ] && [ -s '$dir/wss.csv' ]"
	check "wss_${1}_guest_data_intact" bash -c "[ $case_status -eq 0 ] && [ '$(wss_get "$summary" verify_bad)' = 0 ]"
}

# phase_line NAME LINE RESULT WHY: ok/FAIL for one phase, with the
# figures; a failure also says if the guest could not keep up: the truth
# is "the whole set every interval" only if every interval holds a
# complete pass, i.e. the slowest pass took at most half an interval.
phase_line() {
	local name=$1 line=$2 res=$3 what slow
	what="est $(wss_get "$line" est) ±$(wss_get "$line" error) truth $truth (set $(wss_get "$line" pages) + baseline), $(wss_get "$line" rows) intervals"
	if [ "$res" = ok ]; then
		ok "$name ($what)"
		return
	fi
	slow=$(wss_get "$line" max_pass_us)
	if [ "$(wss_get "$line" kind)" != idle ] &&
		{ [ "${slow:-0}" = 0 ] || [ "$slow" -gt $((INTERVAL_MS * 500)) ]; }; then
		what+="; the guest could not sweep its set within an interval under tracking ($(wss_get "$line" passes) passes, slowest ${slow:-0} us, $(wss_get "$line" rate) touches/s): tracking overhead"
	fi
	fail "$name" "$what; $4"
}

# check_accuracy NAME: every phase of run NAME within 10% (idle: within
# 1% of guest RAM).
check_accuracy() {
	local line n kind est r floor
	while read -r line; do
		case $line in phase=*) ;; *) continue ;; esac
		n=$(wss_get "$line" phase)
		kind=$(wss_get "$line" kind)
		est=$(wss_get "$line" est)
		truth=$(($(wss_get "$line" pages) + WSS_BASELINE / 2))
		if [ "$(wss_get "$line" rows)" = 0 ]; then
			fail "wss_$1_phase${n}_$kind" "no steady-state interval lined up with the phase ($(tail -n 1 "$TEST_TMP/$1/phases"))"
		elif [ "$kind" = idle ]; then
			within "$est" "$truth" 10 $((ram_pages / 100)) && r=ok || r=fail
			phase_line "wss_$1_phase${n}_idle_near_zero" "$line" $r "more than 1% of RAM"
		else
			# In the test host a 1 MiB set is ~13 sampled pages an
			# interval: there the estimator's own 95% interval (its
			# error bar, when wider than 10%) is the bound.
			floor=0
			in_test_host && floor=$(wss_get "$line" error)
			within "$est" "$truth" 10 "${floor%.*}" && r=ok || r=fail
			phase_line "wss_$1_phase${n}_${kind}_within_10pct" "$line" $r "off by more than 10% (and by more than its error bar, ${floor%.*} pages, in the test host)"
		fi
	done < "$TEST_TMP/$1/phases"
}

# --- default mode (write logging and reference sampling) -------------------
# Write sets stay small: every write-protect fault of write logging costs
# ~30 us on nested KVM, and the guest must still write its whole set in
# well under an interval.  Reads only fault on sampled pages.
ram_pages=$((VM_MIB * 256))
WSS_BIN=$WSS_RACKVM
wss_case both "$VM_MIB" 120 -- "wsswork phases=$PHASES phase_s=$PHASE_S"
check_run both
check wss_line_format grep -Eq '^wss: t=[0-9.]+s wss=[0-9]+ pages' "$TEST_TMP/both/out"
csv_has_columns() {
	local c cols
	cols=",$(head -n 1 "$TEST_TMP/both/wss.csv" | tr -d '\r'),"
	for c in time wss_pages error_pages written_pages sampled touched_sampled estimator_cpu_ns; do
		[[ $cols == *",$c,"* ]] || return 1
	done
}
out=$TEST_TMP/both/wss.csv
check wss_csv_header csv_has_columns
check_accuracy both

# --- reference sampling alone ----------------------------------------------
wss_case sample "$VM_MIB" 120 --wss-mode sample -- "wsswork phases=$PHASES phase_s=$PHASE_S"
check_run sample
check_accuracy sample

# --- write logging alone: blind to reads -----------------------------------
wss_case dirty "$VM_MIB" 120 --wss-mode dirty -- "wsswork phases=$DIRTY_PHASES phase_s=$PHASE_S"
check_run dirty
while read -r line; do
	case $line in phase=*) ;; *) continue ;; esac
	n=$(wss_get "$line" phase)
	kind=$(wss_get "$line" kind)
	est=$(wss_get "$line" est)
	truth=$(($(wss_get "$line" pages) + WSS_BASELINE / 2))
	if [ "$(wss_get "$line" rows)" = 0 ]; then
		fail "wss_dirty_phase${n}_$kind" "no steady-state interval lined up with the phase"
	elif [ "$kind" = read ]; then
		awk -v e="$est" -v t="$truth" 'BEGIN { exit !(e ~ /^[0-9.]+$/ && e < t / 2) }' && r=ok || r=fail
		phase_line "wss_dirty_underestimates_phase${n}_read" "$line" $r "write logging alone should not see a read phase"
	else
		within "$est" "$truth" 10 && r=ok || r=fail
		phase_line "wss_dirty_phase${n}_${kind}_within_10pct" "$line" $r "off by more than 10%"
	fi
done < "$TEST_TMP/dirty/phases"

# --- every page trapped: exact on a small VM --------------------------------
# Every page faults once per interval here, at ~100-200 us a fault on
# nested KVM under ASan (twice for a written page: the trap and the write
# log), so the sets are small enough for a pass to take under 300 ms.
WSS_BIN=$RACKVM
wss_case full "$FULL_MIB" 120 --wss-sample full -- "wsswork phases=$FULL_PHASES phase_s=$PHASE_S"
check_run full
while read -r line; do
	case $line in phase=*) ;; *) continue ;; esac
	n=$(wss_get "$line" phase)
	kind=$(wss_get "$line" kind)
	est=$(wss_get "$line" est)
	pages=$(wss_get "$line" pages)
	truth="$pages..$((pages + WSS_BASELINE))"
	if [ "$(wss_get "$line" rows)" = 0 ]; then
		fail "wss_full_phase${n}_$kind" "no steady-state interval lined up with the phase"
		continue
	fi
	# exact: the set, plus at most the baseline, give or take the slack
	awk -v e="$est" -v p="$pages" -v b="$WSS_BASELINE" -v s="$WSS_FULL_SLACK" \
		'BEGIN { exit !(e ~ /^[0-9.]+$/ && e >= p - s && e <= p + b + s) }' && r=ok || r=fail
	phase_line "wss_full_phase${n}_${kind}_exact" "$line" $r "not within $WSS_FULL_SLACK pages"
done < "$TEST_TMP/full/phases"
exit 0
