#!/usr/bin/env bash
# Live migration on loopback (PUT /vm/migrate, rackvm run --incoming):
# one source VM (the bundled guest's ticker on 2 vCPUs: a console line
# and memory writes per tick, the LAPIC timer between) goes through
# migrations that fail on purpose, then one that succeeds:
#   - nobody listening: the source keeps running;
#   - the stream cut after N bytes (several N) and a byte flipped, by a
#     proxy, in pre-copy and in post-copy before GO: the destination
#     exits with the reason and never runs the guest, the source resumes
#     as if nothing happened;
#   - a destination takes one stream only: garbage first, and it is gone;
#   - then the real move: the source ends ("migrated to"), the
#     destination finishes with the checksum of a run never moved, and
#     the two consoles together hold every tick exactly once.
# Then post-copy and hybrid moves of fresh VMs, checked the same way
# (and post-copy's pages must have come on demand: the destination
# faulted on missing pages), and post-copy's risk: the destination
# killed after RUNNING (the source says the VM is lost and never
# resumes; no tick runs twice) and the source killed after GO (the
# destination ends its VM with the reason, never runs on missing
# pages).
. "$(dirname "$0")/lib.sh"

sock=$TEST_TMP/api.sock
body=$TEST_TMP/body
out=$TEST_TMP/out
PY=/usr/bin/python3
PROXY=$(dirname "$0")/stream_proxy.py
# long enough for every failed attempt before the real move (~50 s);
# the reference, whose ticks and checksum do not depend on the wait
# between ticks, runs without waiting
TICKS=500
WORK="ticker ticks=$TICKS ms=100 mib=8"
REF_WORK="ticker ticks=$TICKS ms=0 mib=8"
PORT=47310

api() {
	curl -s -m 60 --unix-socket "$sock" -o "$body" -w '%{http_code}' \
		-X "$1" ${3:+--data-binary "$3"} "http://localhost$2"
}
field() {
	$PY -c 'import json, sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' \
		"$body" "$1" 2> /dev/null
}

# --- the command line and the request, without a VM -----------------------
run_cmd 30 "$out" "$RACKVM" run --incoming 127.0.0.1:5
check incoming_bad_uri_exits_2 bash -c "[ $status -eq 2 ] && grep -q 'tcp:HOST:PORT' '$out'"
run_cmd 30 "$out" "$RACKVM" run --incoming tcp:127.0.0.1:5 --mem 1G
check incoming_refuses_machine_flags bash -c "[ $status -eq 2 ] && grep -q -- '--mem cannot be given' '$out'"

if ! have_kvm; then
	skip migrate_guest_tests "no usable /dev/kvm"
	exit 0
fi

run_cmd 300 "$TEST_TMP/ref.out" "$RACKVM" run --cpus 2 --mem 128M --cmdline "$REF_WORK"
ref=$(grep -o 'checksum=0x[0-9a-f]*' "$TEST_TMP/ref.out")
out=$TEST_TMP/ref.out check migrate_reference_run bash -c "[ $status -eq 0 ] && [ -n '$ref' ]"

"$RACKVM" run --cpus 2 --mem 128M --api-socket "$sock" --cmdline "$WORK" \
	< /dev/null > "$TEST_TMP/src.console" 2> "$TEST_TMP/src.err" &
src=$!
wait_sock "$sock" && wait_for "$TEST_TMP/src.console" '^tick 3/' 120

expect migrate_bad_mode_400 400 'mode.* must be' PUT /vm/migrate '{"uri": "tcp:127.0.0.1:1", "mode": "sideways"}'
expect migrate_rounds_only_hybrid_400 400 'precopy_rounds' PUT /vm/migrate '{"uri": "tcp:127.0.0.1:1", "mode": "postcopy", "precopy_rounds": 2}'
expect migrate_bad_uri_400 400 'tcp:HOST:PORT' PUT /vm/migrate '{"uri": "udp:1.2.3.4:5"}'
expect migrate_status_before_any 200 '"phase": *"none"' GET /vm/migrate

