# SPDX-License-Identifier: MIT
"""bench/migrate's runs and tables (bench/migrate sets the environment
and runs this where the figures are to come from; its header says what
is measured)."""
import os
import re
import shutil
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from migrate_vm import (Proc, QMP, api, free_port, guest_downtime, lo_bytes,  # noqa: E402
                        progress_gap, tick_rate, wait_listening, wait_path)

E = os.environ
RACKVM = E.get("RACKVM", "build/rackvm")
GUEST_ELF = E.get("GUEST_ELF", "build/guest/rackvm-guest.elf")
QEMU = E.get("QEMU", "qemu-system-x86_64")
MIB = int(E.get("MIB", "1024"))
SNAP_MIB = int(E.get("SNAP_MIB", "512"))
RUNS = int(E.get("RUNS", "1"))
TICK_MS = int(E.get("TICK_MS", "0"))
IDLE_MIB = int(E.get("IDLE_MIB", "1"))
HEAVY_MIB = int(E.get("HEAVY_MIB", "64"))
HEAVY_MS = int(E.get("HEAVY_MS", "50"))
SNAP_TOUCH = int(E.get("SNAP_TOUCH", "64"))
SNAP_TICK_MS = int(E.get("SNAP_TICK_MS", "5"))
MODES = E.get("MODES", "precopy postcopy hybrid").split()
QEMU_LIMITS = [int(x) for x in E.get("QEMU_LIMITS", "300 30").split()]
QEMU_BW = int(E.get("QEMU_BW", str(100 << 30)))
TIMEOUT = int(E.get("TIMEOUT", "150"))
AFTER_TICKS = int(E.get("AFTER_TICKS", "10"))
WARM_S = float(E.get("WARM_S", "2"))
VERBOSE = E.get("VERBOSE", "0") == "1"

WORKLOADS = {
    "idle": ("ticker ticks=100000 ms=%d mib=%d stamp=1" % (TICK_MS, IDLE_MIB),
             IDLE_MIB / 8.0),
    "write": ("ticker ticks=100000 ms=%d mib=%d stamp=1" % (HEAVY_MS, HEAVY_MIB),
              HEAVY_MIB / 8.0),
}
TMP = tempfile.mkdtemp(prefix="rackvm-migrate.")
live = []


def note(msg):
    print("bench/migrate: " + msg, file=sys.stderr, flush=True)


def start(name, argv):
    p = Proc(name, argv, TMP)
    live.append(p)
    return p


def stop_all():
    while live:
        live.pop().stop()


def qemu_argv(mib, work, qmp, extra=()):
    return [QEMU, "-M", "microvm", "-enable-kvm", "-cpu", "host",
            "-m", str(mib), "-nodefaults", "-no-user-config", "-nographic",
            "-serial", "stdio",
            "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04",
            "-kernel", GUEST_ELF, "-append", work,
            "-qmp", "unix:%s,server=on,wait=off" % qmp] + list(extra)


def show_move(src, dst):
    """With VERBOSE=1, the ticks either side of the move."""
    if not VERBOSE:
        return
    a, b = src.ticks()[-4:], dst.ticks()[:4]
    t0 = a[0][0] if a else 0
    note("ticks around the move (host ms, tick, guest us): " +
         " ".join("%.1f/%d/%d" % ((h - t0) * 1000, n, us) for h, n, us in a) +
         " | " + " ".join("%.1f/%d/%d" % ((h - t0) * 1000, n, us) for h, n, us in b))


def rackvm_source(mib, work, sock):
    src = start("src", [RACKVM, "run", "--kernel", GUEST_ELF, "--mem",
                        "%dM" % mib, "--api-socket", sock, "--cmdline", work])
    if not wait_path(sock, 30):
        raise RuntimeError("the source's API socket never came: " + src.tail())
    return src


def warm_up(src):
    """Until the guest has ticked for WARM_S (its fill done)."""
    if src.wait_line(r"^tick ", TIMEOUT) is None:
        raise RuntimeError("the source never ticked: " + src.tail())
    time.sleep(WARM_S)


# --- rackvm --------------------------------------------------------------

mode_refused = {}	# mode -> why this build does not take it
ENDED = ("completed", "failed", "unconfirmed", "lost")	# GET /vm/migrate's last phases


