#!/usr/bin/env bash
# `rackvm memd`, the real binary: its flags and errors, its listening
# line, signals, and the wire format as documented in
# src/remote/memd_proto.h, spoken by an independent Python client.
. "$(dirname "$0")/lib.sh"

out=$TEST_TMP/out

# --- flags and errors ------------------------------------------------------
run_cmd 10 "$out" "$RACKVM" memd --help
check memd_help bash -c "[ $status -eq 0 ] && grep -q 'usage: rackvm memd' '$out'"

run_cmd 10 "$out" "$RACKVM" memd
check memd_needs_flags bash -c "[ $status -eq 2 ] && grep -q -- '--listen ADDR:PORT is required' '$out'"

run_cmd 10 "$out" "$RACKVM" memd --listen nonsense --capacity 64M
check memd_rejects_bad_listen bash -c "[ $status -eq 2 ] && grep -q \"invalid address 'nonsense'\" '$out'"

run_cmd 10 "$out" "$RACKVM" memd --listen 127.0.0.1:99999 --capacity 64M
check memd_rejects_bad_port bash -c "[ $status -eq 2 ] && grep -q 'port must be 0-65535' '$out'"

run_cmd 10 "$out" "$RACKVM" memd --listen 127.0.0.1:0 --capacity 12Q
check memd_rejects_bad_capacity bash -c "[ $status -eq 2 ] && grep -q \"invalid --capacity '12Q'\" '$out'"

run_cmd 10 "$out" "$RACKVM" memd --listen 127.0.0.1:0 --capacity 1M
check memd_rejects_tiny_capacity bash -c "[ $status -eq 2 ] && grep -q 'from 4M to 16T' '$out'"

run_cmd 10 "$out" "$RACKVM" memd --listen 127.0.0.1:0
check memd_needs_capacity bash -c "[ $status -eq 2 ] && grep -q -- '--capacity SIZE is required' '$out'"

run_cmd 10 "$out" "$RACKVM" memd --help
check memd_help_names_the_limits bash -c "grep -q -- '--namespace-quota SIZE' '$out' &&
	grep -q -- '--namespace-ttl DURATION' '$out' && grep -q -- '--hello-timeout' '$out' &&
	grep -q -- '--idle-timeout' '$out' && grep -q -- '--max-conns-per-peer N' '$out' &&
	grep -q 'default 1024' '$out'"

run_cmd 10 "$out" "$RACKVM" memd --listen 127.0.0.1:0 --capacity 64M --namespace-quota 1K
check memd_rejects_tiny_quota bash -c "[ $status -eq 2 ] && grep -q \"invalid --namespace-quota '1K'\" '$out'"

run_cmd 10 "$out" "$RACKVM" memd --listen 127.0.0.1:0 --capacity 64M --hello-timeout 0
check memd_rejects_zero_timeout bash -c "[ $status -eq 2 ] && grep -q \"invalid --hello-timeout '0'\" '$out'"

run_cmd 10 "$out" "$RACKVM" memd --listen 127.0.0.1:0 --capacity 64M --max-conns-per-peer 0
check memd_rejects_zero_per_peer bash -c "[ $status -eq 2 ] && grep -q \"invalid --max-conns-per-peer '0'\" '$out'"

# --- a running server ------------------------------------------------------
# start_memd NAME ARGS...: starts rackvm memd in the background (stdout in
# $TEST_TMP/NAME.out, stderr in NAME.err), waits for its listening line and
# sets $pid and $port.
start_memd() {
	local name=$1
	shift
	"$RACKVM" memd "$@" > "$TEST_TMP/$name.out" 2> "$TEST_TMP/$name.err" < /dev/null &
	pid=$!
	port=
	for _ in $(seq 100); do
		port=$(sed -n 's/^memd: listening on 127\.0\.0\.1:\([0-9]*\), capacity .*/\1/p' \
			"$TEST_TMP/$name.out")
		[ -n "$port" ] && return 0
		kill -0 "$pid" 2> /dev/null || return 1
		sleep 0.1
	done
	return 1
}

