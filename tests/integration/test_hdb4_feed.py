#!/usr/bin/env python3
"""The real hdb-bridge against a real HarperDB 4.7: every change arrives, line by line, on every sink.

One HarperDB per module (setUpModule); each case starts its own hdb-bridge (or shares one per class)
and waits for its sd_notify READY=1 before writing. Needs HDB_BRIDGE_BIN (ctest sets it).
"""

from __future__ import annotations

import faulthandler
import os
import signal
import sys
import tempfile
import time
import unittest
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import hdb  # noqa: E402

BIN = hdb.bridge_binary()
CASE_TIMEOUT = 90 * hdb.TIME_SCALE  # seconds; a watchdog ends the run (and, by pdeathsig, every server) past it
HDB: hdb.HarperDB4


def setUpModule() -> None:
    global HDB
    HDB = hdb.start_module_harperdb("dev", ["animals", "other", "snap", "bulk"])
    print(f"\nHarperDB 4.7 up in {HDB.timings['start']:.1f} s, tables exported in "
          f"{HDB.timings['ensure_tables']:.1f} s", file=sys.stderr)


def tearDownModule() -> None:
    HDB.stop()


class BridgeCase(unittest.TestCase):
    """Per-case watchdog, temp dir and bridge helpers."""

    def setUp(self) -> None:
        faulthandler.dump_traceback_later(CASE_TIMEOUT, exit=True)
        self.addCleanup(faulthandler.cancel_dump_traceback_later)
        tmp = tempfile.TemporaryDirectory(prefix="hdb-feed-")
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)

    def start_bridge(self, tables: list[dict[str, Any]], sinks: list[dict[str, Any]],
                     ready: bool = True, **kw: Any) -> hdb.Bridge:
        bridge = hdb.Bridge(BIN, hdb.bridge_config(HDB, tables, sinks, **kw))
        self.addCleanup(bridge.cleanup)
        if ready:
            bridge.wait_ready(15)
        return bridge

    def consumer(self, path: Path) -> hdb.UnixConsumer:
        c = hdb.UnixConsumer(path)
        self.addCleanup(c.close)
        return c

    def assertEnvelope(self, e: dict[str, Any], op: str, id: Any, table: str = "animals") -> None:
        """The envelope contract: fields, types, and record consistency."""
        self.assertNotIn("__invalid__", e, "line is not a JSON object")
        self.assertEqual(e.get("v"), 1, e)
        self.assertEqual(e.get("server"), "local", e)
        self.assertEqual(e.get("database"), "dev", e)
        self.assertEqual(e.get("table"), table, e)
        self.assertEqual(e.get("op"), op, e)
        self.assertEqual(e.get("id"), id, e)
        self.assertIs(type(e.get("id")), type(id), e)
        self.assertIsInstance(e.get("ts"), (int, float), e)
        self.assertIsInstance(e.get("cursor"), str, e)
        self.assertRegex(e["cursor"], r"^\d+(\.\d+)?$", e)
        if op == "delete":
            self.assertNotIn("record", e)
        else:
            self.assertIsInstance(e.get("record"), dict, e)
            self.assertEqual(e["record"].get("id"), id, e)
            self.assertEqual(e["record"].get("__updatedtime__"), e["ts"], "ts is the transaction time")

    def assertCursorsIncrease(self, lines: list[dict[str, Any]]) -> None:
        cursors = [float(e["cursor"]) for e in lines]
        self.assertEqual(cursors, sorted(set(cursors)), "cursors (localTime) are unique and increasing")


def by_id(*ids: Any):  # type: ignore[no-untyped-def]
    return lambda e: e.get("id") in ids