# wait_migration: until GET /vm/migrate says it ended; its phase
wait_migration() {
	local phase
	for _ in $(seq 600); do
		api GET /vm/migrate > /dev/null
		phase=$(field phase)
		case $phase in completed | failed | unconfirmed | lost) echo "$phase"; return ;; esac
		kill -0 "$src" 2> /dev/null || { echo "source gone"; return; }
		sleep 0.1
	done
	echo timeout
}
src_running() {
	kill -0 "$src" 2> /dev/null && api GET /vm > /dev/null && [ "$(field state)" = running ]
}

# nobody listening
api PUT /vm/migrate "{\"uri\": \"tcp:127.0.0.1:$((PORT + 9))\"}" > /dev/null
phase=$(wait_migration)
out=$body check migrate_nobody_listening_fails bash -c "[ '$phase' = failed ] && grep -q 'cannot connect' '$body'"
check migrate_nobody_listening_source_runs src_running

# broken_migration NAME MODE N [MIGRATION_MODE]: a destination behind a
# proxy that cuts the stream after N bytes or flips byte N
broken_migration() {
	local name=$1 mode=$2 n=$3 mmode=${4:-precopy} dst proxy phase
	timeout 180 "$RACKVM" run --incoming "tcp:127.0.0.1:$PORT" --console "$TEST_TMP/$name.dst" \
		< /dev/null > "$TEST_TMP/$name.dst.out" 2>&1 &
	dst=$!
	$PY "$PROXY" $((PORT + 1)) "$PORT" "$mode" "$n" > "$TEST_TMP/$name.proxy" 2>&1 &
	proxy=$!
	wait_for "$TEST_TMP/$name.proxy" listening 20
	sleep 0.3	# the destination's listen
	api PUT /vm/migrate "{\"uri\": \"tcp:127.0.0.1:$((PORT + 1))\", \"mode\": \"$mmode\"}" > /dev/null
	phase=$(wait_migration)
	cp "$body" "$TEST_TMP/$name.status"
	wait "$dst"
	dst_status=$?
	kill "$proxy" 2> /dev/null
	wait "$proxy" 2> /dev/null
	out=$TEST_TMP/$name.status check "${name}_source_fails_cleanly" [ "$phase" = failed ]
	check "${name}_source_runs_on" src_running
	out=$TEST_TMP/$name.dst.out check "${name}_destination_exits_and_never_ran" \
		bash -c "[ $dst_status -eq 2 ] && [ -s '$TEST_TMP/$name.dst.out' ] && ! grep -q '^tick' '$TEST_TMP/$name.dst' 2> /dev/null"
}
broken_migration migrate_cut_early cut 100000
broken_migration migrate_cut_late cut 6000000
broken_migration migrate_flipped_byte flip 3000000
out=$TEST_TMP/migrate_flipped_byte.dst.out check migrate_flipped_byte_named bash -c "grep -Eq 'section [0-9]+' '$TEST_TMP/migrate_flipped_byte.dst.out'"
# post-copy pauses the source at once: cut or corrupt before GO, it
# must resume all the same (the move at the end checks its memory)
# before GO whatever the hot set: what precedes the handover is at least
# the config, the pending-page bitmap and both vCPUs' state (~30 KB),
# while the hot set (pages written in a 100 ms window) may be empty
broken_migration migrate_postcopy_cut_before_go cut 16000 postcopy
broken_migration migrate_postcopy_flip_before_go flip 12000 postcopy

# a destination takes one stream: garbage first, then nothing listens
timeout 60 "$RACKVM" run --incoming "tcp:127.0.0.1:$PORT" < /dev/null > "$TEST_TMP/once.out" 2>&1 &
dst=$!
sleep 0.5
$PY -c 'import socket, sys; s = socket.create_connection(("127.0.0.1", int(sys.argv[1]))); s.sendall(b"x" * 4096); s.close()' "$PORT" 2> /dev/null
wait "$dst"
dst_status=$?
out=$TEST_TMP/once.out check incoming_refuses_garbage bash -c "[ $dst_status -eq 2 ] && grep -q 'not a rackvm stream' '$TEST_TMP/once.out'"
check incoming_takes_one_stream bash -c "! $PY -c 'import socket, sys; socket.create_connection((\"127.0.0.1\", int(sys.argv[1])))' $PORT 2> /dev/null"