# stop_memd PID: SIGTERM, and the exit status in $status.
stop_memd() {
	kill -TERM "$1" 2> /dev/null
	wait "$1"
	status=$?
}

if ! start_memd main --listen 127.0.0.1:0 --capacity 64M; then
	fail memd_listening_line "no listening line: $(tr '\n' '|' < "$TEST_TMP/main.err")"
	exit 0
fi
main_pid=$pid main_port=$port
out=$TEST_TMP/main.out
check memd_listening_line grep -q '^memd: listening on 127\.0\.0\.1:[0-9]*, capacity 64\.0 MiB$' "$out"

run_cmd 10 "$TEST_TMP/inuse" "$RACKVM" memd --listen "127.0.0.1:$main_port" --capacity 64M
out=$TEST_TMP/inuse
check memd_port_in_use_exits_2 bash -c "[ $status -eq 2 ] && grep -q 'cannot listen on 127.0.0.1:$main_port: Address already in use' '$out'"

if ! command -v python3 > /dev/null; then
	skip memd_python_client "python3 is not installed"
	stop_memd "$main_pid"
	exit 0
fi

# The client knows only the documented layout: header <IBBHQ, run headers
# <QII, records <Q + 4096 bytes, STATS 11 x <Q, and the handshake
# (BLAKE2b from hashlib, crypto_box_seal from libsodium through ctypes);
# and what memd_proto.h says the server keeps for how long (quota,
# RELEASE, TTL, deadlines, connections per peer), checked against a memd
# with short limits.
cat > "$TEST_TMP/client.py" << 'EOF'
import ctypes, ctypes.util, hashlib, os, socket, struct, sys, time

HELLO, PUT, GET, DROP, STATS, RELEASE = 1, 2, 3, 4, 5, 6
VERSION = 3
OK, NO_PAGE, FULL, BAD_SECRET, BAD_REQUEST = 0, 1, 2, 3, 4
failed = False

def result(name, cond, why=""):
    global failed
    print(("ok %s" % name) if cond else ("FAIL %s: %s" % (name, why)))
    failed |= not cond

def msg(op, ident, body=b""):
    return struct.pack("<IBBHQ", len(body), op, 0, 0, ident) + body

sodium = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
sodium.sodium_init()

def blake(data, key=b""):
    return hashlib.blake2b(data, digest_size=32, key=key).digest()

def counted(b):
    return bytes([len(b)]) + b

def proof(v, side, sid, cn, sn, name, flags):
    return blake(b"rackvm memd 2 " + side + sid + cn + sn + counted(name) + bytes([flags]), v)

def seal(data, pk):
    out = ctypes.create_string_buffer(len(data) + 48)
    sodium.crypto_box_seal(out, data, ctypes.c_ulonglong(len(data)), pk)
    return out.raw

# The handshake: (step 2 status, created), or step 1's status.
def hello(s, ident, name, secret):
    cn = os.urandom(32)
    s.sendall(msg(HELLO, ident, struct.pack("<HBB", VERSION, 1, len(name)) + cn + name))
    op, status, rid, body = reply(s)
    if status != OK:
        return status, None
    sid, known, sn, pk = body[:16], body[16] & 1, body[24:56], body[56:88]
    key = blake(b"rackvm memd 2 key" + counted(name) + counted(secret))
    v = blake(b"rackvm memd 2 verifier" + sid, key)
    create = 0 if known else 1
    s.sendall(msg(HELLO, ident + 1, struct.pack("<HBB", VERSION, 2, create) +
                  proof(v, b"client", sid, cn, sn, name, create) + (seal(v, pk) if create else b"")))
    op, status, rid, body = reply(s)
    if status != OK:
        return status, None
    created = body[0] & 1
    if body[8:40] != proof(v, b"server", sid, cn, sn, name, created):
        raise ValueError("the server's proof is wrong")
    return OK, bool(created)

def runs(op, ident, spec, pages=None):
    body = struct.pack("<HH", len(spec), 0)
    for first, count in spec:
        body += struct.pack("<QII", first, count, 0)
        if op == PUT:
            for n in range(first, first + count):
                body += pages[n][0] + pages[n][1]
    return msg(op, ident, body)

