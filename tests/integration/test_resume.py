#!/usr/bin/env python3
"""Fault injection against a real HarperDB 4.7: every record is accounted for across disconnects and restarts.

In each scenario a writer inserts records with ids 1..N (batches of 50 at a steady rate, each batch retried
until HarperDB confirms it, so "written" is what HarperDB confirmed) while a fault happens; a consumer on the
bridge's Unix socket collects the lines. The test asserts that every written id arrived, in commit order
(ascending cursor and id within each bridge run), with no duplicates, or, after a SIGKILL of the bridge,
exactly the changes delivered after its last checkpoint. Each scenario prints one line:
written, delivered, duplicated, lost.

Scenarios (issue 5): 1 HarperDB SIGKILLed and restarted; 2 restart_service http_workers; 3a/3b the connection
cut / stalled by a proxy (liveness_timeout 4 s); 4a/4b the bridge SIGTERMed / SIGKILLed and restarted (4c/4d: the
same with a slow consumer whose queue is not empty at the stop); 5 the bridge down 30 s; 6a a checkpoint older than
history_retention (history_expired gap), 6b a plain export (resume_ignored gap) then install-component, 6c the
state_dir lock. Scenario 6b runs a second HarperDB, started without our component.

The bridge reaches HarperDB through the test's TCP proxy (tests/lib/tcp_proxy.py), which also holds a new
bridge's first connection until the consumer is connected, so no line goes out before someone listens.
Needs HDB_BRIDGE_BIN (ctest sets it).
"""

from __future__ import annotations

import faulthandler
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import hdb  # noqa: E402
from steady_writer import SteadyWriter as Writer  # noqa: E402
from tcp_proxy import TcpProxy  # noqa: E402

BIN = hdb.bridge_binary()
CASE_TIMEOUT = 240 * hdb.TIME_SCALE  # seconds; a watchdog ends the run (and, by pdeathsig, every server) past it
DELIVERY_TIMEOUT = 90  # for the last written record to arrive once the writer is done
N = 5000
BATCH = 50
DATABASE = "dev"
TABLES = ["r1_hdb_kill", "r2_workers", "r3_cut", "r3_stall", "r4_term", "r4_kill", "r4_slow_term", "r4_slow_kill",
          "r5_down", "r6_history", "r6_lock"]
HDB: hdb.HarperDB4
RESULTS: list[str] = []
STARTED = time.monotonic()


def setUpModule() -> None:
    global HDB
    HDB = hdb.start_module_harperdb(DATABASE, TABLES)
    print(f"\nHarperDB 4.7 up in {HDB.timings['start']:.1f} s, tables exported in "
          f"{HDB.timings['ensure_tables']:.1f} s", file=sys.stderr)


def tearDownModule() -> None:
    HDB.stop()
    print("\n--- resume scenarios (written / delivered / duplicated / lost)", file=sys.stderr)
    for line in RESULTS:
        print(line, file=sys.stderr)
    print(f"--- whole module: {time.monotonic() - STARTED:.0f} s", file=sys.stderr)


def note(msg: str) -> None:
    print(f"[resume] {msg}", file=sys.stderr, flush=True)


def wall(ms: float) -> str:
    """Epoch milliseconds as the bridge's log shows time (local time, ms)."""
    return time.strftime("%H:%M:%S", time.localtime(ms / 1000)) + f".{int(ms % 1000):03d}"


# --- one table's feed across bridge runs ----------------------------------------------------------

class Run:
    """One bridge process and the consumer on its Unix socket."""

    def __init__(self, index: int, bridge: hdb.Bridge, consumer: hdb.UnixConsumer) -> None:
        self.index = index
        self.bridge = bridge
        self.consumer = consumer
        self.log = ""

    def lines(self) -> list[dict[str, Any]]:
        return self.consumer.envelopes()

    def puts(self) -> list[dict[str, Any]]:
        return [e for e in self.lines() if e.get("op") == "put"]


