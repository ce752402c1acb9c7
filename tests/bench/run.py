#!/usr/bin/env python3
"""The benchmark driver (Python stdlib): runs every scenario against the feeder, prints one table and
writes the numbers as JSON. Use tests/bench/run.sh, which builds what this needs first.

    run.py --bridge BIN --tools DIR [--quick] [--json OUT]

Each scenario starts its own feeder, its own hdb-bridge (or reference peer) and consumer, and stops
them by PID. Throughput: the feeder sends N records per table as fast as the bridge reads; records/s is
N over the consumer's time from its first byte to its last line. CPU seconds per million records come
from /proc/PID/stat of the bridge (or Node) between "go" and the last line; peak RSS is its VmHWM.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def status_mib(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


class Proc:
    """A child process whose stdout lines are collected by a thread; stop() ends it by its PID."""

    def __init__(self, argv: list[str], *, stdin: bool = False, stdout=subprocess.PIPE, env=None, stderr=None):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL, stdout=stdout,
                                  stderr=stderr, text=True, env=env)
        self.lines: queue.Queue[str] = queue.Queue()
        if stdout is subprocess.PIPE:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.p.stdout:
            self.lines.put(line.strip())
        self.lines.put("")  # EOF

    def expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            if line.startswith(prefix):
                return line
            if line == "" and self.p.poll() is not None:
                raise RuntimeError(f"{self.p.args[0]} exited ({self.p.returncode}) before '{prefix}'")

    def send(self, text: str) -> None:
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()

    def stop(self) -> None:
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
            try:
                self.p.wait(5)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait(5)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.bridge = args.bridge
        self.tools = Path(args.tools)
        self.tmp = Path(tempfile.mkdtemp(prefix="hdb-bench-"))
        self.procs: list[Proc] = []
        self.node_env = dict(os.environ, NODE_PATH=str(ROOT / ".deps/bench-node/node_modules"))

    def start(self, argv: list[str], **kw) -> Proc:
        p = Proc(argv, **kw)
        self.procs.append(p)
        return p

    def stop_all(self) -> None:
        for p in reversed(self.procs):
            p.stop()
        self.procs.clear()

    def cleanup(self) -> None:
        self.stop_all()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # --- the pieces -------------------------------------------------------------------------------
    def tls_files(self) -> tuple[Path, Path]:
        """A self-signed certificate for 127.0.0.1 (cert.pem) and the feeder's cert+key (feeder.pem)."""
        cert, key, both = self.tmp / "cert.pem", self.tmp / "key.pem", self.tmp / "feeder.pem"
        if not both.exists():
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext",
                            "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                           check=True, capture_output=True)
            both.write_text(cert.read_text() + key.read_text())
        return cert, both

    def feeder(self, records: int, mix: str = "small", rate: float = 0, unix: str | None = None,
               tls: bool = False, hdb3: bool = False) -> tuple[Proc, int]:
        argv = [str(self.tools / "bench-feeder"), "--records", str(records), "--mix", mix, "--rate", str(rate)]
        if hdb3:
            argv += ["--protocol", "hdb3"]
        if unix:
            argv += ["--unix", unix]
        if tls:
            argv += ["--tls", str(self.tls_files()[1])]
        f = self.start(argv, stdin=True)
        first = f.expect("", 10)
        return f, int(first.split()[1]) if first.startswith("port") else 0

    def bridge_config(self, run: Path, port: int, tables: list[str], sink: str, queue_bytes: str,
                      tls: bool, on_overflow: str = "disconnect", hdb3: bool = False) -> Path:
        lines = ["log: {level: warn}", f"state_dir: {run}/state", "servers:", "  feed:",
                 f"    protocol: {'harperdb3' if hdb3 else 'harperdb4'}",
                 f"    url: {'wss' if tls else 'ws'}://127.0.0.1:{port}",
                 "    username: bench", "    password: bench", "    liveness_timeout: 1h"]
        if tls:
            lines.append(f"    tls: {{ca_file: {self.tls_files()[0]}}}")
        lines.append("tables:")
        lines += [f"  - {{server: feed, database: dev, table: {t}}}" for t in tables]
        lines.append("sinks:")
        for t in tables:
            if sink == "unix":
                lines.append(f"  - {{name: {t}, type: unix, path: {run}/{t}.sock, tables: [dev.{t}], "
                             f"queue_bytes: {queue_bytes}, on_overflow: {on_overflow}}}")
            elif sink == "fifo":
                lines.append(f"  - {{name: {t}, type: fifo, path: {run}/{t}.fifo, tables: [dev.{t}], "
                             f"queue_bytes: {queue_bytes}}}")
        if sink == "stdout":
            lines.append(f"  - {{name: out, type: stdout, queue_bytes: {queue_bytes}}}")
        cfg = run / "hdb-bridge.yaml"
        cfg.write_text("\n".join(lines) + "\n")
        return cfg

    def start_peer(self, peer: str, run: Path, port: int, tables: list[str], sink: str,
                   queue_bytes: str = "16MiB", tls: bool = False, on_overflow: str = "disconnect",
                   hdb3: bool = False) -> Proc:
        """Starts hdb-bridge or the Node reference peer (the caller waits for the feeder to see it connect)."""
        if peer == "bridge":
            cfg = self.bridge_config(run, port, tables, sink, queue_bytes, tls, on_overflow, hdb3)
            log = open(run / "bridge.log", "w")
            out = open(os.devnull, "w") if sink == "stdout" else subprocess.DEVNULL
            p = self.start([self.bridge, "--config", str(cfg)], stdout=out, stderr=log)
        else:
            assert len(tables) == 1 and sink == "unix"
            p = self.start(["node", str(ROOT / "tests/bench/ref_peer.js"),
                            f"ws://127.0.0.1:{port}/dev/{tables[0]}/", str(run / f"{tables[0]}.sock")],
                           env=self.node_env)
            p.expect("listening", 20)
        return p

    def consumer(self, paths: list[str], expect: int, connections: int = 1, latency: bool = False,
                 fifo: str | None = None) -> Proc:
        argv = [str(self.tools / "bench-consumer"), "--expect", str(expect), "--connections", str(connections),
                "--latency", "1" if latency else "0"]
        for p in paths:
            argv += ["--path", p]
        if fifo:
            argv += ["--fifo", fifo]
        c = self.start(argv)
        c.expect("ready", 20)
        return c

    # --- scenarios --------------------------------------------------------------------------------
    def ceiling(self, mix: str, records: int, tls: bool = False) -> dict:
        """libwebsockets 4.1 receiving and discarding: the ceiling of any lws-based bridge."""
        try:
            f, port = self.feeder(records, mix, tls=tls)
            r = self.start([str(self.tools / "bench-lws-recv"), "--port", str(port), "--expect", str(records),
                            "--tls", "1" if tls else "0"])
            r.expect("connected", 10)
            f.expect("conn", 10)
            f.send("go")
            res = json.loads(r.expect("{", 300))
            done = f.expect("done", 60).split()
            rate = records / res["seconds"]
            # The feeder's sending thread: CPU busy share of its wall time (< 100%: it was not the limit).
            return {"records": records, "rec_s": rate, "mb_s": res["bytes"] / res["seconds"] / 1e6,
                    "cpu_s_per_m": res["cpu_s"] / (records / 1e6), "ok": True,
                    "feeder_busy": float(done[4]) / float(done[2])}
        finally:
            self.stop_all()

    def throughput(self, peer: str, mix: str, records: int, tables: int = 1, consumers: int = 1,
                   sink: str = "unix", rate: float = 0, latency: bool = False, tls: bool = False,
                   hdb3: bool = False) -> dict:
        run = Path(tempfile.mkdtemp(dir=self.tmp))
        names = [f"t{i}" for i in range(tables)]
        try:
            f, port = self.feeder(records, mix, rate, tls=tls or hdb3, hdb3=hdb3)
            p = self.start_peer(peer, run, port, names, sink, tls=tls or hdb3, hdb3=hdb3)
            for _ in names:
                f.expect("conn", 20)
            c = None
            if sink == "unix":
                for t in names:  # the bridge makes its sockets before it connects; wait anyway
                    deadline = time.monotonic() + 10
                    while not (run / f"{t}.sock").exists() and time.monotonic() < deadline:
                        time.sleep(0.02)
                c = self.consumer([str(run / f"{t}.sock") for t in names], records, consumers, latency)
            elif sink == "fifo":
                c = self.consumer([], records, fifo=str(run / "t0.fifo"))
            time.sleep(0.2)  # let the peer register its consumers
            cpu0 = cpu_seconds(p.p.pid)
            f.send("go")
            if c:
                res = json.loads(c.expect("{", 600))
            else:  # stdout: the feeder's own time to push N records through the bridge
                done = f.expect("done", 600).split()
                time.sleep(0.3)
                # No consumer to count line bytes: MB/s is the feed's JSON bytes here.
                res = {"connections": 1, "lines": records, "bytes": records * int(done[3]),
                       "seconds": float(done[2]), "missing": 0, "out_of_order": 0}
            cpu = cpu_seconds(p.p.pid) - cpu0
            hwm = status_mib(p.p.pid, "VmHWM")
            total = records * tables
            res.update({
                "records": total, "rec_s": total / res["seconds"] if res["seconds"] else 0.0,
                "mb_s": res["bytes"] / res["connections"] * tables / res["seconds"] / 1e6 if res["seconds"] else 0.0,
                "lines_s": res["lines"] / res["seconds"] if res["seconds"] else 0.0,
                "cpu_s_per_m": cpu / (total / 1e6), "peak_rss_mib": hwm,
                "ok": res["missing"] == 0 and res["out_of_order"] == 0,
            })
            return res
        finally:
            self.stop_all()

    def direct_latency(self, records: int, rate: float) -> dict:
        try:
            path = str(self.tmp / "direct.sock")
            f, _ = self.feeder(records, "small", rate, unix=path)
            c = self.consumer([path], records, latency=True)
            f.expect("conn", 10)
            f.send("go")
            res = json.loads(c.expect("{", 300))
            res["ok"] = res["missing"] == 0 and res["out_of_order"] == 0
            return res
        finally:
            self.stop_all()

    def idle_rss(self, peer: str, tables: int) -> dict:
        run = Path(tempfile.mkdtemp(dir=self.tmp))
        try:
            f, port = self.feeder(1)
            names = [f"t{i}" for i in range(tables)]
            p = self.start_peer(peer, run, port, names, "unix")
            for _ in names:
                f.expect("conn", 20)
            time.sleep(2)
            # RSS counts the shared libraries' pages too; Anonymous is the process's own memory.
            rollup = Path(f"/proc/{p.p.pid}/smaps_rollup").read_text().splitlines()
            kib = {l.split(":")[0]: int(l.split()[1]) for l in rollup[1:] if l.strip()}
            return {"rss_mib": status_mib(p.p.pid, "VmRSS"), "pss_mib": kib["Pss"] / 1024,
                    "anon_mib": kib["Anonymous"] / 1024}
        finally:
            self.stop_all()


    def stalled_rss(self, records: int, consumers: int) -> dict:
        """Peak RSS while `consumers` connected consumers never read: bounded by queue_bytes (4MiB, drop_oldest)."""
        run = Path(tempfile.mkdtemp(dir=self.tmp))
        stalled: list[socket.socket] = []
        try:
            f, port = self.feeder(records)
            p = self.start_peer("bridge", run, port, ["t0"], "unix", queue_bytes="4MiB", on_overflow="drop_oldest")
            f.expect("conn", 20)
            for _ in range(consumers):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(str(run / "t0.sock"))
                stalled.append(s)
            time.sleep(0.2)
            f.send("go")
            f.expect("done", 600)
            time.sleep(0.5)
            return {"records": records, "consumers": consumers, "queue_bytes_mib": 4,
                    "peak_rss_mib": status_mib(p.p.pid, "VmHWM"), "rss_mib": status_mib(p.p.pid, "VmRSS")}
        finally:
            for s in stalled:
                s.close()
            self.stop_all()