# the real move
timeout 300 "$RACKVM" run --incoming "tcp:127.0.0.1:$PORT" --console "$TEST_TMP/dst.console" \
	< /dev/null > "$TEST_TMP/dst.out" 2>&1 &
dst=$!
sleep 0.5
# rackvm ctl starts it (PUT, 202) and follows it to the end
"$RACKVM" ctl --socket "$sock" migrate "tcp:127.0.0.1:$PORT" > "$TEST_TMP/ctl.out" 2>&1
ctl_status=$?
out=$TEST_TMP/ctl.out check migrate_ctl_follows_it_to_the_end bash -c "[ $ctl_status -eq 0 ] && grep -q 'migration completed' '$TEST_TMP/ctl.out'"
wait "$src"
src_status=$?
# the source may be gone before a GET sees "completed": it says so itself
out=$TEST_TMP/src.err check migrate_source_ends_migrated bash -c "[ $src_status -eq 0 ] && grep -q 'migrated to tcp:127.0.0.1:$PORT' '$TEST_TMP/src.err' && grep -q '^rackvm: migration completed: ' '$TEST_TMP/src.err'"
grep '^rackvm: \(migration\|downtime\)' "$TEST_TMP/src.err" | sed 's/^/# /'
wait "$dst"
dst_status=$?
out=$TEST_TMP/dst.console check migrate_destination_finishes bash -c "[ $dst_status -eq 0 ] && grep -q '^result: ticker .*bad=0 $ref' '$TEST_TMP/dst.console'"
same_ticks() {
	cat "$TEST_TMP/src.console" "$TEST_TMP/dst.console" | grep '^tick ' > "$TEST_TMP/ticks"
	grep '^tick ' "$TEST_TMP/ref.out" | cmp -s - "$TEST_TMP/ticks"
}
out=$TEST_TMP/ticks check migrate_console_continues_without_gap_or_repeat same_ticks

# --- post-copy and hybrid ----------------------------------------------------
PTICKS=60
PWORK="ticker ticks=$PTICKS ms=100 mib=16"
run_cmd 300 "$TEST_TMP/pref.out" "$RACKVM" run --cpus 2 --mem 128M --cmdline "ticker ticks=$PTICKS ms=0 mib=16"
pref=$(grep -o 'checksum=0x[0-9a-f]*' "$TEST_TMP/pref.out")
out=$TEST_TMP/pref.out check migrate_postcopy_reference_run bash -c "[ $status -eq 0 ] && [ -n '$pref' ]"

# start_source NAME WORK MEM: a source VM on $TEST_TMP/NAME.sock (with
# $SRC_ARGS), its pid in $src once it ticked
start_source() {
	sock=$TEST_TMP/$1.sock
	"$RACKVM" run --cpus 2 --mem "$3" --api-socket "$sock" ${SRC_ARGS:-} --cmdline "$2" \
		< /dev/null > "$TEST_TMP/$1.src" 2> "$TEST_TMP/$1.src.err" &
	src=$!
	wait_sock "$sock" && wait_for "$TEST_TMP/$1.src" '^tick 3/' 120
}