class Feed:
    """A table's lines through the bridge, over as many bridge runs as a scenario makes, through a proxy."""

    def __init__(self, case: unittest.TestCase, tmp: Path, server: hdb.HarperDB4, table: str, *,
                 server_options: dict[str, Any] | None = None, table_options: dict[str, Any] | None = None,
                 options: dict[str, Any] | None = None, stdout: bool = False) -> None:
        self.case = case
        self.server = server
        self.table = table
        self.sock = tmp / f"{table}.sock"
        self.state_dir = tmp / "state"
        self.server_options = server_options or {}
        self.table_options = table_options or {}
        self.options = options or {}
        self.stdout = stdout
        self.proxy = TcpProxy(server.host, server.http_port, name=f"proxy for {table}")
        case.addCleanup(self.proxy.close)
        self.runs: list[Run] = []
        self.config_file = tmp / f"{table}.yaml"
        self.config_file.write_text(self.config_text())

    @property
    def checkpoint_file(self) -> Path:
        return self.state_dir / f"local.{DATABASE}.{self.table}.cursor"

    def checkpoint(self) -> str | None:
        try:
            return self.checkpoint_file.read_text().strip()
        except FileNotFoundError:
            return None

    def config_text(self) -> str:
        q = json.dumps
        server = {"protocol": "harperdb4", "url": f"ws://127.0.0.1:{self.proxy.port}",
                  "username": self.server.username, "password": self.server.password,
                  "operations_url": f"http://127.0.0.1:{self.server.ops_port}", **self.server_options}
        sinks = [{"name": "feed", "type": "unix", "path": str(self.sock), "queue_bytes": "64MiB"}]
        if self.stdout:
            sinks.append({"name": "out", "type": "stdout"})
        lines = ["log: {level: debug}", f"state_dir: {q(str(self.state_dir))}",
                 *(f"{k}: {q(v)}" for k, v in self.options.items()),
                 "servers:", "  local:", *(f"    {k}: {q(v)}" for k, v in server.items()),
                 "tables:", f"  - {q({'server': 'local', 'database': DATABASE, 'table': self.table, **self.table_options})}",
                 "sinks:", *(f"  - {q(s)}" for s in sinks)]
        return "\n".join(lines) + "\n"

    def start(self, ready: bool = True, consumer_type: type = hdb.UnixConsumer) -> Run:
        """Starts a bridge, connects the consumer before the bridge may reach HarperDB, waits for READY=1."""
        self.proxy.hold()
        bridge = hdb.Bridge(BIN, config_file=self.config_file)
        self.case.addCleanup(bridge.cleanup)
        try:
            consumer = consumer_type(self.sock, timeout=20)
            self.case.addCleanup(consumer.close)
            bridge.wait_log("consumer #1 connected", 20)
        finally:
            self.proxy.release()
        run = Run(len(self.runs) + 1, bridge, consumer)
        self.runs.append(run)
        if ready:
            bridge.wait_ready(60)
        return run

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Stops the current bridge with sig; the consumer reads what is left up to end of stream."""
        run = self.runs[-1]
        if sig == signal.SIGKILL:
            run.bridge.kill()
            code = -signal.SIGKILL
        else:
            code = run.bridge.stop(sig, timeout=10)
        self.case.assertTrue(run.consumer.wait_eof(10), "the consumer sees end of stream")
        run.log = run.bridge.log()
        return code

    def puts(self) -> list[dict[str, Any]]:
        return [e for run in self.runs for e in run.puts()]

    def delivered_ids(self) -> set[Any]:
        return {e.get("id") for e in self.puts()}

    def wait_delivered(self, ids: set[int], timeout: float = DELIVERY_TIMEOUT) -> bool:
        """Waits until every id has arrived (False on timeout: the caller reports what is missing)."""
        try:
            hdb.wait_for(lambda: ids <= self.delivered_ids(), timeout, "every written id", interval=0.2)
            return True
        except TimeoutError:
            return False

    def logs(self) -> str:
        return "\n".join(f"--- run {r.index} log:\n{r.log or r.bridge.log()}" for r in self.runs)

    def subscriptions(self) -> list[str]:
        """The bridge's (re)connections with their startTime, from the debug log."""
        out = []
        for r in self.runs:
            for line in (r.log or r.bridge.log()).splitlines():
                if "connecting to" in line or "subscribed" in line or "gap" in line:
                    out.append(f"run {r.index}: {line}")
        return out


