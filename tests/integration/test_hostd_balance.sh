#!/usr/bin/env bash
# hostd's balancer with real VMs: N bundled-guest VMs (N = 2, then 4) of
# 256 MiB on a budget of N x 128 MiB, paging to a file store, each running
# wsswork over a 160 MiB arena (half of each in the emulated test host;
# written once at the start, checked at the
# end) busy in its own slot of SLOT_S seconds and idle in the others, so
# the arenas never fit together and whoever is busy must get memory from
# the idle ones.  What a user must see:
#   - every VM ends intact (wsswork verify bad=0, exit 0);
#   - the sum of targets never exceeds the budget, in any period;
#   - targets are followed: a VM's resident never stays above the target
#     it was given (five periods to get there);
#   - a VM that wakes gets its memory back within a few periods: once its
#     WSS estimate shows the arena, its target covers it within 3 periods;
#   - the idle VMs' pages went to the store (remote > 0).
set -u
cd "$(dirname "$0")/../.."
. tests/integration/lib.sh

SLOT_S=${SLOT_S:-5}
MIB=$((1024 * 1024))
# In the emulated test host every first touch and every page fault costs
# ~10-40x more: half the sizes there, the same ratios (arena 5/8 of a
# VM's RAM, a budget of half the RAM), so the same squeeze.
# WAKE_MIB: a WSS estimate this large says the VM woke.
VM_MIB=256 ARENA_MIB=160 WSS= GRACE=120 BUSY=r WAKE_MIB=100
if in_test_host; then
	# and the WSS by write logging only, so the busy slot writes (the
	# reference sampler's faults under TCG slowed a VM's fill ~15x); a
	# VM there touches 5-15 MiB of its arena in an interval, not all of it
	VM_MIB=128 ARENA_MIB=80 WSS=', "wss": {"mode": "dirty"}' GRACE=300 BUSY=w
	WAKE_MIB=4
fi

