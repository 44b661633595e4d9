#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The chaos suite: rack memory under injected faults.

Three `rackvm memd` servers, each behind a chaos-proxy (chaos_proxy.c),
serve two VMs that page: the bundled guest's pagestress and kmeans, each
with --mem-local at 25% of its memory and memd:...,replicas=2.  A seeded
schedule of faults hits one server at a time, for a bounded time each:
  kill    SIGKILL, then a new empty memd on the same port
  stop    SIGSTOP, then SIGCONT
  drop    the proxy forwards nothing (a partition), then passes again
  delay   the proxy adds 20-300 ms to every byte
  cut     the proxy closes every connection and refuses new ones
  gone    cut for longer than down_after: the VMs must place that
          server's copies on the two others while it is away
and once two servers at a time (cut), which must pause the VMs until
they are back.  After each fault everything is healed and checked:
  (a) no wrong byte reaches a guest: every VM run ends with pagestress
      bad=0, or kmeans' checksum equal to a fault-free run's;
  (b) a VM pauses (pager: ... unreachable on every server) only while
      two servers are out, never with one, and resumes after;
  (c) every page has its 2 copies again: with the VMs paused, each VM's
      under_replicated and lost are 0 (GET /vm/memory/pager) and
      its namespace's pages summed over the servers (STATS after a
      HELLO) are 2 x the pages its store holds (more copies than that
      are waited for 5 s, then counted and reported, not failed: they
      cost space, not pages);
  (d) once the VMs have exited, no server holds a page or a namespace.
VMs that finish are started again between faults, so every fault hits
paging VMs.

Output: the test harness's lines (ok NAME / FAIL NAME: why) and
"chaos: ..." lines, the seed first (CHAOS_SEED=N replays a run).

Environment: RACKVM (default build/asan/rackvm), CHAOS_PROXY (default
build/chaos-proxy), CHAOS_SEED, CHAOS_FAULTS, CHAOS_DIR (logs; default a
temporary directory), RACK_HOST (set in the emulated test host: smaller
VMs, longer waits).
"""
import argparse
import hashlib
import http.client
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

HELLO, STATS = 1, 5
MEMD_VERSION = 3            # src/remote/memd_proto.h (the key labels still say 2)
EMULATED = bool(os.environ.get("RACK_HOST"))
DOWN_AFTER = 4.0            # the VMs' down_after, seconds
NAMESPACE_TTL = 20          # memd's, longer than any outage below
OUTAGE = (0.5, 2.5)         # a single fault lasts this long
HEAL_WAIT = 180 if EMULATED else 60
if EMULATED:
    # Short runs: a VM that finishes is started again between faults,
    # and after the last fault the suite waits for both to end.
    PAGESTRESS = ("--mem", "32M", "--mem-local", "8M",
                  "pagestress mib=16 passes=2 order=random")
    KMEANS = ("--mem", "24M", "--mem-local", "6M",
              "kmeans points=131072 dims=8 k=4 iters=4 seed=7")
else:
    PAGESTRESS = ("--mem", "64M", "--mem-local", "16M",
                  "pagestress mib=48 passes=6 order=random")
    KMEANS = ("--mem", "48M", "--mem-local", "12M",
              "kmeans points=524288 dims=8 k=4 iters=40 seed=7")

failures = []


def say(text):
    print("chaos: " + text, flush=True)


def check(name, cond, why=""):
    print(("ok %s" % name) if cond else ("FAIL %s: %s" % (name, why)), flush=True)
    if not cond:
        failures.append(name)


# --- memd on the wire: STATS, and the handshake to read a namespace's ----

def blake(data, key=b""):
    return hashlib.blake2b(data, digest_size=32, key=key).digest()


def counted(b):
    return bytes([len(b)]) + b


def recv_exact(s, n):
    data = s.recv(n, socket.MSG_WAITALL) if n else b""
    if len(data) < n:
        raise EOFError("closed")
    return data


def request(s, op, ident, body=b""):
    s.sendall(struct.pack("<IBBHQ", len(body), op, 0, 0, ident) + body)
    length, _, status, _, _ = struct.unpack("<IBBHQ", recv_exact(s, 16))
    return status, recv_exact(s, length)


def memd_stats(port, name=None, secret=None):
    """STATS of the memd on @port (a dict), after joining namespace @name
    if given (no HELLO creates it: where it does not exist its pages are
    0).  None if the server does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            ns_known = True
            if name:
                ns_known = join(s, name.encode(), secret)
            status, body = request(s, STATS, 9)
            if status != 0 or len(body) != 88:
                return None
            f = struct.unpack("<11Q", body)
            return {"pages": f[2], "ns_pages": f[3] if ns_known else 0,
                    "namespaces": f[4]}
    except (OSError, EOFError):
        return None