def fmt_row(name: str, peer: str, r: dict) -> str:
    check = "ok" if r.get("ok") else f"MISSING {r.get('missing')} / out of order {r.get('out_of_order')}"
    return (f"{name:<34} {peer:<9} {r['records']:>9} {r['rec_s']:>11,.0f} {r['mb_s']:>8.1f} "
            f"{r.get('lines_s', r['rec_s']):>12,.0f} {r.get('cpu_s_per_m', 0):>8.2f} "
            f"{r.get('peak_rss_mib', 0):>8.1f} {r.get('consumer_cpu_s', 0):>8.2f}  {check}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bridge", required=True)
    ap.add_argument("--tools", required=True)
    ap.add_argument("--quick", action="store_true", help="a tenth of the records: checks the suite, not the numbers")
    ap.add_argument("--json", help="also write every number here")
    args = ap.parse_args()
    scale = 10 if args.quick else 1
    n = 1_000_000 // scale

    b = Bench(args)
    results: dict[str, dict] = {}
    print(f"{'scenario':<34} {'peer':<9} {'records':>9} {'records/s':>11} {'MB/s':>8} {'lines/s':>12} "
          f"{'cpu s/M':>8} {'peakMiB':>8} {'cons cpu':>8}  check")

    def record(key: str, name: str, peer: str, r: dict) -> None:
        results[key] = r
        print(fmt_row(name, peer, r), flush=True)

    try:
        for mix, count in (("small", n), ("big", n // 10), ("txn3", n)):
            record(f"ceiling_{mix}", f"ceiling lws receive-only ({mix})", "lws", b.ceiling(mix, count))
            print(f"{'':<34} (feeder busy {results[f'ceiling_{mix}']['feeder_busy']:.0%} of its time)")
        for mix, count in (("small", n), ("big", n // 10), ("txn3", n)):
            record(f"s1_{mix}", f"1 table, 1 unix consumer ({mix})", "bridge", b.throughput("bridge", mix, count))
        record("s1_ref", "1 table, 1 unix consumer (small)", "node-ws", b.throughput("ref", "small", n // 2))
        # The reference is 5-10x slower: it gets fewer records so that each run takes seconds, not minutes.
        for consumers, count, ref_count in ((10, n // 2, n // 4), (100, n // 10, n // 50)):
            record(f"s2_{consumers}_bridge", f"1 table, {consumers} unix consumers", "bridge",
                   b.throughput("bridge", "small", count, consumers=consumers))
            record(f"s2_{consumers}_ref", f"1 table, {consumers} unix consumers", "node-ws",
                   b.throughput("ref", "small", ref_count, consumers=consumers))
        record("s3", "10 tables, 1 consumer each", "bridge", b.throughput("bridge", "small", n // 10, tables=10))
        record("s4_stdout", "stdout to /dev/null", "bridge", b.throughput("bridge", "small", n, sink="stdout"))
        record("s4_fifo", "FIFO, one reader", "bridge", b.throughput("bridge", "small", n, sink="fifo"))
        record("ceiling_wss", "ceiling lws receive-only (wss)", "lws", b.ceiling("small", n, tls=True))
        record("s5_wss", "wss, 1 table, 1 unix consumer", "bridge", b.throughput("bridge", "small", n, tls=True))
        record("s6_hdb3", "HarperDB 3 (wss), 1 table, 1 consumer", "bridge",
               b.throughput("bridge", "small", n, hdb3=True))

        lat_n = 50_000 // scale
        results["latency_bridge"] = b.throughput("bridge", "small", lat_n, rate=10_000, latency=True)
        results["latency_direct"] = b.direct_latency(lat_n, 10_000)
        results["idle_rss_bridge_10_tables"] = b.idle_rss("bridge", 10)
        results["idle_rss_ref_1_table"] = b.idle_rss("ref", 1)
        results["stalled_rss"] = b.stalled_rss(n // 2, 10)
    finally:
        b.cleanup()

    print()
    for path in ("bridge", "direct"):
        r = results[f"latency_{path}"]
        print(f"latency at 10k records/s, {path:<7} {r['lines']:>7} lines: p50 {r['p50_us']:.1f} us  "
              f"p99 {r['p99_us']:.1f} us  p99.9 {r['p999_us']:.1f} us  max {r['max_us']:.1f} us  "
              f"{'ok' if r['ok'] else 'MISSING'}")
    lb, ld = results["latency_bridge"], results["latency_direct"]
    print(f"latency added by the bridge: p50 +{lb['p50_us'] - ld['p50_us']:.1f} us, "
          f"p99 x{lb['p99_us'] / ld['p99_us']:.2f}")
    for key, what in (("idle_rss_bridge_10_tables", "hdb-bridge, 10 tables"), ("idle_rss_ref_1_table",
                                                                                "node-ws reference, 1 table")):
        r = results[key]
        print(f"idle {what}: RSS {r['rss_mib']:.1f} MiB (PSS {r['pss_mib']:.1f}, anonymous {r['anon_mib']:.1f})")
    st = results["stalled_rss"]
    print(f"{st['consumers']} stalled consumers, {st['records']} records, queue_bytes 4MiB drop_oldest: "
          f"peak RSS {st['peak_rss_mib']:.1f} MiB")
    ceil = results["ceiling_small"]["rec_s"]
    print(f"1 consumer: bridge {results['s1_small']['rec_s'] / ceil:.0%} of the lws ceiling, "
          f"{results['s1_small']['rec_s'] / results['s1_ref']['rec_s']:.1f}x the reference")
    for c in (10, 100):
        print(f"{c} consumers: bridge {results[f's2_{c}_bridge']['rec_s'] / results[f's2_{c}_ref']['rec_s']:.1f}x "
              f"the reference, aggregate {results[f's2_{c}_bridge']['lines_s']:,.0f} lines/s")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    ok = all(r.get("ok", True) for r in results.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
