#!/bin/sh
# memfill.sh MIB PASSES: memfill (PASSES: a count, or Ns for N seconds) (tests/linux/progs/memfill.c) under
# whatever memory management the host set up around the guest (paging to
# a page store, working-set estimation); the host checks its own side.
# Streams memfill's lines ("memfill: start ...", "memfill: done ...") so
# the host can tell when the working set is in use.
. /lib/rackvm.sh

mib=$1 passes=$2
note "memtotal_kib=$(awk '/^MemTotal:/ { print $2 }' /proc/meminfo)"
memfill "$mib" "$passes" | tee /tmp/memfill.out
check memfill_intact grep -q "^memfill: done mib=$mib passes=[0-9]* bad=0 " /tmp/memfill.out
