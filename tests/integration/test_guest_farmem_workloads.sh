#!/usr/bin/env bash
# The far-memory workloads of the bundled guest under rackvm: kmeans
# (whose centroid checksum is bit-exact, so it must equal QEMU's for the
# same parameters, and a paged run's must equal an unpaged one's) and
# pagestress (every page written, rewritten and checked: bad=0, exit 0).
#
# With the pager (rackvm run --mem-local) both also run with most of
# their memory remote, on each page store this machine can offer: a file,
# rackvm memd servers (one, and two with replicas=2) and memcached.
# Without it those checks are skipped with the reason.
source "$(dirname "$0")/lib.sh"

QEMU=qemu-system-x86_64
TIMEOUT=180
# 4 MiB of points: big enough to page with 2 MiB local, small enough
# for QEMU and ASan to take well under a second.
KMEANS="kmeans points=262144 dims=8 k=4 iters=3 seed=7"

if ! have_kvm; then
	skip guest_farmem "/dev/kvm not usable"
	exit 0
fi
if [ ! -x "$RACKVM" ]; then
	fail guest_farmem "no rackvm binary at $RACKVM"
	exit 0
fi

has() { grep -Eq -- "$1" "$out"; }
# field KEY: KEY=... from the first "result: " line of $out that has it.
field() {
	tr -d '\r' < "$out" | grep '^result: ' | tr ' ' '\n' |
		sed -n "s/^$1=//p" | head -n 1
}
# rk NAME ARGS...: rackvm run ARGS, output in $out, status in $status.
# SEAL: in the test host, pages travel in clear (seal=off): TCG runs
# libsodium's vector code so slowly that sealing took most of this group's
# time there; the workloads' checks do not depend on it (test_pager and
# the Linux tests page sealed there).
SEAL=
if in_test_host; then
	SEAL=,seal=off
fi

rk() {
	out="$TEST_TMP/$1.out"
	shift
	run_cmd "$TIMEOUT" "$out" "$RACKVM" run "$@"
}
kmeans_line() {
	has "^result: kmeans points=262144 dims=8 k=4 iters=3 bytes=8388608 seconds=[0-9.]+ checksum=0x[0-9a-f]{16}$"
}

# --- without the pager ---------------------------------------------------
rk kmeans --mem 64M --cmdline "$KMEANS"
check farmem_kmeans_runs eval '[ "$status" -eq 0 ] && kmeans_line'
sum_plain=$(field checksum)

rk kmeans_again --mem 64M --cmdline "$KMEANS"
check farmem_kmeans_deterministic eval '[ "$status" -eq 0 ] &&
	[ -n "$sum_plain" ] && [ "$(field checksum)" = "$sum_plain" ]'

# The checksum must depend on the data, or equal checksums prove nothing.
rk kmeans_seed --mem 64M --cmdline "${KMEANS/seed=7/seed=8}"
check farmem_kmeans_seed_matters eval '[ "$status" -eq 0 ] &&
	[ -n "$(field checksum)" ] && [ "$(field checksum)" != "$sum_plain" ]'

if command -v "$QEMU" > /dev/null 2>&1 && [ -f "$GUEST_ELF" ]; then
	out="$TEST_TMP/kmeans_qemu.out"
	run_cmd "$TIMEOUT" "$out" "$QEMU" -M microvm -enable-kvm -cpu host \
		-m 64 -smp 1 -nodefaults -no-user-config -nographic \
		-serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
		-kernel "$GUEST_ELF" -append "$KMEANS"
	sum_qemu=$(field checksum)
	# isa-debug-exit: QEMU exits 1 when the guest passes
	check farmem_kmeans_same_as_qemu eval '[ "$status" -eq 1 ] &&
		kmeans_line && [ -n "$sum_plain" ] &&
		[ "$sum_qemu" = "$sum_plain" ]'
else
	skip farmem_kmeans_same_as_qemu "$QEMU or $GUEST_ELF missing"
fi

rk pagestress --mem 64M --cmdline "pagestress mib=32 passes=2 order=random"
check farmem_pagestress eval '[ "$status" -eq 0 ] &&
	has "^result: pagestress mib=32 passes=2 bad=0 seconds=[0-9.]+"'

# A corrupted page must be found and fail the guest (exit 8).
rk pagestress_corrupt --mem 64M --cmdline "pagestress mib=4 passes=1 corrupt=9"
check farmem_pagestress_detects eval '[ "$status" -eq 8 ] &&
	has "^result: pagestress mib=4 passes=1 bad=1 " &&
	has "^pagestress: bad page 9 "'

# --- with the pager ------------------------------------------------------
if ! "$RACKVM" run --help 2>&1 | grep -q -- '--mem-local'; then
	for t in kmeans_file pagestress_file_random pagestress_file_seq \
		pagestress_memd pagestress_memd_replicas pagestress_memcached; do
		skip "farmem_paged_$t" "rackvm run has no --mem-local (no pager yet)"
	done
	exit 0
fi

