# bench/lib.sh: sourced (never run) by every benchmark in bench/, after it
# has changed to the repository's root.  It holds what they share: where
# they run (--host), the line saying which environment their figures come
# from, and the timing and summary helpers.
#
# Where a benchmark runs (--host WHERE, anywhere among its arguments):
#   direct     on this machine's /dev/kvm
#   emulated   inside the emulated test host (tests/rack/host run: an L1
#              Linux under QEMU TCG with nested SVM, whose /dev/kvm runs
#              rackvm and QEMU -enable-kvm side by side); the benchmark
#              re-runs itself there with the same arguments
#   auto       (default) direct where /dev/kvm is usable, else emulated;
#              for a benchmark that boots Linux, direct only where the
#              machine's KVM can boot Linux (see bench_kvm_boots_linux)
# Inside a test host (RACK_HOST=1) a benchmark always runs where it is.
# Options of the re-run: BENCH_HOST_CPUS (2), BENCH_HOST_MEM (6G),
# BENCH_HOST_TIMEOUT (seconds; the benchmark's own default),
# BENCH_HOST_VERBOSE=1 (the test host's kernel log on stderr).
#
# A benchmark calls, in this order:
#   bench_init NAME NEEDS "$@"   NEEDS: kvm or linux (what auto asks of
#                                the machine's KVM); leaves the other
#                                arguments in BENCH_ARGS
#   (check its arguments, build what is missing: on the machine, since
#   writes inside the test host vanish with it)
#   bench_enter                  re-runs in the test host (does not return)
#                                or checks /dev/kvm and prints the
#                                environment line; sets BENCH_ENV to
#                                direct or emulated

BENCH_NAME=
BENCH_NEEDS=kvm
BENCH_HOST=auto
BENCH_ENV=
BENCH_ARGS=()

bench_die() { echo "bench/$BENCH_NAME: $*" >&2; exit 2; }

# bench_usage: the benchmark's header comment (the lines after #! up to
# the first line that is not a comment).
bench_usage() {
	sed -n '2,/^[^#]/p' "bench/$BENCH_NAME" | sed '$d; s/^# \{0,1\}//'
	cat <<-EOF

	--host direct|emulated|auto: run on this machine's /dev/kvm, or inside
	the emulated test host (tests/rack/host), or pick (default: auto);
	see bench/lib.sh.
	EOF
}

bench_init() {
	BENCH_NAME=$1
	BENCH_NEEDS=$2
	shift 2
	while [ $# -gt 0 ]; do
		case $1 in
		--host) [ $# -ge 2 ] || bench_die "--host needs direct, emulated or auto"
			BENCH_HOST=$2; shift 2 ;;
		--host=*) BENCH_HOST=${1#--host=}; shift ;;
		-h | --help) bench_usage; exit 0 ;;
		*) BENCH_ARGS+=("$1"); shift ;;
		esac
	done
	case $BENCH_HOST in
	direct | emulated | auto) ;;
	*) bench_die "--host takes direct, emulated or auto, not '$BENCH_HOST'" ;;
	esac
}

# bench_kvm_usable: /dev/kvm exists and opens read-write (a node without
# a loaded module fails the open).
bench_kvm_usable() {
	[ -c /dev/kvm ] && [ -r /dev/kvm ] && [ -w /dev/kvm ] &&
		{ : <> /dev/kvm; } 2> /dev/null
}

# bench_machine_is_vm: the CPU says it runs under a hypervisor, so its
# KVM is nested.
bench_machine_is_vm() { grep -qw hypervisor /proc/cpuinfo 2> /dev/null; }