def join(s, name, secret):
    """The client's HELLO for an existing namespace; False if the server
    does not know it (nothing is created)."""
    cn = os.urandom(32)
    status, body = request(s, HELLO, 1, struct.pack("<HBB", MEMD_VERSION, 1, len(name)) + cn + name)
    if status != 0:
        raise EOFError("HELLO step 1: status %d" % status)
    sid, known, sn = body[:16], body[16] & 1, body[24:56]
    if not known:
        return False
    key = blake(b"rackvm memd 2 key" + counted(name) + counted(secret))
    v = blake(b"rackvm memd 2 verifier" + sid, key)
    proof = blake(b"rackvm memd 2 client" + sid + cn + sn + counted(name) + b"\0", v)
    status, body = request(s, HELLO, 2, struct.pack("<HBB", MEMD_VERSION, 2, 0) + proof)
    if status != 0:
        raise EOFError("HELLO step 2: status %d" % status)
    return True


# --- the processes ------------------------------------------------------------

class Memd:
    def __init__(self, rackvm, logdir, idx):
        self.rackvm, self.logdir, self.idx = rackvm, logdir, idx
        self.port, self.proc, self.starts = 0, None, 0
        self.start()

    def start(self):
        """A new instance, on the port of the last one if there was one."""
        for _ in range(50):     # the port of a killed one may linger
            self.starts += 1
            self.log = os.path.join(self.logdir, "memd%d.%d.log" % (self.idx, self.starts))
            with open(self.log, "w") as out:
                self.proc = subprocess.Popen(
                    [self.rackvm, "memd", "--listen", "127.0.0.1:%d" % self.port,
                     "--capacity", "512M", "--namespace-ttl", "%ds" % NAMESPACE_TTL],
                    stdin=subprocess.DEVNULL, stdout=out, stderr=out)
            for _ in range(200):
                m = re.search(r"memd: listening on 127\.0\.0\.1:(\d+)", open(self.log).read())
                if m or self.proc.poll() is not None:
                    break
                time.sleep(0.05)
            if m:
                self.port = int(m.group(1))
                return
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            time.sleep(0.2)
        raise RuntimeError("memd %d does not start: %s" % (self.idx, open(self.log).read()[-300:]))

    def signal(self, sig):
        self.proc.send_signal(sig)

    def kill(self):
        self.proc.kill()
        self.proc.wait()


class Proxy:
    def __init__(self, binary, backend_port):
        self.proc = subprocess.Popen([binary, "0", str(backend_port)], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1)
        line = self.proc.stdout.readline()
        m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
        if not m:
            raise RuntimeError("chaos-proxy does not start: %r" % line)
        self.port = int(m.group(1))

    def cmd(self, line):
        self.proc.stdin.write(line + "\n")
        answer = self.proc.stdout.readline()
        if not answer.startswith("ok"):
            raise RuntimeError("chaos-proxy: %s: %r" % (line, answer))
        return answer


