#!/usr/bin/env python3
"""SIGHUP reload against a real HarperDB 4.7 with live consumers attached (issue 6, "Reload").

Each case starts a bridge, attaches consumers, rewrites the config file, sends SIGHUP and checks that exactly
what changed was applied: an invalid file changes nothing; tables and sinks come and go; a sink's filters and
format change with its consumers still connected; a sink changed otherwise is recreated; a subscription that
restarts (its server's settings changed) loses and repeats nothing under a steady writer; untouched
subscriptions never reconnect. One HarperDB for the module; every process tracked by PID; a watchdog per case.
"""

from __future__ import annotations

import faulthandler
import os
import re
import signal
import socket
import stat
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import hdb  # noqa: E402

BIN = hdb.bridge_binary()
CASE_TIMEOUT = 120
TABLES = ["ra", "rb", "rc", "rw"]
NEXT_ID = int(time.time())  # above any id an earlier run against the same server left
HDB: hdb.HarperDB4


def setUpModule() -> None:
    global HDB
    HDB = hdb.start_module_harperdb("dev", TABLES)


def tearDownModule() -> None:
    HDB.stop()


def log(msg: str) -> None:
    print(f"\n[reload] {msg}", file=sys.stderr, flush=True)


def table(name: str) -> dict[str, Any]:
    return {"database": "dev", "table": name}


def connects_of(log_text: str, table_key: str) -> int:
    """Connections a table's subscription made, from its exit stats line."""
    m = re.search(rf"{re.escape(table_key)}[^\n]*: \d+ messages, \d+ lines;[^\n]*; (\d+) connects", log_text)
    if not m:
        raise AssertionError(f"no stats line for {table_key} in the log:\n{log_text[-3000:]}")
    return int(m.group(1))


class ReloadCase(unittest.TestCase):
    def setUp(self) -> None:
        faulthandler.dump_traceback_later(CASE_TIMEOUT, exit=True)
        self.addCleanup(faulthandler.cancel_dump_traceback_later)
        tmp = tempfile.TemporaryDirectory(prefix="hdb-reload-")
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)

    def start(self, tables: list[str], sinks: list[dict[str, Any]], **server: Any) -> hdb.Bridge:
        bridge = hdb.Bridge(BIN, self.config(tables, sinks, **server))
        self.addCleanup(bridge.cleanup)
        bridge.wait_ready(15)
        return bridge

    def config(self, tables: list[str], sinks: list[dict[str, Any]], **server: Any) -> str:
        text = hdb.bridge_config(HDB, [table(t) for t in tables], sinks)
        for key, value in server.items():  # extra server keys, after its password line
            text = re.sub(r"(\n    password: [^\n]*)", rf"\1\n    {key}: {value}", text, count=1)
        return text

    def reload(self, bridge: hdb.Bridge, text: str, ok: bool | None = True) -> str:
        """Writes the new config, sends SIGHUP, waits for READY=1 after RELOADING=1; returns the log lines it
        added. ok: whether "reload done" (True) or "reload failed" (False) must be among them (None: unchecked,
        for a log level that hides them)."""
        def count(line: str) -> int:
            return sum(n.split("\n").count(line) for n in bridge.notifications)

        before = bridge.log()
        reloading, readies = count("RELOADING=1"), count("READY=1")
        bridge.config.write_text(text)
        os.kill(bridge.pid, signal.SIGHUP)
        hdb.wait_for(lambda: count("RELOADING=1") > reloading and count("READY=1") > readies, 10,
                     "RELOADING=1, then READY=1")
        time.sleep(0.05)  # the log line and the datagram race by a hair
        added = bridge.log()[len(before):]
        if ok is not None:
            self.assertIn("reload done" if ok else "reload failed", added)
        return added

    def consumer(self, path: Path) -> hdb.UnixConsumer:
        c = hdb.UnixConsumer(path)
        self.addCleanup(c.close)
        return c

    def insert(self, name: str, n: int = 1) -> list[int]:
        """Inserts n new records (ids unique across the module: inserting a key again is no change)."""
        global NEXT_ID
        ids = list(range(NEXT_ID, NEXT_ID + n))
        NEXT_ID += n
        HDB.insert("dev", name, [{"id": i, "name": f"{name}-{i}"} for i in ids])
        return ids

    def sees(self, c: hdb.UnixConsumer, name: str, ids: list[int], timeout: float = 15) -> None:
        want = set(ids)
        c.wait_lines(lambda e: e.get("table") == name and e.get("id") in want, len(want), timeout)

    def stop(self, bridge: hdb.Bridge) -> str:
        self.assertEqual(bridge.stop(signal.SIGTERM, 5), 0, bridge.log()[-3000:])
        return bridge.log()