# move NAME MODE [CTL_FLAGS...]: a fresh ticker moved by rackvm ctl
# (with SOURCE_UP=1 the one running already), its ticks and checksum
# compared with $REF_OUT's
move() {
	local name=$1 mode=$2 dst ctl_status src_status dst_status
	local ref_out=${REF_OUT:-$TEST_TMP/pref.out} sum=${REF_SUM:-$pref}
	shift 2
	[ -n "${SOURCE_UP:-}" ] || start_source "$name" "$PWORK" 128M
	timeout 300 "$RACKVM" run --incoming "tcp:127.0.0.1:$PORT" --console "$TEST_TMP/$name.dst" \
		< /dev/null > "$TEST_TMP/$name.dst.out" 2>&1 &
	dst=$!
	sleep 0.5
	"$RACKVM" ctl --socket "$sock" migrate "tcp:127.0.0.1:$PORT" --mode "$mode" "$@" \
		> "$TEST_TMP/$name.ctl" 2>&1
	ctl_status=$?
	wait "$src"
	src_status=$?
	wait "$dst"
	dst_status=$?
	grep '^rackvm: \(migration\|post-copy\|downtime\)' "$TEST_TMP/$name.src.err" | sed 's/^/# /'
	out=$TEST_TMP/$name.ctl check "${name}_ctl_completed" \
		bash -c "[ $ctl_status -eq 0 ] && tr '\r' '\n' < '$TEST_TMP/$name.ctl' | grep -q 'migration completed'"
	out=$TEST_TMP/$name.src.err check "${name}_source_ends_migrated" \
		bash -c "[ $src_status -eq 0 ] && grep -q 'migrated to tcp:127.0.0.1:$PORT' '$TEST_TMP/$name.src.err' && grep -q '^rackvm: migration completed: .*in all ($mode)' '$TEST_TMP/$name.src.err'"
	out=$TEST_TMP/$name.dst check "${name}_destination_finishes_same_checksum" \
		bash -c "[ $dst_status -eq 0 ] && grep -q '^result: ticker .*bad=0 $sum' '$TEST_TMP/$name.dst'"
	cat "$TEST_TMP/$name.src" "$TEST_TMP/$name.dst" | grep '^tick ' > "$TEST_TMP/$name.ticks"
	out=$TEST_TMP/$name.ticks check "${name}_every_tick_once" \
		bash -c "grep '^tick ' '$ref_out' | cmp -s - '$TEST_TMP/$name.ticks'"
}
move migrate_postcopy postcopy
# its pages came on demand: the guest ran there before they all had
out=$TEST_TMP/migrate_postcopy.src.err check migrate_postcopy_pages_came_on_demand \
	bash -c "[ \"\$(grep -o \"the destination's faults: [0-9]*\" '$TEST_TMP/migrate_postcopy.src.err' | grep -o '[0-9]*\$')\" -gt 0 ]"
move migrate_hybrid hybrid --precopy-rounds 2
# the working-set monitor keeps reading KVM's dirty log while the
# migration reads it too (one owner, a view each: vm/vm_dirty.h)
SRC_ARGS=--wss=200ms move migrate_precopy_wss precopy
out=$TEST_TMP/migrate_precopy_wss.src.err check migrate_precopy_wss_monitor_ran \
	grep -q '^wss: t=.*written=' "$TEST_TMP/migrate_precopy_wss.src.err"
# the estimator's history came along: the destination's series goes on
# from the source's time (its own first interval would say t=0.20s)
src_wss_t=$(sed -n 's/^wss: t=\([0-9.]*\)s .*/\1/p' "$TEST_TMP/migrate_precopy_wss.src.err" | tail -n 1)
dst_wss_t=$(sed -n 's/^wss: t=\([0-9.]*\)s .*/\1/p' "$TEST_TMP/migrate_precopy_wss.dst.out" | head -n 1)
echo "# wss: the source's last point at ${src_wss_t:-none} s, the destination's first at ${dst_wss_t:-none} s"
out=$TEST_TMP/migrate_precopy_wss.dst.out check migrate_precopy_wss_history_moved \
	awk -v s="${src_wss_t:-0}" -v d="${dst_wss_t:-0}" 'BEGIN { exit !(s > 1 && d > s - 1) }'

# --- a VM that pages to memd: its evicted pages stay there ------------------
# 12 MiB rewritten each tick through 8 MiB of resident memory: the
# migration sends what is resident, the destination reads the rest from
# memd; a stream cut first leaves the source's pager as it was
start_memd "$TEST_TMP/memd.log" 256M
memd=$memd_pid
MTICKS=24
run_cmd 300 "$TEST_TMP/mref.out" "$RACKVM" run --cpus 2 --mem 128M --cmdline "ticker ticks=$MTICKS ms=0 mib=12"
mref=$(grep -o 'checksum=0x[0-9a-f]*' "$TEST_TMP/mref.out")
SRC_ARGS="--mem-local 8M --mem-backend memd:$memd_addr" \
	start_source migrate_memd "ticker ticks=$MTICKS ms=100 mib=12" 128M
