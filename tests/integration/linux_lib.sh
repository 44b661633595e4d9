# Helpers for the tests that boot Debian's cloud kernel with the Linux test
# guest (tests/linux/build-guest) under rackvm (sourced after lib.sh, bash).
#
#   linux_prepare
#       Fetches the kernel and builds the guest image (cached), then, when
#       not already inside the emulated test host, runs the calling script
#       again inside it (tests/rack/host run) and exits with its status:
#       these tests need a KVM that runs Linux.  Call it first.
#   linux_run NAME CASE [ARG...] [-- RACKVM-ARGS...]
#       Boots /cases/CASE.sh with ARGs (rackvm.args=ARG,ARG,...) and waits
#       for rackvm to exit (LINUX_TIMEOUT seconds, default 600: a boot
#       takes ~10 s in an idle test host, several times that on a busy
#       machine; then it is killed).  Prints "ok NAME_case" if the case ran to its end with
#       status 0 (else FAIL with the reason and the end of the console),
#       then every check line the case printed, named NAME_CHECK, and its
#       "# ..." lines.
#       Sets $status (rackvm's exit status, 124 on timeout), $out (the
#       console as printable text), $err (rackvm's stderr).
#   linux_start NAME CASE [ARG...] [-- RACKVM-ARGS...]
#   linux_wait_console REGEX [SECONDS]
#   linux_finish
#       The same in steps, for tests that act on the host while the guest
#       runs: linux_start boots in the background, linux_wait_console
#       waits until a console line matches REGEX (extended; 0 found, 1 not
#       within SECONDS, default 60, or rackvm ended), linux_finish waits
#       for the exit and reports like linux_run.
#   linux_check_status CHECK WANT
#       ok CHECK if $status is WANT, else FAIL with the end of the console.
#
# Variables: LINUX_KERNEL (default build/linux/vmlinux, the PVH ELF;
# build/linux/vmlinuz is the bzImage), LINUX_MEM (512M), LINUX_CPUS (1),
# LINUX_CMDLINE (extra kernel parameters), LINUX_VERBOSE=1 (the whole boot
# log on the console, and the console printed after the checks),
# LINUX_TIMEOUT.

LINUX_INITRD=${LINUX_GUEST_DIR:-build/linux-guest}/initrd.gz

linux_prepare() {
	local log=$TEST_TMP/linux-prepare.log rc=0
	tests/linux/build-guest > "$log" 2>&1 || rc=$?
	if [ "$rc" -ne 0 ]; then
		if [ -n "${RACK_HOST:-}" ]; then
			fail linux_guest_image "tests/linux/build-guest failed ($rc) inside the test host, which has no network: run it on the machine first; $(tail -n 2 "$log" | tr '\n' '|')"
		else
			fail linux_guest_image "tests/linux/build-guest failed ($rc): $(tail -n 3 "$log" | tr '\n' '|')"
		fi
		exit 0
	fi
	if [ -z "${RACK_HOST:-}" ]; then
		local script
		script=$(realpath "$0")
		exec tests/rack/host run --timeout "${LINUX_HOST_TIMEOUT:-1200}" \
			--quiet -- bash "$script"
	fi
}

