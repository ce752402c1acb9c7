#!/usr/bin/env python3
"""Local sinks against a real HarperDB 4.7 (issue 4): overflow policies and gap lines, bounded memory, replay,
FIFO readers coming and going, socket files, permissions, stdout closed early, formats, `hdb-bridge tail`, and
sinks that keep working while HarperDB is down.

One HarperDB per module; each case starts its own hdb-bridge. Every process is tracked by PID and cleaned up;
a per-case watchdog bounds the run. Needs HDB_BRIDGE_BIN (ctest sets it).
"""

from __future__ import annotations

import faulthandler
import json
import os
import random
import re
import select
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import hdb  # noqa: E402

BIN = hdb.bridge_binary()
CASE_TIMEOUT = 150 * hdb.TIME_SCALE  # seconds; a watchdog ends the run (and, by pdeathsig, every server) past it
NOBODY = 65534
TABLES = ["flow", "gaps", "mem", "replay", "fifo", "kill", "files", "perm", "out", "fmt", "tail", "down"]
HDB: hdb.HarperDB4


def setUpModule() -> None:
    global HDB
    HDB = hdb.start_module_harperdb("dev", TABLES)


def tearDownModule() -> None:
    HDB.stop()


def log(msg: str) -> None:
    print(f"\n[sinks] {msg}", file=sys.stderr, flush=True)


# --- helpers ------------------------------------------------------------------------------------------------------

def insert_range(table: str, start: int, count: int, pad: str = "", batch: int = 100) -> None:
    """Inserts ids start..start+count-1 in order, `batch` per operation."""
    for first in range(start, start + count, batch):
        HDB.insert("dev", table, [{"id": i, "pad": pad} for i in range(first, min(first + batch, start + count))])


class Writer(threading.Thread):
    """Inserts consecutive ids into a table in small batches until stopped (or `limit` seconds pass)."""

    def __init__(self, table: str, batch: int = 20, pause: float = 0.01, start_id: int = 0, limit: float = 60,
                 pad: str = "") -> None:
        super().__init__(name=f"writer-{table}", daemon=True)
        self.table, self.batch, self.pause, self.next_id, self.limit, self.pad = table, batch, pause, start_id, limit, pad
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        deadline = time.monotonic() + self.limit
        try:
            while not self.stopping.is_set() and time.monotonic() < deadline:
                ids = range(self.next_id, self.next_id + self.batch)
                HDB.insert("dev", self.table, [{"id": i, "pad": self.pad} for i in ids])
                self.next_id += self.batch
                time.sleep(self.pause)
        except BaseException as e:  # noqa: BLE001 - reported by stop()
            self.error = e

    def stop(self) -> int:
        """Stops and returns the number of ids written (they are 0..n-1 from start_id)."""
        self.stopping.set()
        self.join(30)
        if self.error:
            raise self.error
        return self.next_id


def vmrss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def is_sanitized(pid: int) -> bool:
    try:
        return "libasan" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def gap_runs(lines: list[dict[str, Any]]) -> list[tuple[int, int, int]]:
    """(id before, id after, dropped told) for every run of gap lines between records (-1 / None at the ends)."""
    runs, before, told = [], -1, None
    for e in lines:
        if e.get("op") == "gap":
            told = (told or 0) + e["dropped"]
        else:
            if told is not None:
                runs.append((before, e["id"], told))
                told = None
            before = e["id"]
    if told is not None:
        runs.append((before, None, told))
    return runs


def stats_of(log_text: str, sink: str) -> dict[str, int]:
    """The counters of the sink's exit log line."""
    m = re.search(rf"sink '{sink}': (\d+) lines \((\d+) bytes\) taken, (\d+) bytes written; dropped: (\d+) disconnect, "
                  rf"(\d+) drop_oldest, (\d+) drop_newest, (\d+) reader_gone; (\d+) gap lines; consumers: (\d+) "
                  rf"accepted, (\d+) cut off, (\d+) rejected", log_text)
    if not m:
        raise AssertionError(f"no counters for sink {sink} in the log:\n{log_text[-3000:]}")
    keys = ["lines", "bytes", "written", "disconnect", "drop_oldest", "drop_newest", "reader_gone", "gap_lines",
            "accepted", "cut", "rejected"]
    return dict(zip(keys, map(int, m.groups())))