# scenario N: the N-VM run; its checks are named hostd_balance_N_*.
scenario() {
	local n=$1 rt=$TEST_TMP/rt$1 swap=$TEST_TMP/swap$1 hostd_pid phases i s
	mkdir -p "$swap"
	"$RACKVM" hostd --memory $((n * VM_MIB / 2))M --runtime-dir "$rt" \
		--swap "file:$swap" > "$TEST_TMP/hostd$n.out" 2>&1 &
	hostd_pid=$!
	for _ in $(seq 100); do [ -S "$rt/hostd.sock" ] && break; sleep 0.1; done
	for ((i = 0; i < n; i++)); do
		phases=
		for ((s = 0; s < n; s++)); do
			phases+="${phases:+,}$([ "$s" = "$i" ] && echo "$BUSY$ARENA_MIB" || echo i)"
		done
		curl -s --unix-socket "$rt/hostd.sock" -X POST -o /dev/null \
			-w '%{http_code}\n' http://hostd/vms -d "{\"name\": \"v$i\", \"mem\": \"${VM_MIB}M\", \"cmdline\": \"wsswork phases=$phases phase_s=$SLOT_S arena=$ARENA_MIB\"$WSS}"
	done > "$TEST_TMP/posts$n"
	check_eq "hostd_balance_${n}_posted" "$(sort -u "$TEST_TMP/posts$n")" 201
	local limit=$((SECONDS + n * SLOT_S + GRACE))
	while [ $SECONDS -lt $limit ] &&
		curl -s --unix-socket "$rt/hostd.sock" http://hostd/vms |
		grep -Eq '"state":"(starting|running|unresponsive)"'; do
		sleep 0.5
	done
	curl -s --unix-socket "$rt/hostd.sock" http://hostd/vms > "$TEST_TMP/vms$n.json"
	report_stuck_vms "$n" "$rt"
	kill "$hostd_pid"
	wait "$hostd_pid" 2> /dev/null
	pkill -f -- "$rt/" 2> /dev/null
	local intact=0
	for ((i = 0; i < n; i++)); do
		grep -q "result: wsswork verify pages=$((ARENA_MIB * 256)) bad=0" "$rt/v$i.console" &&
			intact=$((intact + 1))
	done
	check_eq "hostd_balance_${n}_every_vm_intact" "$intact" "$n"
	check_eq "hostd_balance_${n}_every_vm_exited" \
		"$(grep -o '"state":"[a-z]*"' "$TEST_TMP/vms$n.json" | sort -u)" '"state":"exited"'
	python3 - "$rt/balancer.jsonl" "$n" "$WAKE_MIB" <<'EOF'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
n = sys.argv[2]
MIB = 1 << 20
SHOWN = int(sys.argv[3]) * MIB   # a WSS this large: the VM woke
def result(name, ok, why=""):
    print(("ok " if ok else "FAIL ") + f"hostd_balance_{n}_{name}" + ("" if ok else ": " + why))
over = [round(l["t"], 1) for l in lines if l["targets"] > l["budget"]]
result("targets_within_budget", lines and not over, f"{len(lines)} lines, over at {over[:5]}")
series = {}
for l in lines:
    for v in l["vms"]:
        series.setdefault(v["vm"], []).append(v)
# followed: resident <= the largest of the last five targets (+ 16 MiB):
# eviction takes time (the ASan build, a busy machine), ignoring a
# target does not
late = []
for name, s in series.items():
    for k in range(5, len(s)):
        allowed = max(v["target"] for v in s[k - 5:k]) + 16 * MIB
        if s[k]["resident"] > allowed:
            late.append(f"{name}@{k}: {s[k]['resident'] // MIB} > {allowed // MIB} MiB")
result("targets_followed", series and not late, "; ".join(late[:4]))
# waking: once the WSS shows the VM woke, target >= it within 3 periods
slow = []
woke = 0
for name, s in series.items():
    if name == "v0":
        continue        # busy from the start: it never wakes
    k = next((k for k, v in enumerate(s) if v["wss"] and v["wss"]["estimate"] >= SHOWN), None)
    if k is None:
        slow.append(f"{name}: WSS never showed its arena (at most "
                    f"{max((v['wss']['estimate'] for v in s if v['wss']), default=0) // MIB} MiB)")
        continue
    woke += 1
    if not any(v["target"] >= s[k]["wss"]["estimate"] for v in s[k:k + 4]):
        slow.append(f"{name}: WSS {s[k]['wss']['estimate'] // MIB} MiB, targets "
                    + ",".join(str(v["target"] // MIB) for v in s[k:k + 4]))
result("waking_vm_gets_memory", woke and not slow, "; ".join(slow))
remote = max((v["remote"] for s in series.values() for v in s), default=0)
result("idle_pages_went_to_the_store", remote > 0, "remote stayed 0")
peak = max((sum(v["resident"] for v in l["vms"]) for l in lines[5:]), default=0)
print(f"# hostd_balance_{n}: {len(lines)} periods, resident sum peak {peak // MIB} MiB "
      f"(budget {lines[0]['budget'] // MIB if lines else 0} MiB), remote peak {remote // MIB} MiB")
EOF
}

# report_stuck_vms N RT: for each VM still running when the time is up,
# where it is: its console's last line, its vCPUs' exit counts twice 2 s
# apart (moving: it runs; still: halted, paused or in a fault) and its
# threads' kernel stacks, so a hang says which of them it is.
report_stuck_vms() {
	local n=$1 rt=$2 i pid
	for ((i = 0; i < n; i++)); do
		pid=$(python3 -c 'import json, sys
print(next((v["pid"] for v in json.load(open(sys.argv[1]))["vms"]
            if v["name"] == sys.argv[2]), ""))' "$TEST_TMP/vms$n.json" "v$i" 2> /dev/null)
		[ -n "$pid" ] && [ -d "/proc/$pid" ] || continue
		echo "# hostd_balance_${n}: v$i still runs; console: $(tail -n 1 "$rt/v$i.console")"
		for _ in 1 2; do
			echo "# v$i exits: $(curl -s --unix-socket "$rt/v$i.sock" http://vm/metrics |
				grep '^rackvm_vcpu_exits_total' | awk '$2 > 0 { printf "%s=%s ", $1, $2 }' |
				sed 's/rackvm_vcpu_exits_total//g')"
			sleep 2
		done
		thread_stacks "$pid" | sed "s/^/# v$i thread: /"
	done
}

check_eq() {
	if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "got '$2', want '$3'"; fi
}

scenario 2
scenario 4
