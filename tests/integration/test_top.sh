#!/usr/bin/env bash
# `rackvm top` over a runtime directory holding two bundled-guest VMs (one
# with the pager and the WSS monitor), a stale socket nobody serves and a
# file that is not a socket: --once prints the table for scripts; the
# live screen, read from tmux, shows both VMs, re-sorts on m/c/n and
# quits on q.
. "$(dirname "$0")/lib.sh"

rt=$TEST_TMP/rt/rackvm
out=$TEST_TMP/top.out
mkdir -p "$rt" && chmod 700 "$TEST_TMP/rt" "$rt"

"$RACKVM" top --once --runtime-dir "$TEST_TMP/none" > "$out" 2>&1
out=$out check top_missing_dir_is_an_empty_table bash -c "[ $? -eq 0 ] && grep -q '^0 VMs' '$out'"
"$RACKVM" top --bogus > "$out" 2>&1
out=$out check top_bad_option_exits_2 bash -c "[ $? -eq 2 ] && grep -q 'usage: rackvm top' '$out'"

if ! have_kvm; then
	skip top_guest_tests "no usable /dev/kvm"
	exit 0
fi
if ! command -v tmux > /dev/null; then
	skip top_guest_tests "no tmux (scripts/install-deps tests)"
	exit 0
fi

# a stale socket (bound, nobody listening) and a file that is no socket
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$rt/ghost.sock"
echo junk > "$rt/junk.sock"
# a name that would be a terminal escape sequence, shown harmless
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$rt/$(printf 'e\033[2Jx').sock"

"$RACKVM" run --name alpha --api-socket "$rt/alpha.sock" --mem 256M \
	--cmdline "compute seconds=300" < /dev/null > "$TEST_TMP/alpha.log" 2>&1 &
pa=$!
"$RACKVM" run --name beta --api-socket "$rt/beta.sock" --mem 128M --mem-local 48M \
	--wss --cmdline "wsswork phases=w16,r64,m32,i phase_s=100" \
	< /dev/null > "$TEST_TMP/beta.log" 2>&1 &
pb=$!
if ! wait_sock "$rt/alpha.sock" || ! wait_sock "$rt/beta.sock"; then
	fail top_vms_started "$(tail -n 3 "$TEST_TMP/alpha.log" "$TEST_TMP/beta.log" | tr '\n' '|')"
	kill $pa $pb 2> /dev/null
	wait
	exit 0
fi
# the WSS monitor's first points, and beta at its 48M of local memory
# with pages out (its fill takes ~3 s here, up to a minute in the
# emulated test host, where 42M resident and nothing out was seen)
beta_paging() {
	grep -Eq '^beta +running +1 .* 128M +4[0-9](\.[0-9])?M +[0-9.]+[KM]\+-[0-9.]+[KM]? +[0-9.]+M ' "$out"
}
sleep 3
for _ in $(seq 30); do
	run_cmd 30 "$out" "$RACKVM" top --once --runtime-dir "$rt"
	beta_paging && break
	sleep 2
done
check top_once_exits_0 [ "$status" -eq 0 ]
check top_once_shows_alpha grep -Eq '^alpha +running +1 +[0-9.]+ +[0-9]+ +256M ' "$out"
check top_once_shows_beta_with_pager_and_wss beta_paging
check top_once_shows_the_stale_socket grep -Eq '^ghost +- +unreachable' "$out"
check top_once_skips_what_is_no_socket bash -c "! grep -q '^junk' '$out' && grep -q '^4 VMs' '$out'"
check top_once_escapes_names bash -c "grep -q '^e?\[2Jx ' '$out' && ! grep -q \$'\\033' '$out'"

# the live screen under tmux
session=rackvm-top-$$
tmux kill-session -t "$session" 2> /dev/null
tmux new-session -d -s "$session" -x 160 -y 40 "$RACKVM top --runtime-dir '$rt' 2> '$TEST_TMP/top.err'"
screen=$TEST_TMP/screen
# Reads the screen until CMD holds on it or 30 s pass.  A refresh asks
# every VM's API and a key waits for the refresh under way: on a loaded
# emulated host either took longer than the fixed 3 s and 0.5 s once
# allowed, so the screen is read until it shows what is checked.
screen_until() {
	for _ in $(seq 60); do
		sleep 0.5
		tmux capture-pane -p -t "$session" > "$screen" 2>&1
		"$@" && return 0
	done
	return 1
}
# CPU% needs two refreshes a second apart
alpha_cpu_shown() {
	grep -Eq '^alpha +running +1 +[0-9]+\.[0-9] ' "$screen"
}
screen_until alpha_cpu_shown
out=$screen check top_live_shows_both_vms bash -c "grep -Eq '^alpha +running .* 256M ' '$screen' && grep -Eq '^beta +running .* 128M ' '$screen' && grep -q '^ghost .*unreachable' '$screen'"
grep -E '^(alpha|beta|ghost) ' "$screen" > "$screen.rows"
out=$screen.rows check top_live_refreshes_cpu alpha_cpu_shown
# by memory: alpha (256M, all resident) before beta (48M resident)
sorted_by_memory() {
	grep -q 'sorted by memory' "$screen" &&
		[ "$(grep -Eo '^(alpha|beta)' "$screen" | head -n 1)" = alpha ]
}
tmux send-keys -t "$session" m
screen_until sorted_by_memory
out=$screen check top_live_sorts_by_memory sorted_by_memory
tmux send-keys -t "$session" c
screen_until grep -q 'sorted by cpu' "$screen"
out=$screen check top_live_sorts_by_cpu grep -q 'sorted by cpu' "$screen"
tpid=$(pgrep -f "top --runtime-dir $rt" | head -n 1)
tmux send-keys -t "$session" q
# q waits for the refresh under way, up to 10 s on a loaded host
for _ in $(seq 100); do kill -0 "$tpid" 2> /dev/null || break; sleep 0.1; done
check top_q_quits bash -c "[ -n '$tpid' ] && ! kill -0 '$tpid' 2> /dev/null"
out=$TEST_TMP/top.err check top_live_no_errors bash -c "! [ -s '$TEST_TMP/top.err' ]"
tmux kill-session -t "$session" 2> /dev/null

# a VM that ends while top looks: its socket goes, its row with it
kill $pa
wait $pa
run_cmd 30 "$out" "$RACKVM" top --once --runtime-dir "$rt"
check top_ended_vm_leaves_the_table bash -c "[ $status -eq 0 ] && ! grep -q '^alpha' '$out' && grep -q '^beta' '$out'"
kill $pb
wait $pb
exit 0