def recv_exact(s, n):
    data = b""
    while len(data) < n:
        chunk = s.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data

def reply(s):
    length, op, status, reserved, ident = struct.unpack("<IBBHQ", recv_exact(s, 16))
    return op, status, ident, recv_exact(s, length)

def closed(s):
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True

def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

# A page record's parts: its 16-byte tag (memd stores it unread), data.
def page(n, version):
    return (struct.pack("<QQ", 0x1000 * n + version, ~n & (2**64 - 1)),
            bytes((n * 7 + version + i) & 0xff for i in range(4096)))

def main_checks(port):
    s = connect(port)
    s.sendall(msg(HELLO, 1, struct.pack("<HBB", 1, 5, 9) + b"py-nspy-secret"))
    result("py_version_1_hello_is_bad_request", reply(s)[1] == BAD_REQUEST)
    s.close()
    s = connect(port)
    s.sendall(msg(HELLO, 1, struct.pack("<HBB", 2, 1, 5) + os.urandom(32) + b"py-v2"))
    result("py_version_2_hello_is_bad_request", reply(s)[1] == BAD_REQUEST)
    s.close()

    s = connect(port)
    status, created = hello(s, 1, b"py-ns", b"py-secret")
    result("py_hello_creates", (status, created) == (OK, True), (status, created))

    pages = {n: page(n, 1) for n in (10, 11, 12, 40)}
    s.sendall(runs(PUT, 2, [(10, 3), (40, 1)], pages))
    op, status, ident, _ = reply(s)
    result("py_put", (op, status, ident) == (PUT, OK, 2), (op, status, ident))

    s.sendall(runs(GET, 3, [(40, 1), (10, 3)]))
    op, status, ident, body = reply(s)
    want = b"".join(pages[n][0] + pages[n][1] for n in (40, 10, 11, 12))
    result("py_get_returns_records_in_order", (op, status, ident) == (GET, OK, 3) and body == want,
           (op, status, ident, len(body)))

    s.sendall(runs(GET, 4, [(12, 2)]))
    op, status, ident, body = reply(s)
    result("py_get_missing_is_no_page", (status, ident, body) == (NO_PAGE, 4, b""), (status, ident))

    # pipelined: three requests in one write, replies in order with their ids
    s.sendall(runs(DROP, 7, [(11, 1)]) + runs(GET, 5, [(11, 1)]) + msg(STATS, 9))
    r1, r2, r3 = reply(s), reply(s), reply(s)
    result("py_pipelined_replies", [(r[0], r[1], r[2]) for r in (r1, r2, r3)] ==
           [(DROP, OK, 7), (GET, NO_PAGE, 5), (STATS, OK, 9)], (r1[:3], r2[:3], r3[:3]))
    stats = struct.unpack("<11Q", r3[3])
    result("py_stats", stats[0] == 64 << 20 and stats[2] == 3 and stats[3] == 3 and
           stats[4] == 1 and stats[6] == 4, stats)

    s.sendall(msg(GET, 10, struct.pack("<HH", 0, 0)))
    op, status, ident, _ = reply(s)
    result("py_malformed_body_is_bad_request", (status, ident) == (BAD_REQUEST, 10), status)
    s.sendall(msg(STATS, 11))
    result("py_connection_survives_bad_body", reply(s)[1] == OK)

    s.sendall(struct.pack("<IBBHQ", 0xffffffff, GET, 0, 0, 12))
    op, status, ident, _ = reply(s)
    result("py_bad_frame_is_bad_request_and_closed", (status, ident) == (BAD_REQUEST, 12) and closed(s),
           status)
    s.close()

    s = connect(port)
    s.sendall(runs(GET, 1, [(10, 1)]))
    result("py_get_before_hello_refused", reply(s)[1] == BAD_SECRET)
    status, _ = hello(s, 2, b"py-ns", b"not-the-secret")
    result("py_wrong_secret_refused_and_closed", status == BAD_SECRET and closed(s), status)
    s.close()

    s = connect(port)
    status, created = hello(s, 1, b"py-ns", b"py-secret")
    s.sendall(runs(GET, 3, [(10, 1)]))
    op, status, ident, body = reply(s)
    result("py_reconnect_sees_pages", not created and status == OK and body == pages[10][0] + pages[10][1],
           (created, status))
    s.close()

