#!/usr/bin/env bash
# The balloon and the pager together (rackvm run --mem-local with
# --balloon,free-page-reporting): pages the guest gives back leave the
# pager's counts and its page store instead of staying there.
#
# The bundled guest (64 MiB, 16 MiB resident) writes 8192 pages (32 MiB),
# so that about half of them go to a file: store, reports them all as
# free (free page reporting), writes them again and frees them; then the
# host sets a 40 MiB balloon, which its allocator fills with those same
# pages first.  Checked:
#   - the store file's blocks fall once the balloon is in (the pages'
#     copies were dropped), to under a quarter of what they were;
#   - the reported pages read back as zeroes (holes, not stale copies
#     fetched from the store);
#   - the pager's end line counts the pages given back (discarded) and
#     leaves few remote, the resident count within the 16 MiB budget;
#   - the guest's own checks (kept pages intact, reported pages usable)
#     pass and it exits 0.
. "$(dirname "$0")/lib.sh"

out=$TEST_TMP/out
sock=$TEST_TMP/ctl.sock
store=$TEST_TMP/pages
con=$TEST_TMP/console
LIMIT_PAGES=$((16 * 256))
PAGES=8192

if ! have_kvm; then
	skip pager_balloon_tests "no usable /dev/kvm"
	exit 0
fi

# store_kib: what the store file takes on disk, in KiB (empty once the
# VM ended and its store went: the guest lingers 5 s after reaching its
# balloon target so that a loaded host still reads it in time; with
# 0.5 s a CI run read it after the VM had gone).
store_kib() { du -k "$store" 2> /dev/null | cut -f1; }

# pager_field NAME: the figure NAME= on the pager's end line in $out.
pager_field() {
	grep -E '^pager: resident=' "$out" | tail -n 1 | tr ' ' '\n' |
		sed -n "s/^$1=//p"
}

"$RACKVM" run --kernel "$GUEST_ELF" --mem 64M --mem-local 16M \
	--mem-backend "file:$store" --balloon,free-page-reporting \
	--api-socket "$sock" --console "$con" \
	--cmdline "balloon targets=1 seconds=150 linger_ms=5000 verify=1 keep=256 report=1 report_pages=$PAGES" \
	< /dev/null > "$out" 2>&1 &
pid=$!
before= after= inflated=
if wait_for "$con" "^result: balloon report pages=$PAGES " 120; then
	before=$(store_kib)
	"$RACKVM" ctl --socket "$sock" balloon 40M > "$TEST_TMP/ctl" 2>&1
	if wait_for "$con" "^result: balloon actual=10240 target=10240$" 120; then
		inflated=1
		after=$(store_kib)
	fi
fi
timeout 60 tail --pid="$pid" -f /dev/null
kill -9 "$pid" 2> /dev/null
wait "$pid"
status=$?
cat "$con" >> "$out"
echo "store before the balloon=${before:-?} KiB, with it=${after:-?} KiB" >> "$out"
echo "# pager_balloon: store ${before:-?} KiB -> ${after:-?} KiB;" \
	"$(grep -E '^pager: resident=' "$out" | tail -n 1)"

discarded=$(pager_field discarded)
remote=$(pager_field remote)
resident=$(pager_field resident)
check pager_balloon_guest_ok bash -c "[ $status -eq 0 ] && [ -n '$inflated' ] &&
	grep -Eq '^result: balloon report pages=$PAGES .* usable=$PAGES$' '$con' &&
	grep -Eq '^result: balloon done actual=10240 reached=1 .* verified=[1-9][0-9]* ' '$con'"
check pager_balloon_reported_pages_read_zero \
	grep -Eq "^result: balloon report pages=$PAGES .* zeroed=$PAGES " "$con"
# at least half of the pages had gone to the store before the balloon
# took them back; their copies are dropped
check pager_balloon_store_shrinks bash -c "[ -n '$after' ] &&
	[ ${before:-0} -ge $((PAGES * 4 / 2)) ] && [ $((${after:-0} * 4)) -lt ${before:-0} ]"
check pager_balloon_counts bash -c "[ ${discarded:-0} -ge $PAGES ] &&
	[ ${remote:-$PAGES} -lt $((PAGES / 8)) ] && [ ${resident:-$PAGES} -le $LIMIT_PAGES ]"
exit 0