class SlowConsumer(hdb.UnixConsumer):
    """A Unix consumer that reads nothing until resume() (with a small receive buffer): lines wait in the
    bridge's queue for it, as they do for any consumer slower than the feed."""

    def __init__(self, path: str | Path, timeout: float = 10) -> None:
        hdb.LineCollector.__init__(self, f"slow consumer {path}")
        self.sock = hdb._connect_unix(path, timeout)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)

    def resume(self) -> None:
        self._start_reading(lambda: self.sock.recv(65536))


# --- accounting -----------------------------------------------------------------------------------

def cursor(e: dict[str, Any]) -> Decimal:
    return Decimal(e["cursor"])


class ResumeCase(unittest.TestCase):
    def setUp(self) -> None:
        faulthandler.dump_traceback_later(CASE_TIMEOUT, exit=True)
        self.addCleanup(faulthandler.cancel_dump_traceback_later)
        tmp = tempfile.TemporaryDirectory(prefix="hdb-resume-")
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)
        self.t0 = time.monotonic()

    def feed(self, table: str, server: hdb.HarperDB4 | None = None, **kw: Any) -> Feed:
        return Feed(self, self.tmp, server or HDB, table, **kw)

    def write(self, server: hdb.HarperDB4, table: str, last: int = N, **kw: Any) -> Writer:
        """Starts a writer; a failed case stops it rather than leave it writing into the next one."""
        def insert(records: list[dict[str, Any]]) -> Any:
            return server.op({"operation": "insert", "database": DATABASE, "table": table, "records": records},
                             timeout=10)
        kw.setdefault("rate", 500.0)
        writer = Writer(table, insert, last, batch=BATCH,
                        record=lambda i: {"id": i, "seq": i, "note": f"record {i}"}, **kw).start()
        self.addCleanup(writer.stop)
        return writer

    def elapsed(self) -> str:
        return f"+{time.monotonic() - self.t0:.1f} s"

    def account(self, name: str, feed: Feed, writer: Writer, *, killed_at: str | None = None,
                allow_ops: tuple[str, ...] = ("put",), timeout: float = DELIVERY_TIMEOUT) -> dict[str, int]:
        """Waits for every written id, checks order and duplicates, prints the scenario's line.

        killed_at: the checkpoint found after a SIGKILL of run 1: exactly the run-1 lines after it
        may come again in run 2. Without it, no line may come twice."""
        written = writer.join()
        complete = feed.wait_delivered(written, timeout)
        puts = feed.puts()
        distinct = {e["id"] for e in puts}
        lost = sorted(written - distinct)
        duplicated = len(puts) - len(distinct)
        extra = sorted(distinct - written, key=str)
        line = (f"{name}: written {len(written)}, delivered {len(distinct & written)}, duplicated {duplicated}, "
                f"lost {len(lost)}")
        RESULTS.append(line)
        note(line + f" ({writer.failed_attempts} failed write attempts retried, {time.monotonic() - self.t0:.1f} s)")
        if lost:
            self.fail(self.describe_loss(name, feed, writer, lost))
        self.assertTrue(complete)
        self.assertEqual(extra, [], "lines for ids that were never written")
        self.assertEqual(len(written), writer.last - writer.first + 1)

        for run in feed.runs:
            lines = run.lines()
            self.assertEqual([e for e in lines if "__invalid__" in e], [], f"run {run.index}: invalid lines")
            odd = [e for e in lines if e.get("op") not in allow_ops]
            self.assertEqual(odd, [], f"run {run.index}: unexpected lines\n{feed.logs()[-3000:]}")
            rp = run.puts()
            cursors = [cursor(e) for e in rp]
            bad = [(a["id"], a["cursor"], b["id"], b["cursor"]) for a, b in zip(rp, rp[1:]) if cursor(b) <= cursor(a)]
            self.assertEqual(bad, [], f"run {run.index}: cursors go back (id, cursor, next id, next cursor)")
            ids = [e["id"] for e in rp]
            self.assertEqual(ids, sorted(ids), f"run {run.index}: ids out of commit order")
            self.assertEqual(len(cursors), len(set(cursors)))
            for e in rp:
                self.assertEqual(e.get("table"), feed.table)
                self.assertEqual(e["record"]["seq"], e["id"])

        by_id: dict[Any, str] = {}
        for e in puts:
            self.assertEqual(by_id.setdefault(e["id"], e["cursor"]), e["cursor"],
                             f"id {e['id']} came twice with different cursors: not the same change")
        if killed_at is None:
            self.assertEqual(duplicated, 0, f"duplicates: {self.duplicates(puts)[:20]}")
        else:
            first, second = feed.runs[0].puts(), [e for r in feed.runs[1:] for e in r.puts()]
            after = {e["cursor"] for e in first if cursor(e) > Decimal(killed_at)}
            again = {e["cursor"] for e in second} & {e["cursor"] for e in first}
            self.assertEqual(again, after, "after SIGKILL, exactly the lines after the last checkpoint come again")
            self.assertTrue(all(cursor(e) > Decimal(killed_at) for e in second),
                            "the restarted bridge starts after the checkpoint")
        return {"written": len(written), "delivered": len(distinct & written), "duplicated": duplicated,
                "lost": len(lost)}

    @staticmethod
    def duplicates(puts: list[dict[str, Any]]) -> list[tuple[Any, str]]:
        seen: set[Any] = set()
        out = []
        for e in puts:
            if e["id"] in seen:
                out.append((e["id"], e["cursor"]))
            seen.add(e["id"])
        return out

    def describe_loss(self, name: str, feed: Feed, writer: Writer, lost: list[int]) -> str:
        """What was lost, with HarperDB's own cursor for it, and the bridge's subscriptions around it."""
        delivered = {e["id"]: e["cursor"] for e in feed.puts()}
        before = max((i for i in delivered if isinstance(i, int) and i < lost[0]), default=None)
        frames: dict[Any, dict[str, Any]] = {}
        start = delivered[before] if before is not None else f"{time.time() * 1000 - 600_000:.3f}"
        try:
            with hdb.WsClient(f"{feed.server.ws_url}/{DATABASE}/{feed.table}/?startTime={start}",
                              feed.server.auth_header()) as ws:
                for f in ws.messages(quiet=1.0, limit=20):
                    if f.get("id") in lost:
                        frames[f["id"]] = f
        except (OSError, hdb.HdbError) as e:
            frames = {"error": {"text": str(e)}}
        batches = [b for b in writer.batches if b[0] <= lost[-1] and b[1] >= lost[0]]
        parts = [f"{name}: {len(lost)} written id(s) never delivered: {lost[:50]}",
                 f"last delivered id before them: {before} (cursor {delivered.get(before)})",
                 "HarperDB's frames for them (replayed from that cursor): " +
                 "; ".join(f"id {i} localTime {f.get('localTime')} ({wall(float(f.get('localTime', 0)))}) "
                           f"version {f.get('version')}" for i, f in list(frames.items())[:20]),
                 "writer batches confirmed: " + "; ".join(f"{a}..{b} at {wall(t)}" for a, b, t in batches),
                 "bridge subscriptions:", *feed.subscriptions()[-20:],
                 f"proxy events: {feed.proxy.events[-20:]}", feed.logs()[-4000:]]
        return "\n".join(parts)


