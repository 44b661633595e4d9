#!/usr/bin/env bash
# The chaos suite's short run (tests/chaos/chaos.py): three memd servers
# behind fault proxies under a pagestress VM and a kmeans VM, each with
# a quarter of its memory local and replicas=2; a fixed seed's faults
# (kill and restart, SIGSTOP, a partition, added latency, cut
# connections, a server gone for good, two servers out at once), each
# healed and checked: guest data intact, a pause only with two servers
# out, every page with its two copies again, the servers empty once the
# VMs exit.  CHAOS_SEED=N replays another seed; `make chaos` is the long
# run.
. "$(dirname "$0")/lib.sh"

pager_usable chaos || exit 0
if ! command -v python3 > /dev/null; then
	skip chaos "no python3"
	exit 0
fi
CHAOS_PROXY=${CHAOS_PROXY:-$(dirname "$RACKVM")/../chaos-proxy}
if [ ! -x "$CHAOS_PROXY" ]; then
	fail chaos "no chaos-proxy at $CHAOS_PROXY (make asan builds it)"
	exit 0
fi

# The emulated test host pages ~10-40x slower: fewer faults there (the
# driver also shrinks its VMs), every kind still met.
faults=6
in_test_host && faults=3
out=$TEST_TMP/chaos.out
CHAOS_DIR=$TEST_TMP/chaos CHAOS_PROXY=$CHAOS_PROXY \
	timeout -k 10 "$(in_test_host && echo 600 || echo 240)" \
	python3 tests/chaos/chaos.py --faults "$faults" --seed "${CHAOS_SEED:-13}" > "$out" 2>&1
status=$?
cat "$out"
if [ "$status" -ne 0 ] && ! grep -q '^FAIL ' "$out"; then
	fail chaos "the driver ended with status $status: $(tail -n 3 "$out" | tr '\n' '|')"
fi
exit 0
