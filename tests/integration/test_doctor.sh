#!/usr/bin/env bash
# rackvm doctor: lists what the host offers and exits 0 where rackvm run
# can work, 2 (with the reason on the /dev/kvm line) where it cannot: no
# /dev/kvm, or one this user may not open.  Those two cases run in a
# private mount namespace with an empty /dev, so they hold on any machine.
. "$(dirname "$0")/lib.sh"

out=$TEST_TMP/out

run_cmd 10 "$out" "$RACKVM" doctor --frobnicate
check doctor_rejects_unknown_option bash -c "[ $status -eq 2 ] && grep -q 'unknown option' '$out'"

if [ "$(id -u)" -eq 0 ] && command -v unshare > /dev/null; then
	run_cmd 60 "$out" unshare -m sh -c "mount -t tmpfs none /dev && exec '$RACKVM' doctor"
	check doctor_kvm_missing_exits_2 bash -c "[ $status -eq 2 ] &&
		grep -Eq '^missing +/dev/kvm +cannot open /dev/kvm: No such file or directory' '$out' &&
		grep -q '^rackvm run cannot work on this host: missing /dev/kvm$' '$out'"
	cp "$RACKVM" "$TEST_TMP/rackvm-copy" && chmod 755 "$TEST_TMP" "$TEST_TMP/rackvm-copy"
	run_cmd 60 "$out" unshare -m sh -c "mount -t tmpfs none /dev && mknod -m 600 /dev/kvm c 10 232 &&
		exec setpriv --reuid=65534 --regid=65534 --clear-groups '$TEST_TMP/rackvm-copy' doctor"
	check doctor_kvm_no_permission_exits_2 bash -c "[ $status -eq 2 ] &&
		grep -Eq '^missing +/dev/kvm +cannot open /dev/kvm: Permission denied \(run as root or join the kvm group\)' '$out' &&
		grep -q '^rackvm run cannot work on this host: missing /dev/kvm$' '$out'"
	run_cmd 60 "$out" unshare -m sh -c "mount -t tmpfs none /dev && exec '$RACKVM' doctor --json"
	check doctor_json_says_run_impossible bash -c "[ $status -eq 2 ] && python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
kvm = [i for i in d[\"items\"] if i[\"name\"] == \"/dev/kvm\"][0]
assert d[\"run_possible\"] is False and kvm[\"status\"] == \"missing\" and kvm[\"required\"]
' '$out'"
else
	skip doctor_kvm_missing_exits_2 "needs root and unshare to hide /dev/kvm"
	skip doctor_kvm_no_permission_exits_2 "needs root to drop privileges"
	skip doctor_json_says_run_impossible "needs root and unshare to hide /dev/kvm"
fi

if ! have_kvm; then
	skip doctor_with_kvm "no usable /dev/kvm"
	exit 0
fi

# Where /dev/kvm works: exit 0, every capability kvm.c requires listed as
# ok, a VM created, and a verdict on ring-0 speed (ok or warn, by machine).
run_cmd 120 "$out" "$RACKVM" doctor
check doctor_exits_0_with_kvm bash -c "[ $status -eq 0 ] &&
	grep -Eq '^ok +/dev/kvm ' '$out' && grep -Eq '^ok +KVM API version +version 12' '$out' &&
	grep -Eq '^ok +VM creation ' '$out' && grep -q '^rackvm run works on this host' '$out'"
# expect_items CHECK STATUS-REGEX NAME...: each NAME has a line with a
# status matching STATUS-REGEX (bash matching: no process per item, which
# matters in the emulated test host).
expect_items() {
	local name=$1 want=$2 item line absent="" found
	shift 2
	[ $# -gt 0 ] || { fail "$name" "no item names to look for"; return; }
	for item in "$@"; do
		found=0
		while IFS= read -r line; do
			[[ $line =~ ^($want)\ +$item(\ |$) ]] && { found=1; break; }
		done < "$out"
		[ $found -eq 1 ] || absent="$absent '$item'"
	done
	if [ -z "$absent" ]; then ok "$name"; else fail "$name" "not listed as $want:$absent"; fi
}
# shellcheck disable=SC2046 # one word per capability
expect_items doctor_lists_required_caps ok \
	$(sed -n 's/^\t{ KVM_CAP_[A-Z0-9_]*, "\(KVM_CAP_[A-Z0-9_]*\)".*/\1/p' src/vm/kvm.c)
expect_items doctor_lists_optional_items 'ok|missing|warn' 'dirty ring' \
	'manual dirty-log protect' userfaultfd 'huge pages' 'NUMA nodes' \
	'PMU counters' 'RDT \(resctrl\)' 'RAPL energy'
# the lost-page path the pager takes here: poison with UFFDIO_POISON
# (Linux 6.6+), wake-and-stop without it (the test host's 6.1)
check doctor_names_the_lost_page_path grep -Eq \
	'^(ok +UFFDIO_POISON +lost-page path: poison\.|missing +UFFDIO_POISON +not offered by this kernel; lost-page path: wake-and-stop\.)' "$out"
check doctor_ring0_speed_verdict grep -Eq '^(ok|warn) +guest ring 0 speed +a loop takes [0-9.]+x the host' "$out"

run_cmd 120 "$out" "$RACKVM" doctor --json
check doctor_json_with_kvm bash -c "[ $status -eq 0 ] && python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
names = {i[\"name\"]: i for i in d[\"items\"]}
assert d[\"run_possible\"] is True and names[\"/dev/kvm\"][\"status\"] == \"ok\"
assert all(i[\"status\"] != \"missing\" for i in d[\"items\"] if i[\"required\"])
' '$out'"
