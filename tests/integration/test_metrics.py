#!/usr/bin/env python3
"""The daemon's operations side against a real HarperDB 4.7 (issue 6): the metrics endpoint scraped with curl
and every line checked by a strict Prometheus text-format parser, values that move with traffic, /healthz and
/readyz through subscribe, a held connection and a killed HarperDB, HTTP misuse (bad methods, huge and slow
requests, many clients), the Unix-socket endpoint, systemd watchdog pings and STATUS= lines on NOTIFY_SOCKET,
the test-only hang switch, and the journald log format.

One HarperDB per module; each case starts its own hdb-bridge. Every process is tracked by PID and cleaned up;
a per-case watchdog bounds the run. Needs HDB_BRIDGE_BIN (ctest sets it) and curl.
"""

from __future__ import annotations

import faulthandler
import math
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import unittest
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import hdb  # noqa: E402
from tcp_proxy import TcpProxy  # noqa: E402

BIN = hdb.bridge_binary()
CASE_TIMEOUT = 120  # seconds; a watchdog ends the run (and, by pdeathsig, every server) past it
TABLES = ["m_flow", "m_snap", "m_drop", "m_http", "m_unix", "m_wd", "m_status", "m_log", "m_down"]
HDB: hdb.HarperDB4


def setUpModule() -> None:
    global HDB
    if not shutil.which("curl"):
        raise RuntimeError("curl is needed (packaging/scripts/deps.sh installs it)")
    HDB = hdb.start_module_harperdb("dev", TABLES)


def tearDownModule() -> None:
    HDB.stop()


def log(msg: str) -> None:
    print(f"\n[metrics] {msg}", file=sys.stderr, flush=True)


# --- a strict Prometheus text format 0.0.4 parser --------------------------------------------------------------------

METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class ExpositionError(AssertionError):
    pass


class Family:
    def __init__(self, name: str) -> None:
        self.name = name
        self.help: str | None = None
        self.type: str | None = None
        self.samples: list[tuple[str, dict[str, str], float]] = []