class Resume(ResumeCase):
    def test_1_harperdb_sigkill_and_restart(self) -> None:
        feed = self.feed("r1_hdb_kill")
        feed.start()
        writer = self.write(HDB, feed.table)
        writer.wait_count(1500)
        note(f"1: SIGKILL HarperDB at {writer.count()} ids ({self.elapsed()})")
        HDB.kill9()
        time.sleep(0.5)
        HDB.restart()
        note(f"1: HarperDB back ({self.elapsed()})")
        self.account("1 HarperDB SIGKILL + restart", feed, writer)
        self.assertGreaterEqual(len(feed.subscriptions()), 2)

    def test_2_restart_http_workers(self) -> None:
        feed = self.feed("r2_workers")
        run = feed.start()
        writer = self.write(HDB, feed.table)
        writer.wait_count(1500)
        note(f"2: restart_service http_workers at {writer.count()} ids ({self.elapsed()})")
        HDB.op({"operation": "restart_service", "service": "http_workers"})
        hdb.wait_for(lambda: "subscribed again" in run.bridge.log(), 60, "the bridge to subscribe again")
        note(f"2: subscribed again ({self.elapsed()})")
        self.account("2 restart_service http_workers", feed, writer)

    def test_3a_proxy_cuts_the_connection(self) -> None:
        feed = self.feed("r3_cut", server_options={"liveness_timeout": "4s"})
        run = feed.start()
        writer = self.write(HDB, feed.table)
        writer.wait_count(1200)
        note(f"3a: cut at {writer.count()} ids ({self.elapsed()})")
        self.assertEqual(feed.proxy.cut(), 1, "one connection to cut")
        hdb.wait_for(lambda: run.bridge.log().count("subscribed again") >= 1, 30, "a resubscription after the cut")
        writer.wait_count(2500)
        note(f"3a: cut and refuse for 2 s at {writer.count()} ids ({self.elapsed()})")
        feed.proxy.cut(refuse=True)
        time.sleep(2)
        feed.proxy.restore()
        hdb.wait_for(lambda: run.bridge.log().count("subscribed again") >= 2, 30, "a resubscription after the outage")
        note(f"3a: subscribed again ({self.elapsed()})")
        self.account("3a proxy cut (twice, once refusing for 2 s)", feed, writer)

    def test_3b_proxy_stalls_the_connection(self) -> None:
        """Nothing passes and nothing closes: only the liveness timeout (4 s) can notice."""
        feed = self.feed("r3_stall", server_options={"liveness_timeout": "4s"})
        run = feed.start()
        writer = self.write(HDB, feed.table)
        writer.wait_count(1500)
        t_stall = time.monotonic()
        [stalled] = feed.proxy.stall()
        note(f"3b: stall #{stalled} at {writer.count()} ids ({self.elapsed()})")
        closed = hdb.wait_for(lambda: [t for t, e in feed.proxy.events_since(t_stall)
                                       if e == f"close #{stalled} by client (stalled)"], 20,
                              "the bridge to hang up the stalled connection")
        detected = closed[0] - t_stall
        note(f"3b: the bridge hung up the stalled connection after {detected:.1f} s (liveness_timeout 4 s)")
        hdb.wait_for(lambda: "subscribed again" in run.bridge.log(), 30, "a resubscription after the stall")
        self.assertGreaterEqual(detected, 2.0, "not before the liveness timeout could pass")
        self.assertLessEqual(detected, 9.0, "within the liveness timeout (4 s) plus slack")
        stats = self.account("3b proxy stall (liveness_timeout 4 s)", feed, writer)
        RESULTS[-1] += f"; stall detected after {detected:.1f} s"
        # A healthy connection answers pings: no other reconnect than the stall's.
        self.assertEqual(run.bridge.log().count("subscribed again"), 1, feed.logs()[-3000:])
        self.assertEqual(stats["lost"], 0)

    def test_4a_bridge_sigterm_and_restart(self) -> None:
        feed = self.feed("r4_term")
        first = feed.start()
        writer = self.write(HDB, feed.table)
        writer.wait_count(2000)
        note(f"4a: SIGTERM the bridge at {writer.count()} ids ({self.elapsed()})")
        self.assertEqual(feed.stop(signal.SIGTERM), 0)
        last = first.puts()[-1]["cursor"]
        self.assertEqual(feed.checkpoint(), last, "the checkpoint is the last line delivered before the stop")
        time.sleep(1.0)
        second = feed.start()
        note(f"4a: restarted ({self.elapsed()})")
        self.account("4a bridge SIGTERM + restart", feed, writer)
        self.assertGreater(cursor(second.puts()[0]), Decimal(last))

    def test_4b_bridge_sigkill_and_restart(self) -> None:
        feed = self.feed("r4_kill")
        first = feed.start()
        writer = self.write(HDB, feed.table)
        writer.wait_count(2000)
        time.sleep(0.3)  # mid-interval: a checkpoint is at most 1 s old
        note(f"4b: SIGKILL the bridge at {writer.count()} ids ({self.elapsed()})")
        feed.stop(signal.SIGKILL)
        killed_at = feed.checkpoint()
        self.assertIsNotNone(killed_at, "a checkpoint was written while running")
        assert killed_at is not None
        after = [e for e in first.puts() if cursor(e) > Decimal(killed_at)]
        note(f"4b: checkpoint at the kill {killed_at}; {len(after)} of {len(first.puts())} delivered lines "
             f"are after it")
        time.sleep(1.0)
        feed.start()
        stats = self.account("4b bridge SIGKILL + restart", feed, writer, killed_at=killed_at)
        RESULTS[-1] += f" (all {stats['duplicated']} duplicates after the last checkpoint, checkpoint_interval 1 s)"

    def test_5_bridge_down_for_30_s(self) -> None:
        feed = self.feed("r5_down")
        feed.start()
        writer = self.write(HDB, feed.table, 7000, rate=200.0)
        writer.wait_count(600)
        note(f"5: SIGTERM the bridge at {writer.count()} ids ({self.elapsed()})")
        self.assertEqual(feed.stop(signal.SIGTERM), 0)
        time.sleep(30)
        backlog = set(list(writer.confirmed)) - feed.delivered_ids()
        note(f"5: starting the bridge again with {len(backlog)} ids written while it was down ({self.elapsed()})")
        t = time.monotonic()
        feed.start()
        self.assertTrue(feed.wait_delivered(backlog, 60), "catch-up delivers what was written while down")
        catchup = time.monotonic() - t
        note(f"5: caught up {len(backlog)} records in {catchup:.2f} s (start to last one delivered)")
        self.account("5 bridge down 30 s while writing", feed, writer)
        RESULTS[-1] += f"; {len(backlog)} caught up in {catchup:.1f} s"

    def test_6a_checkpoint_older_than_history(self) -> None:
        """history_retention: 1m and a checkpoint two minutes old: a history_expired gap, then the replay."""
        feed = self.feed("r6_history", server_options={"history_retention": "1m"}, stdout=True)
        writer = self.write(HDB, feed.table, rate=1000.0)
        writer.wait_count(1000)
        old = f"{time.time() * 1000 - 120_000:.3f}"
        feed.state_dir.mkdir()
        feed.checkpoint_file.write_text(old + "\n")
        run = feed.start()
        log = run.bridge.wait_log("gap", 10)
        self.assertRegex(log, r"warn.*history_retention")
        [gap] = run.bridge.wait_lines(lambda e: e.get("op") == "gap", 1, 10)
        self.assertEqual(gap.get("reason"), "history_expired", gap)
        self.assertEqual(gap.get("cursor"), old, gap)
        self.assertEqual((gap.get("server"), gap.get("database"), gap.get("table")), ("local", DATABASE, feed.table))
        self.assertIsInstance(gap.get("message"), str)
        self.assertEqual(run.bridge.envelopes()[0], gap, "stdout: the gap comes before any replayed change")
        # The Unix consumer too: the gap goes out with the first subscription, when a consumer can be there.
        self.assertEqual(run.lines()[:1], [gap], "the socket: the gap comes before any replayed change")
        self.account("6a checkpoint 2 min old, history_retention 1m", feed, writer, allow_ops=("put", "gap"))
        self.assertEqual([e for e in run.lines() if e.get("op") == "gap"], [gap], "one gap line")
        RESULTS[-1] += "; one history_expired gap line first, on the socket and stdout"

    def test_6c_state_dir_lock(self) -> None:
        feed = self.feed("r6_lock")
        run = feed.start()
        second = hdb.Bridge(BIN, config_file=feed.config_file)
        self.addCleanup(second.cleanup)
        try:
            code = second.proc.wait(15 * hdb.TIME_SCALE)
        except subprocess.TimeoutExpired:
            self.fail(f"a second instance on the same state_dir kept running:\n{second.log()}")
        log = second.log()
        self.assertEqual(code, 1, log)
        self.assertIn(f"state_dir {feed.state_dir} is in use by another hdb-bridge (pid {run.bridge.pid})", log)
        self.assertTrue(run.bridge.alive())
        # The refused instance touched nothing of the running one: its socket still takes consumers.
        with hdb.UnixConsumer(feed.sock, timeout=5) as late:
            HDB.insert(DATABASE, feed.table, [{"id": 1, "seq": 1}])
            late.wait_lines(lambda e: e.get("id") == 1, 1, 10)
        RESULTS.append(f"6c state_dir lock: second instance exited {code}: {log.strip().splitlines()[-1][:160]}")
        note(RESULTS[-1])


