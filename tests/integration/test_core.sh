#!/usr/bin/env bash
# The VMM core through the CLI: exit statuses, messages, the bundled guest
# and its result channel, vCPUs, exit counters, signals, console.
. "$(dirname "$0")/lib.sh"

out=$TEST_TMP/out

# --- the CLI on its own --------------------------------------------------
run_cmd 10 "$out" "$RACKVM" version
check cli_version bash -c "[ $status -eq 0 ] && grep -q '^rackvm [0-9]' '$out'"

run_cmd 10 "$out" "$RACKVM" run --mem 12Q
check cli_rejects_bad_size bash -c "[ $status -eq 2 ] && grep -q 'invalid --mem.*like 512M' '$out'"

run_cmd 10 "$out" "$RACKVM" run --cpus 0
check cli_rejects_bad_cpus bash -c "[ $status -eq 2 ] && grep -q 'from 1 to 255' '$out'"

run_cmd 10 "$out" "$RACKVM" run --kernel "$TEST_TMP/missing.elf"
check cli_missing_kernel bash -c "[ $status -eq 2 ] && grep -q 'cannot open.*missing.elf' '$out'"

run_cmd 10 "$out" "$RACKVM" frobnicate
check cli_unknown_command bash -c "[ $status -eq 2 ] && grep -q 'unknown command' '$out'"

# No /dev/kvm, and one nobody may open: each in a private mount namespace
# with an empty /dev, so neither depends on this machine's /dev/kvm (or
# whether it has one, or its mode: some distributions make it 0666).
if [ "$(id -u)" -eq 0 ] && command -v unshare > /dev/null; then
	run_cmd 20 "$out" unshare -m sh -c "mount -t tmpfs none /dev && exec '$RACKVM' run"
	check kvm_missing_exits_2 bash -c "[ $status -eq 2 ] && grep -q 'cannot open /dev/kvm: No such file or directory' '$out'"
	cp "$RACKVM" "$TEST_TMP/rackvm-copy" && chmod 755 "$TEST_TMP" "$TEST_TMP/rackvm-copy"
	run_cmd 20 "$out" unshare -m sh -c "mount -t tmpfs none /dev && mknod -m 600 /dev/kvm c 10 232 &&
		exec setpriv --reuid=65534 --regid=65534 --clear-groups '$TEST_TMP/rackvm-copy' run"
	check kvm_no_permission_exits_2 bash -c "[ $status -eq 2 ] && grep -q 'cannot open /dev/kvm: Permission denied' '$out'"
else
	skip kvm_missing_exits_2 "needs root and unshare to hide /dev/kvm"
	skip kvm_no_permission_exits_2 "needs root to drop privileges"
fi

if ! have_kvm; then
	skip guest_tests "no usable /dev/kvm"
	exit 0
fi

# --- the bundled guest ---------------------------------------------------
run_cmd 60 "$out" "$RACKVM" run
check hello_exits_0 bash -c "[ $status -eq 0 ] && grep -q 'Hello from the rackvm guest runtime: 1 CPUs, 256 MiB RAM' '$out'"

run_cmd 60 "$out" "$RACKVM" run --cpus 2 --mem 64M --cmdline hello
check hello_sees_2_cpus bash -c "[ $status -eq 0 ] && grep -q 'runtime: 2 CPUs, 64 MiB RAM' '$out'"

run_cmd 120 "$out" "$RACKVM" run --cpus 2 --cmdline smp
check smp_brings_up_2_cpus bash -c "[ $status -eq 0 ] && grep -q 'cpus_online=2 nb_cpus=2' '$out'"

run_cmd 60 "$out" "$RACKVM" run --cmdline assertfail
check assert_failure_reports_file_line bash -c "[ $status -eq 8 ] && grep -Eq 'guest assertion failed at guest/[a-z_/]+\.c:[0-9]+' '$out'"

run_cmd 60 "$out" "$RACKVM" run --cmdline pagefault
check page_fault_reports_rip bash -c "[ $status -eq 8 ] && grep -Eq 'guest exception #PF \(vector 14\) on vCPU 0 at RIP 0x[0-9a-f]+, error code 0x[0-9a-f]+, CR2 0x8000000000' '$out'"

run_cmd 60 "$out" "$RACKVM" run --exit-stats --cmdline "memtouch pages=512 mode=verify"
io=$(sed -n 's/.*vcpu0 exits:.* io=\([0-9]*\).*/\1/p' "$out")
check exit_counters_move bash -c "[ $status -eq 0 ] && [ '${io:-0}' -gt 10 ]"

run_cmd 60 "$out" "$RACKVM" run --cmdline selftest
check guest_selftest bash -c "[ $status -eq 0 ] && ! grep -q 'FAIL' '$out'"

# An idle guest halts until the LAPIC timer wakes it at the phase's end
# instead of spinning, so the VM's CPU time (rackvm and its vCPU thread)
# stays well under its wall time; a spinning idle phase costs all of it.
TIMEFORMAT='%U %S %R'
{ time run_cmd 60 "$out" "$RACKVM" run --mem 64M --cmdline "wsswork phases=i phase_s=4"; } 2> "$TEST_TMP/idle.time"
read -r idle_user idle_sys idle_wall < "$TEST_TMP/idle.time"
echo "# idle wsswork: user ${idle_user}s sys ${idle_sys}s wall ${idle_wall}s"
check idle_guest_leaves_the_cpu bash -c "[ $status -eq 0 ] && grep -q 'wsswork verify pages=1 bad=0' '$out' &&
	awk 'BEGIN { exit !($idle_wall >= 4 && ($idle_user + $idle_sys) < 0.5 * $idle_wall) }'"