def probe_modes(sock):
    """Which modes this build takes: a PUT to a port nobody listens on is
    refused (409/400) for a mode the build lacks, and otherwise fails to
    connect while the source runs on."""
    for mode in MODES:
        if mode == "precopy" or mode in mode_refused:
            continue
        status, body = api(sock, "PUT", "/vm/migrate",
                           {"uri": "tcp:127.0.0.1:1", "mode": mode})
        if status != 202:
            mode_refused[mode] = "%d %s" % (status, body.get("error", ""))
            continue
        end = time.monotonic() + 30
        while time.monotonic() < end:
            _, st = api(sock, "GET", "/vm/migrate")
            if st.get("phase") in ENDED:
                break
            time.sleep(0.1)


def last_status_line(err):
    m = re.search(r"rackvm: migration (\w+): (\d+) rounds, ([\d.]+) MiB of guest "
                  r"RAM sent, downtime ([\d.]+) ms, ([\d.]+) s in all", err)
    if not m:
        return {}
    out = {"phase": m.group(1), "round": int(m.group(2)),
           "bytes_sent": float(m.group(3)) * (1 << 20),
           "downtime_ms": float(m.group(4)), "total_seconds": float(m.group(5))}
    parts = re.search(r"rackvm: downtime: pause ([\d.]+), quiesce ([\d.]+), copy ([\d.]+), "
                      r"destination load ([\d.]+), start ([\d.]+) ms", err)
    if parts:
        out["parts"] = [float(v) for v in parts.groups()]
    return out


def rackvm_migrate(mode, workload):
    if mode in mode_refused:
        return {"na": "not supported by this build (%s)" % mode_refused[mode]}
    work, mib_per_tick = WORKLOADS[workload]
    sock = os.path.join(TMP, "src.sock")
    src = rackvm_source(MIB, work, sock)
    warm_up(src)
    probe_modes(sock)
    if mode in mode_refused:
        return {"na": "not supported by this build (%s)" % mode_refused[mode]}
    port = free_port()
    dst = start("dst", [RACKVM, "run", "--incoming", "tcp:127.0.0.1:%d" % port])
    if not wait_listening(port, 30):
        raise RuntimeError("the destination never listened: " + dst.tail())
    lo0 = lo_bytes()
    t_cmd = time.monotonic()
    status, body = api(sock, "PUT", "/vm/migrate",
                       {"uri": "tcp:127.0.0.1:%d" % port, "mode": mode})
    if status != 202:
        return {"na": "PUT /vm/migrate: %d %s" % (status, body.get("error", ""))}
    st = {}
    end = t_cmd + TIMEOUT
    while time.monotonic() < end and src.p.poll() is None:
        try:
            _, s = api(sock, "GET", "/vm/migrate", timeout=5)
            st = s or st
        except OSError:
            break
        if st.get("phase") in ENDED:
            break
        time.sleep(0.1)
    if src.p.poll() is None and st.get("phase") != "completed":
        if st.get("phase") in ENDED:
            return {"na": "migration %s: %s" % (st["phase"], st.get("error"))}
        return {"na": "not done after %d s (%s)" % (TIMEOUT, st.get("phase"))}
    if dst.wait_line(r"^tick ", 60, AFTER_TICKS) is None:
        return {"na": "the destination did not tick: " + dst.tail()}
    try:
        src.p.wait(15)
    except Exception:
        pass
    wire = lo_bytes() - lo0
    final = last_status_line(src.stderr()) or st
    if final.get("phase") != "completed":
        return {"na": "the source says: " + src.tail()}
    down, warn = guest_downtime(src.ticks(), dst.ticks())
    per, rate = tick_rate([t for t in src.ticks() if t[0] < t_cmd], mib_per_tick)
    show_move(src, dst)
    return {"total_s": final["total_seconds"], "down_ms": down,
            "gap_ms": progress_gap(src.ticks(), dst.ticks()),
            "vmm_down_ms": final["downtime_ms"], "wire": wire,
            "vmm_bytes": final["bytes_sent"], "rounds": final["round"],
            "tick_ms": per, "dirty": rate, "warn": warn,
            "bw_vmm": st.get("bandwidth_bytes_per_second"),
            "exp_down": st.get("expected_downtime_ms"), "parts": final.get("parts")}