class SlowConsumerStop(ResumeCase):
    """The bridge stopped while a connected, slow consumer still has lines queued in the bridge.

    The checkpoint on disk only advances when every sink has written out every line it was given, so the
    lines still queued at the stop (after SIGKILL; after SIGTERM once the 1.5 s shutdown deadline passes)
    are replayed after the restart: nothing is lost, and the duplicates all come after the checkpoint.
    (Before this was fixed, the checkpoint followed what was queued and these lines were lost for good.)"""

    def check_stop(self, name: str, table: str, sig: int) -> None:
        feed = self.feed(table)
        run = feed.start(consumer_type=SlowConsumer)
        writer = self.write(HDB, feed.table, rate=5000.0)
        writer.wait_count(N)
        time.sleep(2.5)  # the checkpoint timer ran since the last change
        queued = feed.checkpoint()
        if sig == signal.SIGKILL:
            run.bridge.kill()
        else:
            self.assertEqual(run.bridge.stop(sig, timeout=10), 0)
        run.log = run.bridge.log()
        at_stop = feed.checkpoint()
        assert isinstance(run.consumer, SlowConsumer)
        run.consumer.resume()
        self.assertTrue(run.consumer.wait_eof(10))
        got = run.puts()
        note(f"{name}: the consumer had {len(got)} of {N} lines when the bridge stopped; checkpoint then "
             f"{at_stop} (last queued change {queued}, last line the consumer got "
             f"{got[-1]['cursor'] if got else None})")
        feed.start()
        # Either way the process ended with lines still queued: duplicates are allowed after the checkpoint.
        self.account(name, feed, writer, killed_at=at_stop, timeout=15)

    def test_4c_slow_consumer_bridge_sigterm(self) -> None:
        self.check_stop("4c slow consumer, bridge SIGTERM past the shutdown deadline", "r4_slow_term",
                        signal.SIGTERM)

    def test_4d_slow_consumer_bridge_sigkill(self) -> None:
        self.check_stop("4d slow consumer, bridge SIGKILL", "r4_slow_kill", signal.SIGKILL)