PAGER_RE='^pager: resident=[0-9]+ remote=[0-9]+ zero=[0-9]+ faults=[0-9]+ fetches=[0-9]+ fetched_pages=[0-9]+ prefetch_hit=[0-9.]+ evictions=[0-9]+ bytes_in=[0-9]+ bytes_out=[0-9]+ fault_p50_us=[0-9]+ fault_p90_us=[0-9]+ fault_p99_us=[0-9]+ discarded=[0-9]+ under_replicated=[0-9]+ fault_us=[0-9]+ room_wait_us=[0-9]+ get_us=[0-9]+ put_us=[0-9]+ evict_us=[0-9]+ stall_us=[0-9]+ paused_batches=[0-9]+ evicted_clean=[0-9]+$'
# pager_ok: exactly one stats line, and the run really paged.
pager_ok() {
	local line
	[ "$(grep -c '^pager: resident=' "$out")" -eq 1 ] && has "$PAGER_RE" || return 1
	line=$(grep '^pager: resident=' "$out")
	[[ $line =~ \ faults=([0-9]+) ]] && [ "${BASH_REMATCH[1]}" -gt 0 ] &&
		[[ $line =~ \ evictions=([0-9]+) ]] && [ "${BASH_REMATCH[1]}" -gt 0 ]
}
# paged_pagestress NAME BACKEND ORDER: 16 MiB through 4 MiB of local RAM.
paged_pagestress() {
	rk "$1" --mem 32M --mem-local 4M --mem-backend "$2" \
		--cmdline "pagestress mib=16 passes=2 order=$3"
	check "farmem_paged_$1" eval '[ "$status" -eq 0 ] &&
		has "^result: pagestress mib=16 passes=2 bad=0 " && pager_ok'
}

rk kmeans_file --mem 24M --mem-local 4M \
	--mem-backend "file:$TEST_TMP/kmeans.swap$SEAL" --cmdline "$KMEANS"
check farmem_paged_kmeans_file eval '[ "$status" -eq 0 ] && kmeans_line &&
	[ -n "$sum_plain" ] && [ "$(field checksum)" = "$sum_plain" ] &&
	pager_ok'

paged_pagestress pagestress_file_random "file:$TEST_TMP/ps.swap$SEAL" random
paged_pagestress pagestress_file_seq "file:$TEST_TMP/ps-seq.swap$SEAL" seq

# free_port: a TCP port nobody listens on now (a race we accept).
free_port() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 40000))
		ss -Htln "sport = :$p" 2> /dev/null | grep -q . || { echo "$p"; return; }
	done
	echo 0
}
servers=()
cleanup() {
	local pid
	for pid in "${servers[@]}"; do
		kill "$pid" 2> /dev/null
		wait "$pid" 2> /dev/null
	done
}
trap cleanup EXIT

# start_memd LOG: starts a memd on 127.0.0.1 and waits for its ready
# line; sets memd_addr to its ADDR:PORT (empty if it did not come up).
start_memd() {
	local log=$1 port i
	port=$(free_port)
	"$RACKVM" memd --listen "127.0.0.1:$port" --capacity 64M \
		< /dev/null > "$log" 2>&1 &
	servers+=($!)
	memd_addr=
	for ((i = 0; i < 100; i++)); do
		memd_addr=$(sed -n 's/^memd: listening on \([^, ]*\).*/\1/p' "$log" | head -n 1)
		[ -n "$memd_addr" ] && return
		sleep 0.1
	done
}

if "$RACKVM" --help 2>&1 | grep -Eq '^ +memd '; then
	start_memd "$TEST_TMP/memd1.log"
	m1=$memd_addr
	start_memd "$TEST_TMP/memd2.log"
	m2=$memd_addr
	if [ -n "$m1" ] && [ -n "$m2" ]; then
		paged_pagestress pagestress_memd "memd:$m1$SEAL" seq
		paged_pagestress pagestress_memd_replicas "memd:$m1,$m2,replicas=2$SEAL" random
	else
		out="$TEST_TMP/memd1.log"
		fail farmem_paged_pagestress_memd "rackvm memd did not come up: $(tail -n 3 "$TEST_TMP"/memd*.log | tr '\n' '|')"
		fail farmem_paged_pagestress_memd_replicas "rackvm memd did not come up"
	fi
else
	skip farmem_paged_pagestress_memd "rackvm has no memd command"
	skip farmem_paged_pagestress_memd_replicas "rackvm has no memd command"
fi

if command -v memcached > /dev/null 2>&1; then
	port=$(free_port)
	as_user=()
	# memcached will not run as root unless told to
	[ "$(id -u)" -eq 0 ] && as_user=(-u root)
	memcached "${as_user[@]}" -p "$port" -U 0 -l 127.0.0.1 -m 64 \
		< /dev/null > "$TEST_TMP/memcached.log" 2>&1 &
	servers+=($!)
	for ((i = 0; i < 100; i++)); do
		ss -Htln "sport = :$port" 2> /dev/null | grep -q . && break
		sleep 0.1
	done
	paged_pagestress pagestress_memcached "memcached:127.0.0.1:$port" seq
else
	skip farmem_paged_pagestress_memcached "memcached not installed"
fi