# bench_kvm_boots_linux: whether this machine's KVM can boot a Linux
# guest, as far as can be told without trying (a boot that fails takes
# minutes).  `rackvm doctor`, where rackvm has it, times guest ring 0 and
# says ("guest ring 0 speed": ok, or warn on a software-assisted nested
# KVM that Linux cannot boot on); without it, only a machine that is not
# itself a VM counts.  `--host direct` tries anyway.  Sets bench_why to
# the reason when not.
bench_kvm_boots_linux() {
	local rackvm=${RACKVM:-build/rackvm} line
	bench_why=
	if ! bench_kvm_usable; then
		bench_why="no usable /dev/kvm on this machine"
		return 1
	fi
	if [ -x "$rackvm" ] && "$rackvm" --help 2>&1 | grep -Eq '^ +doctor '; then
		line=$("$rackvm" doctor 2>&1 | grep -m1 'guest ring 0 speed')
		case $line in
		ok*) return 0 ;;
		?*)
			bench_why="rackvm doctor, guest ring 0 speed: $(printf '%s' "$line" | sed 's/^[a-z]* *guest ring 0 speed *//')"
			return 1
			;;
		esac
	fi
	if bench_machine_is_vm; then
		bench_why="this machine is itself a VM, so its KVM is nested, which often cannot boot Linux"
		return 1
	fi
	return 0
}

bench_enter() {
	if [ -n "${RACK_HOST:-}" ]; then
		BENCH_ENV=emulated
		# What a bench keeps (OUT_DIR) goes where the host's --keep
		# copies it from once the host has ended; BENCH_OUT_SHOWN is
		# where it will be then, for the bench to say.
		export BENCH_OUT_SHOWN=${OUT_DIR:-build/bench/$BENCH_NAME}
		export OUT_DIR=$RACK_JOB/keep
		bench_kvm_usable || bench_die "the test host has no usable /dev/kvm"
		# With its log on stderr, the test host's warnings (soft
		# lockups, hung tasks) come with their backtraces.
		[ "${BENCH_HOST_VERBOSE:-0}" = 0 ] ||
			echo 7 > /proc/sys/kernel/printk 2> /dev/null || true
		bench_print_environment
		return 0
	fi
	if [ "$BENCH_HOST" = auto ]; then
		BENCH_HOST=direct
		if [ "$BENCH_NEEDS" = linux ]; then
			bench_kvm_boots_linux || BENCH_HOST=emulated
		elif ! bench_kvm_usable; then
			bench_why="no usable /dev/kvm on this machine"
			BENCH_HOST=emulated
		fi
		[ "$BENCH_HOST" = direct ] ||
			echo "bench/$BENCH_NAME: $bench_why: running in the emulated test host (--host direct to override)" >&2
	fi
	if [ "$BENCH_HOST" = emulated ]; then
		local limit=()
		# timeout(1) rather than the host's --timeout, whose watchdog
		# sleep outlives the host and keeps a pipe on its output open
		[ -z "${BENCH_HOST_TIMEOUT:-}" ] || limit=(timeout -k 30 "$BENCH_HOST_TIMEOUT")
		# What the test host cannot see itself, for its environment line.
		export BENCH_MACHINE_CPUS
		BENCH_MACHINE_CPUS=$(nproc)
		local verbose=()
		[ "${BENCH_HOST_VERBOSE:-0}" = 0 ] || verbose=(--verbose)
		exec "${limit[@]}" tests/rack/host run --cpus "${BENCH_HOST_CPUS:-2}" \
			--mem "${BENCH_HOST_MEM:-6G}" "${verbose[@]}" \
			--keep "${OUT_DIR:-build/bench/$BENCH_NAME}" -- \
			"bench/$BENCH_NAME" --host emulated "${BENCH_ARGS[@]}"
	fi
	BENCH_ENV=direct
	bench_kvm_usable || bench_die "/dev/kvm is missing or not accessible (--host emulated runs in the test host)"
	bench_print_environment
}

bench_print_environment() {
	local mem_gib
	mem_gib=$(awk '/^MemTotal:/ { printf "%.1f", $2 / 1048576 }' /proc/meminfo)
	if [ "$BENCH_ENV" = emulated ]; then
		echo "environment: emulated test host (QEMU TCG L1, nested SVM; no PMU)"
		echo "  test host: $(nproc) vCPUs, $mem_gib GiB, Linux $(uname -r), on a machine with ${BENCH_MACHINE_CPUS:-?} CPUs;"
		echo "  rackvm and QEMU use the test host's KVM, whose guests run under TCG: figures compare the"
		echo "  two VMMs with each other, not with hardware"
	else
		echo "environment: host KVM"
		if bench_machine_is_vm; then
			echo "  this machine ($(nproc) CPUs, $mem_gib GiB, Linux $(uname -r)) is itself a VM: its KVM is nested"
		else
			echo "  this machine: $(nproc) CPUs, $mem_gib GiB, Linux $(uname -r)"
		fi
	fi
}