class LiveChanges(BridgeCase):
    """Insert, update, upsert, delete and a transaction, on stdout and a Unix socket at once."""

    bridge: hdb.Bridge
    sock: hdb.UnixConsumer

    @classmethod
    def setUpClass(cls) -> None:
        cls.dir = tempfile.TemporaryDirectory(prefix="hdb-live-")
        path = Path(cls.dir.name) / "animals.sock"
        cls.bridge = hdb.Bridge(BIN, hdb.bridge_config(
            HDB, [{"database": "dev", "table": "animals"}],
            [{"name": "out", "type": "stdout"}, {"name": "animals", "type": "unix", "path": str(path)}]))
        try:
            cls.bridge.wait_ready(15)
            cls.sock = hdb.UnixConsumer(path)
        except BaseException:
            cls.bridge.cleanup()
            raise

    @classmethod
    def tearDownClass(cls) -> None:
        cls.sock.close()
        cls.bridge.cleanup()
        cls.dir.cleanup()

    def wait_both(self, pred, n: int, since: tuple[int, int]) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
        """Waits for n matching lines on stdout and on the socket; they must be the same lines."""
        out = self.bridge.wait_lines(pred, n, 10, since=since[0])
        sock = self.sock.wait_lines(pred, n, 10, since=since[1])
        self.assertEqual(out, sock, "stdout and the Unix socket carry the same lines")
        return out

    def marks(self) -> tuple[int, int]:
        return self.bridge.mark(), self.sock.mark()

    def test_insert(self) -> None:
        m = self.marks()
        HDB.insert("dev", "animals", [{"id": 101, "name": "Harper", "type": "dog", "age": 5}])
        [e] = self.wait_both(by_id(101), 1, m)
        self.assertEnvelope(e, "put", 101)
        self.assertEqual(e["record"]["name"], "Harper")
        self.assertEqual(e["record"]["age"], 5)

    def test_string_id(self) -> None:
        m = self.marks()
        HDB.insert("dev", "animals", [{"id": "cat-7", "name": "Tom"}])
        [e] = self.wait_both(by_id("cat-7"), 1, m)
        self.assertEnvelope(e, "put", "cat-7")

    def test_update_sends_the_full_merged_record(self) -> None:
        m = self.marks()
        HDB.insert("dev", "animals", [{"id": 102, "name": "Penny", "type": "cat", "age": 2}])
        HDB.update("dev", "animals", [{"id": 102, "age": 3}])
        lines = self.wait_both(by_id(102), 2, m)
        for e in lines:
            self.assertEnvelope(e, "put", 102)
        self.assertEqual(lines[1]["record"]["age"], 3)
        self.assertEqual(lines[1]["record"]["name"], "Penny", "update arrives as the full record")
        self.assertGreater(lines[1]["ts"], lines[0]["ts"])
        self.assertCursorsIncrease(lines)

    def test_upsert_new_and_existing(self) -> None:
        m = self.marks()
        HDB.upsert("dev", "animals", [{"id": 103, "name": "Rex", "type": "dog"}])
        HDB.upsert("dev", "animals", [{"id": 103, "name": "Rex II"}])
        lines = self.wait_both(by_id(103), 2, m)
        for e in lines:
            self.assertEnvelope(e, "put", 103)
        self.assertEqual([e["record"]["name"] for e in lines], ["Rex", "Rex II"])
        self.assertCursorsIncrease(lines)

    def test_delete_has_no_record(self) -> None:
        m = self.marks()
        HDB.insert("dev", "animals", [{"id": 104, "name": "Goner"}])
        HDB.delete("dev", "animals", [104])
        put, gone = self.wait_both(by_id(104), 2, m)
        self.assertEnvelope(put, "put", 104)
        self.assertEnvelope(gone, "delete", 104)
        self.assertGreater(gone["ts"], put["ts"])

    def test_transaction_of_three_records_shares_ts(self) -> None:
        m = self.marks()
        HDB.insert("dev", "animals", [{"id": i, "name": f"n{i}"} for i in (201, 202, 203)])
        lines = self.wait_both(by_id(201, 202, 203), 3, m)
        self.assertEqual(len(lines), 3)
        self.assertEqual(sorted(e["id"] for e in lines), [201, 202, 203])
        for e in lines:
            self.assertEnvelope(e, "put", e["id"])
        self.assertEqual(len({e["ts"] for e in lines}), 1, "one transaction, one ts")
        self.assertCursorsIncrease(lines)

    def test_no_other_lines_on_stdout(self) -> None:
        """stdout carries only envelopes: logs go to stderr."""
        m = self.marks()
        HDB.insert("dev", "animals", [{"id": 105, "name": "Quiet"}])
        self.wait_both(by_id(105), 1, m)
        for e in self.bridge.envelopes():
            self.assertNotIn("__invalid__", e)
            self.assertEqual(e.get("v"), 1)