def full_checks(port):
    s = connect(port)
    hello(s, 1, b"filler", b"x")
    stored, status, ident = 0, OK, 3
    while status == OK and stored < 4096:
        pages = {n: page(n, 0) for n in range(stored, stored + 64)}
        s.sendall(runs(PUT, ident, [(stored, 64)], pages))
        status = reply(s)[1]
        stored += 64 if status == OK else 0
        ident += 1
    result("py_full_refused", status == FULL and 256 <= stored <= 512, (status, stored))
    s.sendall(msg(STATS, ident) + runs(GET, ident + 1, [(0, 1)]))
    st, got = reply(s), reply(s)
    stats = struct.unpack("<11Q", st[3])
    result("py_full_server_keeps_serving", st[1] == OK and got[1] == OK and
           stats[1] <= stats[0] and stats[9] >= 1, (st[1], got[1], stats))
    s.close()

def stats_of(port):
    s = connect(port)
    s.sendall(msg(STATS, 1))
    st = struct.unpack("<11Q", reply(s)[3])
    s.close()
    return st

def within(seconds, cond):
    deadline = time.monotonic() + seconds
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.05)
    return cond()

def hello_ok(s, name, secret=b"s"):
    return hello(s, 1, name, secret)[0] == OK

def put_pages(s, first, count, ident=2):
    pages = {n: page(n, 0) for n in range(first, first + count)}
    s.sendall(runs(PUT, ident, [(first, count)], pages))
    return reply(s)[1]

# memd with --namespace-quota 256K --namespace-ttl 2s --hello-timeout 2s
# --idle-timeout 5s --max-conns-per-peer 8 (generous: python under TCG in
# a busy test host takes a second for what takes milliseconds here)
def fair_checks(port):
    a, b = connect(port), connect(port)
    ok = hello_ok(a, b"tenant-a") and hello_ok(b, b"tenant-b")
    st_a = put_pages(a, 0, 64)
    st_a2 = put_pages(a, 64, 1)
    st_b = put_pages(b, 0, 64)
    result("py_quota_refuses_one_tenant_only", ok and (st_a, st_a2, st_b) == (OK, FULL, OK),
           (st_a, st_a2, st_b))

    a.sendall(msg(RELEASE, 9))
    op, status, ident, body = reply(a)
    result("py_release_ok_and_closed", (op, status, ident, body) == (RELEASE, OK, 9, b"") and closed(a),
           (op, status, ident))
    result("py_release_frees_pages", within(15, lambda: stats_of(port)[2] == 64 and
                                            stats_of(port)[4] == 1), stats_of(port))

    b.close()
    result("py_namespace_expires_after_ttl", within(15, lambda: stats_of(port)[4] == 0 and
                                                    stats_of(port)[2] == 0), stats_of(port))

    silent = connect(port)
    t0 = time.monotonic()
    result("py_hello_deadline_closes_silent", closed(silent) and time.monotonic() - t0 < 10)
    silent.close()

    # half a handshake is no HELLO: step 1 answered, step 2 never sent
    half = connect(port)
    t0 = time.monotonic()
    half.sendall(msg(HELLO, 1, struct.pack("<HBB", VERSION, 1, 4) + os.urandom(32) + b"half"))
    step1 = reply(half)[1]
    result("py_hello_deadline_closes_half_handshake", step1 == OK and closed(half) and
           time.monotonic() - t0 < 10, step1)
    half.close()

    quiet = connect(port)
    hello_ok(quiet, b"quiet")
    t0 = time.monotonic()
    result("py_idle_timeout_closes_quiet", closed(quiet) and 3 < time.monotonic() - t0 < 15)
    quiet.close()

    # ten from one address: eight are served, two closed at once
    crowd = [connect(port) for _ in range(10)]
    served = 0
    for c in crowd:
        try:
            served += hello_ok(c, b"crowd")
        except (EOFError, ConnectionResetError, BrokenPipeError):
            pass
    result("py_per_peer_limit", served == 8, served)
    for c in crowd:
        c.close()

