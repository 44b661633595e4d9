#!/usr/bin/env bash
# Snapshots (PUT /vm/snapshot, rackvm run --restore): the bundled guest's
# ticker workload (a console line and memory writes per tick, the LAPIC
# timer between ticks) on 2 vCPUs is paused mid-run, saved and stopped;
# the snapshot resumed, eagerly and lazily, must print every later tick
# exactly once and end with the checksum of a run never stopped.  Bad
# snapshots (corrupt, truncated, another file) are refused before any
# guest code runs; a lazy restore, which checks a RAM section only when
# the guest first touches it, ends the VM then, naming the section.  A
# running VM or an existing file is never saved over.
. "$(dirname "$0")/lib.sh"

sock=$TEST_TMP/api.sock
body=$TEST_TMP/body
out=$TEST_TMP/out
TICKS=24
WORK="ticker ticks=$TICKS ms=150 mib=8"

api() {
	curl -s -m 120 --unix-socket "$sock" -o "$body" -w '%{http_code}' \
		-X "$1" ${3:+--data-binary "$3"} "http://localhost$2"
}

# --- the command line, without a VM ----------------------------------------
run_cmd 30 "$out" "$RACKVM" run --restore "$TEST_TMP/none.snap"
check restore_missing_file_exits_2 bash -c "[ $status -eq 2 ] && grep -q 'cannot open the snapshot .*none.snap' '$out'"
run_cmd 30 "$out" "$RACKVM" run --restore "$TEST_TMP/none.snap" --mem 1G
check restore_refuses_machine_flags bash -c "[ $status -eq 2 ] && grep -q -- '--mem cannot be given with --restore' '$out'"
head -c 100000 /dev/urandom > "$TEST_TMP/random.snap"
run_cmd 30 "$out" "$RACKVM" run --restore "$TEST_TMP/random.snap"
check restore_refuses_a_file_that_is_no_snapshot bash -c "[ $status -eq 2 ] && grep -q 'not a rackvm stream' '$out'"

if ! have_kvm; then
	skip snapshot_guest_tests "no usable /dev/kvm"
	exit 0
fi

# the reference: the same workload never stopped (its ticks and checksum
# do not depend on the wait between ticks: none here)
run_cmd 300 "$TEST_TMP/ref.out" "$RACKVM" run --cpus 2 --mem 128M \
	--cmdline "ticker ticks=$TICKS ms=0 mib=8"
ref=$(grep -o 'checksum=0x[0-9a-f]*' "$TEST_TMP/ref.out")
out=$TEST_TMP/ref.out check snapshot_reference_run bash -c "[ $status -eq 0 ] && [ -n '$ref' ]"

# The tick lines of the VM saved ($1's console) followed by those of the
# restored one ($2) are exactly those of the reference run: none missing,
# none twice, each with the same sum.  A line the pause cut in two is
# joined back by the concatenation.
same_ticks_as_reference() {
	cat "$1" "$2" | grep '^tick ' > "$2.ticks"
	grep '^tick ' "$TEST_TMP/ref.out" | cmp -s - "$2.ticks"
}

# A VM running WORK (with $SAVE_ARGS), paused after a few ticks and saved
# into $1 (with $2 as the snapshot request's extra JSON); it is then stopped.  Sets
# $saved_ticks (the ticks it printed) and leaves its console in $1.console.
save_midway() {
	local snap=$1 extra=${2:-} pid
	rm -f "$sock"
	"$RACKVM" run --cpus 2 --mem 128M --api-socket "$sock" ${SAVE_ARGS:-} --cmdline "$WORK" \
		< /dev/null > "$snap.console" 2> "$snap.err" &
	pid=$!
	wait_sock "$sock" && wait_for "$snap.console" '^tick 5/' 120
	api PUT /vm/state '{"state": "paused"}' > /dev/null
	snap_status=$(api PUT /vm/snapshot "{\"path\": \"$snap\"$extra}")
	cp "$body" "$snap.reply"
	api PUT /vm/stop > /dev/null
	wait "$pid"
	saved_ticks=$(grep -c '^tick ' "$snap.console")
}

