#!/usr/bin/env bash
# `rackvm plot`: an SVG chart from the CSV of a real wsswork run
# (rackvm run --wss --wss-csv) and from a running VM's API (pager and
# WSS monitor on), parsed as XML with python3's xml.etree: its lines,
# legend and axes are what the data has; a bad CSV is refused.  And
# hostd's balancer decision log (a fixture written here, as
# balancer_log_line() writes it): one panel per VM under the host's.
. "$(dirname "$0")/lib.sh"

out=$TEST_TMP/plot.out
svgcheck() {	# svgcheck FILE: the chart's parts, one "what count" a line
	python3 - "$1" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == ns + "svg", root.tag
texts = [t.text or "" for t in root.iter(ns + "text")]
print("polylines", len(list(root.iter(ns + "polyline"))))
print("band", sum(1 for p in root.iter(ns + "polygon") if p.get("points", "").strip()))
for label in ("WSS estimate", "resident", "remote", "balloon", "time (s)", "memory (MiB)"):
    print(label.replace(" ", "_"), texts.count(label))
# the WSS line's points: as many as the series, all inside the canvas
w, h = float(root.get("width")), float(root.get("height"))
first = next(root.iter(ns + "polyline"))
pts = [tuple(map(float, p.split(","))) for p in first.get("points").split()]
assert all(0 <= x <= w and 0 <= y <= h for x, y in pts), "point off the canvas"
print("wss_points", len(pts))
PYEOF
}

printf 'time,wss_pages\n1,2\n' > "$TEST_TMP/bad.csv"
"$RACKVM" plot --csv "$TEST_TMP/bad.csv" -o "$TEST_TMP/bad.svg" > "$out" 2>&1
check plot_bad_csv_refused bash -c "[ $? -eq 2 ] && grep -q \"no column 'error_pages'\" '$out' && [ ! -e '$TEST_TMP/bad.svg' ]"
"$RACKVM" plot -o "$TEST_TMP/x.svg" > "$out" 2>&1
check plot_needs_one_source bash -c "[ $? -eq 2 ] && grep -q 'usage: rackvm plot' '$out'"