def _unescape(text: str, allowed: str, where: str) -> str:
    """Undoes \\\\, \\n and (in label values) \\" escapes; any other backslash sequence is an error."""
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text) or text[i + 1] not in allowed:
                raise ExpositionError(f"{where}: bad escape {text[i:i + 2]!r}")
            out.append({"\\": "\\", "n": "\n", '"': '"'}[text[i + 1]])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def _parse_value(text: str, where: str) -> float:
    if text in ("NaN", "+Inf", "-Inf", "Inf"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not FLOAT.fullmatch(text):
        raise ExpositionError(f"{where}: bad value {text!r}")
    return float(text)


def _parse_labels(line: str, i: int, where: str) -> tuple[dict[str, str], int]:
    """Parses {name="value",...} starting at line[i] == '{'; returns the labels and the index after '}'."""
    labels: dict[str, str] = {}
    i += 1
    while True:
        if i < len(line) and line[i] == "}":
            return labels, i + 1
        m = LABEL_NAME.match(line, i)
        if not m:
            raise ExpositionError(f"{where}: bad label name at column {i + 1}")
        name = m.group(0)
        if name.startswith("__"):
            raise ExpositionError(f"{where}: reserved label name {name!r}")
        if name in labels:
            raise ExpositionError(f"{where}: label {name!r} twice")
        i = m.end()
        if line[i:i + 2] != '="':
            raise ExpositionError(f"{where}: expected =\" after label {name!r}")
        i += 2
        start = i
        while i < len(line) and line[i] != '"':
            i += 2 if line[i] == "\\" else 1
        if i >= len(line):
            raise ExpositionError(f"{where}: unterminated label value")
        labels[name] = _unescape(line[start:i], '\\n"', where)
        i += 1
        if i < len(line) and line[i] == ",":
            i += 1
            if i < len(line) and line[i] == "}":
                return labels, i + 1  # a trailing comma is allowed
        elif i >= len(line) or line[i] != "}":
            raise ExpositionError(f"{where}: expected , or }} after a label")


def parse_exposition(text: str) -> dict[str, Family]:
    """Parses every line of a text-format 0.0.4 exposition, strictly: metric and label names, escaping, values,
    HELP and TYPE at most once per family and before its samples, a family's samples together, sample names
    matching their family's TYPE, no series twice, a final line feed. Raises ExpositionError."""
    if not text.endswith("\n"):
        raise ExpositionError("the exposition does not end with a line feed")
    families: dict[str, Family] = {}
    series: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    current: str | None = None
    finished: set[str] = set()

    def family_of(sample: str) -> str:
        for suffix in ("_bucket", "_sum", "_count"):
            base = sample[: -len(suffix)]
            if sample.endswith(suffix) and base in families and families[base].type in ("histogram", "summary"):
                return base
        return sample

    def enter(name: str, where: str) -> Family:
        nonlocal current
        if name != current:
            if name in finished or (name in families and families[name].samples):
                raise ExpositionError(f"{where}: family {name!r} is not contiguous")
            if current is not None:
                finished.add(current)
            current = name
        return families.setdefault(name, Family(name))

    for number, line in enumerate(text[:-1].split("\n"), 1):
        where = f"line {number}: {line[:120]!r}"
        if line == "":
            raise ExpositionError(f"{where}: empty line")
        if line.startswith("#"):
            parts = line.split(" ", 3)
            if len(parts) >= 3 and parts[0] == "#" and parts[1] in ("HELP", "TYPE"):
                name = parts[2]
                if not METRIC_NAME.fullmatch(name):
                    raise ExpositionError(f"{where}: bad metric name")
                fam = enter(name, where)
                if fam.samples:
                    raise ExpositionError(f"{where}: {parts[1]} after samples")
                if parts[1] == "HELP":
                    if fam.help is not None:
                        raise ExpositionError(f"{where}: second HELP")
                    fam.help = _unescape(parts[3] if len(parts) > 3 else "", "\\n", where)
                else:
                    if fam.type is not None:
                        raise ExpositionError(f"{where}: second TYPE")
                    if len(parts) != 4 or parts[3] not in TYPES:
                        raise ExpositionError(f"{where}: bad TYPE")
                    fam.type = parts[3]
            continue  # any other comment is allowed
        m = METRIC_NAME.match(line)
        if not m:
            raise ExpositionError(f"{where}: bad metric name")
        sample_name, i = m.group(0), m.end()
        labels: dict[str, str] = {}
        if i < len(line) and line[i] == "{":
            labels, i = _parse_labels(line, i, where)
        if i >= len(line) or line[i] != " ":
            raise ExpositionError(f"{where}: expected a space before the value")
        fields = line[i + 1:].split(" ")
        if not 1 <= len(fields) <= 2 or (len(fields) == 2 and not re.fullmatch(r"-?\d+", fields[1])):
            raise ExpositionError(f"{where}: expected VALUE [TIMESTAMP]")
        value = _parse_value(fields[0], where)
        fam = enter(family_of(sample_name), where)
        if fam.type in ("counter", "gauge", "untyped", None) and sample_name != fam.name:
            raise ExpositionError(f"{where}: sample name does not match its family {fam.name!r}")
        if fam.type == "counter" and (value < 0 or math.isnan(value)):
            raise ExpositionError(f"{where}: a counter must be a non-negative number")
        key = (sample_name, tuple(sorted(labels.items())))
        if key in series:
            raise ExpositionError(f"{where}: series given twice")
        series.add(key)
        fam.samples.append((sample_name, labels, value))
    return families


class Scrape:
    """One parsed /metrics: values by metric name and label subset."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.families = parse_exposition(text)

    def value(self, name: str, **labels: str) -> float:
        found = self.values(name, **labels)
        if len(found) != 1:
            raise AssertionError(f"{len(found)} samples of {name} {labels} in:\n{self.text[-4000:]}")
        return found[0]

    def values(self, name: str, **labels: str) -> list[float]:
        fam = self.families.get(name)
        if fam is None:
            raise AssertionError(f"no family {name}")
        return [v for _, ls, v in fam.samples if all(ls.get(k) == x for k, x in labels.items())]


class ParserIsStrict(unittest.TestCase):
    """The parser the other cases rely on rejects what the format forbids (so a pass means something)."""

    GOOD = ('# HELP a_total Help with \\\\ and \\n.\n# TYPE a_total counter\na_total{x="q\\"\\\\\\n"} 1\n'
            "# TYPE b gauge\nb -Inf\nb{y=\"\"} 1.5e-3 1700000000000\n")

    def test_accepts_valid_text_and_unescapes(self) -> None:
        fams = parse_exposition(self.GOOD)
        self.assertEqual(fams["a_total"].help, "Help with \\ and \n.")
        self.assertEqual(fams["a_total"].samples, [("a_total", {"x": 'q"\\\n'}, 1.0)])
        self.assertEqual(fams["b"].samples[1][2], 0.0015)

    def test_rejects_each_kind_of_mistake(self) -> None:
        bad = {
            "no final line feed": "a 1",
            "bad label escape": 'a{x="\\t"} 1\n',
            "raw quote": 'a{x="""} 1\n',
            "bad value": "a one\n",
            "bad name": "1a 1\n",
            "second TYPE": "# TYPE a gauge\n# TYPE a gauge\na 1\n",
            "TYPE after samples": "a 1\n# TYPE a gauge\n",
            "split family": "# TYPE a gauge\na 1\n# TYPE b gauge\nb 1\na{x=\"1\"} 2\n",
            "duplicate series": "a{x=\"1\"} 1\na{x=\"1\"} 2\n",
            "duplicate label": 'a{x="1",x="2"} 1\n',
            "negative counter": "# TYPE a_total counter\na_total -1\n",
            "HELP of a closed family": "# TYPE a gauge\na 1\nb 1\n# HELP a late\n",
            "bad timestamp": "a 1 soon\n",
            "missing value": "a{x=\"1\"}\n",
            "empty line": "a 1\n\nb 1\n",
            "unknown type": "# TYPE a thing\na 1\n",
        }
        for what, text in bad.items():
            with self.subTest(what):
                with self.assertRaises(ExpositionError):
                    parse_exposition(text)


