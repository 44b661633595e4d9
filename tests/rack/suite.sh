# tests/rack/suite.sh: sourced by tests/run; the groups that run in the
# emulated test host (tests/rack/host).  They are queued while tests/run
# walks the groups, then run_rack_lanes runs them in LANES test hosts side
# by side, each running its share one after another (tests/rack/run-groups:
# a TCG boot costs ~10 s, paid once per lane).
#
# Why one-CPU hosts, one per core, rather than one host with every CPU:
# with two CPUs the emulated machine wrecks a nested guest now and then
# (a guest triple-faults, on an instruction fetch its own page tables
# allow), mostly while rackvm changes the guest's memory mappings from
# another CPU (the pager's evictions, the reference sampler's revocations)
# - a race between QEMU's TCG CPU threads, which one CPU cannot have.
# Measured in one test host, test_linux_memory's paging part eight times
# in a row: 2 CPUs, 1 of 6 runs with a guest triple fault; 1 CPU, 0 of 8.
# One CPU per host also spares the guests of the cross-CPU TLB flush IPIs
# the emulated host was seen to freeze on.
#
# Uses tests/run's $logs, $results, $timings, $check_times, $rack_ready,
# finish_group, append and stamp_check.  Knobs: RACK_LANES (default: one
# per core, at most 2), RACK_HOST_CPUS (default 1), RACK_GROUP_TIMEOUT
# (900 s).

rack_queue=()
queue_rack_group() {
	local name=$1
	shift
	rack_queue+=("$name"$'\t'"$*")
}

# rack_group_weight NAME: about what a group takes in a one-CPU test host,
# in seconds (measured in a CI run's two lanes), to share the groups out
# evenly; a wrong figure costs only time.
rack_group_weight() {
	case $1 in
	test_hostd) echo 255 ;;
	test_linux_hostd) echo 235 ;;
	test_migrate) echo 215 ;;
	test_guest_farmem_workloads) echo 200 ;;
	test_linux_memory) echo 190 ;;
	test_farmem_reliability) echo 170 ;;
	test_api) echo 160 ;;
	test_hostd_balance) echo 115 ;;
	test_wss | test_pager) echo 100 ;;
	test_chaos | test_linux_net | test_virtio_net_rackvm) echo 85 ;;
	test_virtio_balloon_rackvm | unit_kvm) echo 75 ;;
	test_linux_snapshot) echo 60 ;;
	test_core | test_linux_devices | test_snapshot) echo 45 ;;
	test_linux_boot | test_plot | test_top | test_memd | test_pager_balloon) echo 32 ;;
	*) echo 18 ;;
	esac
}

# split_rack_output LANE: reads run-groups' output; each group's lines go
# to $logs/NAME.log (the host's own, outside any group, to
# $logs/rack-host.LANE.log), result lines are shown and stamped, and a
# group is counted as its end marker arrives.  $logs/rack-current.LANE
# names the group running, $logs/rack-ended.LANE lists those that ended.
split_rack_output() {
	local lane=$1 line cur= start=0 prev note retry_why= runs=0
	while IFS= read -r line; do
		case $line in
		"== rack group "*" start")
			cur=${line#== rack group }
			cur=${cur% start}
			echo "== $cur"
			echo "$cur" > "$logs/rack-current.$lane"
			: > "$logs/$cur.log"
			start=$(date +%s)
			prev=${EPOCHREALTIME/./}
			continue
			;;
		"== rack group "*" retry: "*)
			# run-groups runs it again: only the last run counts
			runs=$((runs + 1))
			mv "$logs/$cur.log" "$logs/$cur.log.run$runs"
			: > "$logs/$cur.log"
			retry_why=${line#*retry: }
			echo "== $cur: once more: $retry_why"
			start=$(date +%s)
			prev=${EPOCHREALTIME/./}
			continue
			;;
		"== rack group "*" end status="*)
			note=
			[ -e "$logs/$cur.log.died" ] && note=" (test host died once)"
			[ -n "$retry_why" ] && note+=" (retried: $retry_why)"
			retry_why=
			runs=0
			finish_group "$cur" "${line##*status=}" $(($(date +%s) - start)) "test host" "$note"
			echo "$cur" >> "$logs/rack-ended.$lane"
			: > "$logs/rack-current.$lane"
			cur=
			continue
			;;
		esac
		printf '%s\n' "$line" >> "$logs/${cur:-rack-host.$lane}.log"
		if [ -n "$cur" ] && [[ $line =~ ^(ok|FAIL|skip)\  ]]; then
			printf '%s\n' "$line"
			stamp_check "$cur" "$line"
		fi
	done
}

