# Helpers for running the wsswork guest workload under `rackvm run --wss`
# and lining rackvm's per-interval estimates up with the guest's phases
# (sourced, bash).  Used by tests/integration/test_wss.sh and bench/wss.
#
# Alignment.  The guest prints "wsswork: phase=N start ..." on its UART
# the moment a phase starts, and a "result: wsswork phase=N ... start_s=
# end_s=" line when it ends (times by its TSC).  rackvm prints one
# "wss: t=T ..." line per interval on stderr and writes the same
# intervals to the CSV, T being its own clock.  wss_run timestamps every
# line of stdout and of stderr as it arrives, on one host clock (seconds
# since rackvm was started), through two separate pipes, so that UART
# bytes and stderr lines cannot interleave within a line.  Then:
#   - a phase runs, on the host clock, from the arrival of its start line
#     (S) for the duration the guest measured (D = end_s - start_s); the
#     arrival of the end line is later by the time printing takes;
#   - the CSV's time column maps onto the host clock by the smallest
#     (arrival - T) over the stderr wss lines: a line cannot arrive before
#     the interval it reports ends, and the fastest one arrived with
#     almost no delay.  Without parsable wss lines the offset is 0 (the
#     CSV's clock is then taken to start with the process);
#   - a CSV row at (mapped) time h covers [h - INTERVAL, h]; it belongs to
#     a phase if that window lies inside [S, S + D].  The first such row
#     of each phase is skipped (the estimator's smoothing still carries
#     the previous phase), the rest give medians.

# wss_run DIR SECONDS CMD...: runs CMD (stdin /dev/null, killed after
# SECONDS) with each stdout line stamped into DIR/con and each stderr
# line into DIR/err, as "SECONDS_SINCE_START text".  Sets $status.
wss_run() {
	local dir=$1 secs=$2 t0 p1 p2
	shift 2
	rm -f "$dir/o.fifo" "$dir/e.fifo"
	mkfifo "$dir/o.fifo" "$dir/e.fifo"
	t0=$EPOCHREALTIME
	_wss_stamp "$t0" < "$dir/o.fifo" > "$dir/con" &
	p1=$!
	_wss_stamp "$t0" < "$dir/e.fifo" > "$dir/err" &
	p2=$!
	timeout -k 5 "$secs" "$@" < /dev/null > "$dir/o.fifo" 2> "$dir/e.fifo"
	status=$?
	wait "$p1" "$p2"
	rm -f "$dir/o.fifo" "$dir/e.fifo"
}

_wss_stamp() {
	local line
	while IFS= read -r line || [ -n "$line" ]; do
		printf '%s %s\n' "$EPOCHREALTIME" "${line%$'\r'}"
	done | LC_ALL=C awk -v t0="$1" '{
		sp = index($0, " ")
		printf "%.6f %s\n", substr($0, 1, sp - 1) - t0, substr($0, sp + 1)
	}'
}

# wss_phases DIR CSV INTERVAL_SECONDS: one line per guest phase,
#   phase=N kind=K pages=P rows=R est=E written=W error=X cpu_ns=C rate=T
#   passes=N max_pass_us=M
# (est, written, error, cpu_ns: medians over the phase's steady rows,
# "-" without any; rate, passes, max_pass_us: the guest's page touches per
# second, complete passes over the set, its slowest pass), then
#   offset=O wss_lines=N rows=N cpu_ns_mean=C verify_bad=B
# The CSV columns are found by name in its header line.
wss_phases() {
	LC_ALL=C awk -v conf="$1/con" -v errf="$1/err" -v csvf="$2" \
		-v ival="$3" '
	function field(s, k,   t) {
		t = " " s
		if (match(t, " " k "=[^ ]*"))
			return substr(t, RSTART + length(k) + 2,
				      RLENGTH - length(k) - 2)
		return ""
	}
	function median(a, n,   i, j, v) {
		if (n == 0)
			return "-"
		for (i = 2; i <= n; i++) {
			v = a[i]
			for (j = i - 1; j >= 1 && a[j] > v; j--)
				a[j + 1] = a[j]
			a[j + 1] = v
		}
		if (n % 2)
			return a[(n + 1) / 2]
		return (a[n / 2] + a[n / 2 + 1]) / 2
	}
	function col(name) { return (name in c) ? $(c[name]) : "" }
	BEGIN { FS = ","; off = ""; np = 0; nrows = 0; nw = 0; verify = "-" }
	FILENAME == conf {
		sp = index($0, " ")
		t = substr($0, 1, sp - 1) + 0
		line = substr($0, sp + 1)
		if (line ~ /^wsswork: phase=[0-9]+ start/) {
			n = field(line, "phase") + 0
			S[n] = t
			K[n] = field(line, "kind")
			P[n] = field(line, "pages")
			if (n > np)
				np = n
		} else if (line ~ /^result: wsswork phase=/) {
			n = field(line, "phase") + 0
			D[n] = field(line, "end_s") - field(line, "start_s")
			R[n] = field(line, "touch_rate")
			M[n] = field(line, "max_pass_us")
			Q[n] = field(line, "passes")
		} else if (line ~ /^result: wsswork verify/) {
			verify = field(line, "bad")
		}
		next
	}
	FILENAME == errf {
		sp = index($0, " ")
		line = substr($0, sp + 1)
		if (match(line, /wss: t=[0-9.]+/)) {
			d = substr($0, 1, sp - 1) - substr(line, RSTART + 7, RLENGTH - 7)
			if (off == "" || d < off)
				off = d
			nw++
		}
		next
	}
	FILENAME == csvf {
		if (FNR == 1) {
			for (i = 1; i <= NF; i++)
				c[$i] = i
			next
		}
		nrows++
		T[nrows] = col("time") + 0
		W[nrows] = col("wss_pages")
		X[nrows] = col("error_pages")
		Wr[nrows] = col("written_pages")
		C[nrows] = col("estimator_cpu_ns")
		cpusum += C[nrows]
	}
	END {
		if (off == "")
			off = 0
		for (n = 1; n <= np; n++) {
			if (!(n in D))
				continue
			k = 0; first = 1
			for (r = 1; r <= nrows; r++) {
				h = T[r] + off
				if (h - ival < S[n] || h > S[n] + D[n])
					continue
				if (first) {
					first = 0
					continue
				}
				k++
				e[k] = W[r]; w[k] = Wr[r]; x[k] = X[r]; cc[k] = C[r]
			}
			printf "phase=%d kind=%s pages=%s rows=%d est=%s written=%s error=%s cpu_ns=%s rate=%s passes=%s max_pass_us=%s\n",
				n, K[n], P[n], k, median(e, k), median(w, k),
				median(x, k), median(cc, k), R[n], Q[n], M[n]
		}
		printf "offset=%.3f wss_lines=%d rows=%d cpu_ns_mean=%d verify_bad=%s\n",
			off, nw, nrows, nrows ? cpusum / nrows : 0, verify
	}' "$1/con" "$1/err" "$2"
}

# wss_get LINE KEY: the value of KEY=... in LINE.
wss_get() {
	local w
	for w in $1; do
		case $w in "$2="*) echo "${w#*=}"; return ;; esac
	done
}