def run_as_nobody(code: str, *args: str) -> subprocess.Popen[str]:
    """A Python snippet under uid/gid 65534 with no supplementary groups (a real other user for SO_PEERCRED)."""
    return subprocess.Popen(["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups",
                             "--pdeathsig", "KILL", "--", sys.executable, "-c", code, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# Connects to argv[1]; prints "connected" (stderr) or the connect error and exits 3; then echoes what it reads
# (until EOF or argv[2] seconds).
NOBODY_CONSUMER = r"""
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print("connect failed:", e.strerror, file=sys.stderr, flush=True)
    sys.exit(3)
print("connected", file=sys.stderr, flush=True)
s.settimeout(float(sys.argv[2]))
data = b""
try:
    while chunk := s.recv(65536):
        data += chunk
except socket.timeout:
    pass
sys.stdout.write(data.decode())
print("eof" if not data or not chunk else "timeout", file=sys.stderr, flush=True)
"""


class SinkCase(unittest.TestCase):
    """Per-case watchdog, temp dir and bridge helpers."""

    def setUp(self) -> None:
        faulthandler.dump_traceback_later(CASE_TIMEOUT, exit=True)
        self.addCleanup(faulthandler.cancel_dump_traceback_later)
        tmp = tempfile.TemporaryDirectory(prefix="hdb-sinks-")
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)

    def start_bridge(self, table: str, sinks: list[dict[str, Any]], ready: bool = True,
                     env: dict[str, str] | None = None) -> hdb.Bridge:
        bridge = hdb.Bridge(BIN, hdb.bridge_config(HDB, [{"database": "dev", "table": table}], sinks), env=env)
        self.addCleanup(bridge.cleanup)
        if ready:
            bridge.wait_ready(15)
        return bridge

    def consumer(self, path: Path) -> hdb.UnixConsumer:
        c = hdb.UnixConsumer(path)
        self.addCleanup(c.close)
        return c

    def stalled(self, path: Path) -> hdb.StalledConsumer:
        c = hdb.StalledConsumer(path)
        self.addCleanup(c.close)
        return c

    def stop(self, bridge: hdb.Bridge) -> str:
        self.assertEqual(bridge.stop(signal.SIGTERM, 5), 0, bridge.log()[-3000:])
        return bridge.log()

    def assertGapLine(self, e: dict[str, Any], sink: str, reasons: tuple[str, ...] = ("queue_full",)) -> None:
        self.assertEqual(e.get("v"), 1, e)
        self.assertEqual(e.get("op"), "gap", e)
        self.assertEqual(e.get("sink"), sink, e)
        self.assertIn(e.get("reason"), reasons, e)
        self.assertIsInstance(e.get("dropped"), int, e)
        self.assertGreater(e["dropped"], 0, e)


def read_until(sock: socket.socket, done: Callable[[list[dict[str, Any]]], bool], timeout: float
               ) -> list[dict[str, Any]]:
    """Reads a stalled consumer's socket (now reading) until done(lines) or timeout; returns the parsed lines."""
    buf, lines = b"", []
    deadline = time.monotonic() + timeout
    sock.setblocking(False)
    while time.monotonic() < deadline:
        r, _, _ = select.select([sock], [], [], 0.2)
        if r:
            chunk = sock.recv(1 << 20)
            if not chunk:
                break
            buf += chunk
            *complete, buf = buf.split(b"\n")
            lines += [json.loads(c) for c in complete]
            if done(lines):
                return lines
    return lines


def accounted(total: int) -> Callable[[list[dict[str, Any]]], bool]:
    """True once every id 0..total-1 was received or told about by a gap line."""
    def check(lines: list[dict[str, Any]]) -> bool:
        return sum(1 if e.get("op") != "gap" else e["dropped"] for e in lines) >= total
    return check


# --- overflow policies --------------------------------------------------------------------------------------------

class OverflowPolicies(SinkCase):
    def test_each_policy_under_a_stalled_consumer_while_a_fast_one_gets_everything(self) -> None:
        paths = {name: self.tmp / f"{name}.sock" for name in ("disc", "old", "new")}
        policies = {"disc": "disconnect", "old": "drop_oldest", "new": "drop_newest"}
        bridge = self.start_bridge("flow", [
            {"name": name, "type": "unix", "path": str(paths[name]), "queue_bytes": "64KiB",
             "on_overflow": policies[name]} for name in paths])
        fast = {name: self.consumer(path) for name, path in paths.items()}
        stalled = {name: self.stalled(path) for name, path in paths.items()}
        time.sleep(0.3)  # let the loop accept all six
        total, pad = 4000, "x" * 300  # ~1.5 MB of lines: far past 64 KiB plus the kernel's socket buffer
        insert_range("flow", 0, total, pad)

        for name in paths:
            got = fast[name].wait_lines(lambda e: True, total, 60)
            self.assertEqual([e["id"] for e in got], list(range(total)), f"{name}: the fast consumer gets 100%")
            self.assertFalse(any(e.get("op") == "gap" for e in fast[name].envelopes()), f"{name}: no gap for it")

        hdb.wait_for(stalled["disc"].disconnected, 10, "the stalled consumer of 'disc' to be cut off")
        told: dict[str, int] = {}
        for name in ("old", "new"):
            self.assertFalse(stalled[name].disconnected(), f"{name}: drop policies keep the consumer")
            lines = read_until(stalled[name].sock, accounted(total), 30)
            records = [e for e in lines if e.get("op") != "gap"]
            gaps = [e for e in lines if e.get("op") == "gap"]
            dropped = told[name] = sum(g["dropped"] for g in gaps)
            log(f"{name}: stalled consumer got {len(records)} records and {len(gaps)} gap line(s) for {dropped}")
            self.assertTrue(gaps, f"{name}: a gap line was sent")
            for g in gaps:
                self.assertGapLine(g, name)
            self.assertEqual(len(records) + dropped, total, f"{name}: every record received or told about")
            ids = [e["id"] for e in records]
            self.assertEqual(ids, sorted(set(ids)), f"{name}: in order, no duplicates")
            # The gap lines stand exactly where the hole is, with its exact size.
            for before, after, size in gap_runs(lines):
                self.assertEqual((total if after is None else after) - before - 1, size,
                                 f"{name}: gap of {size} between ids {before} and {after}")
        self.assertTrue(bridge.alive())

        log_text = self.stop(bridge)
        disc, old, new = (stats_of(log_text, n) for n in ("disc", "old", "new"))
        self.assertEqual(disc["lines"], total)
        self.assertGreater(disc["disconnect"], 0)
        self.assertEqual(disc["cut"], 1)
        self.assertEqual(disc["accepted"], 2)
        # The counters agree with what the consumers were told.
        self.assertEqual(old["drop_oldest"], told["old"])
        self.assertEqual(new["drop_newest"], told["new"])
        self.assertEqual(old["drop_newest"] + old["disconnect"] + new["drop_oldest"] + new["disconnect"], 0)
        self.assertEqual(old["lines"], total)
        self.assertEqual((old["cut"], new["cut"]), (0, 0))

    def test_gap_counts_under_a_consumer_that_reads_in_bursts(self) -> None:
        """A consumer that alternately stalls and reads: many holes, each told with its exact size, in place."""
        paths = {name: self.tmp / f"{name}.sock" for name in ("old", "new")}
        policies = {"old": "drop_oldest", "new": "drop_newest"}
        bridge = self.start_bridge("gaps", [
            {"name": name, "type": "unix", "path": str(paths[name]), "queue_bytes": "16KiB",
             "on_overflow": policies[name]} for name in paths])
        slow = {name: self.stalled(path) for name, path in paths.items()}
        time.sleep(0.3)
        writer = Writer("gaps", batch=50, pause=0.005, pad="y" * 200)
        writer.start()
        got: dict[str, list[dict[str, Any]]] = {name: [] for name in paths}
        bufs = {name: b"" for name in paths}
        deadline = time.monotonic() + 6
        while time.monotonic() < deadline:
            time.sleep(random.uniform(0.1, 0.4))  # stalled...
            for name, c in slow.items():  # ...then one burst of reading
                c.sock.setblocking(False)
                try:
                    bufs[name] += c.sock.recv(256 * 1024)
                except BlockingIOError:
                    pass
        total = writer.stop()
        for name, c in slow.items():
            *complete, bufs[name] = bufs[name].split(b"\n")
            got[name] = [json.loads(x) for x in complete]
            got[name] += read_until(c.sock, lambda lines, n=name: accounted(total)(got[n] + lines), 30)
        for name, lines in got.items():
            gaps = [e for e in lines if e.get("op") == "gap"]
            for g in gaps:
                self.assertGapLine(g, name)
            runs = gap_runs(lines)
            log(f"{name}: {total} records, {len(runs)} holes, {sum(r[2] for r in runs)} lines dropped in all")
            self.assertGreaterEqual(len(runs), 2, f"{name}: several separate holes")
            for before, after, told in runs:
                self.assertEqual((total if after is None else after) - before - 1, told,
                                 f"{name}: gap of {told} between ids {before} and {after}")
            self.assertEqual(sum(1 if e.get("op") != "gap" else e["dropped"] for e in lines), total)
        self.stop(bridge)



# --- memory --------------------------------------------------------------------------------------------------------

class BoundedMemory(SinkCase):
    @unittest.skipIf(hdb.VALGRIND, "under valgrind VmRSS is mostly valgrind's (shadow memory, its own allocator); "
                     "its leak check stands in")
    def test_rss_stays_within_the_caps_under_stalled_consumers(self) -> None:
        cap = 1 << 20
        paths = {name: self.tmp / f"{name}.sock" for name in ("old", "new")}
        policies = {"old": "drop_oldest", "new": "drop_newest"}
        # Under ASan, freed memory waits in a quarantine (256 MiB by default) before reuse: keep it small so RSS
        # shows what the bridge holds, not what ASan holds back.
        asan = (os.environ.get("ASAN_OPTIONS", "") + ":quarantine_size_mb=4").lstrip(":")
        bridge = self.start_bridge("mem", [
            {"name": name, "type": "unix", "path": str(paths[name]), "queue_bytes": "1MiB",
             "on_overflow": policies[name]} for name in paths], env={"ASAN_OPTIONS": asan})
        fast = {name: self.consumer(path) for name, path in paths.items()}
        stalled = {name: self.stalled(path) for name, path in paths.items()}
        time.sleep(0.3)
        insert_range("mem", 0, 300, "w" * 4000)  # warm up: allocator arenas, lws buffers, stalled queues fill
        for c in fast.values():
            c.wait_lines(lambda e: True, 300, 30)
        time.sleep(0.5)
        baseline = vmrss_kib(bridge.pid)

        peak = [baseline]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                try:
                    peak[0] = max(peak[0], vmrss_kib(bridge.pid))
                except (OSError, RuntimeError):
                    return
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        total, pad = 10000, "w" * 4000  # ~40 MB of lines through each sink
        t0 = time.monotonic()
        insert_range("mem", 300, total, pad)
        # The "fast" consumers are Python threads in this busy process: on a loaded machine one can fall a whole
        # queue_bytes behind and be told of a hole like any other consumer. What matters here is memory, so wait
        # until every record was received or told about.
        for name, c in fast.items():
            hdb.wait_for(lambda c=c: accounted(300 + total)(c.envelopes()), 90,
                         f"{name}: every record received or told about by the fast consumer")
        elapsed = time.monotonic() - t0
        sampling.set()
        sampler.join(5)

        pushed = sum(len(line) + 1 for line in fast["old"].lines[300:])
        for name, c in fast.items():
            holes = [e["dropped"] for e in c.envelopes() if e.get("op") == "gap"]
            if holes:
                log(f"{name}: the fast consumer fell behind and was told of {sum(holes)} dropped lines")
        growth = peak[0] - baseline
        sanitized = is_sanitized(bridge.pid)
        bound = (16 if sanitized else 8) << 10  # KiB: 2 x queue_bytes plus allocator (and ASan) slack
        log(f"pushed {pushed / 1e6:.1f} MB through each of 2 sinks in {elapsed:.1f} s with a stalled consumer "
            f"each (queue_bytes {cap >> 10} KiB); VmRSS {baseline} KiB before, peak {peak[0]} KiB "
            f"(+{growth} KiB, bound {bound} KiB{', ASan' if sanitized else ''})")
        if not sanitized:
            self.assertGreater(pushed, 4 * bound * 1024, "enough data to tell bounded queues from unbounded ones")
        self.assertLess(growth, bound, "memory stays bounded by the caps")
        for name, c in stalled.items():
            self.assertFalse(c.disconnected(), name)
        log_text = self.stop(bridge)
        self.assertGreater(stats_of(log_text, "old")["drop_oldest"], 0)
        self.assertGreater(stats_of(log_text, "new")["drop_newest"], 0)


# --- replay --------------------------------------------------------------------------------------------------------

class Replay(SinkCase):
    def test_replay_seam_has_no_duplicate_and_no_hole_under_a_live_stream(self) -> None:
        path = self.tmp / "replay.sock"
        bridge = self.start_bridge("replay", [{"name": "r", "type": "unix", "path": str(path), "replay": 100}])
        first = self.consumer(path)  # before any line: nothing to replay
        time.sleep(0.2)
        writer = Writer("replay", batch=10, pause=0.005)
        writer.start()
        late = []
        for _ in range(6):
            time.sleep(random.uniform(0.3, 0.7))
            late.append(self.consumer(path))
        time.sleep(0.3)
        total = writer.stop()
        for c in [first, *late]:
            c.wait_lines(lambda e: e.get("id") == total - 1, 1, 20)
            ids = [e["id"] for e in c.envelopes()]
            self.assertEqual(ids, list(range(ids[0], total)), "consecutive from the first line to the last")
        self.assertEqual(first.envelopes()[0]["id"], 0)
        for c in late:
            self.assertGreater(c.envelopes()[0]["id"], 0, "joined mid-stream")
        replayed = [int(n) for n in re.findall(r"replaying (\d+) line", bridge.log())]
        log(f"{total} records; late consumers replayed {replayed}")
        self.assertEqual(replayed, [100] * len(late), "each late consumer first got the last 100 lines")
        self.stop(bridge)


# --- FIFO ----------------------------------------------------------------------------------------------------------

def read_fifo(path: Path, nbytes: int, timeout: float) -> bytes:
    """Opens the FIFO as a reader, reads up to nbytes (stopping when nothing comes for `timeout`), closes it: a
    reader that goes away wherever it happens to be, mid-line or not."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        data = b""
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        deadline = time.monotonic() + timeout
        while len(data) < nbytes and time.monotonic() < deadline:
            if not poller.poll(100):
                continue
            chunk = os.read(fd, nbytes - len(data))
            if chunk:
                data += chunk
                deadline = time.monotonic() + timeout
            else:
                time.sleep(0.01)  # no writer (yet, or any more)
        return data
    finally:
        os.close(fd)


def complete_lines(data: bytes) -> list[str]:
    """The lines a reader got whole; a trailing piece without its newline was cut off when the reader left."""
    return [line.decode() for line in data.split(b"\n")[:-1]]


class FifoReaders(SinkCase):
    def test_readers_churning_100_times_mid_stream_never_see_a_torn_line(self) -> None:
        path = self.tmp / "fifo" / "feed.fifo"
        bridge = self.start_bridge("fifo", [{"name": "f", "type": "fifo", "path": str(path), "queue_bytes": "8MiB"}])
        self.assertTrue(stat.S_ISFIFO(path.stat().st_mode))
        writer = Writer("fifo", batch=10, pause=0.01)
        writer.start()
        chunks = []
        for _ in range(100):
            chunks.append(read_fifo(path, random.randint(1, 6000), 10))
            # These readers stop mid-line on purpose; the next one must come after the bridge noticed (it does
            # within a loop turn: well under a millisecond idle, a few at a checkpoint write). docs/sinks.md.
            time.sleep(random.uniform(0.02, 0.05))
        total = writer.stop()
        # The last reader stays until every id is accounted for.
        final = b""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            final += read_fifo(path, 1 << 22, 1.5)
            parsed = []
            for c in chunks + [final]:
                for x in complete_lines(c):
                    try:
                        parsed.append(json.loads(x))
                    except ValueError:
                        pass  # reported below
            if accounted(total)(parsed):
                break
        chunks.append(final)

        lines = []
        for i, c in enumerate(chunks):
            for text in complete_lines(c):
                try:
                    lines.append(json.loads(text))
                except ValueError:
                    self.fail(f"reader {i} of {len(chunks)} got a torn line: {text[:120]!r}; it read "
                              f"{len(c)} bytes starting {c[:80]!r}; the one before ended {chunks[i - 1][-80:]!r}\n"
                              + bridge.log()[-3000:])
        records = [e for e in lines if e.get("op") != "gap"]
        gaps = [e for e in lines if e.get("op") == "gap"]
        for g in gaps:
            self.assertGapLine(g, "f", ("reader_gone",))
        ids = [e["id"] for e in records]
        self.assertEqual(ids, sorted(set(ids)), "no duplicate, in order, across readers")
        dropped = sum(g["dropped"] for g in gaps)
        self.assertEqual(len(records) + dropped, total, "every record read whole by a reader or told about")
        for before, after, told in gap_runs(lines):
            self.assertEqual((total if after is None else after) - before - 1, told)
        log_text = self.stop(bridge)
        st = stats_of(log_text, "f")
        log(f"{total} records, 101 readers: {len(records)} lines read whole, {dropped} lost with departing readers "
            f"in {len(gaps)} gap lines; counters {st}")
        self.assertEqual(st["accepted"], 101)
        self.assertEqual(st["reader_gone"], dropped)
        self.assertTrue(path.exists(), "the FIFO stays for the readers of the next run")

    def test_a_reader_killed_mid_line_leaves_no_torn_line_for_the_next(self) -> None:
        path = self.tmp / "kill.fifo"
        bridge = self.start_bridge("kill", [{"name": "k", "type": "fifo", "path": str(path)}])
        writer = Writer("kill", batch=10, pause=0.01, pad="z" * 500)
        writer.start()
        try:
            for i in range(10):
                cat = subprocess.Popen(["cat", str(path)], stdout=subprocess.PIPE)
                try:
                    assert cat.stdout is not None
                    self.assertTrue(select.select([cat.stdout], [], [], 10)[0], "cat got something")
                    cat.stdout.read1(100)  # type: ignore[attr-defined]
                finally:
                    cat.kill()
                    cat.wait(5)
                    if cat.stdout:
                        cat.stdout.close()
                data = read_fifo(path, 20000, 5)
                lines = complete_lines(data)
                self.assertTrue(lines, f"round {i}: the next reader got lines")
                for text in lines:
                    e = json.loads(text)  # a torn line would not parse
                    self.assertEqual(e.get("v"), 1)
        finally:
            writer.stop()
        self.assertIn("the next reader is told with a gap line", bridge.log())
        self.stop(bridge)


# --- socket files --------------------------------------------------------------------------------------------------

class SocketFiles(SinkCase):
    def test_stale_socket_file_is_replaced(self) -> None:
        path = self.tmp / "stale.sock"
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(path))
        s.close()  # the file stays, nothing listens: what a crashed process leaves
        bridge = self.start_bridge("files", [{"name": "s", "type": "unix", "path": str(path)}])
        self.assertIn("replaced a stale socket file", bridge.log())
        c = self.consumer(path)
        time.sleep(0.2)
        HDB.insert("dev", "files", [{"id": 1}])
        c.wait_lines(lambda e: e.get("id") == 1, 1, 10)
        self.stop(bridge)
        self.assertFalse(path.exists(), "the socket file is removed on exit")

    def test_live_socket_is_a_startup_error(self) -> None:
        path = self.tmp / "live.sock"
        other = socket.socket(socket.AF_UNIX)
        self.addCleanup(other.close)
        other.bind(str(path))
        other.listen()
        bridge = self.start_bridge("files", [{"name": "s", "type": "unix", "path": str(path)}], ready=False)
        self.assertEqual(bridge.proc.wait(10 * hdb.TIME_SCALE), 1)
        self.assertIn(f"sink 's': {path}: another process is listening on this socket", bridge.log())
        probe = socket.socket(socket.AF_UNIX)
        probe.connect(str(path))  # still the other process's socket
        probe.close()

    def test_other_kinds_of_file_are_never_replaced(self) -> None:
        for kind, name in (("unix", "x.sock"), ("fifo", "x.fifo")):
            path = self.tmp / name
            path.write_text("precious\n")
            bridge = self.start_bridge("files", [{"name": "s", "type": kind, "path": str(path)}], ready=False)
            self.assertEqual(bridge.proc.wait(10 * hdb.TIME_SCALE), 1)
            what = "socket" if kind == "unix" else "FIFO"
            self.assertIn(f"{path}: exists and is not a {what}; not replacing it", bridge.log())
            self.assertEqual(path.read_text(), "precious\n")

    def test_files_get_their_mode_and_directories_are_created(self) -> None:
        sock, fifo = self.tmp / "a" / "b" / "s.sock", self.tmp / "c" / "f.fifo"
        bridge = self.start_bridge("files", [{"name": "s", "type": "unix", "path": str(sock), "mode": "0640"},
                                             {"name": "f", "type": "fifo", "path": str(fifo), "mode": "0604"}])
        st = sock.stat()
        self.assertTrue(stat.S_ISSOCK(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o640)
        st = fifo.stat()
        self.assertTrue(stat.S_ISFIFO(st.st_mode))
        self.assertEqual(stat.S_IMODE(st.st_mode), 0o604)
        self.stop(bridge)
        self.assertFalse(sock.exists())


# --- permissions ---------------------------------------------------------------------------------------------------

class Permissions(SinkCase):
    def setUp(self) -> None:
        super().setUp()
        os.chmod(self.tmp, 0o755)  # others may reach the socket; its own mode decides

    def nobody(self, path: Path, seconds: float = 3) -> subprocess.Popen[str]:
        p = run_as_nobody(NOBODY_CONSUMER, str(path), str(seconds))
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(5)))
        return p

    def first_stderr_line(self, p: subprocess.Popen[str], timeout: float = 10) -> str:
        assert p.stderr is not None
        self.assertTrue(select.select([p.stderr], [], [], timeout)[0], "the consumer said something")
        return p.stderr.readline().strip()

    def test_mode_keeps_other_users_out(self) -> None:
        path = self.tmp / "private.sock"
        self.start_bridge("perm", [{"name": "p", "type": "unix", "path": str(path), "mode": "0600"}])
        p = self.nobody(path)
        self.assertEqual(p.wait(10 * hdb.TIME_SCALE), 3)
        self.assertIn("Permission denied", self.first_stderr_line(p))

    def test_peer_not_in_allow_uids_is_closed_at_once(self) -> None:
        path = self.tmp / "uids.sock"
        bridge = self.start_bridge("perm", [{"name": "p", "type": "unix", "path": str(path), "mode": "0666",
                                             "allow_uids": ["root"]}])
        root = self.consumer(path)
        p = self.nobody(path, seconds=5)
        self.assertEqual(self.first_stderr_line(p), "connected")
        t0 = time.monotonic()
        p.wait(10 * hdb.TIME_SCALE)
        self.assertLess(time.monotonic() - t0, 2, "closed at once, not after the read timeout")
        assert p.stdout is not None and p.stderr is not None
        self.assertEqual((p.stdout.read(), p.stderr.read().strip()), ("", "eof"))
        HDB.insert("dev", "perm", [{"id": 10}])
        root.wait_lines(lambda e: e.get("id") == 10, 1, 10)
        self.assertRegex(bridge.log(), rf"sink 'p': refused a consumer \(pid {p.pid}, uid {NOBODY}, gid {NOBODY}\): "
                                       r"not in allow_uids/allow_gids")
        self.assertEqual(stats_of(self.stop(bridge), "p")["rejected"], 1)

    def test_allow_gids_lets_a_group_in_and_keeps_others_out(self) -> None:
        path = self.tmp / "gids.sock"
        bridge = self.start_bridge("perm", [{"name": "p", "type": "unix", "path": str(path), "mode": "0666",
                                             "allow_gids": [NOBODY]}])
        p = self.nobody(path, seconds=3)
        self.assertEqual(self.first_stderr_line(p), "connected")
        root = hdb.StalledConsumer(path)  # uid 0, gid 0: not listed
        self.addCleanup(root.close)
        time.sleep(0.3)
        HDB.insert("dev", "perm", [{"id": 11}])
        out, _ = p.communicate(timeout=10 * hdb.TIME_SCALE)
        self.assertEqual([json.loads(x)["id"] for x in out.splitlines()], [11])
        hdb.wait_for(root.disconnected, 5, "root (not in allow_gids) to be closed")
        self.assertEqual(root.drain(1), b"")
        self.assertEqual(stats_of(self.stop(bridge), "p")["rejected"], 1)

    def test_owner_and_group_are_set(self) -> None:
        path = self.tmp / "owned.sock"
        self.start_bridge("perm", [{"name": "p", "type": "unix", "path": str(path), "mode": "0600",
                                    "owner": NOBODY, "group": "nogroup"}])
        st = path.stat()
        self.assertEqual((st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)), (NOBODY, NOBODY, 0o600))
        p = self.nobody(path, seconds=3)
        self.assertEqual(self.first_stderr_line(p), "connected")
        time.sleep(0.2)
        HDB.insert("dev", "perm", [{"id": 12}])
        out, _ = p.communicate(timeout=10 * hdb.TIME_SCALE)
        self.assertEqual([json.loads(x)["id"] for x in out.splitlines()], [12])


# --- stdout --------------------------------------------------------------------------------------------------------

class StdoutClosedEarly(SinkCase):
    """`hdb-bridge ... | head -3`: the documented behaviour (docs/sinks.md)."""

    def spawn(self, sinks: list[dict[str, Any]], stdout: Any) -> tuple[subprocess.Popen[bytes], Path]:
        config = self.tmp / "bridge.yaml"
        config.write_text(hdb.bridge_config(HDB, [{"database": "dev", "table": "out"}], sinks))
        err_path = self.tmp / "stderr.log"
        # Checkpoints of this case only: the default state dir (/var/lib/hdb-bridge for root) would make the
        # next case resume after this one and replay its records.
        state = self.tmp / "state"
        state.mkdir(exist_ok=True)
        with open(err_path, "wb") as err:
            argv, vlog = hdb.bridge_command([BIN, "--config", str(config)], self.tmp)
            proc = subprocess.Popen(["setpriv", "--pdeathsig", "KILL", "--", *argv],
                                    stdin=subprocess.DEVNULL, stdout=stdout, stderr=err,
                                    env={**os.environ, "STATE_DIRECTORY": str(state)})
        self.addCleanup(lambda: (hdb.check_valgrind(vlog, proc.returncode),
                                 hdb.assert_no_secrets("the bridge's log", err_path.read_bytes())))
        self.addCleanup(lambda: (proc.poll() is None and proc.kill(), proc.wait(5)))
        hdb.wait_for(lambda: "ready" in err_path.read_text() or proc.poll() is not None, 15, "the bridge to be ready")
        self.assertIsNone(proc.poll(), err_path.read_text())
        return proc, err_path

    def head3(self, bridge: subprocess.Popen[bytes]) -> subprocess.Popen[bytes]:
        head = subprocess.Popen(["head", "-3"], stdin=bridge.stdout, stdout=subprocess.PIPE)
        self.addCleanup(lambda: (head.poll() is None and head.kill(), head.wait(5)))
        assert bridge.stdout is not None
        bridge.stdout.close()  # head holds the only read end now
        return head

    def test_stdout_the_only_sink_daemon_exits_0(self) -> None:
        bridge, err = self.spawn([{"name": "out", "type": "stdout"}], subprocess.PIPE)
        head = self.head3(bridge)
        insert_range("out", 0, 10)
        out, _ = head.communicate(timeout=10 * hdb.TIME_SCALE)
        self.assertEqual([json.loads(x)["id"] for x in out.splitlines()], [0, 1, 2])
        t0 = time.monotonic()
        self.assertEqual(bridge.wait(5 * hdb.TIME_SCALE), 0, err.read_text())
        log(f"bridge exited 0 {time.monotonic() - t0:.2f} s after head -3 did")
        self.assertIn("stdout closed, no other sink", err.read_text())

    def test_other_sinks_keep_running_when_stdout_closes(self) -> None:
        path = self.tmp / "s.sock"
        bridge, err = self.spawn([{"name": "out", "type": "stdout"},
                                  {"name": "s", "type": "unix", "path": str(path)}], subprocess.PIPE)
        c = self.consumer(path)
        head = self.head3(bridge)
        time.sleep(0.2)
        insert_range("out", 100, 5)
        head.communicate(timeout=10 * hdb.TIME_SCALE)
        hdb.wait_for(lambda: "sink 'out': stdout" in err.read_text(), 10, "the stdout sink to notice")
        insert_range("out", 200, 5)
        c.wait_lines(lambda e: e["id"] >= 200, 5, 10)
        self.assertIsNone(bridge.poll(), "still serving the socket")
        bridge.send_signal(signal.SIGTERM)
        self.assertEqual(bridge.wait(5 * hdb.TIME_SCALE), 0)

    def test_the_parents_pipe_stays_blocking(self) -> None:
        r, w = os.pipe()  # we keep the write end too, as a shell would
        self.addCleanup(os.close, r)
        self.addCleanup(os.close, w)
        bridge, _ = self.spawn([{"name": "out", "type": "stdout"}], w)
        insert_range("out", 300, 3)
        got = b""
        deadline = time.monotonic() + 10
        while got.count(b"\n") < 3 and time.monotonic() < deadline:
            if select.select([r], [], [], 0.5)[0]:
                got += os.read(r, 65536)
        self.assertEqual(got.count(b"\n"), 3)
        import fcntl
        self.assertFalse(fcntl.fcntl(w, fcntl.F_GETFL) & os.O_NONBLOCK, "O_NONBLOCK never set on the shared pipe")
        bridge.send_signal(signal.SIGTERM)
        self.assertEqual(bridge.wait(5 * hdb.TIME_SCALE), 0)


# --- routing and formats -------------------------------------------------------------------------------------------

class Formats(SinkCase):
    def test_record_raw_and_ops_filters(self) -> None:
        names = ("env", "rec", "raw", "del")
        paths = {n: self.tmp / f"{n}.sock" for n in names}
        bridge = self.start_bridge("fmt", [
            {"name": "env", "type": "unix", "path": str(paths["env"])},
            {"name": "rec", "type": "unix", "path": str(paths["rec"]), "format": "record"},
            {"name": "raw", "type": "unix", "path": str(paths["raw"]), "format": "raw"},
            {"name": "del", "type": "unix", "path": str(paths["del"]), "ops": ["delete"]}])
        cs = {n: self.consumer(p) for n, p in paths.items()}
        # HarperDB's own messages, to compare the raw format with byte for byte.
        ws = hdb.WsClient(f"{HDB.ws_url}/dev/fmt/?omitCurrent=true", HDB.auth_header())
        self.addCleanup(ws.close)
        time.sleep(0.5)
        HDB.insert("dev", "fmt", [{"id": 1, "name": "a"}])
        HDB.update("dev", "fmt", [{"id": 1, "name": "b"}])
        HDB.delete("dev", "fmt", [1])
        env = cs["env"].wait_lines(lambda e: True, 3, 10)
        self.assertEqual([e["op"] for e in env], ["put", "put", "delete"])
        rec = cs["rec"].wait_lines(lambda e: True, 2, 10)
        self.assertEqual(rec, [env[0]["record"], env[1]["record"]], "the record alone; none for the delete")
        raw = cs["raw"].wait_lines(lambda e: True, 3, 10)
        upstream = []
        while len(upstream) < 3:
            text = ws.recv(10)
            self.assertIsNotNone(text, "HarperDB sent the three messages")
            upstream.append(text)
        self.assertEqual(cs["raw"].lines, upstream, "raw: each message exactly as HarperDB sent it")
        self.assertEqual([m["type"] for m in raw], ["put", "put", "delete"])
        dels = cs["del"].wait_lines(lambda e: True, 1, 10)
        time.sleep(0.3)
        self.assertEqual([e["op"] for e in cs["del"].envelopes()], ["delete"])
        self.assertEqual(dels[0], env[2])
        self.stop(bridge)


# --- tail ----------------------------------------------------------------------------------------------------------

class Tail(SinkCase):
    def tail(self, *args: str, env: dict[str, str] | None = None, stdout: Any = subprocess.PIPE
             ) -> subprocess.Popen[bytes]:
        argv, vlog = hdb.bridge_command([BIN, "tail", *args], self.tmp)
        p = subprocess.Popen(["setpriv", "--pdeathsig", "KILL", "--", *argv], stdout=stdout,
                             stderr=subprocess.PIPE, env={**os.environ, **(env or {})})
        self.addCleanup(lambda: hdb.check_valgrind(vlog, p.returncode))
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(5)))
        return p

    def wait_consumers(self, bridge: hdb.Bridge, n: int) -> None:
        hdb.wait_for(lambda: bridge.log().count("connected (pid") >= n, 10, f"{n} consumer(s) to connect")

    def test_prints_lines_and_exits_0_at_end_of_stream(self) -> None:
        path = self.tmp / "t.sock"
        bridge = self.start_bridge("tail", [{"name": "t", "type": "unix", "path": str(path)}])
        reference = self.consumer(path)
        t = self.tail(str(path))
        self.wait_consumers(bridge, 2)
        insert_range("tail", 0, 3)
        reference.wait_lines(lambda e: True, 3, 10)
        self.stop(bridge)
        out, err = t.communicate(timeout=5 * hdb.TIME_SCALE)
        self.assertEqual(t.returncode, 0, err)
        self.assertEqual(out.decode().splitlines(), reference.lines, "off a terminal: the lines as they are")

    def test_ops_filter_and_pretty(self) -> None:
        path = self.tmp / "t.sock"
        bridge = self.start_bridge("tail", [{"name": "t", "type": "unix", "path": str(path)}])
        plain = self.tail(str(path), "--ops", "delete", "--pretty", env={"NO_COLOR": "1"})
        colour = self.tail(str(path), "--ops=put", "--pretty")
        self.wait_consumers(bridge, 2)
        HDB.insert("dev", "tail", [{"id": 50}])
        HDB.delete("dev", "tail", [50])
        time.sleep(1)
        self.stop(bridge)
        out, _ = plain.communicate(timeout=5 * hdb.TIME_SCALE)
        text = out.decode()
        self.assertTrue(text.startswith('{\n  "v": 1,\n'), text)
        self.assertNotIn("\033[", text)
        self.assertEqual(json.loads(text)["op"], "delete", "one pretty object: the delete only")
        out, _ = colour.communicate(timeout=5 * hdb.TIME_SCALE)
        text = out.decode()
        self.assertIn('\033[34m"op"\033[0m: \033[32m"put"\033[0m', text)
        self.assertNotIn('"delete"', text)

    def test_a_terminal_gets_pretty_colour_output(self) -> None:
        import pty
        path = self.tmp / "t.sock"
        bridge = self.start_bridge("tail", [{"name": "t", "type": "unix", "path": str(path)}])
        master, slave = pty.openpty()
        self.addCleanup(os.close, master)
        t = self.tail(str(path), stdout=slave, env={"NO_COLOR": ""})
        os.close(slave)
        self.wait_consumers(bridge, 1)
        HDB.insert("dev", "tail", [{"id": 60}])
        got = b""
        deadline = time.monotonic() + 10
        while b"\033[34m\"record\"" not in got and time.monotonic() < deadline:
            if select.select([master], [], [], 0.5)[0]:
                got += os.read(master, 65536)
        self.assertIn(b'\033[34m"id"\033[0m: \033[33m60\033[0m', got)
        self.stop(bridge)
        self.assertEqual(t.wait(5 * hdb.TIME_SCALE), 0)

    def test_missing_refused_and_forbidden_sockets(self) -> None:
        t = self.tail(str(self.tmp / "none.sock"))
        _, err = t.communicate(timeout=5 * hdb.TIME_SCALE)
        self.assertEqual(t.returncode, 66)
        self.assertIn(b"none.sock: no such socket (is hdb-bridge running with a unix sink at this path?)", err)

        stale = self.tmp / "stale.sock"
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(stale))
        s.close()
        t = self.tail(str(stale))
        _, err = t.communicate(timeout=5 * hdb.TIME_SCALE)
        self.assertEqual(t.returncode, 69)
        self.assertIn(b"connection refused: nothing is listening", err)

        plain = self.tmp / "file"
        plain.write_text("")
        t = self.tail(str(plain))
        _, err = t.communicate(timeout=5 * hdb.TIME_SCALE)
        self.assertEqual(t.returncode, 66)
        self.assertIn(b"not a socket", err)

        os.chmod(self.tmp, 0o755)
        private = self.tmp / "private.sock"
        bridge = self.start_bridge("tail", [{"name": "t", "type": "unix", "path": str(private), "mode": "0600"}])
        p = subprocess.Popen(["setpriv", "--reuid", str(NOBODY), "--regid", str(NOBODY), "--clear-groups",
                              "--pdeathsig", "KILL", "--", BIN, "tail", str(private)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.addCleanup(lambda: (p.poll() is None and p.kill(), p.wait(5)))
        _, err = p.communicate(timeout=5)
        self.assertEqual(p.returncode, 77)
        self.assertIn(b"permission denied", err)
        self.stop(bridge)

    def test_usage_errors(self) -> None:
        for args in ([], ["--ops"], ["a.sock", "--frobnicate"]):
            t = self.tail(*args)
            _, err = t.communicate(timeout=5)
            self.assertEqual(t.returncode, 64, (args, err))
            self.assertIn(b"hdb-bridge tail", err)


# --- HarperDB down -------------------------------------------------------------------------------------------------

class WhileHarperDBIsDown(SinkCase):
    def test_sinks_keep_working_while_harperdb_is_down_and_after_it_comes_back(self) -> None:
        sock, fifo = self.tmp / "down.sock", self.tmp / "down.fifo"
        bridge = self.start_bridge("down", [{"name": "s", "type": "unix", "path": str(sock), "replay": 5},
                                            {"name": "f", "type": "fifo", "path": str(fifo)}])
        a = self.consumer(sock)
        time.sleep(0.2)
        insert_range("down", 0, 10)
        a.wait_lines(lambda e: True, 10, 10)

        HDB.kill9()
        try:
            bridge.wait_log("retrying in", 15)
            # Down: a new consumer is accepted and gets its replay; the FIFO's first reader gets what waited.
            b = self.consumer(sock)
            self.assertEqual([e["id"] for e in b.wait_lines(lambda e: True, 5, 5)], [5, 6, 7, 8, 9])
            got = read_fifo(fifo, 1 << 20, 1.0)
            self.assertEqual([json.loads(x)["id"] for x in complete_lines(got)], list(range(10)))
            self.assertTrue(bridge.alive())
        finally:
            HDB.restart()
        hdb.wait_for(lambda: "subscribed again" in bridge.log(), 30, "the bridge to subscribe again")
        reader = threading.Thread(target=lambda: got_after.append(read_fifo(fifo, 1 << 20, 3)), daemon=True)
        got_after: list[bytes] = []
        reader.start()
        time.sleep(0.5)
        insert_range("down", 10, 10)
        a.wait_lines(lambda e: e["id"] >= 10, 10, 15)
        b.wait_lines(lambda e: e["id"] >= 10, 10, 15)
        reader.join(15)
        self.assertEqual([e["id"] for e in a.envelopes()], list(range(20)), "no duplicate, no hole")
        self.assertEqual([e["id"] for e in b.envelopes()], list(range(5, 20)))
        self.assertEqual([json.loads(x)["id"] for x in complete_lines(got_after[0])], list(range(10, 20)))
        self.stop(bridge)


if __name__ == "__main__":
    unittest.main()