try:
    main_checks(int(sys.argv[1]))
    if len(sys.argv) > 2 and sys.argv[2] != "-":
        full_checks(int(sys.argv[2]))
    if len(sys.argv) > 3:
        fair_checks(int(sys.argv[3]))
except Exception as e:
    print("FAIL py_client: %r" % (e,))
    failed = True
sys.exit(1 if failed else 0)
EOF

if start_memd small --listen 127.0.0.1:0 --capacity 4M --quiet; then
	small_pid=$pid small_port=$port
else
	fail memd_small_server "did not start: $(tr '\n' '|' < "$TEST_TMP/small.err")"
	small_pid= small_port=
fi
if start_memd fair --listen 127.0.0.1:0 --capacity 64M --namespace-quota 256K \
	--namespace-ttl 2s --hello-timeout 2s --idle-timeout 5s --max-conns-per-peer 8; then
	fair_pid=$pid fair_port=$port
else
	fail memd_fair_server "did not start: $(tr '\n' '|' < "$TEST_TMP/fair.err")"
	fair_pid= fair_port=
fi
timeout 90 python3 "$TEST_TMP/client.py" "$main_port" "${small_port:--}" $fair_port

err=$TEST_TMP/main.err
check memd_logs_wrong_secret grep -q "memd: warning: refused 127.0.0.1:[0-9]*: wrong secret for namespace 'py-ns'" "$err"
check memd_logs_new_namespace grep -q "memd: namespace 'py-ns' created by 127.0.0.1:" "$err"

kill -USR1 "$main_pid"
for _ in $(seq 50); do
	grep -q '^memd: stats: ' "$err" && break
	sleep 0.1
done
check memd_sigusr1_prints_stats grep -q '^memd: stats: pages=3 used=.* of 64.0 MiB namespaces=1 .*bad_secret=1' "$err"

# a client that connects and vanishes mid-message must not matter
python3 -c "
import socket, struct
s = socket.create_connection(('127.0.0.1', $main_port))
s.sendall(struct.pack('<IBBHQ', 1000, 2, 0, 0, 1) + b'x' * 10)
s.close()"
stop_memd "$main_pid"
out=$err
check memd_sigterm_exits_0 bash -c "[ $status -eq 0 ] && ! grep -q 'Sanitizer' '$err'"

if [ -n "$fair_pid" ]; then
	stop_memd "$fair_pid"
	out=$TEST_TMP/fair.err
	check memd_fair_server_exits_0 bash -c "[ $status -eq 0 ] && ! grep -q 'Sanitizer' '$out'"
	check memd_logs_quota grep -q "memd: quota reached: refusing 1 pages for namespace 'tenant-a'" "$out"
	check memd_logs_release grep -q "memd: namespace 'tenant-a' released by 127.0.0.1:[0-9]*: freeing its 64 pages" "$out"
	check memd_logs_expiry grep -q "memd: namespace 'tenant-b' expired with no client connected" "$out"
	check memd_logs_timeouts bash -c "grep -q 'memd: closed 127.0.0.1:[0-9]*: no HELLO for 2.0 s' '$out' &&
		grep -q 'memd: closed 127.0.0.1:[0-9]*: idle for 5.0 s' '$out'"
	check memd_logs_per_peer_refusal grep -q "memd: warning: refused 127.0.0.1:[0-9]*: 8 connections from that peer already" "$out"
fi

if [ -n "$small_pid" ]; then
	stop_memd "$small_pid"
	out=$TEST_TMP/small.err
	check memd_quiet_full_server_exits_0 bash -c "[ $status -eq 0 ] && ! grep -q 'Sanitizer' '$out' && ! grep -q 'capacity reached' '$out'"
fi