class Snapshot(BridgeCase):
    @classmethod
    def setUpClass(cls) -> None:
        HDB.upsert("dev", "snap", [{"id": i, "name": f"s{i}"} for i in (1, 2, 3)])

    def test_snapshot_true_sends_current_records_first(self) -> None:
        bridge = self.start_bridge([{"database": "dev", "table": "snap", "snapshot": True}],
                                   [{"name": "out", "type": "stdout"}])
        lines = bridge.wait_lines(lambda e: e.get("op") == "snapshot", 3, 10)
        self.assertEqual([e["id"] for e in lines], [1, 2, 3], "ordered by key")
        for e in lines:
            self.assertEnvelope(e, "snapshot", e["id"], table="snap")
        m = bridge.mark()
        HDB.insert("dev", "snap", [{"id": 4, "name": "live"}])
        [live] = bridge.wait_lines(by_id(4), 1, 10, since=m)
        self.assertEnvelope(live, "put", 4, table="snap")
        self.assertEqual(len(bridge.envelopes()), 4, "three snapshot lines and one change, nothing else")
        HDB.delete("dev", "snap", [4])

    def test_no_snapshot_by_default(self) -> None:
        bridge = self.start_bridge([{"database": "dev", "table": "snap"}], [{"name": "out", "type": "stdout"}])
        HDB.upsert("dev", "snap", [{"id": 2, "name": "s2 again"}])
        [e] = bridge.wait_lines(by_id(2), 1, 10)
        self.assertEnvelope(e, "put", 2, table="snap")
        self.assertEqual(len(bridge.envelopes()), 1, "no snapshot lines before the change")


class BadCredentials(BridgeCase):
    def test_clear_error_and_backoff(self) -> None:
        wrong = "not-the-password-7f3e"
        # debug: the daemon may log repeats of the same failure below info; we count every attempt
        bridge = self.start_bridge([{"database": "dev", "table": "animals"}], [{"name": "out", "type": "stdout"}],
                                   ready=False, password=wrong, log_level="debug")

        def failures() -> list[str]:
            return [line for line in bridge.log().splitlines() if "authentication failed" in line]

        hdb.wait_for(failures, 10, "an 'authentication failed' line in the log")
        time.sleep(6)
        in_6s = failures()
        self.assertLessEqual(len(in_6s), 4, "backs off instead of a tight loop:\n" + "\n".join(in_6s))
        hdb.wait_for(lambda: len(failures()) >= 2, 20, "a second attempt (it keeps retrying)")
        log = bridge.log()
        self.assertTrue(bridge.alive(), f"keeps running after an auth failure:\n{log}")
        self.assertTrue(all("dev.animals" in line for line in failures()), log)
        self.assertNotIn(wrong, log, "the password never appears in the log")
        self.assertFalse(bridge.notified("READY=1"), "not ready while a table is unsubscribed")
        self.assertEqual(bridge.envelopes(), [])
        self.assertEqual(bridge.stop(signal.SIGTERM, 2), 0)