# run_rack_groups LANE: runs the groups listed in $logs/rack-lane.LANE
# (one queue entry a line) in a test host.  A host whose own kernel died
# (QEMU ended without the command's status: a failure of the emulated
# machine, not of the tests) is replaced, and the group it was running
# gets one more try, said out loud; a second death is that group's
# failure, and the rest go on in a new host.
run_rack_groups() {
	local lane=$1 pending=() list g name cur boots=0 start next line
	list=$logs/rack-groups.$lane
	mapfile -t pending < "$logs/rack-lane.$lane"
	while [ ${#pending[@]} -gt 0 ]; do
		if [ "$rack_ready" -eq 0 ]; then
			for g in "${pending[@]}"; do
				line="FAIL ${g%%$'\t'*}: the test host image could not be built"
				echo "$line"
				echo "$line" | append "$results"
			done
			return
		fi
		printf '%s\n' "${pending[@]}" > "$list"
		: > "$logs/rack-current.$lane"
		: > "$logs/rack-ended.$lane"
		start=$(date +%s)
		tests/rack/host run --quiet --cpus "${RACK_HOST_CPUS:-1}" \
			--name "rackhost$lane" \
			--timeout $((${RACK_GROUP_TIMEOUT:-900} * ${#pending[@]} + 120)) \
			-- tests/rack/run-groups "$PWD/$list" 2>&1 | split_rack_output "$lane"
		boots=$((boots + 1))
		printf '%-36s %5d s  %s\n' "(test host $lane.$boots)" \
			$(($(date +%s) - start)) "all of its groups" | append "$timings"
		cur=$(cat "$logs/rack-current.$lane")
		next=()
		for g in "${pending[@]}"; do
			name=${g%%$'\t'*}
			grep -qx "$name" "$logs/rack-ended.$lane" && continue
			if [ "$name" = "$cur" ]; then
				if [ -e "$logs/$name.log.died" ]; then
					echo "FAIL $name: the test host died twice while it ran" | tee -a "$logs/$name.log"
					finish_group "$name" 125 0 "test host" " (test host died twice)"
					continue
				fi
				mv "$logs/$name.log" "$logs/$name.log.died"
				echo "== $name: the test host died; its last lines ($logs/$name.log.died):"
				grep -vE '^(ok|skip) ' "$logs/$name.log.died" | tail -n 25 | sed 's/^/  | /'
				echo "== $name: once more"
			fi
			next+=("$g")
		done
		# a host that died before its first group twice in a row
		if [ -z "$cur" ] && [ ${#next[@]} -eq ${#pending[@]} ] && [ "$boots" -ge 2 ]; then
			for g in "${next[@]}"; do
				line="FAIL ${g%%$'\t'*}: the test host did not start ($(tail -n 3 "$logs/rack-host.$lane.log" | tr '\n' '|'))"
				echo "$line"
				echo "$line" | append "$results"
			done
			return
		fi
		pending=("${next[@]}")
	done
}

# run_rack_lanes: shares the queued groups out between the lanes (the
# heaviest first, each to the lane with the least work so far) and runs
# the lanes side by side until all are done.
run_rack_lanes() {
	local lanes=${RACK_LANES:-} lane best w g pids=()
	local -a load
	if [ -z "$lanes" ]; then
		lanes=$(nproc)
		[ "$lanes" -le 2 ] || lanes=2
	fi
	for ((lane = 1; lane <= lanes; lane++)); do
		load[lane]=0
		: > "$logs/rack-lane.$lane"
	done
	while IFS= read -r g; do
		w=${g%% *}
		g=${g#* }
		best=1
		for ((lane = 2; lane <= lanes; lane++)); do
			[ "${load[lane]}" -lt "${load[best]}" ] && best=$lane
		done
		load[best]=$((load[best] + w))
		printf '%s\n' "$g" >> "$logs/rack-lane.$best"
	done < <(for g in "${rack_queue[@]}"; do
			echo "$(rack_group_weight "${g%%$'\t'*}") $g"
		done | sort -rn -s -k1,1)
	for ((lane = 1; lane <= lanes; lane++)); do
		[ -s "$logs/rack-lane.$lane" ] || continue
		run_rack_groups "$lane" &
		pids+=($!)
	done
	for g in "${pids[@]}"; do
		wait "$g"
	done
}