# --- QEMU ----------------------------------------------------------------

def qemu_migration_end(q, secs):
    """QEMU's query-migrate once the migration ended (or after secs)."""
    end = time.monotonic() + secs
    st = {}
    while time.monotonic() < end:
        st = q.cmd("query-migrate")
        if st.get("status") in ("completed", "failed", "cancelled"):
            break
        time.sleep(0.1)
    return st


def qemu_migrate(limit, workload):
    work, mib_per_tick = WORKLOADS[workload]
    sq, dq = os.path.join(TMP, "src.qmp"), os.path.join(TMP, "dst.qmp")
    for q in (sq, dq):
        if os.path.exists(q):
            os.unlink(q)
    src = start("qsrc", qemu_argv(MIB, work, sq))
    warm_up(src)
    port = free_port()
    dst = start("qdst", qemu_argv(MIB, work, dq,
                                  ["-incoming", "tcp:127.0.0.1:%d" % port]))
    if not wait_listening(port, 30):
        raise RuntimeError("QEMU's destination never listened: " + dst.tail())
    q = QMP(sq)
    q.cmd("migrate-set-parameters", **{"downtime-limit": limit,
                                       "max-bandwidth": QEMU_BW})
    lo0 = lo_bytes()
    t_cmd = time.monotonic()
    q.cmd("migrate", uri="tcp:127.0.0.1:%d" % port)
    st = qemu_migration_end(q, TIMEOUT)
    if st.get("status") != "completed":
        try:
            q.cmd("migrate_cancel")
        except OSError:
            pass
        q.close()
        return {"na": "QEMU's migration %s after %d s" % (st.get("status"), TIMEOUT)}
    if dst.wait_line(r"^tick ", 60, AFTER_TICKS) is None:
        q.close()
        return {"na": "QEMU's destination did not tick: " + dst.tail()}
    wire = lo_bytes() - lo0
    try:
        q.cmd("quit")
    except OSError:
        pass
    q.close()
    ram = st.get("ram", {})
    down, warn = guest_downtime(src.ticks(), dst.ticks())
    per, rate = tick_rate([t for t in src.ticks() if t[0] < t_cmd], mib_per_tick)
    show_move(src, dst)
    return {"total_s": st.get("total-time", 0) / 1000.0, "down_ms": down,
            "gap_ms": progress_gap(src.ticks(), dst.ticks()),
            "vmm_down_ms": st.get("downtime"), "wire": wire,
            "vmm_bytes": ram.get("transferred"),
            "rounds": ram.get("dirty-sync-count"), "tick_ms": per,
            "dirty": rate, "warn": warn}


# --- snapshot restore ----------------------------------------------------

def snap_work():
    return "ticker ticks=100000 ms=%d mib=%d stamp=1" % (SNAP_TICK_MS, SNAP_TOUCH)


def rackvm_snapshot(path):
    sock = os.path.join(TMP, "snap.sock")
    src = rackvm_source(SNAP_MIB, snap_work(), sock)
    warm_up(src)
    status, body = api(sock, "PUT", "/vm/state", {"state": "paused"})
    if status // 100 != 2:
        raise RuntimeError("pause: %d %s" % (status, body))
    status, body = api(sock, "PUT", "/vm/snapshot", {"path": path}, timeout=300)
    if status // 100 != 2:
        raise RuntimeError("snapshot: %d %s" % (status, body))
    api(sock, "PUT", "/vm/stop")
    stop_all()


def restore_once(name, argv):
    p = start(name, argv)
    t_tick = p.wait_line(r"^tick ", 60)
    ready = built = loaded = None
    end = time.monotonic() + 5
    while time.monotonic() < end:
        m = re.search(r"restore: ready to run after ([\d.]+) ms.*built in ([\d.]+) ms, "
                      r"state loaded in ([\d.]+) ms", p.stderr())
        if m:
            ready, built, loaded = (float(x) for x in m.groups())
            break
        if name.startswith("qemu"):
            break
        time.sleep(0.05)
    tail = p.tail()
    stop_all()
    if t_tick is None:
        return {"na": "no tick after the restore: " + tail}
    return {"first_tick_ms": (t_tick - p.t0) * 1000.0, "ready_ms": ready,
            "built_ms": built, "loaded_ms": loaded}