class UnixConsumers(BridgeCase):
    def test_two_consumers_receive_everything(self) -> None:
        path = self.tmp / "animals.sock"
        bridge = self.start_bridge([{"database": "dev", "table": "animals"}],
                                   [{"name": "animals", "type": "unix", "path": str(path)}])
        a, b = self.consumer(path), self.consumer(path)
        time.sleep(0.2)  # let the loop accept both before the first change
        ids = list(range(300, 350))
        for chunk in (ids[:10], ids[10:]):
            HDB.insert("dev", "animals", [{"id": i, "name": f"c{i}"} for i in chunk])
        got_a = a.wait_lines(by_id(*ids), len(ids), 15)
        got_b = b.wait_lines(by_id(*ids), len(ids), 15)
        self.assertEqual([e["id"] for e in got_a], ids)
        self.assertEqual(got_a, got_b)
        self.assertEqual(a.lines, b.lines, "both consumers see the same byte-identical lines")
        self.assertTrue(bridge.alive())

    def test_sink_table_filter(self) -> None:
        path = self.tmp / "other.sock"
        bridge = self.start_bridge(
            [{"database": "dev", "table": "animals"}, {"database": "dev", "table": "other"}],
            [{"name": "out", "type": "stdout"},
             {"name": "other", "type": "unix", "path": str(path), "tables": ["dev.other"]}])
        c = self.consumer(path)
        time.sleep(0.2)
        HDB.insert("dev", "animals", [{"id": 400, "name": "not for the socket"}])
        HDB.insert("dev", "other", [{"id": 401, "name": "for the socket"}])
        bridge.wait_lines(by_id(400, 401), 2, 10)
        [e] = c.wait_lines(by_id(401), 1, 10)
        self.assertEnvelope(e, "put", 401, table="other")
        self.assertEqual([x["id"] for x in c.envelopes()], [401], "the sink only gets its tables")

    def test_stalled_consumer_is_cut_off_others_get_everything(self) -> None:
        path = self.tmp / "bulk.sock"
        bridge = self.start_bridge([{"database": "dev", "table": "bulk"}],
                                   [{"name": "bulk", "type": "unix", "path": str(path), "queue_bytes": 65536}])
        fast = self.consumer(path)
        stalled = hdb.StalledConsumer(path)
        self.addCleanup(stalled.close)
        time.sleep(0.2)
        total, batch, pad = 3000, 100, "x" * 260  # ~300-byte records, ~1.3 MB of lines in all
        t0 = time.monotonic()
        for start in range(0, total, batch):
            HDB.insert("dev", "bulk", [{"id": i, "pad": pad} for i in range(start, start + batch)])
        lines = fast.wait_lines(lambda e: True, total, 60)
        elapsed = time.monotonic() - t0
        self.assertEqual([e["id"] for e in lines[:total]], list(range(total)), "in order, nothing lost")
        hdb.wait_for(stalled.disconnected, 10, "the stalled consumer to be cut off")
        got = stalled.drain(5)
        self.assertLess(got.count(b"\n"), total, "the stalled consumer did not get everything")
        self.assertTrue(bridge.alive())
        print(f"\n{total} records to the fast consumer in {elapsed:.2f} s; stalled one cut off after "
              f"{len(got)} bytes", file=sys.stderr)


class Signals(BridgeCase):
    def check_signal(self, sig: int) -> None:
        path = self.tmp / "sig.sock"
        bridge = self.start_bridge([{"database": "dev", "table": "animals"}],
                                   [{"name": "out", "type": "stdout"},
                                    {"name": "sig", "type": "unix", "path": str(path)}])
        c = self.consumer(path)
        t0 = time.monotonic()
        code = bridge.stop(sig, timeout=2)
        elapsed = time.monotonic() - t0
        self.assertEqual(code, 0, bridge.log())
        self.assertLess(elapsed, 2.0)
        self.assertTrue(c.wait_eof(2), "consumers see end of stream")
        self.assertTrue(bridge.notified("STOPPING=1"), f"sd_notify STOPPING=1: {bridge.notifications}")

    def test_sigterm_exits_0_within_2_s(self) -> None:
        self.check_signal(signal.SIGTERM)

    def test_sigint_exits_0_within_2_s(self) -> None:
        self.check_signal(signal.SIGINT)


if __name__ == "__main__":
    unittest.main()