expect migrate_memd_postcopy_refused 409 'precopy mode only' PUT /vm/migrate "{\"uri\": \"tcp:127.0.0.1:$PORT\", \"mode\": \"postcopy\"}"
broken_migration migrate_memd_cut cut 3000000
SOURCE_UP=1 REF_OUT=$TEST_TMP/mref.out REF_SUM=$mref move migrate_memd precopy
left=$(sed -n 's/^rackvm: \([0-9.]*\) MiB (\([0-9]*\) pages) left in the page store.*/\2/p' "$TEST_TMP/migrate_memd.src.err")
sent=$(sed -n 's/^rackvm: migration completed: .*, \([0-9.]*\) MiB of guest RAM sent.*/\1/p' "$TEST_TMP/migrate_memd.src.err")
grep '^rackvm: .*left in the page store' "$TEST_TMP/migrate_memd.src.err" | sed 's/^/# /'
out=$TEST_TMP/migrate_memd.src.err check migrate_memd_remote_pages_left_in_place \
	bash -c "[ '${left:-0}' -gt 256 ] && awk -v s='${sent:-99}' 'BEGIN { exit !(s < 9) }'"
out=$TEST_TMP/migrate_memd.dst.out check migrate_memd_destination_read_them_from_memd \
	bash -c "grep -q 'others in memd $memd_addr' '$TEST_TMP/migrate_memd.dst.out' && grep -Eq '^pager: .* fetches=[1-9]' '$TEST_TMP/migrate_memd.dst.out'"
kill "$memd" 2> /dev/null
wait "$memd" 2> /dev/null

# put_move NAME FIELDS: the running source ($src) moved by PUT /vm/migrate
# with FIELDS besides the URI to a destination whose console is
# $TEST_TMP/NAME.dst; sets code, src_status and dst_status
put_move() {
	timeout 300 "$RACKVM" run --incoming "tcp:127.0.0.1:$PORT" --console "$TEST_TMP/$1.dst" \
		< /dev/null > "$TEST_TMP/$1.dst.out" 2>&1 &
	dst=$!
	sleep 0.5
	code=$(api PUT /vm/migrate "{\"uri\": \"tcp:127.0.0.1:$PORT\", $2}")
	[ "$code" = 202 ] || { echo "# PUT /vm/migrate: $code $(head -c 300 "$body")"; kill "$dst"; }
	wait "$src"
	src_status=$?
	wait "$dst"
	dst_status=$?
}

# auto-converge: a guest that rewrites 16 MiB as fast as it can, over a
# link capped at 8 MiB/s, never fits 300 ms of downtime unthrottled
start_source migrate_converge "ticker ticks=3000 ms=0 mib=16" 128M
put_move converge '"max_bandwidth": "8M", "max_downtime_ms": 300'
grep '^rackvm: \(migration\|auto-converge\)' "$TEST_TMP/migrate_converge.src.err" | sed 's/^/# /'
out=$TEST_TMP/migrate_converge.src.err check migrate_auto_converge_throttles_and_completes \
	bash -c "[ '$code' = 202 ] && [ $src_status -eq 0 ] && grep -q '^rackvm: migration completed: ' '$TEST_TMP/migrate_converge.src.err' && grep -Eq '^rackvm: auto-converge: the guest was throttled up to [1-9][0-9]*%' '$TEST_TMP/migrate_converge.src.err'"
cat "$TEST_TMP/migrate_converge.src" "$TEST_TMP/converge.dst" | grep -Eo '^tick [0-9]+' |
	awk '{ if ($2 != n) exit 1; n++ } END { exit n != 3000 }'
ticks_ok=$?
out=$TEST_TMP/converge.dst check migrate_auto_converge_guest_unaware \
	bash -c "[ $dst_status -eq 0 ] && [ $ticks_ok -eq 0 ] && grep -q '^result: ticker ticks=3000 mib=16 bad=0 ' '$TEST_TMP/converge.dst'"