run_cmd 60 "$out" "$RACKVM" run --console "$TEST_TMP/console.txt"
check console_to_file bash -c "[ $status -eq 0 ] && grep -q 'Hello from the rackvm' '$TEST_TMP/console.txt' && ! grep -q 'Hello' '$out'"

# stdin reaches the guest through the UART's receive path (sent once the
# guest has set its UART up: enabling the FIFOs clears them, as on a 16550)
(sleep 2; printf 'ping-from-host\n') | timeout 60 "$RACKVM" run --cmdline uartecho > "$out" 2>&1
status=$?
check uart_input_reaches_guest bash -c "[ $status -eq 0 ] && grep -q 'echo: ping-from-host' '$out'"

run_cmd 60 "$out" "$RACKVM" run --cmdline reset
check keyboard_reset_exits_4 bash -c "[ $status -eq 4 ] && grep -q 'reset' '$out'"

run_cmd 60 "$out" "$RACKVM" run --cmdline triplefault
check triple_fault_exits_6 bash -c "[ $status -eq 6 ] && grep -q 'triple fault' '$out'"

# An MMIO access KVM's instruction emulator cannot handle (SSE2 paddd,
# opcode 66 0f fe, in ring 0) fails on any KVM: rackvm must report it
# (vCPU, RIP, the instruction's bytes) and stop with status 10.
run_cmd 120 "$out" "$RACKVM" run --cmdline emulfail
check emulation_failure_reported bash -c "[ $status -eq 10 ] && grep -Eq 'vCPU 0: KVM internal error: instruction emulation failed at RIP 0x[0-9a-f]+.*instruction bytes: 66 0f fe' '$out'"

# --- signals end the VM cleanly -------------------------------------------
for sig in TERM INT; do
	# background jobs inherit SIGINT ignored from the shell; undo that
	env --default-signal=INT "$RACKVM" run --cmdline "compute seconds=60" < /dev/null > "$out" 2>&1 &
	pid=$!
	# the VM running (its vCPU thread started: rackvm handles signals
	# by then), however slow this host; a fixed sleep lost the race in
	# a loaded emulated test host and killed rackvm before its handler
	for _ in $(seq 300); do
		[ "$(ls "/proc/$pid/task" 2> /dev/null | wc -l)" -ge 2 ] && break
		sleep 0.1
	done
	sleep 1
	kill -s $sig $pid
	# rackvm promises to end within 5 s; 30 s, then where it waits is
	# recorded (kernel stacks, as root) and it is killed
	for _ in $(seq 300); do
		kill -0 $pid 2> /dev/null || break
		sleep 0.1
	done
	if kill -0 $pid 2> /dev/null; then
		thread_stacks $pid | sed "s/^/still running 30 s after SIG$sig: /" >> "$out"
		kill -9 $pid
	fi
	wait $pid
	status=$?
	want=$([ $sig = TERM ] && echo 143 || echo 130)
	check "sig${sig,,}_stops_vm" bash -c "[ $status -eq $want ] && grep -q 'stopped by signal' '$out'"
done

# --- the lifecycle through the control API ---------------------------------
# pause, resume, shutdown (the ACPI power button, which the bundled guest
# ignores) and stop with rackvm ctl, each answered with the state it led
# to; asking for the state the VM is in changes nothing, an illegal step
# is refused (exit 1) naming the state and changes nothing.
sock=$TEST_TMP/life.sock
"$RACKVM" run --api-socket "$sock" --cmdline "compute seconds=600" < /dev/null > "$out" 2>&1 &
pid=$!
for _ in $(seq 300); do [ -S "$sock" ] && break; sleep 0.1; done
replies=
for cmd in info pause pause resume shutdown pause stop; do
	reply=$("$RACKVM" ctl --socket "$sock" $cmd 2>&1)
	replies+="$cmd:$?:$(grep -E '^(state: |rackvm ctl: )' <<< "$reply")|"
done
for _ in $(seq 300); do kill -0 $pid 2> /dev/null || break; sleep 0.1; done
kill -9 $pid 2> /dev/null
wait $pid
status=$?
want="info:0:state: running|pause:0:state: paused|pause:0:state: paused|resume:0:state: running|shutdown:0:state: shutting_down|pause:1:rackvm ctl: not possible while the VM is shutting_down (HTTP 409)|stop:0:state: stopped|"
echo "# lifecycle replies: $replies"
check lifecycle_commands_follow_the_state_machine [ "$replies" = "$want" ]
check lifecycle_stop_ends_the_vm bash -c "[ $status -eq 0 ] && grep -q 'stopped: stopped by request' '$out'"

# --- hugetlb-backed guest RAM ---------------------------------------------
hp=/proc/sys/vm/nr_hugepages
if [ -w "$hp" ]; then
	old=$(cat $hp)
	echo $((old + 40)) > $hp 2>/dev/null
	run_cmd 60 "$out" "$RACKVM" run --hugetlb --mem 64M
	echo "$old" > $hp
	check hugetlb_backed_ram bash -c "[ $status -eq 0 ] && grep -q 'Hello from the rackvm' '$out'"
else
	skip hugetlb_backed_ram "cannot reserve huge pages (not root)"
fi
run_cmd 10 "$out" "$RACKVM" run --hugetlb --mem 63M
check hugetlb_needs_2m_multiple bash -c "[ $status -eq 2 ] && grep -q 'multiple of 2M' '$out'"