# --- helpers ---------------------------------------------------------------------------------------------------------

def curl(url: str, *, unix: Path | None = None, method: str | None = None, timeout: float = 5
         ) -> tuple[int, dict[str, str], str]:
    """GETs url with curl; returns (status, headers with lower-case names, body)."""
    argv = ["curl", "-sS", "--max-time", str(timeout), "--noproxy", "*"]
    if unix:
        argv += ["--unix-socket", str(unix)]
    if method == "HEAD":
        argv += ["--head"]  # the headers go to stdout by themselves
    else:
        argv += ["-D", "-"]
    if method and method != "HEAD":
        argv += ["-X", method]
    r = subprocess.run([*argv, url], capture_output=True, timeout=timeout + 5)  # bytes: keep the CRs
    if r.returncode != 0:
        raise RuntimeError(f"curl {url} failed ({r.returncode}): {r.stderr.decode(errors='replace').strip()}")
    head, _, body = r.stdout.decode().partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return status, headers, body


def table_config(table: str, sinks: list[dict[str, Any]], metrics: str | None, url: str | None = None,
                 extra_tables: str = "") -> str:
    text = hdb.bridge_config(HDB, [{"database": "dev", "table": table}], sinks)
    if url:
        text = text.replace(HDB.ws_url, url)
    if metrics:
        text += f"metrics: {{listen: {metrics!r}}}\n".replace("'", '"')
    return text + extra_tables