PLAIN_COMPONENT = {
    "config.yaml": "rest: true\njsResource:\n  files: resources.js\n",
    "resources.js": """'use strict';
// Every user table exported as it is: no startTime / previousCount / omitCurrent. What a HarperDB
// without hdb-bridge's component serves.
for (const [dbName, db] of Object.entries(databases)) {
	if (dbName === 'system') continue;
	for (const [tableName, Table] of Object.entries(db)) server.resources.set(`${dbName}/${tableName}`, Table);
}
""",
}


def component_serves(server: hdb.HarperDB4, table: str) -> bool:
    """True once subscribing with startTime=now gets no current records (frames with `size`): the
    hdb-bridge component serves the table, not a plain export."""
    try:
        with hdb.WsClient(f"{server.ws_url}/{DATABASE}/{table}/?startTime={time.time() * 1000:.3f}",
                          server.auth_header(), timeout=5) as ws:
            frames = ws.messages(quiet=0.5, limit=2)
            return ws.close_code is None and not any("size" in f for f in frames)
    except (OSError, hdb.HdbError, ValueError):
        return False


class WithoutComponent(ResumeCase):
    """A second HarperDB started without our component; its table exported plainly by another one."""

    def test_6b_resume_ignored_then_install_component(self) -> None:
        plain = hdb.HarperDB4(component=None)
        plain.start()
        self.addCleanup(plain.stop)
        table = "plain"
        plain.op({"operation": "create_database", "database": DATABASE})
        plain.op({"operation": "create_table", "database": DATABASE, "table": table, "primary_key": "id"})
        for name, text in PLAIN_COMPONENT.items():
            plain.op({"operation": "set_component_file", "project": "plain", "file": name, "payload": text})
        plain.op({"operation": "restart_service", "service": "http_workers"})
        hdb.wait_for(lambda: plain.rest_status(f"/{DATABASE}/{table}/") == 200, 60, "the plain export")
        note(f"6b: HarperDB without our component, table exported plainly ({self.elapsed()})")

        feed = self.feed(table, server=plain, stdout=True)
        writer = self.write(plain, table, 6000, rate=400.0)
        writer.wait_count(500)
        time.sleep(0.2)
        checkpoint = f"{time.time() * 1000:.3f}"  # after the first records: they are "current records" now
        feed.state_dir.mkdir()
        feed.checkpoint_file.write_text(checkpoint + "\n")
        run = feed.start()
        [gap] = run.consumer.wait_lines(lambda e: e.get("op") == "gap", 1, 15)
        self.assertEqual(gap.get("reason"), "resume_ignored", gap)
        self.assertEqual(gap.get("cursor"), checkpoint, gap)
        self.assertRegex(run.bridge.log(), r"warn.*install-component")
        # The table's current records follow as snapshot lines: at least the 500 written before the checkpoint.
        run.consumer.wait_lines(lambda e: e.get("op") == "snapshot", 500, 15)
        self.assertEqual(run.lines()[0], gap, "the gap line comes first")
        note(f"6b: resume_ignored gap, then snapshot lines ({self.elapsed()})")

        writer.wait_count(2000)
        # The bridge stays away from here until the component serves the table and the server has taken
        # 500 more records, so resuming has to replay them through the component just installed. Its new
        # connections wait in the proxy's backlog rather than fail, so no backoff grows meanwhile.
        feed.proxy.hold()
        feed.proxy.cut()
        time.sleep(0.5)
        # A slow bridge (under valgrind) may still be writing out what the cut connection brought: the
        # mark goes after its last line.
        def quiet() -> bool:
            n = run.consumer.mark()
            time.sleep(0.5 * hdb.TIME_SCALE)
            return run.consumer.mark() == n
        hdb.wait_for(quiet, 30, "the cut connection's lines to be delivered")
        mark = run.consumer.mark()
        plain.op({"operation": "drop_component", "project": "plain"})
        t = time.monotonic()
        res = hdb.run_bridge(["install-component", "--config", str(feed.config_file)], binary=BIN, timeout=60)
        self.assertEqual(res.returncode, 0, res.stderr)
        self.assertIn("installed", res.stderr)
        note(f"6b: install-component took {time.monotonic() - t:.1f} s at {writer.count()} ids: "
             f"{res.stderr.strip().splitlines()[-1]}")
        hdb.wait_for(lambda: component_serves(plain, table), 60, "the component to serve the table", interval=0.5)
        note(f"6b: the component serves the table ({self.elapsed()})")
        writer.wait_count(min(writer.count() + 500, writer.last), 60)
        missed = set(list(writer.confirmed))
        feed.proxy.release()
        hdb.wait_for(lambda: "subscribed again" in run.bridge.log(), 90, "the bridge to subscribe again")
        note(f"6b: subscribed again ({self.elapsed()})")
        written = writer.join()
        snapshot = [e for e in run.lines() if e.get("op") == "snapshot"]
        self.assertTrue(feed.wait_delivered(written - {e["id"] for e in snapshot}))
        after = run.consumer.envelopes(mark)
        self.assertEqual([e for e in after if e.get("op") != "put"], [],
                         "after install-component: resumed, no gap, no snapshot")
        replayed = {e["id"] for e in after} & missed
        self.assertGreaterEqual(len(replayed), 500, "what was written while away came as a replay")
        reconnects = [line for line in run.bridge.log().splitlines()
                      if "connecting to" in line and "startTime=" in line]
        self.assertGreaterEqual(len(reconnects), 2, "reconnected with startTime")

        # Every id arrived once as a change, or (written before the first connection) as a snapshot line.
        puts = [e for e in run.lines() if e.get("op") == "put"]
        put_ids = [e["id"] for e in puts]
        snap_ids = {e["id"] for e in snapshot}
        lost = sorted(written - set(put_ids) - snap_ids)
        duplicated = len(put_ids) - len(set(put_ids))
        line = (f"6b resume_ignored, then install-component: written {len(written)}, "
                f"delivered {len((set(put_ids) | snap_ids) & written)} ({len(snap_ids)} as snapshot), "
                f"duplicated {duplicated}, lost {len(lost)}; {len(replayed)} replayed after install-component")
        RESULTS.append(line)
        note(line)
        if lost:
            self.fail(self.describe_loss("6b", feed, writer, lost))
        self.assertEqual(duplicated, 0)
        self.assertEqual(put_ids, sorted(put_ids), "changes in commit order")
        cursors = [cursor(e) for e in puts]
        self.assertEqual(cursors, sorted(set(cursors)))
        self.assertEqual(len([e for e in run.lines() if e.get("op") == "gap"]), 1)


if __name__ == "__main__":
    unittest.main()