# bench_warm_cache PATH...: reads the files (and every file under a
# directory, and the shared libraries of a program) once, so that the
# first timed run does not pay for bringing them in: in the test host
# they come over 9p, at a cost of seconds.  Missing paths are skipped.
bench_warm_cache() {
	local p libs
	for p in "$@"; do
		p=$(command -v "$p" 2> /dev/null || echo "$p")
		[ -e "$p" ] || continue
		if [ -d "$p" ]; then
			find "$p" -type f -exec cat {} + > /dev/null 2>&1
			continue
		fi
		cat "$p" > /dev/null 2>&1
		if [ -x "$p" ]; then
			libs=$(ldd "$p" 2> /dev/null | sed -n 's/.*=> \(\/[^ ]*\).*/\1/p')
			[ -z "$libs" ] || cat $libs > /dev/null 2>&1
		fi
	done
	return 0
}

# bench_mem_mib SIZE: 512M, 1G, 65536K or bytes -> MiB.
bench_mem_mib() {
	local n=${1%[KkMmGg]}
	case $1 in
	*[Kk]) echo $((n >> 10)) ;;
	*[Mm]) echo "$n" ;;
	*[Gg]) echo $((n << 10)) ;;
	*) echo $((n >> 20)) ;;
	esac
}

# bench_us_since START NOW: microseconds between two $EPOCHREALTIME values.
bench_us_since() { echo $((${2/./} - ${1/./})); }

# bench_timed_run OUT MARK TIMEOUT CMD...: runs CMD once (stdin
# /dev/null; TIMEOUT seconds at most when not 0, which needs CMD to be a
# program, not a function), reading its standard output as it arrives.
# Sets, in microseconds from just before the fork: t_first (the first line
# with text), t_mark (the first line matching the extended regex MARK;
# empty if none or MARK is empty) and t_exit (the process's exit); and
# run_status (CMD's exit status, 124 on timeout).  The output is left in
# OUT, standard error in OUT.err.
bench_timed_run() {
	local out=$1 mark=$2 limit=$3 start line now
	shift 3
	t_first=
	t_mark=
	t_exit=
	run_status=
	: > "$out"
	start=$EPOCHREALTIME
	# A pipe, not a process substitution: the test host has no /dev/fd.
	# lastpipe keeps the reading loop (and what it sets) in this shell.
	shopt -s lastpipe
	{
		# (set -e is inherited here: keep a failing command from
		# skipping the status line)
		st=0
		if [ "$limit" -gt 0 ]; then
			timeout -k 5 "$limit" "$@" < /dev/null 2> "$out.err" || st=$?
		else
			"$@" < /dev/null 2> "$out.err" || st=$?
		fi
		printf '\n__bench_status=%d\n' "$st"
	} | while IFS= read -r line; do
		now=$EPOCHREALTIME
		case $line in
		__bench_status=*)
			run_status=${line#__bench_status=}
			t_exit=$(bench_us_since "$start" "$now")
			;;
		*)
			printf '%s\n' "$line" >> "$out"
			# first line with text (terminal control bytes aside)
			if [ -z "$t_first" ] && [[ $line == *[[:alnum:]]* ]]; then
				t_first=$(bench_us_since "$start" "$now")
			fi
			if [ -n "$mark" ] && [ -z "$t_mark" ] && [[ $line =~ $mark ]]; then
				t_mark=$(bench_us_since "$start" "$now")
			fi
			;;
		esac
	done
}

# bench_median: of the numbers on stdin (integers: the mean of the middle
# two rounded); fails on none.
bench_median() {
	sort -g | awk '{ v[NR] = $1 } END {
		if (NR == 0) exit 1
		if (NR % 2) print v[(NR + 1) / 2]
		else printf "%.0f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

# bench_ratio A B: A/B with two decimals, "-" if either is missing.
bench_ratio() {
	if [ -z "$1" ] || [ -z "$2" ] || [ "$1" = - ] || [ "$2" = - ] || [ "$2" = 0 ]; then
		echo -
	else
		awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'
	fi
}