# lost_vm NAME WHO: a post-copy slowed down (a bandwidth cap), and WHO
# (dst or src) killed once the destination runs the VM, pages pending
lost_vm() {
	local name=$1 who=$2 dst phase left src_status dst_status
	# a tick a second: the guest pulls in at most 8 MiB a second there
	start_source "$name" "ticker ticks=400 ms=1000 mib=64" 256M
	# no timeout(1) around it: the kill must reach rackvm itself
	"$RACKVM" run --incoming "tcp:127.0.0.1:$PORT" --console "$TEST_TMP/$name.dst" \
		< /dev/null > "$TEST_TMP/$name.dst.out" 2>&1 &
	dst=$!
	sleep 0.5
	api PUT /vm/migrate "{\"uri\": \"tcp:127.0.0.1:$PORT\", \"mode\": \"postcopy\", \"max_bandwidth\": \"2M\"}" > /dev/null
	# until the destination said RUNNING (the downtime is known)
	for _ in $(seq 600); do
		api GET /vm/migrate > /dev/null
		phase=$(field phase)
		case $phase in completed | failed | lost) break ;; esac
		[ "$phase" = postcopy ] && [ "$(field downtime_ms)" != 0.0 ] && break
		sleep 0.1
	done
	left=$(field pages_remaining)
	if [ "$who" = dst ]; then kill -9 "$dst"; else kill -9 "$src"; fi
	wait "$src"
	src_status=$?
	wait "$dst"
	dst_status=$?
	check "${name}_killed_with_pages_pending" bash -c "[ '$phase' = postcopy ] && [ '${left:-0}' -gt 0 ]"
	cat "$TEST_TMP/$name.src" "$TEST_TMP/$name.dst" | grep '^tick ' | sort | uniq -d > "$TEST_TMP/$name.twice"
	out=$TEST_TMP/$name.twice check "${name}_no_tick_runs_twice" bash -c "[ ! -s '$TEST_TMP/$name.twice' ]"
	if [ "$who" = dst ]; then
		out=$TEST_TMP/$name.src.err check "${name}_source_says_lost_never_resumes" \
			bash -c "[ $src_status -eq 2 ] && grep -q 'the VM is lost' '$TEST_TMP/$name.src.err' && grep -q '^rackvm: migration lost: .*(postcopy)' '$TEST_TMP/$name.src.err'"
	else
		out=$TEST_TMP/$name.dst.out check "${name}_destination_ends_with_reason" \
			bash -c "[ $dst_status -eq 2 ] && grep -q 'post-copy migration: .*never came from the source' '$TEST_TMP/$name.dst.out' && ! grep -q '^result:' '$TEST_TMP/$name.dst'"
	fi
}
lost_vm migrate_postcopy_destination_killed dst
lost_vm migrate_postcopy_source_killed src

# a guest that ends on the destination before every page came (the push
# capped at 256 KiB/s, a short run) is not lost: it is over
run_cmd 300 "$TEST_TMP/eref.out" "$RACKVM" run --cpus 2 --mem 128M --cmdline "ticker ticks=6 ms=0 mib=8"
eref=$(grep -o 'checksum=0x[0-9a-f]*' "$TEST_TMP/eref.out")
start_source migrate_ends_there "ticker ticks=6 ms=1000 mib=8" 128M
put_move ends '"mode": "postcopy", "max_bandwidth": "256K"'
grep '^rackvm: \(migration\|post-copy\)' "$TEST_TMP/migrate_ends_there.src.err" | sed 's/^/# /'
out=$TEST_TMP/migrate_ends_there.src.err check migrate_postcopy_guest_ended_there_is_not_lost \
	bash -c "[ '$code' = 202 ] && [ $src_status -eq 0 ] && grep -q '^rackvm: migration completed: ' '$TEST_TMP/migrate_ends_there.src.err' && grep -Eq 'ended on the destination with [1-9][0-9]* pages not sent' '$TEST_TMP/migrate_ends_there.src.err'"
cat "$TEST_TMP/migrate_ends_there.src" "$TEST_TMP/ends.dst" | grep '^tick ' > "$TEST_TMP/ends.ticks"
out=$TEST_TMP/ends.dst check migrate_postcopy_guest_ended_there_finished \
	bash -c "[ $dst_status -eq 0 ] && grep -q '^result: ticker .*bad=0 $eref' '$TEST_TMP/ends.dst' && grep '^tick ' '$TEST_TMP/eref.out' | cmp -s - '$TEST_TMP/ends.ticks'"
exit 0
