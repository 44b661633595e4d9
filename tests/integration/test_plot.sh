#!/usr/bin/env bash
# `rackvm plot`: an SVG chart from the CSV of a real wsswork run
# (rackvm run --wss --wss-csv) and from a running VM's API (pager and
# WSS monitor on), parsed as XML with python3's xml.etree: its lines,
# legend and axes are what the data has; a bad CSV is refused.
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