class MetricsCase(unittest.TestCase):
    def setUp(self) -> None:
        faulthandler.dump_traceback_later(CASE_TIMEOUT, exit=True)
        self.addCleanup(faulthandler.cancel_dump_traceback_later)
        tmp = tempfile.TemporaryDirectory(prefix="hdb-metrics-")
        self.addCleanup(tmp.cleanup)
        self.tmp = Path(tmp.name)

    def start(self, config: str, env: dict[str, str] | None = None, ready: bool = True) -> hdb.Bridge:
        bridge = hdb.Bridge(BIN, config, env=env)
        self.addCleanup(bridge.cleanup)
        if ready:
            bridge.wait_ready(15)
        return bridge

    def base_url(self, bridge: hdb.Bridge) -> str:
        text = bridge.wait_log("metrics: listening on", 10)
        return "http://" + re.search(r"metrics: listening on (\S+)", text).group(1)

    def scrape(self, url: str, unix: Path | None = None) -> Scrape:
        status, headers, body = curl(url + "/metrics" if not unix else "http://localhost/metrics", unix=unix)
        self.assertEqual(status, 200, body)
        self.assertEqual(headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8")
        self.assertEqual(int(headers["content-length"]), len(body.encode()))
        return Scrape(body)

    def wait_value(self, url: str, name: str, pred: Any, timeout: float = 10, **labels: str) -> Scrape:
        deadline = time.monotonic() + timeout
        while True:
            s = self.scrape(url)
            if pred(s.value(name, **labels)):
                return s
            if time.monotonic() > deadline:
                raise AssertionError(f"{name}{labels} = {s.value(name, **labels)} never satisfied the condition")
            time.sleep(0.2)


class Notified:
    """The sd_notify lines the Bridge helper received on the bridge's NOTIFY_SOCKET."""

    def __init__(self, bridge: hdb.Bridge) -> None:
        self.bridge = bridge

    def lines(self, prefix: str) -> list[str]:
        with self.bridge._cond:
            return [line for n in self.bridge.notifications for line in n.split("\n") if line.startswith(prefix)]


# --- the cases -------------------------------------------------------------------------------------------------------

class MetricsMove(MetricsCase):
    def test_every_line_parses_and_values_follow_traffic_and_readiness(self) -> None:
        sock = self.tmp / "flow.sock"
        with TcpProxy("127.0.0.1", HDB.http_port) as proxy:
            proxy.hold()  # the upgrade waits: not subscribed yet
            bridge = self.start(table_config("m_flow", [{"name": "s", "type": "unix", "path": str(sock)}],
                                             "127.0.0.1:0", url=f"ws://127.0.0.1:{proxy.port}"), ready=False)
            url = self.base_url(bridge)
            status, _, body = curl(url + "/readyz")
            self.assertEqual(status, 503, body)
            self.assertIn("dev.m_flow on server 'local': connecting", body)
            self.assertEqual(curl(url + "/healthz")[:3:2], (200, "ok\n"))
            s = self.scrape(url)
            self.assertEqual(s.value("hdb_bridge_table_subscribed", table="m_flow"), 0)
            self.assertEqual(s.value("hdb_bridge_table_state", table="m_flow", state="connecting"), 1)
            self.assertEqual(sum(s.values("hdb_bridge_table_state", table="m_flow")), 1)

            proxy.release()
            bridge.wait_ready(15)
            status, _, body = curl(url + "/readyz")
            self.assertEqual((status, body), (200, "ready\n"))
            consumer = hdb.UnixConsumer(sock)
            self.addCleanup(consumer.close)
            before = time.time()
            self.wait_value(url, "hdb_bridge_sink_consumers", lambda v: v == 1, sink="s")
            HDB.insert("dev", "m_flow", [{"id": i, "name": f"n{i}"} for i in range(25)])
            consumer.wait_lines(lambda e: True, 25, 10)
            s = self.wait_value(url, "hdb_bridge_table_records_total", lambda v: v == 25, table="m_flow")
            labels = {"server": "local", "database": "dev", "table": "m_flow"}
            self.assertEqual(s.value("hdb_bridge_table_subscribed", **labels), 1)
            self.assertEqual(s.value("hdb_bridge_table_state", state="subscribed", **labels), 1)
            self.assertGreaterEqual(s.value("hdb_bridge_table_last_change_timestamp_seconds", **labels), before - 1)
            self.assertLessEqual(s.value("hdb_bridge_table_last_change_timestamp_seconds", **labels), time.time() + 1)
            self.assertEqual(s.value("hdb_bridge_table_reconnects_total", **labels), 0)
            self.assertEqual(s.value("hdb_bridge_sink_lines_total", sink="s"), 25)
            self.assertEqual(s.value("hdb_bridge_sink_bytes_total", sink="s"),
                             s.value("hdb_bridge_sink_written_bytes_total", sink="s"))
            self.assertGreater(s.value("hdb_bridge_sink_bytes_total", sink="s"), 25 * 50)
            self.assertEqual(s.value("hdb_bridge_sink_queue_bytes", sink="s"), 0)
            self.assertEqual(s.value("hdb_bridge_sink_consumers_accepted_total", sink="s"), 1)
            self.assertEqual(s.value("hdb_bridge_server_messages_total", server="local"), 25)
            self.assertEqual(s.value("hdb_bridge_server_connects_total", server="local"), 1)
            self.assertEqual(s.values("hdb_bridge_server_dropped_messages_total", server="local"), [0, 0])
            self.assertEqual(s.value("hdb_bridge_server_ignored_messages_total", server="local"), 0)
            self.assertEqual(s.value("hdb_bridge_server_timeouts_total", server="local"), 0)
            for reason in ("drop_oldest", "drop_newest", "disconnect", "reader_gone"):
                self.assertEqual(s.value("hdb_bridge_sink_dropped_lines_total", sink="s", reason=reason), 0)
            # The checkpoint reaches the disk within checkpoint_interval (1 s) and is as old as the last change.
            s = self.wait_value(url, "hdb_bridge_table_checkpoint_age_seconds", lambda v: 0 <= v < 30, **labels)
            # Process metrics.
            self.assertEqual(s.value("hdb_bridge_build_info"), 1)
            self.assertLess(abs(s.value("hdb_bridge_start_time_seconds") - (time.time() - s.value(
                "hdb_bridge_uptime_seconds"))), 2)
            self.assertGreaterEqual(s.value("hdb_bridge_loop_lag_seconds"), 0)
            self.assertLess(s.value("hdb_bridge_loop_lag_max_seconds"), 0.5)
            self.assertGreater(s.value("hdb_bridge_http_requests_total", code="200"), 3)
            self.assertGreaterEqual(s.value("hdb_bridge_http_requests_total", code="503"), 1)
            # Every family has HELP and TYPE.
            for fam in s.families.values():
                self.assertTrue(fam.help and fam.type, fam.name)
            uptime = s.value("hdb_bridge_uptime_seconds")
            time.sleep(0.3)
            self.assertGreater(self.scrape(url).value("hdb_bridge_uptime_seconds"), uptime)

            # The connection cut: not ready, then back, with a reconnect counted.
            proxy.cut(refuse=True)
            bridge.wait_log("retrying in", 10)
            status, _, body = curl(url + "/readyz")
            self.assertEqual(status, 503, body)
            proxy.restore()
            self.wait_value(url, "hdb_bridge_table_reconnects_total", lambda v: v >= 1, 20, **labels)
            hdb.wait_for(lambda: curl(url + "/readyz")[0] == 200, 10, "/readyz 200 after the reconnect")
            self.assertGreaterEqual(self.scrape(url).value("hdb_bridge_server_connection_losses_total"), 1)
        self.assertEqual(bridge.stop(), 0, bridge.log()[-3000:])

    def test_readyz_waits_for_the_snapshot_replay(self) -> None:
        for first in range(0, 3000, 500):
            HDB.insert("dev", "m_snap", [{"id": i, "pad": "s" * 100} for i in range(first, first + 500)])
        config = hdb.bridge_config(HDB, [{"database": "dev", "table": "m_snap", "start": "snapshot"}],
                                   [{"name": "out", "type": "stdout"}]) + 'metrics: {listen: "127.0.0.1:0"}\n'
        bridge = self.start(config, ready=False)
        url = self.base_url(bridge)
        bridge.wait_ready(15)  # READY=1 comes with the subscription, at the first snapshot record
        status, _, body = curl(url + "/readyz")
        self.assertEqual((status, body), (503, "not ready:\ndev.m_snap on server 'local': replaying\n"))
        s = self.scrape(url)
        self.assertEqual(s.value("hdb_bridge_table_replaying", table="m_snap"), 1)
        self.assertEqual(s.value("hdb_bridge_table_subscribed", table="m_snap"), 1)
        bridge.wait_lines(lambda e: e.get("op") == "snapshot", 3000, 20)
        hdb.wait_for(lambda: curl(url + "/readyz")[0] == 200, 5, "/readyz 200 once the snapshot is over")
        s = self.scrape(url)
        self.assertEqual(s.value("hdb_bridge_table_replaying", table="m_snap"), 0)
        self.assertEqual(s.value("hdb_bridge_table_records_total", table="m_snap"), 3000)
        self.assertEqual(bridge.stop(), 0, bridge.log()[-3000:])

    def test_drops_by_reason_under_a_stalled_consumer(self) -> None:
        newest, oldest = self.tmp / "newest.sock", self.tmp / "oldest.sock"
        bridge = self.start(table_config("m_drop", [
            {"name": "newest", "type": "unix", "path": str(newest), "queue_bytes": 4096, "on_overflow": "drop_newest"},
            {"name": "oldest", "type": "unix", "path": str(oldest), "queue_bytes": 4096, "on_overflow": "drop_oldest"},
            {"name": "cut", "type": "unix", "path": str(self.tmp / "cut.sock"), "queue_bytes": 4096}],
            "127.0.0.1:0"))
        url = self.base_url(bridge)
        stalled = [hdb.StalledConsumer(p) for p in (newest, oldest, self.tmp / "cut.sock")]
        for c in stalled:
            self.addCleanup(c.close)
        self.wait_value(url, "hdb_bridge_sink_consumers", lambda v: v == 1, sink="cut")
        for first in range(0, 3000, 500):
            HDB.insert("dev", "m_drop", [{"id": i, "pad": "x" * 200} for i in range(first, first + 500)])
        s = self.wait_value(url, "hdb_bridge_table_records_total", lambda v: v == 3000, 20, table="m_drop")
        s = self.wait_value(url, "hdb_bridge_sink_dropped_lines_total", lambda v: v > 0, sink="newest",
                            reason="drop_newest")
        self.assertGreater(s.value("hdb_bridge_sink_dropped_lines_total", sink="oldest", reason="drop_oldest"), 0)
        self.assertGreater(s.value("hdb_bridge_sink_dropped_lines_total", sink="cut", reason="disconnect"), 0)
        self.assertEqual(s.value("hdb_bridge_sink_consumers_cut_total", sink="cut"), 1)
        self.assertEqual(s.value("hdb_bridge_sink_consumers", sink="cut"), 0)
        self.assertGreater(s.value("hdb_bridge_sink_queue_bytes", sink="newest"), 0)
        self.assertLessEqual(s.value("hdb_bridge_sink_queue_bytes", sink="newest"), 4096 + 512)
        self.assertGreater(s.value("hdb_bridge_sink_gap_lines_total", sink="oldest"), 0)
        self.assertEqual(bridge.stop(), 0, bridge.log()[-3000:])


class HttpMisuse(MetricsCase):
    def raw(self, port: int, data: bytes, timeout: float = 5) -> bytes:
        with socket.create_connection(("127.0.0.1", port), timeout) as s:
            s.sendall(data)
            out = b""
            while chunk := s.recv(65536):
                out += chunk
            return out

    def test_methods_paths_limits_timeouts_and_many_clients(self) -> None:
        bridge = self.start(table_config("m_http", [{"name": "out", "type": "stdout"}], "127.0.0.1:0"))
        url = self.base_url(bridge)
        port = int(url.rsplit(":", 1)[1])
        self.assertEqual(curl(url + "/nope")[0], 404)
        status, headers, _ = curl(url + "/metrics", method="POST")
        self.assertEqual((status, headers.get("allow")), (405, "GET, HEAD"))
        status, headers, body = curl(url + "/metrics", method="HEAD")
        self.assertEqual((status, body), (200, ""))
        self.assertGreater(int(headers["content-length"]), 1000)
        self.assertEqual(curl(url + "/readyz?x=1")[0], 200)
        self.assertTrue(self.raw(port, b"BROKEN\r\n\r\n").startswith(b"HTTP/1.1 400 "))
        self.assertTrue(self.raw(port, b"GET /metrics HTTP/1.1\r\nX: " + b"a" * 20000).startswith(b"HTTP/1.1 431 "))
        self.assertTrue(self.raw(port, b"GET /healthz HTTP/1.0\n\n").endswith(b"\r\n\r\nok\n"))

        # Idle and trickling clients: the endpoint keeps answering others, and closes them after its timeout.
        idle = [socket.create_connection(("127.0.0.1", port), 5) for _ in range(20)]
        trickle = socket.create_connection(("127.0.0.1", port), 5)
        try:
            trickle.sendall(b"GET /metr")
            t0 = time.monotonic()
            for _ in range(20):
                self.scrape(url)
            self.assertLess(time.monotonic() - t0, 10, "20 scrapes with 21 idle clients open")
            trickle.settimeout(15)
            self.assertEqual(trickle.recv(100), b"", "a client that never finishes its request is closed")
            self.assertLess(time.monotonic() - t0, 9)
            for s in idle:
                s.settimeout(5)
                self.assertEqual(s.recv(100), b"")
        finally:
            for s in [*idle, trickle]:
                s.close()
        self.assertGreaterEqual(self.scrape(url).value("hdb_bridge_http_requests_total", code="408"), 21)

        # More clients at once than the limit: the extra ones are refused, nothing breaks.
        crowd = [socket.create_connection(("127.0.0.1", port), 5) for _ in range(80)]
        try:
            time.sleep(0.3)
            for s in crowd[:10]:
                s.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
                s.settimeout(5)
                self.assertTrue(s.recv(100).startswith(b"HTTP/1.1 200 "))
        finally:
            for s in crowd:
                s.close()
        hdb.wait_for(lambda: curl(url + "/healthz")[0] == 200, 10, "the endpoint after the crowd")
        self.assertGreaterEqual(self.scrape(url).value("hdb_bridge_http_requests_total", code="503"), 16)
        self.assertTrue(bridge.alive())
        self.assertEqual(bridge.stop(), 0, bridge.log()[-3000:])

    def test_a_port_in_use_stops_the_start_with_one_clear_line(self) -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            sock = self.tmp / "early.sock"
            bridge = self.start(table_config("m_http", [{"name": "s", "type": "unix", "path": str(sock)}],
                                             f"127.0.0.1:{port}"), ready=False)
            self.assertEqual(bridge.proc.wait(10), 1, bridge.log())
        self.assertIn(f"cannot start: metrics: cannot listen on 127.0.0.1:{port}: Address already in use", bridge.log())
        self.assertFalse(sock.exists(), "the sink made before it is closed and its socket file removed")

    def test_unix_socket_endpoint(self) -> None:
        path = self.tmp / "run" / "metrics.sock"
        config = table_config("m_unix", [{"name": "out", "type": "stdout"}], None)
        config += f'metrics: {{listen: "{path}", mode: "0600"}}\n'
        bridge = self.start(config)
        self.assertEqual(stat.S_IMODE(path.stat().st_mode), 0o600)
        self.assertTrue(stat.S_ISSOCK(path.stat().st_mode))
        self.assertEqual(curl("http://localhost/readyz", unix=path)[:3:2], (200, "ready\n"))
        s = self.scrape("", unix=path)
        self.assertEqual(s.value("hdb_bridge_table_subscribed", table="m_unix"), 1)
        self.assertEqual(bridge.stop(), 0, bridge.log()[-3000:])
        self.assertFalse(path.exists(), "the socket file is removed at exit")


class Systemd(MetricsCase):
    def test_watchdog_pings_at_half_the_interval_and_the_hang_switch_stops_them(self) -> None:
        sock = self.tmp / "wd.sock"
        config = table_config("m_wd", [{"name": "s", "type": "unix", "path": str(sock)}], "127.0.0.1:0")
        bridge = self.start(config, env={"WATCHDOG_USEC": "1000000", "HDB_BRIDGE_TEST_FAULTS": "1",
                                         "HDB_BRIDGE_TEST_HANG_AFTER": "4"})
        notify = Notified(bridge)
        url = self.base_url(bridge)
        self.assertIn("TEST FAULT ARMED", bridge.log())
        start = time.monotonic() - bridge.started
        first = len(notify.lines("WATCHDOG=1"))
        time.sleep(2.0)
        pings = len(notify.lines("WATCHDOG=1")) - first
        log(f"{pings} watchdog pings in 2 s with WATCHDOG_USEC=1000000 (started {start:.1f} s in)")
        self.assertGreaterEqual(pings, 3)
        self.assertLessEqual(pings, 5)
        # The loop hangs 4 s after the start: pings stop, /healthz gets no answer, the process stays.
        bridge.wait_log("TEST FAULT: hanging", 10)
        time.sleep(0.2)
        frozen = len(notify.lines("WATCHDOG=1"))
        with self.assertRaises(RuntimeError):
            curl(url + "/healthz", timeout=1.5)
        self.assertEqual(len(notify.lines("WATCHDOG=1")), frozen, "no ping from a hung loop")
        self.assertTrue(bridge.alive())
        bridge.kill()

    def test_hang_switch_needs_the_faults_variable_and_pings_go_on(self) -> None:
        config = table_config("m_wd", [{"name": "out", "type": "stdout"}], None)
        bridge = self.start(config, env={"WATCHDOG_USEC": "400000", "HDB_BRIDGE_TEST_HANG_AFTER": "0"})
        notify = Notified(bridge)
        self.assertIn("HDB_BRIDGE_TEST_HANG_AFTER is set but HDB_BRIDGE_TEST_FAULTS=1 is not: ignored", bridge.log())
        first = len(notify.lines("WATCHDOG=1"))
        time.sleep(1.0)
        self.assertGreaterEqual(len(notify.lines("WATCHDOG=1")) - first, 4)
        self.assertEqual(bridge.stop(), 0, bridge.log()[-3000:])

    def test_no_watchdog_pings_without_watchdog_usec(self) -> None:
        bridge = self.start(table_config("m_wd", [{"name": "out", "type": "stdout"}], None),
                            env={"WATCHDOG_USEC": ""})
        time.sleep(0.5)
        self.assertEqual(Notified(bridge).lines("WATCHDOG="), [])
        self.assertEqual(bridge.stop(), 0, bridge.log()[-3000:])

    def test_status_lines_carry_live_counts_and_only_change_when_they_do(self) -> None:
        sock = self.tmp / "status.sock"
        bridge = self.start(table_config("m_status", [{"name": "s", "type": "unix", "path": str(sock)}], None))
        notify = Notified(bridge)
        consumer = hdb.UnixConsumer(sock)
        self.addCleanup(consumer.close)
        hdb.wait_for(lambda: "STATUS=1/1 tables up, 1 consumer, 0.0 records/s" in notify.lines("STATUS="), 6,
                     f"the idle STATUS= line; got {notify.lines('STATUS=')}")
        for first in range(0, 600, 50):
            HDB.insert("dev", "m_status", [{"id": i} for i in range(first, first + 50)])
        consumer.wait_lines(lambda e: True, 600, 20)
        busy = re.compile(r"STATUS=1/1 tables up, 1 consumer, (\d+\.\d) records/s")
        hdb.wait_for(lambda: any(float(m.group(1)) > 0 for line in notify.lines("STATUS=")
                                 if (m := busy.fullmatch(line))), 6, "a STATUS= line with records/s > 0")
        time.sleep(4.5)  # idle again: the rate falls back to 0.0, said once
        lines = notify.lines("STATUS=")
        log(f"STATUS= lines: {lines}")
        self.assertEqual(lines[-1], "STATUS=1/1 tables up, 1 consumer, 0.0 records/s")
        self.assertTrue(all(a != b for a, b in zip(lines, lines[1:])), "a STATUS= line repeated unchanged")
        self.assertEqual(bridge.stop(), 0, bridge.log()[-3000:])


class JournalLogs(MetricsCase):
    def run_bridge(self, journal: bool) -> str:
        """Runs the bridge with stderr to a file, JOURNAL_STREAM naming that file (journal=True) or another
        inode, and a second server nobody listens on (for a warning); stops it once the good table is
        subscribed and the other one retried; returns its stderr."""
        config = self.tmp / "c.yaml"
        dead = hdb.free_port()
        text = table_config("m_log", [{"name": "out", "type": "stdout"}], None)
        text = text.replace("tables:\n", f"  dead:\n    protocol: harperdb4\n    url: \"ws://127.0.0.1:{dead}\"\n"
                                          f"    username: u\n    password: p\ntables:\n"
                                          "  - {\"server\": \"dead\", \"database\": \"dev\", \"table\": \"m_log\"}\n")
        config.write_text(text)
        err_path = self.tmp / ("journal.log" if journal else "plain.log")
        (self.tmp / "state").mkdir(exist_ok=True)
        with open(err_path, "wb") as err:
            st = os.fstat(err.fileno())
            env = {**{k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"},
                   "STATE_DIRECTORY": str(self.tmp / "state"),
                   "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}" if journal else f"{st.st_dev}:{st.st_ino + 1}"}
            proc = subprocess.Popen([BIN, "--config", str(config)], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=err, env=env, start_new_session=True)
        try:
            hdb.wait_for(lambda: "retrying in" in err_path.read_text() and "subscribed" in err_path.read_text(),
                         15, "a retry warning and a subscription in the log")
            proc.terminate()
            proc.wait(5)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        return err_path.read_text()

    def test_journal_stream_gets_priority_prefixes_and_no_timestamps(self) -> None:
        text = self.run_bridge(journal=True)
        lines = text.splitlines()
        self.assertGreater(len(lines), 3, text)
        for line in lines:
            self.assertRegex(line, r"^<[2-7]>\S", text)
            self.assertNotRegex(line, r"^<\d>\d{4}-\d\d-\d\d", "no timestamp of our own")
        self.assertTrue(any(re.match(r"<4>.*dead.*retrying in", line) for line in lines), text)
        self.assertTrue(any(re.match(r"<6>.*dev\.m_log on server 'local': subscribed", line) for line in lines), text)

    def test_a_journal_stream_of_another_file_keeps_the_terminal_format(self) -> None:
        text = self.run_bridge(journal=False)
        for line in text.splitlines():
            self.assertRegex(line, r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \S*(info|warning|error|debug)", text)


class HarperDBKilled(MetricsCase):
    def test_readyz_turns_503_when_harperdb_dies_and_200_when_it_is_back(self) -> None:
        bridge = self.start(table_config("m_down", [{"name": "out", "type": "stdout"}], "127.0.0.1:0"))
        url = self.base_url(bridge)
        self.assertEqual(curl(url + "/readyz")[0], 200)
        HDB.kill9()
        try:
            hdb.wait_for(lambda: curl(url + "/readyz")[0] == 503, 15, "/readyz 503 with HarperDB killed")
            status, _, body = curl(url + "/readyz")
            self.assertRegex(body, r"dev\.m_down on server 'local': (waiting|connecting)")
            self.assertEqual(curl(url + "/healthz")[0], 200, "the loop itself is fine")
            s = self.scrape(url)
            self.assertEqual(s.value("hdb_bridge_table_subscribed", table="m_down"), 0)
        finally:
            HDB.restart()
        hdb.wait_for(lambda: curl(url + "/readyz")[0] == 200, 30, "/readyz 200 after HarperDB is back")
        self.assertGreaterEqual(self.scrape(url).value("hdb_bridge_table_reconnects_total", table="m_down"), 1)
        self.assertEqual(bridge.stop(), 0, bridge.log()[-3000:])


if __name__ == "__main__":
    unittest.main()