class Reload(ReloadCase):
    def test_an_invalid_config_changes_nothing(self) -> None:
        sock = self.tmp / "s.sock"
        sinks = [{"name": "s", "type": "unix", "path": str(sock)}]
        bridge = self.start(["ra"], sinks)
        c = self.consumer(sock)
        time.sleep(0.2)
        self.sees(c, "ra", self.insert("ra"))
        added = self.reload(bridge, "servers: [oops\n", ok=False)
        self.assertRegex(added, r"\S+hdb-bridge\.yaml:\d+:\d+: ")
        self.assertIn("still running the previous configuration", added)
        # A valid file with a broken key: every error named, nothing applied.
        broken = self.config(["ra", "rb"], [{**sinks[0], "on_overflow": "explode"}])
        added = self.reload(bridge, broken, ok=False)
        self.assertIn("sinks[0].on_overflow", added)
        self.assertNotIn("dev.rb", added)
        self.sees(c, "ra", self.insert("ra"))
        self.assertFalse(c.eof)
        self.assertTrue(bridge.alive())
        self.assertEqual(connects_of(self.stop(bridge), "dev.ra"), 1)

    def test_tables_come_and_go_without_touching_the_others(self) -> None:
        sock = self.tmp / "s.sock"
        sinks = [{"name": "s", "type": "unix", "path": str(sock)}]
        bridge = self.start(["ra", "rb"], sinks)
        c = self.consumer(sock)
        time.sleep(0.2)
        self.sees(c, "ra", self.insert("ra"))
        self.sees(c, "rb", self.insert("rb"))

        added = self.reload(bridge, self.config(["ra", "rc"], sinks))
        self.assertIn("subscriptions stopped: local/dev.rb; subscriptions started: local/dev.rc", added)
        hdb.wait_for(lambda: "dev.rc" in bridge.log() and "subscribed" in bridge.log().split("reload done")[-1], 15,
                     "dev.rc subscribed")
        self.sees(c, "rc", self.insert("rc"))
        self.sees(c, "ra", self.insert("ra"))
        mark = c.mark()
        self.insert("rb")
        gone = self.insert("ra")  # ordering witness: after this one, nothing of rb may come
        self.sees(c, "ra", gone)
        self.assertFalse([e for e in c.envelopes(mark) if e.get("table") == "rb"], "rb is no longer subscribed")
        self.assertFalse(c.eof, "the consumer stayed connected")
        log_text = self.stop(bridge)
        self.assertEqual(connects_of(log_text, "dev.ra"), 1, "dev.ra never reconnected")

    def test_filters_and_format_change_with_the_consumer_attached(self) -> None:
        sock = self.tmp / "s.sock"
        sink = {"name": "s", "type": "unix", "path": str(sock)}
        bridge = self.start(["ra"], [sink])
        c = self.consumer(sock)
        time.sleep(0.2)
        self.sees(c, "ra", self.insert("ra"))

        self.reload(bridge, self.config(["ra"], [{**sink, "ops": ["delete"]}]))
        mark = c.mark()
        put = self.insert("ra")
        HDB.delete("dev", "ra", put)
        got = c.wait_lines(lambda e: e.get("op") == "delete", 1, 15, since=mark)
        self.assertEqual(got[0]["id"], put[0])
        self.assertFalse([e for e in c.envelopes(mark) if e.get("op") == "put"], "ops: [delete] applied")

        self.reload(bridge, self.config(["ra"], [{**sink, "format": "record"}]))
        mark = c.mark()
        rec = self.insert("ra")
        got = c.wait_lines(lambda e: e.get("id") == rec[0], 1, 15, since=mark)
        self.assertEqual(got[0].get("name"), f"ra-{rec[0]}")
        self.assertNotIn("op", got[0], "format: record applied: the record alone, no envelope")
        self.assertFalse(c.eof, "the consumer stayed connected through both reloads")
        self.assertIn("consumers: 1 accepted, 0 cut off", self.stop(bridge))

    def test_sinks_added_removed_and_recreated(self) -> None:
        keep, drop, mode = (self.tmp / f"{n}.sock" for n in ("keep", "drop", "mode"))
        sinks = [{"name": "keep", "type": "unix", "path": str(keep)},
                 {"name": "drop", "type": "unix", "path": str(drop)},
                 {"name": "mode", "type": "unix", "path": str(mode)}]
        bridge = self.start(["ra"], sinks)
        ck, cd, cm = self.consumer(keep), self.consumer(drop), self.consumer(mode)
        time.sleep(0.2)
        first = self.insert("ra")
        for c in (ck, cd, cm):
            self.sees(c, "ra", first)

        new = self.tmp / "new.sock"
        changed = [sinks[0], {**sinks[2], "mode": "0600"}, {"name": "new", "type": "unix", "path": str(new)}]
        added = self.reload(bridge, self.config(["ra"], changed))
        self.assertIn("sinks removed: drop; sinks recreated: mode; sinks added: new", added)
        self.assertTrue(cd.wait_eof(5), "the removed sink's consumer is disconnected")
        self.assertFalse(drop.exists(), "the removed sink's socket file is gone")
        self.assertTrue(cm.wait_eof(5), "the recreated sink's consumer is disconnected")
        self.assertEqual(stat.S_IMODE(mode.stat().st_mode), 0o600)
        cm2, cn = self.consumer(mode), self.consumer(new)
        time.sleep(0.2)
        second = self.insert("ra")
        for c in (ck, cm2, cn):
            self.sees(c, "ra", second)
        self.assertFalse(ck.eof, "the untouched sink's consumer stayed")
        self.assertEqual(len([e for e in ck.envelopes() if e.get("table") == "ra"]), 2)
        # A sink whose path cannot be used is reported and left out; the next reload tries again.
        (self.tmp / "blocker").write_text("a regular file")
        bad = changed + [{"name": "bad", "type": "unix", "path": str(self.tmp / "blocker")}]
        added = self.reload(bridge, self.config(["ra"], bad))
        self.assertIn("sink 'bad'", added)
        self.assertIn("not running", added)
        (self.tmp / "blocker").unlink()
        added = self.reload(bridge, self.config(["ra"], bad))
        self.assertIn("sinks added: bad", added)
        self.consumer(self.tmp / "blocker")
        self.assertEqual(connects_of(self.stop(bridge), "dev.ra"), 1)

    def test_a_restarted_subscription_loses_and_repeats_nothing(self) -> None:
        sock = self.tmp / "s.sock"
        sinks = [{"name": "s", "type": "unix", "path": str(sock)}]
        bridge = self.start(["rw", "ra"], sinks)
        c = self.consumer(sock)
        time.sleep(0.2)
        stop = threading.Event()
        written: list[int] = []

        def writer() -> None:
            while not stop.is_set():
                written.extend(self.insert("rw", 5))
                time.sleep(0.01)

        t = threading.Thread(target=writer, daemon=True)
        t.start()
        try:
            time.sleep(1.0)
            # A server setting changed: both of its tables restart and resume from what was delivered.
            added = self.reload(bridge, self.config(["rw", "ra"], sinks, liveness_timeout="20s"))
            self.assertIn("subscriptions stopped: local/dev.ra, local/dev.rw", added)
            time.sleep(1.5)
        finally:
            stop.set()
            t.join(10)
        self.sees(c, "rw", written, 30)
        ids = [e["id"] for e in c.envelopes() if e.get("table") == "rw"]
        dups = len(ids) - len(set(ids))
        log(f"{len(written)} written across a subscription restart, {len(set(ids))} delivered, {dups} duplicated")
        self.assertEqual(sorted(set(ids)), sorted(written), "nothing lost")
        self.assertEqual(dups, 0, "nothing repeated")
        self.assertEqual(ids, sorted(ids), "in commit order")
        self.assertFalse([e for e in c.envelopes() if e.get("op") == "gap"], "no gap: the resume reached back")
        self.assertFalse(c.eof)
        self.assertEqual(connects_of(self.stop(bridge), "dev.rw"), 1, "the new subscription connected once")

    def test_log_level_applies_and_state_dir_waits_for_a_restart(self) -> None:
        sock = self.tmp / "s.sock"
        sinks = [{"name": "s", "type": "unix", "path": str(sock)}]
        bridge = self.start(["ra"], sinks)
        text = self.config(["ra"], sinks).replace("log: {level: info}", "log: {level: warn}")
        added = self.reload(bridge, f"state_dir: {self.tmp / 'elsewhere'}\n" + text, ok=None)
        self.assertIn("not applied: state_dir", added)
        c = self.consumer(sock)
        time.sleep(0.2)
        self.sees(c, "ra", self.insert("ra"))
        before = bridge.log()
        self.assertEqual(bridge.stop(signal.SIGTERM, 5), 0)
        self.assertNotIn("consumer #1 connected", before.split("reload done")[-1], "info lines are off now")
        self.assertFalse((self.tmp / "elsewhere").exists())


if __name__ == "__main__":
    unittest.main()
