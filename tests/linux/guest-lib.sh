# Helpers for the Linux test guest's cases (busybox sh), installed as
# /lib/rackvm.sh: a case starts with ". /lib/rackvm.sh".
#
# A case prints one line per check, like the integration tests:
#   ok NAME | FAIL NAME: why | skip NAME: why
# (the host side relays them with a prefix naming the boot), and "# ..."
# lines for information.  Its exit status is reported too; 0 unless the
# case could not run at all.

ok() { echo "ok $1"; }
fail() { echo "FAIL $1: $2"; }
skip() { echo "skip $1: $2"; }
note() { echo "# $*"; }

# check NAME CMD...: ok if CMD succeeds, else FAIL with the end of its
# output (stdout and stderr, on one line).
check() {
	local name=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	if [ "$rc" -eq 0 ]; then
		ok "$name"
	else
		fail "$name" "status $rc: $(echo "$out" | tail -n 3 | tr '\n' '|')"
	fi
}

# wait_for SECONDS CMD...: polls CMD every 0.1 s until it succeeds (0) or
# SECONDS pass (1).
wait_for() {
	local tenths=$(($1 * 10))
	shift
	while ! "$@" 2> /dev/null; do
		tenths=$((tenths - 1))
		[ "$tenths" -gt 0 ] || return 1
		sleep 0.1
	done
}

# check_beats_read_back N: blocks 0..N-1 of /dev/vda, read from the
# device (not the cache), each hold "beat %08d" with its number (the
# cases that beat to the disk while the host saves or moves them).
check_beats_read_back() {
	local n=$1 bad=0 i=0 got
	while [ "$i" -lt "$n" ]; do
		got=$(dd if=/dev/vda bs=512 skip="$i" count=1 iflag=direct 2> /dev/null | head -c 14)
		[ "$got" = "$(printf 'beat %08d' "$i")" ] || bad=$((bad + 1))
		i=$((i + 1))
	done
	if [ "$bad" -eq 0 ] && [ "$n" -gt 0 ]; then
		ok disk_beats_read_back
	else
		fail disk_beats_read_back "$bad of $n beats' blocks read back wrong"
	fi
}

# request_reboot: /init resets the VM instead of powering it off.
request_reboot() { : > /run/rackvm.reboot; }