def qemu_snapshot(path):
    sq = os.path.join(TMP, "snap.qmp")
    if os.path.exists(sq):
        os.unlink(sq)
    src = start("qsnap", qemu_argv(SNAP_MIB, snap_work(), sq))
    warm_up(src)
    q = QMP(sq)
    q.cmd("migrate-set-parameters", **{"max-bandwidth": QEMU_BW})
    q.cmd("migrate", uri="exec:cat > %s" % path)
    st = qemu_migration_end(q, 300)
    q.cmd("quit")
    q.close()
    stop_all()
    if st.get("status") != "completed":
        raise RuntimeError("QEMU's save to a file: %s" % st.get("status"))


# --- the runs and the tables ---------------------------------------------

def guarded(fn, *args):
    try:
        r = fn(*args)
    except Exception as e:	# a failed run is a row saying why
        r = {"na": "%s: %s" % (type(e).__name__, e)}
    stop_all()
    if VERBOSE:
        note("%s%s: %s" % (fn.__name__, args, r))
    return r


def med(rs, key):
    v = [r[key] for r in rs if "na" not in r and r.get(key) is not None]
    return statistics.median(v) if v else None


def fmt(v, f="%.2f"):
    return "n/a" if v is None else f % v


def ratio(a, b):
    return "-" if a is None or not b else "%.2f" % (a / b)


