# SPDX-License-Identifier: MIT
"""bench/migrate's plumbing (imported by bench/migrate.py): a VMM process
whose console lines are stamped with the host's monotonic clock as they
arrive, rackvm's control API over its unix socket, QEMU's QMP, the
loopback interface's byte counter, and downtime from the ticker's own
TSC stamps (guest/workloads/ticker.c, stamp=1)."""
import json
import os
import re
import socket
import statistics
import subprocess
import threading
import time

TICK_RE = re.compile(r"^tick (\d+)/\d+ sum=0x[0-9a-f]+ us=(\d+)")


class Proc:
    """A VMM run: stdout read line by line on a thread, each line kept
    with the monotonic time it arrived; stderr into a file."""

    def __init__(self, name, argv, tmp):
        self.name = name
        self.err_path = os.path.join(tmp, name + ".err")
        self.lines = []
        self.cond = threading.Condition()
        err = open(self.err_path, "w")
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=err)
        err.close()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.p.stdout:
            now = time.monotonic()
            line = raw.decode(errors="replace").rstrip("\r\n").replace("\r", "")
            with self.cond:
                self.lines.append((now, line))
                self.cond.notify_all()
        with self.cond:
            self.cond.notify_all()

    def wait_line(self, regex, timeout, count=1):
        """The arrival time of the count-th line matching regex, or None."""
        rx = re.compile(regex)
        end = time.monotonic() + timeout
        with self.cond:
            while True:
                hits = [t for t, l in self.lines if rx.search(l)]
                if len(hits) >= count:
                    return hits[count - 1]
                left = end - time.monotonic()
                if left <= 0 or (self.p.poll() is not None and
                                 not self.reader.is_alive()):
                    return None
                self.cond.wait(min(left, 0.5))

    def ticks(self):
        """(host seconds, tick number, guest microseconds) per tick line."""
        with self.cond:
            out = []
            for t, l in self.lines:
                m = TICK_RE.match(l)
                if m:
                    out.append((t, int(m.group(1)), int(m.group(2))))
            return out

    def stderr(self):
        try:
            with open(self.err_path) as f:
                return f.read()
        except OSError:
            return ""

    def tail(self, n=3):
        with self.cond:
            out = [l for _, l in self.lines[-n:]]
        err = self.stderr().strip().splitlines()[-n:]
        return " | ".join(out + err)

    def stop(self, grace=5):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(grace)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.reader.join(5)


def wait_path(path, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if os.path.exists(path):
            return True
        time.sleep(0.05)
    return False


def listening(port):
    """Whether something listens on TCP port (read from /proc, since a
    test connection would be the one stream a destination takes)."""
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(f) as fh:
                next(fh)
                for line in fh:
                    parts = line.split()
                    if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:
                        return True
        except OSError:
            pass
    return False


def wait_listening(port, timeout):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if listening(port):
            return True
        time.sleep(0.05)
    return False


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def lo_bytes():
    """Bytes the loopback interface carried (its receive counter): every
    byte of a loopback migration, with its TCP/IP headers and ACKs."""
    with open("/proc/net/dev") as f:
        for line in f:
            name, _, rest = line.partition(":")
            if name.strip() == "lo":
                return int(rest.split()[0])
    return 0


def api(sock, method, path, body=None, timeout=60):
    """rackvm's control API: (HTTP status, decoded JSON body or {})."""
    data = json.dumps(body).encode() if body is not None else b""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    try:
        s.connect(sock)
        s.sendall(("%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                   "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                   % (method, path, len(data))).encode() + data)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode(errors="replace").split("\r\n")
        status = int(lines[0].split()[1])
        length = None
        for h in lines[1:]:
            k, _, v = h.partition(":")
            if k.strip().lower() == "content-length":
                length = int(v)
        while length is None or len(rest) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            rest += chunk
    finally:
        s.close()
    try:
        return status, json.loads(rest.decode() or "{}")
    except ValueError:
        return status, {"error": rest.decode(errors="replace")}


class QMP:
    """A QMP session on QEMU's unix socket (-qmp unix:PATH,server=on,wait=off)."""

    def __init__(self, path, timeout=30):
        if not wait_path(path, timeout):
            raise OSError("no QMP socket " + path)
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(timeout)
        end = time.monotonic() + timeout
        while True:
            try:
                self.s.connect(path)
                break
            except OSError:
                if time.monotonic() > end:
                    raise
                time.sleep(0.05)
        self.f = self.s.makefile("rwb")
        self.f.readline()	# the greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.f.write(json.dumps(msg).encode() + b"\n")
        self.f.flush()
        while True:
            line = self.f.readline()
            if not line:
                raise OSError("QMP closed during " + name)
            r = json.loads(line)
            if "return" in r:
                return r["return"]
            if "error" in r:
                raise OSError("QMP %s: %s" % (name, r["error"].get("desc")))

    def close(self):
        try:
            self.s.close()
        except OSError:
            pass


def line_pairs(ticks):
    """(host s when line k arrived, guest us when line k had been written,
    k) for each line k of one console followed there by line k + 1, which
    carries that guest time (ticker stamp=1)."""
    return [(a[0], b[2], a[1]) for a, b in zip(ticks, ticks[1:])
            if b[1] == a[1] + 1]


def guest_downtime(src, dst):
    """Milliseconds the guest stood still across a move, from the tick
    lines before (src) and after (dst): (host s, tick, guest us) each.

    Both VMMs carry the guest's TSC over as it was, so while the guest
    stands still its clock does too and the host's runs on: the jump of
    host time minus guest time between the lines written before and
    after the move is the time the guest lost.  Each side's figure is
    the least of three lines, since a line may reach the bench late but
    never early."""
    ps, pd = line_pairs(src), line_pairs(dst)
    if len(ps) < 3 or len(pd) < 1:
        return None, "too few ticks"
    before = min(h * 1e6 - g for h, g, _ in ps[-3:])
    after = min(h * 1e6 - g for h, g, _ in pd[:3])
    note = ""
    if pd[0][2] - ps[-1][2] > 3:
        note = "ticks %d then %d: lines lost" % (ps[-1][2], pd[0][2])
    return (after - before) / 1000.0, note


def tick_rate(ticks, mib_per_tick):
    """(ms per tick, MiB/s dirtied) from the guest's own stamps."""
    if len(ticks) < 3:
        return None, None
    gaps = [b[2] - a[2] for a, b in zip(ticks[:-1], ticks[1:])]
    per = statistics.median(gaps) / 1000.0
    return per, (mib_per_tick / (per / 1000.0) if per > 0 else None)


def progress_gap(src, dst):
    """Milliseconds of host time between the last tick line from the
    source and the first from the destination: how long the guest made
    no progress one could see (downtime, plus a tick's work, plus, after
    a post-copy handover, the pages it waited for)."""
    if not src or not dst:
        return None
    return (dst[0][0] - src[-1][0]) * 1000.0