# restore_checked NAME SNAP [REGEX]: SNAP restored eagerly into
# $TEST_TMP/NAME.out finishes with the reference checksum (and a line
# matching REGEX), its ticks going on from the saved VM's
restore_checked() {
	run_cmd 300 "$TEST_TMP/$1.out" "$RACKVM" run --restore "$2"
	out=$TEST_TMP/$1.out check "restore_$1_finishes" bash -c "[ $status -eq 0 ] && grep -q '^result: ticker .*bad=0 $ref' '$TEST_TMP/$1.out' && grep -q -- '${3:-^result:}' '$TEST_TMP/$1.out'"
	out=$TEST_TMP/$1.out.ticks check "restore_$1_console_continues" same_ticks_as_reference "$2.console" "$TEST_TMP/$1.out"
}

save_midway "$TEST_TMP/a.snap"
out=$TEST_TMP/a.snap.reply check snapshot_of_a_paused_vm bash -c "[ '$snap_status' = 200 ] && [ -s '$TEST_TMP/a.snap' ] && grep -q '\"pages\"' '$TEST_TMP/a.snap.reply'"
check snapshot_file_is_private bash -c "[ \"\$(stat -c %a '$TEST_TMP/a.snap')\" = 600 ]"
out=$TEST_TMP/a.snap.console check snapshot_vm_stopped_midway bash -c "[ $saved_ticks -ge 5 ] && [ $saved_ticks -lt $TICKS ] && ! grep -q '^result:' '$TEST_TMP/a.snap.console'"

run_cmd 300 "$TEST_TMP/b.out" "$RACKVM" run --restore "$TEST_TMP/a.snap"
out=$TEST_TMP/b.out check restore_resumes_and_finishes bash -c "[ $status -eq 0 ] && grep -q '^result: ticker .*bad=0 $ref' '$TEST_TMP/b.out'"

# a VM that pages (--mem-local 8M, its pages beyond that in a file
# store): the snapshot holds all of its RAM, the evicted pages read back
# from the store, and it restores eagerly onto a new store
SAVE_ARGS="--mem-local 8M" save_midway "$TEST_TMP/p.snap"
remote=$(sed -n 's/^pager: resident=[0-9]* remote=\([0-9]*\) .*/\1/p' "$TEST_TMP/p.snap.err")
out=$TEST_TMP/p.snap.err check snapshot_of_a_paging_vm bash -c "[ '$snap_status' = 200 ] && [ -s '$TEST_TMP/p.snap' ] && [ '${remote:-0}' -gt 0 ]"
restore_checked paging_vm "$TEST_TMP/p.snap" '^pager: keeping at most 2048 '
run_cmd 60 "$out" "$RACKVM" run --restore "$TEST_TMP/p.snap" --lazy
check restore_lazy_refuses_a_paging_vm bash -c "[ $status -eq 2 ] && grep -q 'lazy restore of a VM with --mem-local is not supported' '$out'"

# a VM with --wss: the estimator's history is in the snapshot, and the
# restored monitor goes on from its last point (afresh, its first
# interval would say t=0.20s); the ticks and checksum as ever
SAVE_ARGS="--wss=200ms" save_midway "$TEST_TMP/w.snap"
restore_checked wss_vm "$TEST_TMP/w.snap"
saved_t=$(sed -n 's/^wss: t=\([0-9.]*\)s .*/\1/p' "$TEST_TMP/w.snap.err" | tail -n 1)
restored_t=$(sed -n 's/^wss: t=\([0-9.]*\)s .*/\1/p' "$TEST_TMP/wss_vm.out" | head -n 1)
echo "# wss: the saved VM's last point at ${saved_t:-none} s, the restored one's first at ${restored_t:-none} s"
out=$TEST_TMP/wss_vm.out check restore_wss_history_continues \
	awk -v s="${saved_t:-0}" -v d="${restored_t:-0}" 'BEGIN { exit !(s > 0.5 && d > s - 1 && d > 0.5) }'

