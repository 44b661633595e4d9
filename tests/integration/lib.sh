# Helpers for the integration tests (sourced, bash).
#
# Every test script prints one line per check, the format tests/run counts:
#   ok NAME | FAIL NAME: why | skip NAME: why
# Scripts run from the repository root with these set by tests/run:
#   RACKVM     the rackvm binary under test (sanitizer build)
#   GUEST_ELF  the bundled guest image
#   TEST_TMP   a scratch directory, removed afterwards

: "${RACKVM:=build/asan/rackvm}"
: "${GUEST_ELF:=build/guest/rackvm-guest.elf}"
: "${TEST_TMP:=$(mktemp -d)}"
# LeakSanitizer is on: every exit path of rackvm must free what it owns.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"

ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
skip() { echo "skip $1: $2"; }

# in_test_host: true inside the emulated test host (tests/rack/host), where
# guest memory faults and VM exits cost ~10-40x more: tests scale their
# work with it, never what they check.
in_test_host() { [ -n "${RACK_HOST:-}" ]; }

# thread_stacks PID: one line per thread of PID: its name, state and
# kernel stack (readable as root, e.g. in the test host), to say where a
# process that should have ended waits.
thread_stacks() {
	local task
	[ -n "$1" ] || return
	for task in /proc/"$1"/task/*; do
		echo "$(cat "$task/comm") $(awk '{ print $3 }' "$task/stat"):" \
			"$(sed -E 's/^\[<[0-9a-f]+>\] //; s/\+0x.*//' "$task/stack" 2> /dev/null |
				head -n 8 | tr '\n' '<')"
	done
}

# wait_sock PATH: true once PATH is a socket (an API server listening),
# false after 60 s.
wait_sock() { for _ in $(seq 600); do [ -S "$1" ] && return 0; sleep 0.1; done; return 1; }

# have_kvm: true if /dev/kvm can be opened read-write.
have_kvm() { [ -r /dev/kvm ] && [ -w /dev/kvm ]; }

# pager_usable NAME: true if VMs with the pager (--mem-local) can run
# here; else says skip NAME with the reason.
pager_usable() {
	if ! have_kvm; then
		skip "$1" "no usable /dev/kvm"
		return 1
	fi
	if ! "$RACKVM" run --help 2>&1 | grep -q -- '--mem-local'; then
		skip "$1" "rackvm has no pager"
		return 1
	fi
}

# run_cmd SECONDS OUTFILE CMD...: runs CMD with stdin from /dev/null,
# killed after SECONDS; OUTFILE gets its stdout, then its stderr.  Sets
# $status (124 on timeout).  The two streams are kept apart while CMD
# runs because the guest's console reaches stdout a byte at a time while
# rackvm's reports (wss:, pager:) go to stderr: sharing one file split
# guest lines such as "result: ..." around a report line.  A CMD that
# runs out of time gets its threads' stacks (kernel, and with gdb user
# space) appended to OUTFILE before it is killed: a rare hang then says
# where it waited.
run_cmd() {
	local secs=$1 out=$2 pid watcher
	shift 2
	timeout -k 5 "$secs" "$@" < /dev/null > "$out" 2> "$out.stderr" &
	pid=$!
	if [ "$secs" -ge 10 ]; then
		(
			trap 'kill "$nap" 2> /dev/null; exit 0' TERM
			sleep $((secs - 3)) &
			nap=$!
			wait "$nap"
			cmd=$(pgrep -P "$pid" | head -n 1)
			[ -n "$cmd" ] || exit 0
			echo "run_cmd: still running after $((secs - 3)) s of $secs; its threads:"
			thread_stacks "$cmd"
			command -v gdb > /dev/null &&
				timeout 20 gdb -batch -p "$cmd" -ex "thread apply all bt 16" 2>&1 |
				grep -E '^(#|Thread )'
		) > "$out.threads" 2>&1 &
		watcher=$!
	fi
	wait "$pid"
	status=$?
	if [ -n "${watcher:-}" ]; then
		kill "$watcher" 2> /dev/null
		wait "$watcher" 2> /dev/null
	fi
	cat "$out.stderr" >> "$out"
	[ -s "$out.threads" ] && cat "$out.threads" >> "$out"
	rm -f "$out.stderr" "$out.threads"
}

# wait_for FILE REGEX SECONDS: true once a line of FILE matches.
wait_for() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -Eq -- "$2" "$1" 2> /dev/null && return 0
		sleep 0.1
	done
	return 1
}

# start_memd LOG CAPACITY [ADDR:PORT]: `rackvm memd` in the background,
# logging to LOG; sets memd_pid, and memd_addr once it listens (an
# address it picked when none is given).  False if it never listened.
start_memd() {
	local i
	"$RACKVM" memd --listen "${3:-127.0.0.1:0}" --capacity "$2" > "$1" 2>&1 &
	memd_pid=$!
	memd_addr=
	for ((i = 0; i < 100; i++)); do
		memd_addr=$(sed -n 's/^memd: listening on \([^,]*\),.*/\1/p' "$1" | head -n 1)
		[ -n "$memd_addr" ] && return 0
		sleep 0.1
	done
	return 1
}

# expect NAME STATUS REGEX METHOD PATH [BODY]: one request through the
# script's own `api METHOD PATH [BODY]` (which prints the HTTP status and
# leaves the reply in $body), checked against STATUS and REGEX
expect() {
	local name=$1 want=$2 re=$3 got
	shift 3
	got=$(api "$@")
	if [ "$got" = "$want" ] && grep -Eq -- "$re" "$body"; then
		ok "$name"
	else
		fail "$name" "$* -> $got $(head -c 300 "$body")"
	fi
}

# check NAME COND-COMMAND... : ok if the command succeeds, else FAIL with
# the last lines of $out (set by the caller) as the reason.
check() {
	local name=$1
	shift
	if "$@"; then
		ok "$name"
	else
		fail "$name" "$(tail -n 5 "${out:-/dev/null}" 2>/dev/null | tr '\n' '|')"
	fi
}