# linux_split_args CASE [ARG...] [-- RACKVM-ARGS...]: sets linux_case,
# linux_args (comma-joined) and the array linux_vm_args.
linux_split_args() {
	linux_case=$1
	linux_args=
	linux_vm_args=()
	shift
	while [ $# -gt 0 ] && [ "$1" != -- ]; do
		linux_args+="${linux_args:+,}$1"
		shift
	done
	[ $# -gt 0 ] && shift
	linux_vm_args=("$@")
}

linux_start() {
	local quiet=quiet
	linux_name=$1
	shift
	linux_split_args "$@"
	[ "${LINUX_VERBOSE:-0}" = 1 ] && quiet=
	linux_raw=$TEST_TMP/$linux_name.console
	out=$TEST_TMP/$linux_name.out
	err=$TEST_TMP/$linux_name.err
	: > "$linux_raw"
	: > "$out"
	linux_started=$SECONDS
	timeout -k 5 "${LINUX_TIMEOUT:-600}" "$RACKVM" run \
		--kernel "${LINUX_KERNEL:-build/linux/vmlinux}" \
		--initrd "$LINUX_INITRD" \
		--mem "${LINUX_MEM:-512M}" --cpus "${LINUX_CPUS:-1}" \
		--console "$linux_raw" \
		--cmdline "console=ttyS0 panic=-1 $quiet rackvm.case=$linux_case${linux_args:+ rackvm.args=$linux_args} ${LINUX_CMDLINE:-}" \
		"${linux_vm_args[@]}" < /dev/null > "$err" 2>&1 &
	linux_pid=$!
	# shortly before the timeout, where each of rackvm's threads waits
	# (kernel stacks: root in the test host), for the failure report
	(
		sleep $((${LINUX_TIMEOUT:-600} - 15))
		thread_stacks "$(pgrep -P "$linux_pid" | head -n 1)"
	) > "$TEST_TMP/$linux_name.stacks" 2> /dev/null &
	linux_watch=$!
}

# linux_console: the console so far into $out, as text (no CRs, nor the
# odd control byte a UART driver leaves, which would make grep see binary).
linux_console() { LC_ALL=C tr -cd '\11\12\40-\176' < "$linux_raw" > "$out"; }

linux_wait_console() {
	local regex=$1 limit=$((SECONDS + ${2:-60}))
	while [ "$SECONDS" -lt "$limit" ]; do
		linux_console
		grep -Eq "$regex" "$out" && return 0
		kill -0 "$linux_pid" 2> /dev/null || break
		sleep 0.2
	done
	linux_console
	grep -Eq "$regex" "$out"
}

# linux_tail: the end of the console and of rackvm's stderr, on one line.
linux_tail() {
	echo "console: $(grep -v '^# dmesg' "$out" | tail -n 6 | tr '\n' '|') stderr: $(tail -n 3 "$err" | tr '\n' '|')"
}

linux_finish() {
	local end
	wait "$linux_pid"
	status=$?
	pkill -P "$linux_watch" 2> /dev/null
	kill "$linux_watch" 2> /dev/null
	wait "$linux_watch" 2> /dev/null
	[ "$status" -eq 124 ] && sed "s/^/# $linux_name: stuck: /" "$TEST_TMP/$linux_name.stacks"
	linux_console
	echo "# $linux_name: rackvm exited with status $status after $((SECONDS - linux_started)) s"
	end=$(grep -m1 "^rackvm-guest: end $linux_case status=" "$out" || true)
	if [ "$end" = "rackvm-guest: end $linux_case status=0" ]; then
		ok "${linux_name}_case"
	elif [ -n "$end" ]; then
		fail "${linux_name}_case" "the case ended with ${end##* }; $(linux_tail)"
	elif [ "$status" -eq 124 ]; then
		fail "${linux_name}_case" "no end of the case within ${LINUX_TIMEOUT:-600} s; $(linux_tail)"
	else
		fail "${linux_name}_case" "rackvm exited with status $status before the case ended; $(linux_tail)"
	fi
	sed -nE -e '/^# dmesg: /d' -e "s/^(ok|FAIL|skip) /\\1 ${linux_name}_/p" \
		-e "s/^# /# $linux_name: /p" "$out"
	if [ "${LINUX_VERBOSE:-0}" = 1 ]; then
		sed "s/^/# $linux_name console: /" "$out"
	else
		grep '^# dmesg: ' "$out" | tail -n 40
	fi
}

linux_run() {
	linux_start "$@"
	linux_finish
}

linux_check_status() {
	if [ "$status" -eq "$2" ]; then
		ok "$1"
	else
		fail "$1" "want rackvm exit status $2, got $status; $(linux_tail)"
	fi
}