class Vm:
    """One rackvm run of a workload; its stderr is scanned for events."""
    count = 0

    def __init__(self, env, kind, args):
        Vm.count += 1
        self.kind, self.env = kind, env
        self.name = "chaos-%s-%d" % (kind, Vm.count)
        base = os.path.join(env.dir, self.name)
        self.out, self.err, self.sock = base + ".out", base + ".err", base + ".sock"
        mem = list(args[:4])
        self.proc = subprocess.Popen(
            [env.rackvm, "run"] + mem +
            ["--mem-backend", env.backend, "--mem-namespace", self.name,
             "--mem-secret-file", env.secret_file, "--api-socket", self.sock,
             "--cmdline", args[4]],
            stdin=subprocess.DEVNULL, stdout=open(self.out, "w"), stderr=open(self.err, "w"))
        self.seen = 0
        self.checked = False

    def running(self):
        return self.proc.poll() is None

    def api(self, method, path, body=None):
        """One request on the VM's API socket: the decoded JSON reply of a
        2xx answer ({} if empty), else None."""
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.settimeout(30)
                s.connect(self.sock)
                conn = http.client.HTTPConnection("localhost", timeout=30)
                conn.sock = s
                headers = {"Content-Type": "application/json"} if body is not None else {}
                conn.request(method, path, body=None if body is None else json.dumps(body),
                             headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            if resp.status // 100 != 2:
                return None
            return json.loads(data) if data else {}
        except (OSError, ValueError, http.client.HTTPException):
            return None

    def control(self, what):
        """pause or resume (PUT /vm/state): "ok", or None if refused."""
        state = {"pause": "paused", "resume": "running"}[what]
        return "ok" if self.api("PUT", "/vm/state", {"state": state}) is not None else None

    def pager_stats(self):
        """The pager's counters and its store's copies (GET /vm/memory/pager),
        under the names the checks use."""
        st = self.api("GET", "/vm/memory/pager")
        if st is None:
            return None
        return {"resident": st["resident_pages"], "remote": st["remote_pages"],
                "zero": st["zero_pages"], "stored": st["stored_pages"],
                "under_replicated": st["under_replicated"], "lost": st["lost_pages"],
                "unreachable": st["unreachable"], "faults": st["faults"],
                "evictions": st["evictions"]}

    def new_events(self):
        """The pager's pause and resume lines since the last call."""
        try:
            lines = open(self.err, errors="replace").read().splitlines()
        except OSError:
            return []
        new, self.seen = lines[self.seen:], len(lines)
        return [("pause" if "unreachable on every server" in l else "resume", l)
                for l in new if "VM paused" in l or "VM resumed" in l]

    def verdict(self):
        """(True, what) if the run ended well, else (False, why)."""
        out = open(self.out, errors="replace").read()
        err = open(self.err, errors="replace").read()
        status = self.proc.returncode
        if self.kind == "pagestress":
            m = re.search(r"^result: pagestress .*bad=(\d+)", out, re.M)
            good = status == 0 and m and m.group(1) == "0"
        else:
            m = re.search(r"^result: kmeans points=.* checksum=(0x[0-9a-f]+)", out, re.M)
            good = status == 0 and m and m.group(1) == self.env.kmeans_sum
        if good:
            return True, m.group(0)
        return False, "%s: exit %s, %s | %s" % (self.name, status, m.group(0) if m else "no result",
                                                " | ".join(err.strip().splitlines()[-4:]))


class Chaos:
    def __init__(self, args):
        self.rackvm = os.environ.get("RACKVM", "build/asan/rackvm")
        self.proxy_bin = os.environ.get("CHAOS_PROXY", "build/chaos-proxy")
        self.dir = os.environ.get("CHAOS_DIR") or tempfile.mkdtemp(prefix="chaos.")
        os.makedirs(self.dir, exist_ok=True)
        self.rng = random.Random(args.seed)
        self.faults = args.faults
        self.memd, self.proxies, self.vms, self.done = [], [], [], []
        self.phase = "single"
        self.relaunch = True
        self.lost = set()       # VMs whose store counted pages lost
        self.extra = []         # extra copies left after a heal
        self.single_pauses, self.double_pauses, self.resumes = [], 0, 0
        self.survived, self.kinds = 0, {}
        self.secret = os.urandom(32)
        self.secret_file = os.path.join(self.dir, "secret")
        with open(self.secret_file, "wb") as f:
            f.write(self.secret)

    # --- setup and teardown

    def start(self):
        for i in range(3):
            self.memd.append(Memd(self.rackvm, self.dir, i))
            self.proxies.append(Proxy(self.proxy_bin, self.memd[i].port))
        self.backend = "memd:%s,replicas=2,down_after=%dms" % (
            ",".join("127.0.0.1:%d" % p.port for p in self.proxies), int(DOWN_AFTER * 1000))
        ref = subprocess.run([self.rackvm, "run", "--mem", KMEANS[1], "--cmdline", KMEANS[4]],
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
        m = re.search(r"^result: kmeans points=.* checksum=(0x[0-9a-f]+)", ref.stdout, re.M)
        self.kmeans_sum = m.group(1) if m else None
        say("kmeans reference checksum (no pager, no faults): %s" % self.kmeans_sum)
        return self.kmeans_sum is not None

    def stop_all(self):
        for vm in self.vms:
            if vm.running():
                vm.proc.kill()
                vm.proc.wait()
        for m in self.memd:
            if m.proc.poll() is None:
                m.signal(signal.SIGCONT)
                m.proc.terminate()
                m.proc.wait()
        for p in self.proxies:
            p.proc.kill()
            p.proc.wait()

    # --- the VMs

    def launch(self):
        """Starts the workloads not running now, and judges the ended."""
        for kind, args in (("pagestress", PAGESTRESS), ("kmeans", KMEANS)):
            live = [vm for vm in self.vms if vm.kind == kind and vm.running()]
            if not live:
                self.vms.append(Vm(self, kind, args))
        self.judge()

    def judge(self):
        for vm in self.vms:
            if not vm.running() and not vm.checked:
                vm.checked = True
                self.scan()
                self.done.append((vm.name,) + vm.verdict())

    def scan(self):
        for vm in self.vms:
            for kind, line in vm.new_events():
                if kind == "resume":
                    self.resumes += 1
                elif self.phase == "double":
                    self.double_pauses += 1
                else:
                    self.single_pauses.append("fault %d (%s): %s: %s" % (
                        self.survived + 1, self.phase, vm.name, line))

    def nap(self, seconds):
        """Sleeps, watching the VMs: their events, and while faults are
        to come, a new run of each workload that ended."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            time.sleep(min(0.1, max(0, end - time.monotonic())))
            self.scan()
            if self.relaunch:
                self.launch()

    # --- the copies

    def copies_ok(self, servers):
        """(True, "") if every live VM has its copies: no page short or
        lost, and with the VMs paused, its namespace's pages on @servers
        are twice what its store holds; else (False, why)."""
        live = [vm for vm in self.vms if vm.running()]
        for vm in live:
            st = vm.pager_stats()
            if st and st["lost"]:
                self.lost.add("%s: lost=%d" % (vm.name, st["lost"]))
            if st and (st["under_replicated"] or st["lost"]):
                return False, "%s: under_replicated=%d lost=%d" % (
                    vm.name, st["under_replicated"], st["lost"])
        for vm in live:
            vm.control("pause")
        total = 0
        try:
            for vm in live:
                st = vm.pager_stats()
                if not st:
                    continue    # it ended meanwhile
                stats = [memd_stats(self.memd[i].port, vm.name, self.secret) for i in servers]
                if None in stats:
                    return False, "a memd does not answer STATS"
                pages = sum(s["ns_pages"] for s in stats)
                total += st["stored"]
                if pages > 2 * st["stored"] and not st["under_replicated"]:
                    # more copies than asked for: a leak of space, not
                    # of pages; counted, and waited for a while
                    extra = pages - 2 * st["stored"]
                    if time.monotonic() - self.check_start > 5:
                        self.extra.append(extra)
                        continue
                if st["under_replicated"] or pages != 2 * st["stored"]:
                    return False, "%s: stores %d pages, the servers hold %d copies (%s), " \
                        "under_replicated=%d" % (vm.name, st["stored"], pages,
                                                 "+".join(str(s["ns_pages"]) for s in stats),
                                                 st["under_replicated"])
            return True, "%d pages x 2 copies" % total
        finally:
            for vm in live:
                vm.control("resume")

    def wait_copies(self, servers, seconds):
        start, why, said = time.monotonic(), "", 0
        self.check_start = start
        while time.monotonic() < start + seconds:
            ok, why = self.copies_ok(servers)
            if ok:
                return True, why
            if time.monotonic() - start > 5 * (said + 1):
                said += 1
                say("  still waiting for the copies (%.0fs): %s" % (
                    time.monotonic() - start, why))
            self.nap(0.3)
        return False, why

    # --- faults

    def pick(self, n):
        kinds = ["kill", "stop", "drop", "delay", "cut", "gone"]
        order = kinds[:]
        self.rng.shuffle(order)
        plan = [(order[i] if i < len(order) else self.rng.choice(kinds)) for i in range(n)]
        # one outage of two servers, after the first faults
        plan.insert(min(n, 2 + self.rng.randrange(max(1, n - 2))), "double")
        return [(k, self.rng.randrange(3), self.rng.uniform(*OUTAGE)) for k in plan]

    def inject(self, kind, s, secs):
        memd, proxy = self.memd[s], self.proxies[s]
        detail = "%s server %d for %.1fs" % (kind, s, secs)
        if kind == "kill":
            memd.kill()
            self.nap(secs)
            memd.start()
        elif kind == "stop":
            memd.signal(signal.SIGSTOP)
            self.nap(secs)
            memd.signal(signal.SIGCONT)
        elif kind in ("drop", "cut"):
            proxy.cmd(kind)
            self.nap(secs)
            proxy.cmd("pass")
        elif kind == "delay":
            ms = self.rng.randrange(20, 300)
            detail = "delay server %d by %d ms for %.1fs" % (s, ms, secs)
            proxy.cmd("delay %d" % ms)
            self.nap(secs)
            proxy.cmd("pass")
        elif kind == "gone":
            detail = self.gone(s)
        elif kind == "double":
            detail = self.double(s)
        return detail

    def wait_paging(self):
        """Until every live VM has pages in the store (a VM just started
        has none yet), 20 s at most."""
        end = time.monotonic() + 20
        while time.monotonic() < end:
            stats = [vm.pager_stats() for vm in self.vms if vm.running()]
            if stats and all(st and st["remote"] > 500 for st in stats):
                return
            self.nap(0.2)

    def gone(self, s):
        """Server @s cut off for good (as far as the VMs know): while it
        is away, its copies must move to the two others."""
        others = [i for i in range(3) if i != s]
        self.proxies[s].cmd("cut")
        self.nap(DOWN_AFTER)
        ok, why = self.wait_copies(others, HEAL_WAIT)
        self.proxies[s].cmd("pass")
        if not ok:
            check("chaos_gone_server_copies_placed_elsewhere", False,
                  "server %d away for good: %s" % (s, why))
        return "server %d gone for good (cut past down_after=%.0fs), copies %s" % (
            s, DOWN_AFTER, "placed on the others" if ok else "NOT placed")

    def double(self, s):
        """Two servers out at once (cut): some page has both its copies
        there, so the VMs pause until they are back."""
        pair = [s, (s + 1 + self.rng.randrange(2)) % 3]
        self.wait_paging()
        before = self.double_pauses
        self.phase = "double"
        for i in pair:
            self.proxies[i].cmd("cut")
        end = time.monotonic() + 8
        while self.double_pauses == before and time.monotonic() < end:
            self.nap(0.1)
        self.nap(0.5)
        for i in pair:
            self.proxies[i].cmd("pass")
        self.nap(3)      # resume lines come after the heal
        self.phase = "single"
        self.double_seen = self.double_pauses > before
        return "servers %d and %d cut off together: %s" % (
            pair[0], pair[1], "VMs paused" if self.double_seen else "NO pause seen")

    def run(self):
        t0 = time.monotonic()
        plan = self.pick(self.faults)
        copies_failed = None
        self.double_seen = None
        self.launch()
        self.nap(2)
        for n, (kind, s, secs) in enumerate(plan):
            detail = self.inject(kind, s, secs)
            ok, why = self.wait_copies(range(3), HEAL_WAIT)
            say("fault %d/%d: %s; healed, copies %s (%.0fs)" % (
                n + 1, len(plan), detail, ("back: " if ok else "NOT back: ") + why,
                time.monotonic() - t0))
            if not ok and not copies_failed:
                copies_failed = "after fault %d (%s): %s" % (n + 1, detail, why)
            self.survived += 1
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
            self.nap(self.rng.uniform(0.2, 1.0))
        self.relaunch = False
        say("faults over; waiting for the VMs to finish")
        for vm in self.vms:
            while vm.running():
                self.nap(0.2)
        self.judge()
        self.report(copies_failed, time.monotonic() - t0)

    def report(self, copies_failed, seconds):
        bad = [why for _, good, why in self.done if not good]
        runs = {}
        for name, good, _ in self.done:
            kind = name.split("-")[1]
            runs[kind] = runs.get(kind, 0) + 1
        check("chaos_guest_data_intact", not bad and runs.get("pagestress") and runs.get("kmeans"),
              "; ".join(bad) or "runs: %s" % runs)
        check("chaos_no_pause_with_one_server_out", not self.single_pauses,
              "; ".join(self.single_pauses[:3]))
        check("chaos_two_servers_out_pause_then_resume",
              self.double_seen is not False and self.resumes > 0,
              "paused during the double outage: %s, resumed lines: %d" % (
                  self.double_seen, self.resumes))
        check("chaos_every_page_has_its_copies_after_healing",
              not copies_failed and not self.lost,
              copies_failed or "pages lost: %s" % sorted(self.lost))
        end, left = time.monotonic() + NAMESPACE_TTL + 10, None
        while time.monotonic() < end:
            left = [memd_stats(m.port) for m in self.memd]
            if all(s and not s["pages"] and not s["namespaces"] for s in left):
                break
            time.sleep(0.5)
        check("chaos_servers_empty_after_the_vms_exit",
              all(s and not s["pages"] and not s["namespaces"] for s in left),
              "servers' (pages, namespaces): %s" % [(s["pages"], s["namespaces"]) if s else None
                                                    for s in left])
        if self.extra:
            say("%d heals left extra copies on the servers (at most %d): "
                "stale copies not dropped, space rather than pages" % (
                    len(self.extra), max(self.extra)))
        say("survived %d faults (%s) in %.0fs; VM runs: %s; logs in %s" % (
            self.survived, " ".join("%s=%d" % kv for kv in sorted(self.kinds.items())),
            seconds, " ".join("%s=%d" % kv for kv in sorted(runs.items())), self.dir))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--faults", type=int, default=int(os.environ.get("CHAOS_FAULTS", "6")))
    ap.add_argument("--seed", type=int, default=None)
    args = ap.parse_args()
    if args.seed is None:
        env = os.environ.get("CHAOS_SEED")
        args.seed = int(env) if env else random.SystemRandom().randrange(1 << 31)
    say("seed %d (CHAOS_SEED=%d replays this run), %d faults" % (args.seed, args.seed, args.faults))
    chaos = Chaos(args)
    try:
        if not chaos.start():
            check("chaos_setup", False, "the fault-free kmeans run gave no checksum")
            return 1
        chaos.run()
    finally:
        chaos.stop_all()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