def main():
    results = {}	# (vmm row, workload) -> [run dicts]
    rows = ["rackvm " + m for m in MODES] + ["qemu %d ms" % l for l in QEMU_LIMITS]
    have_qemu = shutil.which(QEMU) is not None
    print("bench/migrate: guest %d MiB, 1 vCPU, loopback; idle: ticker every %d ms (0: back to back)"
          " rewriting 1/8 of %d MiB; write: every %d ms 1/8 of %d MiB; %d run(s)"
          % (MIB, TICK_MS, IDLE_MIB, HEAVY_MS, HEAVY_MIB, RUNS), flush=True)
    t_start = time.monotonic()
    for _ in range(RUNS):
        for wl in WORKLOADS:
            for m in MODES:
                results.setdefault(("rackvm " + m, wl), []).append(
                    guarded(rackvm_migrate, m, wl))
            for lim in QEMU_LIMITS:
                r = guarded(qemu_migrate, lim, wl) if have_qemu else \
                    {"na": QEMU + " not found"}
                results.setdefault(("qemu %d ms" % lim, wl), []).append(r)
    t_mig = time.monotonic() - t_start

    print()
    hdr = "%-16s %-6s %7s %9s %9s %9s %8s %8s %6s %7s"
    print(hdr % ("", "", "total", "downtime", "VMM says", "no ticks", "wire", "VMM says",
                 "rounds", "dirtied"))
    print(hdr % ("VMM", "guest", "s", "ms", "ms", "ms", "MiB", "MiB", "", "MiB/s"))
    reasons = {}
    for row in rows:
        for wl in WORKLOADS:
            rs = results[(row, wl)]
            ok = [r for r in rs if "na" not in r]
            if not ok:
                why = rs[0]["na"] if rs else "not run"
                short = "not supported by this build" if why.startswith("not supported") else "n/a"
                print("%-16s %-6s %s" % (row, wl, short))
                reasons[row + " " + wl] = why
                continue
            mb = lambda k: None if med(ok, k) is None else med(ok, k) / (1 << 20)
            print(hdr % (row, wl, fmt(med(ok, "total_s")), fmt(med(ok, "down_ms"), "%.1f"),
                         fmt(med(ok, "vmm_down_ms"), "%.1f"), fmt(med(ok, "gap_ms"), "%.0f"),
                         fmt(mb("wire"), "%.1f"),
                         fmt(mb("vmm_bytes"), "%.1f"), fmt(med(ok, "rounds"), "%.0f"),
                         fmt(med(ok, "dirty"), "%.0f")))
            for r in ok:
                if r.get("warn"):
                    reasons[row + " " + wl] = r["warn"]
    for k, v in reasons.items():
        print("  %s: %s" % (k, v))

    print()
    print("rackvm/QEMU (median total and guest-measured downtime), goal: total <= 0.5x;")
    print("downtime <= 10 ms idle; write: never worse than QEMU")
    fmt2 = "%-16s %-6s %-10s %10s %10s %s"
    print(fmt2 % ("rackvm", "guest", "vs QEMU", "total", "downtime", "goal"))
    misses = []
    for m in MODES:
        for wl in WORKLOADS:
            a = [r for r in results[("rackvm " + m, wl)] if "na" not in r]
            if not a:
                continue
            for lim in QEMU_LIMITS:
                b = [r for r in results[("qemu %d ms" % lim, wl)] if "na" not in r]
                tr = ratio(med(a, "total_s"), med(b, "total_s"))
                dr = ratio(med(a, "down_ms"), med(b, "down_ms"))
                goals = []
                if tr != "-":
                    lim_t = 0.5 if wl == "idle" else 1.0
                    goals.append("total %s" % ("met" if float(tr) <= 0.5 else
                                               ("NOT met" if wl == "idle" or float(tr) > lim_t
                                                else "over 0.5x")))
                if wl == "idle":
                    d = med(a, "down_ms")
                    goals.append("downtime %s" % ("met" if d is not None and d <= 10 else "NOT met"))
                elif dr != "-":
                    goals.append("downtime %s" % ("met" if float(dr) <= 1 else "NOT met"))
                print(fmt2 % (m, wl, "%d ms" % lim, tr, dr, ", ".join(goals)))
                if "NOT" in " ".join(goals):
                    misses.append((m, wl, a))
    explained = set()
    for m, wl, a in misses:
        if (m, wl) in explained:
            continue
        explained.add((m, wl))
        t, vd, gd = med(a, "total_s"), med(a, "vmm_down_ms"), med(a, "down_ms")
        sent, wire = med(a, "vmm_bytes"), med(a, "wire")
        bw = wire / (1 << 20) / t if wire and t else None
        q = [r for lim in QEMU_LIMITS for r in results[("qemu %d ms" % lim, wl)] if "na" not in r]
        qbw = [r["wire"] / (1 << 20) / r["total_s"] for r in q if r.get("total_s")]
        print("  where rackvm %s/%s's time goes: %s rounds, %s MiB on the wire in %s s, %s MiB/s"
              % (m, wl, fmt(med(a, "rounds"), "%.0f"), fmt(wire and wire / (1 << 20), "%.1f"),
                 fmt(t), fmt(bw, "%.0f")))
        print("    (QEMU's: %s MiB/s); the guest dirtied %s MiB/s before the move (rackvm's last"
              % ("/".join("%.1f" % v for v in qbw) or "n/a", fmt(med(a, "dirty"), "%.0f")))
        print("    estimate: %s MiB/s sent, expected downtime %s ms); downtime %s ms by the guest's"
              % (fmt(med(a, "bw_vmm") and med(a, "bw_vmm") / (1 << 20), "%.0f"),
                 fmt(med(a, "exp_down"), "%.0f"), fmt(gd, "%.1f")))
        print("    clock, %s ms by rackvm's (pause to the destination's RUNNING: the last dirty"
              % fmt(vd, "%.1f"))
        print("    pages, the vCPU and device state, the destination's load and vCPU start)")
        parts = [r["parts"] for r in a if r.get("parts")]
        if parts:
            p = [statistics.median(v) for v in zip(*parts)]
            print("    rackvm's downtime: pause %.1f, quiesce %.1f, copy %.1f, destination load "
                  "%.1f (its state into KVM, READY), start %.1f ms (GO to RUNNING)" % tuple(p))

    # snapshot restore
    print()
    snap_rows = []
    t0 = time.monotonic()
    path = os.path.join(TMP, "r.snap")
    for _ in range(RUNS):
        for f in (path,):
            if os.path.exists(f):
                os.unlink(f)
        try:
            rackvm_snapshot(path)
            size = os.path.getsize(path)
            for lazy in (False, True):
                argv = [RACKVM, "run", "--restore", path] + (["--lazy"] if lazy else [])
                snap_rows.append(("rackvm " + ("lazy" if lazy else "eager"),
                                  restore_once("rackvm", argv), size))
        except Exception as e:
            stop_all()
            snap_rows.append(("rackvm", {"na": str(e)}, 0))
        if have_qemu:
            qpath = os.path.join(TMP, "q.snap")
            if os.path.exists(qpath):
                os.unlink(qpath)
            try:
                qemu_snapshot(qpath)
                size = os.path.getsize(qpath)
                r = restore_once("qemu", qemu_argv(SNAP_MIB, snap_work(),
                                                   os.path.join(TMP, "qr.qmp"),
                                                   ["-incoming", "exec:cat %s" % qpath]))
                snap_rows.append(("qemu eager", r, size))
            except Exception as e:
                stop_all()
                snap_rows.append(("qemu eager", {"na": str(e)}, 0))
    print("snapshot restore of a %d MiB guest (%d MiB in use, ticking every %d ms): exec to the first"
          % (SNAP_MIB, SNAP_TOUCH, SNAP_TICK_MS))
    print("tick on the console, and rackvm's own 'ready to run' (the restore alone, vCPUs start next)")
    sfmt = "%-14s %10s %14s %14s"
    sfmt = "%-14s %9s %10s %10s %10s %14s"
    print(sfmt % ("", "file MiB", "ready ms", "built ms", "loaded ms", "first tick ms"))
    names = []
    for n, _, _ in snap_rows:
        if n not in names:
            names.append(n)
    for n in names:
        rs = [r for nn, r, _ in snap_rows if nn == n]
        ok = [r for r in rs if "na" not in r]
        size = max(s for nn, _, s in snap_rows if nn == n)
        if not ok:
            print(sfmt % (n, "n/a", "n/a", "n/a", "n/a", "n/a") + "  " + rs[0]["na"][:150])
            continue
        print(sfmt % (n, "%.0f" % (size / (1 << 20)), fmt(med(ok, "ready_ms")),
                      fmt(med(ok, "built_ms")), fmt(med(ok, "loaded_ms")),
                      fmt(med(ok, "first_tick_ms"), "%.0f")))
    lazy = [r for n, r, _ in snap_rows if n == "rackvm lazy" and "na" not in r]
    if lazy:
        v = med(lazy, "ready_ms")
        print("goal: lazy restore <= 5 ms (Firecracker: < 8 ms): %s ms, %s"
              % (fmt(v), "met" if v is not None and v <= 5 else "NOT met"))
        if v is not None and v > 5:
            print("  where it goes: building the machine from the snapshot's config (KVM VM, guest")
            print("  memory, vCPUs, devices) %s ms; loading the state %s ms (the whole stream read"
                  % (fmt(med(lazy, "built_ms")), fmt(med(lazy, "loaded_ms"))))
            print("  and checked to its end, pages only noted for lazy fault-in)")
    print("first tick: includes the process start (exec, the dynamic loader, under the")
    print("test host's emulated CPU) and up to %d ms of the guest's own wait to its next tick."
          % SNAP_TICK_MS)
    print()
    print("total: the VMM's own figure (rackvm total_seconds, QEMU total-time); downtime: the guest's")
    print("clock (the ticker's TSC stamps, stamp=1, lines back to back) against the host's across the")
    print("move (each line carries the guest time the line before was written out): both VMMs carry")
    print("the TSC over as it was, so the guest's clock stops while the host's runs on.  VMM says: its")
    print("own (rackvm: pause to RUNNING; QEMU: info migrate's downtime); no ticks: host time from the")
    print("last line of the source to the first of the destination (downtime, a tick's work and, after")
    print("a post-copy handover, the wait for pages); wire: the loopback interface's")
    print("bytes over the migration (headers and ACKs included), VMM says: rackvm bytes_sent, QEMU")
    print("ram transferred; rounds: rackvm's rounds, QEMU's dirty-sync-count; dirtied: the workload's")
    print("rate from its own stamps (1/8 of its MiB per tick).  rackvm: max_downtime_ms default (%s);"
          % "30")
    print("QEMU: downtime-limit as the row says, max-bandwidth %d MiB/s (default 128 would throttle it)."
          % (QEMU_BW >> 20))
    print("migrations %.0f s, snapshots %.0f s" % (t_mig, time.monotonic() - t0))


if __name__ == "__main__":
    try:
        main()
    finally:
        stop_all()
        shutil.rmtree(TMP, ignore_errors=True)