# a clone: a VM paging to memd under a namespace it names is saved and
# goes on, while its snapshot runs beside it; the clone takes a new
# namespace (the saved one is the running VM's), and both finish intact
start_memd "$TEST_TMP/memd.log" 128M
memd=$memd_pid
rm -f "$sock"
"$RACKVM" run --cpus 2 --mem 128M --api-socket "$sock" --mem-local 8M \
	--mem-backend "memd:$memd_addr" --mem-namespace snapclone --cmdline "$WORK" \
	< /dev/null > "$TEST_TMP/orig.console" 2> "$TEST_TMP/orig.err" &
orig=$!
wait_sock "$sock" && wait_for "$TEST_TMP/orig.console" '^tick 5/' 120
api PUT /vm/state '{"state": "paused"}' > /dev/null
snap_status=$(api PUT /vm/snapshot "{\"path\": \"$TEST_TMP/m.snap\"}")
api PUT /vm/state '{"state": "running"}' > /dev/null
run_cmd 300 "$TEST_TMP/m.out" "$RACKVM" run --restore "$TEST_TMP/m.snap"
wait "$orig"
orig_status=$?
kill "$memd" 2> /dev/null
wait "$memd" 2> /dev/null
out=$TEST_TMP/m.out check restore_clone_of_a_memd_vm_takes_a_new_namespace \
	bash -c "[ '$snap_status' = 200 ] && [ $status -eq 0 ] && grep -q '^result: ticker .*bad=0 $ref' '$TEST_TMP/m.out'"
out=$TEST_TMP/orig.err check snapshot_memd_vm_goes_on_beside_its_clone \
	bash -c "[ $orig_status -eq 0 ] && grep -q '^result: ticker .*bad=0 $ref' '$TEST_TMP/orig.console' && grep -Eq '^pager: resident=[0-9]+ remote=[1-9]' '$TEST_TMP/orig.err'"
out=$TEST_TMP/b.out.ticks check restore_console_continues_without_gap_or_repeat same_ticks_as_reference "$TEST_TMP/a.snap.console" "$TEST_TMP/b.out"

run_cmd 300 "$TEST_TMP/c.out" "$RACKVM" run --restore "$TEST_TMP/a.snap" --lazy
out=$TEST_TMP/c.out check restore_lazy_resumes_and_finishes bash -c "[ $status -eq 0 ] && grep -q '^result: ticker .*bad=0 $ref' '$TEST_TMP/c.out' "
out=$TEST_TMP/c.out.ticks check restore_lazy_console_continues same_ticks_as_reference "$TEST_TMP/a.snap.console" "$TEST_TMP/c.out"

# A lazy restore checks a RAM section when the guest first touches one of
# its pages: with a byte of page data flipped the VM starts, then ends at
# that touch with the section named, never with a wrong result.  The
# section is the raw one with the most page data (the ticker's region,
# all of which it reads at the end), found by walking the file
# (docs/stream-format.md): "stream offset of its first data page, index".
u16() { od -An -t u2 -j "$2" -N 2 "$1" | tr -d ' '; }
u32() { od -An -t u4 -j "$2" -N 4 "$1" | tr -d ' '; }
fullest_ram_section() {
	local f=$1 size at i=0 type len n pad head best=0 best_at=0 best_i=0
	size=$(stat -c %s "$f")
	at=$((18 + $(u16 "$f" 16) + 8))
	while [ "$at" -lt "$size" ]; do
		type=$(u16 "$f" "$at")
		len=$(u32 "$f" $((at + 4)))
		if [ "$type" = 5 ] && [ "$(u16 "$f" $((at + 2)))" = 0 ]; then
			n=$(u32 "$f" $((at + 16)))
			pad=$(u32 "$f" $((at + 20)))
			head=$((16 + (n + 7) / 8 + pad))
			if [ $((len - head)) -gt "$best" ]; then
				best=$((len - head)) best_at=$((at + 8 + head)) best_i=$i
			fi
		fi
		at=$((at + 8 + len + 8)) i=$((i + 1))
	done
	echo "$best_at $best_i"
}
read -r data_at sec < <(fullest_ram_section "$TEST_TMP/a.snap")
cp "$TEST_TMP/a.snap" "$TEST_TMP/lazyflip.snap"
printf '\x5a' | dd of="$TEST_TMP/lazyflip.snap" bs=1 seek=$((data_at + 1000)) conv=notrunc status=none
run_cmd 300 "$TEST_TMP/lf.out" "$RACKVM" run --restore "$TEST_TMP/lazyflip.snap" --lazy
out=$TEST_TMP/lf.out check restore_lazy_flipped_page_ends_the_vm_naming_the_section bash -c "[ $data_at -gt 0 ] && ! cmp -s '$TEST_TMP/a.snap' '$TEST_TMP/lazyflip.snap' && [ $status -ne 0 ] && grep -q 'restore: ready to run after .* (lazy)' '$TEST_TMP/lf.out' && grep -Eq 'section $sec \(ram\) at byte [0-9]+: checksum mismatch' '$TEST_TMP/lf.out' && ! grep -q '^result:' '$TEST_TMP/lf.out'"