# --- hostd's balancer log -----------------------------------------------------
# web from the start, batch from 20 s to 70 s, db from the start; the log
# is being written (its last line cut short)
log=$TEST_TMP/balancer.jsonl
python3 - "$log" <<'PYEOF'
import json, sys
MiB = 1 << 20
with open(sys.argv[1], "w") as out:
    for k in range(46):
        t, vms = 5000.0 + 2 * k, []
        for name, ram, shares, wss in (("web", 1024, 500, 300), ("batch", 2048, 1000, 900),
                                       ("db", 1536, 2000, 600 - 3 * k)):
            if name == "batch" and not 10 <= k < 35:
                continue
            target = min(ram, wss * 1.2 + 16) * MiB
            vms.append({"vm": name, "policy": "both", "shares": float(shares),
                        "responsive": True, "ram": ram * MiB,
                        "wss": {"estimate": wss * MiB, "error": wss * MiB // 12} if k > 1 else None,
                        "resident": int(target * 1.05), "remote": 0, "fault_rate": 0.0,
                        "active": int(target), "active_from": "WSS + error + headroom",
                        "target": int(target), "reason": "cut to fit the budget",
                        "balloon_target": None, "mem_local": int(target),
                        "balloon_actual": 0, "min": 64 * MiB})
        out.write(json.dumps({"t": t, "budget": 2560 * MiB,
                              "targets": sum(v["target"] for v in vms), "vms": vms},
                             separators=(",", ":")) + "\n")
    out.write('{"t":5092.0,"budget":2684354560,"targ')
PYEOF
panelcheck() {	# panelcheck FILE: the panels' names in order, then counts
	python3 - "$1" <<'PYEOF'
import sys, xml.etree.ElementTree as ET
ns = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == ns + "svg", root.tag
panels = [g for g in root.iter(ns + "g") if g.get("class") == "panel"]
print("panels", " ".join(g.get("data-name") for g in panels))
for g in panels:	# each panel: its name shown, its target drawn
    shown = "".join(g.find(ns + "text").itertext())
    targets = [p for p in g.iter(ns + "polyline") if p.get("class") == "target"]
    print("panel", g.get("data-name"), "named" if shown.startswith(g.get("data-name")) else "unnamed",
          "target" if targets and targets[0].get("points").strip() else "no-target")
texts = ["".join(t.itertext()) for t in root.iter(ns + "text")]
for label in ("WSS estimate", "target", "resident", "RAM", "budget", "time (s)"):
    print(label.replace(" ", "_"), texts.count(label))
print("absent", sum(1 for r in root.iter(ns + "rect") if r.get("class") == "absent"))
PYEOF
}
svg=$TEST_TMP/balancer.svg
"$RACKVM" plot --balancer-log "$log" --title "hostd" -o "$svg" > "$out" 2>&1
check plot_balancer_log_to_svg bash -c "[ $? -eq 0 ] &&
	grep -q 'balancer.svg: 3 VMs over 46 log lines (an incomplete last line skipped)' '$out'"
panelcheck "$svg" > "$TEST_TMP/panels.txt" 2>&1
out=$TEST_TMP/panels.txt check plot_balancer_svg_has_a_panel_per_vm \
	bash -c "grep -qx 'panels host web db batch' '$TEST_TMP/panels.txt' &&
		 [ \$(grep -c '^panel .* named target$' '$TEST_TMP/panels.txt') -eq 4 ] &&
		 grep -qx 'target 1' '$TEST_TMP/panels.txt' && grep -qx 'budget 1' '$TEST_TMP/panels.txt' &&
		 grep -qx 'RAM 1' '$TEST_TMP/panels.txt' && grep -qx 'WSS_estimate 1' '$TEST_TMP/panels.txt' &&
		 grep -qx 'time_(s) 1' '$TEST_TMP/panels.txt' && grep -qx 'absent 2' '$TEST_TMP/panels.txt'"
"$RACKVM" plot --balancer-log "$log" --vms batch,web -o "$svg" > "$out" 2>&1
panelcheck "$svg" > "$TEST_TMP/panels.txt" 2>&1
check plot_balancer_vms_chosen bash -c "grep -q 'balancer.svg: 2 VMs' '$out' &&
	grep -qx 'panels host batch web' '$TEST_TMP/panels.txt'"
sed '7s/"ram":[0-9]*/"ram":"lots"/' "$log" > "$TEST_TMP/bad.jsonl"
"$RACKVM" plot --balancer-log "$TEST_TMP/bad.jsonl" -o "$TEST_TMP/bad.svg" > "$out" 2>&1
check plot_balancer_bad_line_refused bash -c "[ $? -eq 2 ] &&
	grep -q \"balancer log line 7: vms\\[0\\]: field 'ram' is not a number\" '$out' &&
	[ ! -e '$TEST_TMP/bad.svg' ]"

if ! have_kvm; then
	skip plot_guest_tests "no usable /dev/kvm"
	exit 0
fi

# --- from the CSV of a wsswork run ------------------------------------------
csv=$TEST_TMP/wss.csv svg=$TEST_TMP/wss.svg
run_cmd 120 "$TEST_TMP/run.out" "$RACKVM" run --mem 128M --wss --wss-csv "$csv" \
	--cmdline "wsswork phases=w8,r32,m16,i phase_s=2"
rows=$(($(wc -l < "$csv") - 1))
check plot_wsswork_run_wrote_csv bash -c "[ $status -eq 0 ] && [ $rows -ge 5 ]"
"$RACKVM" plot --csv "$csv" -o "$svg" --title "wsswork" > "$out" 2>&1
check plot_csv_to_svg bash -c "[ $? -eq 0 ] && grep -q 'wss.svg: $rows points' '$out'"
svgcheck "$svg" > "$TEST_TMP/svg.txt" 2>&1
out=$TEST_TMP/svg.txt check plot_csv_svg_is_xml_with_wss_band_axes \
	bash -c "grep -qx 'polylines 1' '$TEST_TMP/svg.txt' && grep -qx 'band 1' '$TEST_TMP/svg.txt' &&
		 grep -qx 'WSS_estimate 1' '$TEST_TMP/svg.txt' && grep -qx 'resident 0' '$TEST_TMP/svg.txt' &&
		 grep -qx 'time_(s) 1' '$TEST_TMP/svg.txt' && grep -qx 'memory_(MiB) 1' '$TEST_TMP/svg.txt' &&
		 grep -qx 'wss_points $rows' '$TEST_TMP/svg.txt'"

# --- from a running VM's API -------------------------------------------------
sock=$TEST_TMP/api.sock
"$RACKVM" run --api-socket "$sock" --mem 128M --mem-local 40M --wss \
	--cmdline "wsswork phases=w8,r64,i phase_s=100" < /dev/null > "$TEST_TMP/vm.out" 2>&1 &
pid=$!
if wait_sock "$sock"; then
	sleep 2
	run_cmd 60 "$out" "$RACKVM" plot --socket "$sock" --follow 3 -o "$TEST_TMP/api.svg"
	check plot_api_to_svg bash -c "[ $status -eq 0 ] && grep -Eq 'api.svg: [0-9]+ points' '$out'"
	svgcheck "$TEST_TMP/api.svg" > "$TEST_TMP/svg.txt" 2>&1
	out=$TEST_TMP/svg.txt check plot_api_svg_has_wss_resident_remote \
		bash -c "grep -qx 'polylines 3' '$TEST_TMP/svg.txt' && grep -qx 'resident 1' '$TEST_TMP/svg.txt' &&
			 grep -qx 'remote 1' '$TEST_TMP/svg.txt' && grep -qx 'WSS_estimate 1' '$TEST_TMP/svg.txt'"
else
	fail plot_api_to_svg "no socket: $(tail -n 3 "$TEST_TMP/vm.out" | tr '\n' '|')"
fi
kill $pid 2> /dev/null
wait $pid
"$RACKVM" plot --socket "$sock" -o "$TEST_TMP/gone.svg" > "$out" 2>&1
check plot_unreachable_socket_exits_2 bash -c "[ $? -eq 2 ] && grep -q 'cannot reach' '$out'"
exit 0