# a compressed snapshot: smaller, eager restore only
save_midway "$TEST_TMP/z.snap" ', "compress": true'
out=$TEST_TMP/z.snap.reply check snapshot_compressed bash -c "[ '$snap_status' = 200 ] && [ \$(stat -c %s '$TEST_TMP/z.snap') -lt \$(stat -c %s '$TEST_TMP/a.snap') ]"
restore_checked compressed "$TEST_TMP/z.snap"
run_cmd 60 "$out" "$RACKVM" run --restore "$TEST_TMP/z.snap" --lazy
check restore_lazy_refuses_compressed bash -c "[ $status -eq 2 ] && grep -q 'compressed snapshot cannot be restored lazily' '$out' && ! grep -q '^tick' '$out'"

# damaged snapshots are refused before the guest runs, the part named
size=$(stat -c %s "$TEST_TMP/a.snap")
cp "$TEST_TMP/a.snap" "$TEST_TMP/flip.snap"
printf '\xff' | dd of="$TEST_TMP/flip.snap" bs=1 seek=$((size / 2)) conv=notrunc status=none
run_cmd 60 "$out" "$RACKVM" run --restore "$TEST_TMP/flip.snap"
check restore_refuses_a_flipped_byte bash -c "[ $status -eq 2 ] && grep -Eq 'section [0-9]+ .*checksum' '$out' && ! grep -q '^tick' '$out'"
head -c $((size - 4096)) "$TEST_TMP/a.snap" > "$TEST_TMP/short.snap"
run_cmd 60 "$out" "$RACKVM" run --restore "$TEST_TMP/short.snap"
check restore_refuses_a_truncated_file bash -c "[ $status -eq 2 ] && grep -q 'ends inside' '$out' && ! grep -q '^tick' '$out'"

# what is never done: saving a running VM, replacing a file
rm -f "$sock"
"$RACKVM" run --mem 64M --api-socket "$sock" --cmdline "compute seconds=120" \
	< /dev/null > "$TEST_TMP/run.out" 2>&1 &
pid=$!
wait_sock "$sock"
expect snapshot_of_a_running_vm_is_409 409 'pause it first' PUT /vm/snapshot "{\"path\": \"$TEST_TMP/r.snap\"}"
check snapshot_running_left_no_file bash -c "! [ -e '$TEST_TMP/r.snap' ]"
api PUT /vm/state '{"state": "paused"}' > /dev/null
echo keep > "$TEST_TMP/exists.snap"
expect snapshot_never_replaces_a_file 409 'never replaces a file' PUT /vm/snapshot "{\"path\": \"$TEST_TMP/exists.snap\"}"
check snapshot_existing_file_unchanged bash -c "[ \"\$(cat '$TEST_TMP/exists.snap')\" = keep ]"
expect snapshot_relative_path_is_400 400 'absolute' PUT /vm/snapshot '{"path": "rel.snap"}'
# rackvm ctl makes a relative path absolute from its own directory
(cd "$TEST_TMP" && "$RACKVM" ctl --socket "$sock" snapshot ctl.snap) > "$out" 2>&1
check ctl_snapshot_saves_relative_to_its_directory bash -c "[ $? -eq 0 ] && [ -s '$TEST_TMP/ctl.snap' ] && grep -q 'pages' '$out'"
api PUT /vm/stop > /dev/null
wait "$pid"
exit 0
