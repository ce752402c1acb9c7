"""Test and demo helpers for hdb-bridge: a real HarperDB 4.7 on loopback, the real daemon, Unix consumers.

Standard library only (Python 3.11). Every process started here is tracked by PID and killed on cleanup
(and by pdeathsig if this process dies first), and every wait is bounded.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Callable, Iterable

REPO = Path(__file__).resolve().parents[2]
HDB_VERSION = "4.7.29"
COMPONENT_DIR = REPO / "packaging" / "harperdb-component"
INSTALL_SCRIPT = REPO / "packaging" / "scripts" / "harperdb4-install.sh"
COMPONENT_NAME = "hdb-bridge"


# HDB_BRIDGE_VALGRIND=1: every hdb-bridge started through these helpers runs under valgrind --leak-check=full,
# and its report must be clean when it exits. Waits are bounded TIME_SCALE times longer (valgrind runs the
# daemon 10-50 times slower; HarperDB itself is not slowed).
VALGRIND = os.environ.get("HDB_BRIDGE_VALGRIND") == "1"
TIME_SCALE = float(os.environ.get("HDB_BRIDGE_TIME_SCALE") or (5 if VALGRIND else 1))
VALGRIND_EXIT = 99  # valgrind's exit code when it found an error (or a definite or indirect leak)

# Every password a test gave a bridge, or a server the bridges talk to, so every bridge can be checked for
# leaking any of them. Only distinctive ones (10 characters or more): "password" is also a config key.
SECRETS: set[str] = set()


def secret_token() -> str:
    """A random part for a distinctive test password."""
    return secrets.token_hex(5)


def add_secret(secret: str | None) -> None:
    if secret and len(secret) >= 10:
        SECRETS.add(secret)


_CONFIG_SECRET = re.compile(r"""["']?password["']?\s*:\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)'|([^\s,}'"][^,}\n]*))""")
_CONFIG_SECRET_FILE = re.compile(r"""["']?password_file["']?\s*:\s*["']?([^"',}\s]+)""")


def secrets_in_config(text: str) -> set[str]:
    """The passwords a config names (inline or in a password_file that exists)."""
    found = {next(g for g in m.groups() if g is not None).strip() for m in _CONFIG_SECRET.finditer(text)}
    for m in _CONFIG_SECRET_FILE.finditer(text):
        try:
            found.add(Path(m.group(1)).read_text().strip())
        except OSError:
            pass
    return {s for s in found if len(s) >= 10}


def assert_no_secrets(where: str, text: str | bytes, extra: Iterable[str] = ()) -> None:
    """Raises AssertionError if any known password shows in text."""
    data = text if isinstance(text, bytes) else text.encode(errors="replace")
    leaked = sorted(s for s in SECRETS | set(extra) if s.encode() in data)
    if leaked:
        raise AssertionError(f"a password ({leaked[0][:3]}...) shows in {where}")


def bridge_command(argv: list[str], log_dir: Path) -> tuple[list[str], Path | None]:
    """argv, under valgrind when HDB_BRIDGE_VALGRIND=1; returns it and the valgrind log to check."""
    if not VALGRIND:
        return argv, None
    valgrind = shutil.which("valgrind")
    if not valgrind:
        raise RuntimeError("HDB_BRIDGE_VALGRIND=1 but valgrind is not installed")
    vlog = Path(tempfile.mkstemp(prefix="valgrind-", suffix=".log", dir=log_dir)[1])
    return [valgrind, "--leak-check=full", "--show-leak-kinds=definite,indirect",
            "--errors-for-leak-kinds=definite,indirect", f"--error-exitcode={VALGRIND_EXIT}",
            f"--log-file={vlog}", *argv], vlog


def check_valgrind(vlog: Path | None, returncode: int | None) -> None:
    """A clean report: no error, no definite or indirect leak. Skipped for a process that was killed
    (valgrind writes no leak summary then)."""
    if vlog is None or returncode is None or returncode < 0:
        return
    report = vlog.read_text(errors="replace")
    if returncode == VALGRIND_EXIT or "ERROR SUMMARY: 0 errors" not in report or re.search(
            r"(definitely|indirectly) lost: [1-9]", report):
        raise AssertionError(f"valgrind found errors or leaks (exit {returncode}); {vlog}:\n{report[-6000:]}")
    summary = [line.split("== ", 1)[-1] for line in report.splitlines()
               if re.search(r"in use at exit|definitely lost|indirectly lost|ERROR SUMMARY", line)]
    log(f"valgrind, clean: {'; '.join(summary)}")


def run_bridge(args: list[str], *, binary: str | None = None, timeout: float = 10,
               **kw: Any) -> subprocess.CompletedProcess[str]:
    """Runs `hdb-bridge args` to completion (subprocess.run, text mode, output captured), under valgrind when
    asked; checks the valgrind report and that no known password shows in its output."""
    log_dir = Path(tempfile.mkdtemp(prefix="hdb-bridge-run-"))
    try:
        argv, vlog = bridge_command([binary or bridge_binary(), *args], log_dir)
        kw.setdefault("stdin", subprocess.DEVNULL)
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout * TIME_SCALE, **kw)
        check_valgrind(vlog, r.returncode)
        if r.returncode == VALGRIND_EXIT and vlog:
            raise AssertionError(f"valgrind: {vlog.read_text(errors='replace')[-4000:]}")
        assert_no_secrets(f"the output of hdb-bridge {' '.join(args)}", r.stdout + r.stderr)
        return r
    finally:
        shutil.rmtree(log_dir, ignore_errors=True)


def bridge_binary() -> str:
    """The daemon under test: $HDB_BRIDGE_BIN (ctest sets it), else the build/ tree's."""
    return os.environ.get("HDB_BRIDGE_BIN") or str(REPO / "build" / "daemon" / "hdb-bridge")


def _die_with_us(argv: list[str]) -> list[str]:
    """Prefixes argv so the process gets SIGKILL if the Python thread that started it dies (even by
    SIGKILL or a watchdog's _exit): no server outlives a crashed test. PID stays the same (exec)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else argv


class HdbError(RuntimeError):
    """A HarperDB helper failed; the message carries what the server said."""


def log(msg: str) -> None:
    print(f"[hdb] {msg}", file=sys.stderr, flush=True)


def wait_for(pred: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    """Polls pred() until it returns something truthy; raises TimeoutError naming `what`. The bound is
    TIME_SCALE times `timeout` (longer under valgrind)."""
    timeout *= TIME_SCALE
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on host a moment ago (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def harperdb_prefix() -> Path:
    return Path(os.environ.get("HDB4_PREFIX", REPO / ".deps" / f"harperdb-{HDB_VERSION}"))


def harperdb_entry() -> Path:
    return harperdb_prefix() / "node_modules" / "harperdb" / "bin" / "harperdb.js"


def ensure_harperdb_installed(timeout: float = 900) -> Path:
    """Installs harperdb@4.7.29 into .deps/ unless it is there; returns bin/harperdb.js."""
    pkg = harperdb_prefix() / "node_modules" / "harperdb" / "package.json"
    try:
        if json.loads(pkg.read_text()).get("version") == HDB_VERSION:
            return harperdb_entry()
    except (OSError, ValueError):
        pass
    log(f"installing harperdb@{HDB_VERSION} (about 35 s)")
    res = subprocess.run(["bash", str(INSTALL_SCRIPT)], stdin=subprocess.DEVNULL, timeout=timeout)
    if res.returncode != 0 or not harperdb_entry().is_file():
        raise HdbError(f"could not install harperdb@{HDB_VERSION} with {INSTALL_SCRIPT} (exit {res.returncode})")
    return harperdb_entry()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"({path} not readable)"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0): reap it if it is ours.
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def _session_pids(sid: int) -> list[int]:
    """PIDs whose session id is sid (HarperDB's workers and helpers live in the session setsid made).
    Zombies are left out: they hold nothing, and the server itself stays one until we reap it (and an
    orphan stays one if PID 1 never reaps)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == sid and fields[0] != "Z":  # fields after comm: state ppid pgrp session ...
            pids.append(int(entry.name))
    return pids


class HarperDB4:
    """A private HarperDB 4.7 on loopback: fresh root in a temp dir, free ports, our component installed.

    with HarperDB4() as hdb:
        hdb.ensure_table("dev", "animals")
        hdb.insert("dev", "animals", [{"id": 1, "name": "Harper"}])
    """

    def __init__(self, username: str = "admin", password: str | None = None, *,
                 ops_port: int | None = None, http_port: int | None = None, host: str = "127.0.0.1",
                 component: Path | None = COMPONENT_DIR, log_level: str = "warn") -> None:
        self.username = username
        # Distinctive, so a bridge that leaked it would be caught (see SECRETS).
        self.password = password or f"hdb4-pw-{secret_token()}"
        add_secret(self.password)
        self.host = host
        self.ops_port = ops_port
        self.http_port = http_port
        self.component = component
        self.log_level = log_level
        self.tmp: Path | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None  # HarperDB's main process (hdb.pid)
        self.sid: int | None = None  # the session setsid gave it and its workers
        self.timings: dict[str, float] = {}
        self._env: dict[str, str] = {}

    # --- paths and URLs -------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        assert self.tmp, "not started"
        return self.tmp / "hdb"

    @property
    def console_log(self) -> Path:
        assert self.tmp, "not started"
        return self.tmp / "console.log"

    @property
    def ops_url(self) -> str:
        return f"http://{self.host}:{self.ops_port}/"

    @property
    def http_url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.http_port}"

    def describe_failure(self) -> str:
        if not self.tmp:
            return "(HarperDB not started)"
        parts = [f"--- tail of {self.console_log}", _tail(self.console_log)]
        hdb_log = self.root / "log" / "hdb.log"
        if hdb_log.exists():
            parts += [f"--- tail of {hdb_log}", _tail(hdb_log)]
        return "\n".join(parts)

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self, timeout: float = 60) -> "HarperDB4":
        ensure_harperdb_installed()
        t0 = time.monotonic()
        self.tmp = Path(tempfile.mkdtemp(prefix="hdb4-"))
        (self.tmp / "home").mkdir()
        if self.component is not None:
            shutil.copytree(self.component, self.root / "components" / COMPONENT_NAME)
        self.ops_port = self.ops_port or free_port(self.host)
        self.http_port = self.http_port or free_port(self.host)
        loopback = lambda port: f"{self.host}:{port}"  # noqa: E731
        env = {
            **os.environ,
            "HOME": str(self.tmp / "home"),  # the installer writes ~/.harperdb/
            "TC_AGREEMENT": "yes",
            "ROOTPATH": str(self.root),
            "HDB_ADMIN_USERNAME": self.username,
            "HDB_ADMIN_PASSWORD": self.password,
            "OPERATIONSAPI_NETWORK_PORT": loopback(self.ops_port),
            "HTTP_PORT": loopback(self.http_port),
            "MQTT_NETWORK_PORT": loopback(free_port(self.host)),
            "MQTT_NETWORK_SECUREPORT": loopback(free_port(self.host)),
            "REPLICATION_SECUREPORT": loopback(free_port(self.host)),
            "THREADS_COUNT": "1",
            "LOCALSTUDIO_ENABLED": "false",
            "LOGGING_LEVEL": self.log_level,
        }
        env.pop("DEFAULTS_MODE", None)  # makes the installer prompt on stdin, then delete the root
        self._env = env
        try:
            self._spawn(timeout, "start")
        except BaseException:
            self.stop()
            raise
        self.timings["start"] = time.monotonic() - t0
        return self

    def _ready(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None and not _session_pids(self.sid or -1):
            raise HdbError(f"HarperDB exited with {self.proc.returncode} before it was ready")
        try:
            self.op({"operation": "user_info"}, timeout=2)
            return True
        except (OSError, HdbError):
            return False

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the main process, wait, SIGKILL what is left of its session, remove the root."""
        self._terminate(timeout)
        if self.tmp and os.environ.get("HDB_KEEP_ROOT") != "1":
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def _terminate(self, timeout: float) -> None:
        if self.pid and _pid_alive(self.pid):
            os.kill(self.pid, signal.SIGTERM)
            try:
                wait_for(lambda: not _pid_alive(self.pid), timeout, "HarperDB to exit after SIGTERM")
            except TimeoutError:
                log("HarperDB ignored SIGTERM; killing it")
        self._kill_session()

    def _kill_session(self) -> None:
        if self.sid:
            for pid in _session_pids(self.sid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            wait_for(lambda: not _session_pids(self.sid), 10, "HarperDB's processes to die")
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self.pid = None

    def kill9(self) -> None:
        """Crash test: SIGKILL every process of the server at once, keep the root for restart()."""
        self._kill_session()

    def restart(self, timeout: float = 60) -> None:
        """Stops the server (SIGTERM) and starts it again on the same root, ports and data."""
        self._terminate(10)
        self._spawn(timeout, "restart")

    def _spawn(self, timeout: float, what: str) -> None:
        with open(self.console_log, "ab") as out:
            self.proc = subprocess.Popen(_die_with_us(["node", str(harperdb_entry())]), env=self._env, cwd=self.tmp,
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        self.sid = self.proc.pid
        pid_file = self.root / "hdb.pid"
        try:
            wait_for(self._ready, timeout, f"HarperDB on {self.ops_url} to answer user_info", interval=0.2)
            self.pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 10, "hdb.pid"))
        except BaseException:
            log(f"HarperDB failed to {what}\n{self.describe_failure()}")
            self._kill_session()
            raise

    def __enter__(self) -> "HarperDB4":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- operations API -------------------------------------------------------------------------
    def auth_header(self, username: str | None = None, password: str | None = None) -> str:
        creds = f"{username or self.username}:{password or self.password}".encode()
        return "Basic " + base64.b64encode(creds).decode()

    def op(self, body: dict[str, Any], timeout: float = 30) -> Any:
        """POSTs one operation; returns the parsed JSON, raises HdbError with the body on non-2xx."""
        req = urllib.request.Request(self.ops_url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Authorization": self.auth_header()})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            text = e.read().decode(errors="replace")
            raise HdbError(f"{body.get('operation')}: HTTP {e.code}: {text}") from None

    def rest_status(self, path: str, timeout: float = 5) -> int:
        """Status of a REST GET on the HTTP port (404 means the table is not exported yet)."""
        req = urllib.request.Request(f"{self.http_url}{path}", headers={"Authorization": self.auth_header()})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                resp.read()
                return resp.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:  # refused or reset while the workers restart
            return 0

    def ensure_table(self, database: str, table: str, primary_key: str = "id", timeout: float = 60) -> None:
        self.ensure_tables(database, [table], primary_key, timeout)

    def ensure_tables(self, database: str, tables: list[str], primary_key: str = "id",
                      timeout: float = 60) -> None:
        """Creates the database and tables that are missing, then restarts the HTTP workers (once) so
        the component exports them, and waits until each is subscribable (REST GET 200, not 404)."""
        t0 = time.monotonic()
        described = self.op({"operation": "describe_all"})
        if database not in described:
            self.op({"operation": "create_database", "database": database})
        existing = described.get(database) or {}
        for table in tables:
            if table not in existing:
                self.op({"operation": "create_table", "database": database, "table": table,
                         "primary_key": primary_key})
        paths = [f"/{database}/{table}/" for table in tables]
        if any(self.rest_status(path) != 200 for path in paths):
            self.op({"operation": "restart_service", "service": "http_workers"})
            for path in paths:
                wait_for(lambda: self.rest_status(path) == 200, timeout, f"{path} to be exported", interval=0.2)
        self.timings["ensure_tables"] = time.monotonic() - t0

    def _write(self, operation: str, database: str, table: str, key: str, values: list[Any]) -> Any:
        return self.op({"operation": operation, "database": database, "table": table, key: values})

    def insert(self, database: str, table: str, records: list[dict[str, Any]]) -> Any:
        return self._write("insert", database, table, "records", records)

    def update(self, database: str, table: str, records: list[dict[str, Any]]) -> Any:
        return self._write("update", database, table, "records", records)

    def upsert(self, database: str, table: str, records: list[dict[str, Any]]) -> Any:
        return self._write("upsert", database, table, "records", records)

    def delete(self, database: str, table: str, ids: list[Any]) -> Any:
        return self._write("delete", database, table, "ids", ids)


class WsClient:
    """A minimal RFC 6455 client (text frames, no extensions) to check the HarperDB side without the daemon."""

    def __init__(self, url: str, authorization: str | None = None, timeout: float = 10) -> None:
        assert url.startswith("ws://"), url
        hostport, _, path = url[5:].partition("/")
        host, _, port = hostport.partition(":")
        self.sock = socket.create_connection((host, int(port or 80)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET /{path} HTTP/1.1", f"Host: {hostport}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        if authorization:
            lines.append(f"Authorization: {authorization}")
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise HdbError(f"WebSocket upgrade refused: {head.decode(errors='replace')}")
        self.close_code: int | None = None
        self.close_reason = ""

    def _recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("connection closed")
        return data

    def _need(self, n: int) -> bytes:
        while len(self.buf) < n:
            self.buf += self._recv()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self, timeout: float) -> str | None:
        """Next text message, or None on close (close_code set) or when nothing came within timeout."""
        self.sock.settimeout(timeout)
        try:
            message = b""
            while True:
                b0, b1 = self._need(2)
                n = b1 & 0x7F
                if n == 126:
                    n = int.from_bytes(self._need(2), "big")
                elif n == 127:
                    n = int.from_bytes(self._need(8), "big")
                payload = self._need(n)  # servers never mask
                opcode = b0 & 0x0F
                if opcode == 0x8:
                    self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                    self.close_reason = payload[2:].decode(errors="replace")
                    return None
                if opcode in (0x1, 0x2, 0x0):
                    message += payload
                    if b0 & 0x80:
                        return message.decode()
        except socket.timeout:
            return None
        except ConnectionError:
            self.close_code = self.close_code or 1006
            return None

    def messages(self, quiet: float, limit: float = 30) -> list[dict[str, Any]]:
        """Parsed messages until none arrives for `quiet` seconds (or `limit` in all, or a close)."""
        out: list[dict[str, Any]] = []
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            text = self.recv(quiet)
            if text is None:
                break
            out.append(json.loads(text))
        return out

    def close(self) -> None:
        try:
            mask = os.urandom(4)
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate((1000).to_bytes(2, "big")))
            self.sock.sendall(bytes([0x88, 0x80 | 2]) + mask + payload)
        except OSError:
            pass
        self.sock.close()

    def __enter__(self) -> "WsClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LineCollector:
    """Collects newline-terminated lines from a stream in a thread; waits on them with a bound.

    Each line is parsed as JSON on arrival; a line that is not JSON becomes {"__invalid__": line}.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.lines: list[str] = []
        self.parsed: list[dict[str, Any]] = []
        self.eof = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    @staticmethod
    def _parse(line: str) -> dict[str, Any]:
        try:
            value = json.loads(line)
        except ValueError:
            return {"__invalid__": line}
        return value if isinstance(value, dict) else {"__invalid__": line}

    def _start_reading(self, read: Callable[[], bytes]) -> None:
        def run() -> None:
            pending = b""
            try:
                while chunk := read():
                    pending += chunk
                    *complete, pending = pending.split(b"\n")
                    if complete:
                        texts = [c.decode(errors="replace") for c in complete]
                        parsed = [self._parse(t) for t in texts]
                        with self._cond:
                            self.lines.extend(texts)
                            self.parsed.extend(parsed)
                            self._cond.notify_all()
            except (OSError, ValueError):
                pass
            with self._cond:
                self.eof = True
                self._cond.notify_all()

        self._thread = threading.Thread(target=run, name=f"lines-{self.name}", daemon=True)
        self._thread.start()

    def envelopes(self, since: int = 0) -> list[dict[str, Any]]:
        """Parsed lines from index `since` on."""
        with self._cond:
            return self.parsed[since:]

    def mark(self) -> int:
        """The number of lines so far: pass it as `since` to look only at later lines."""
        with self._cond:
            return len(self.lines)

    def wait_lines(self, pred: Callable[[dict[str, Any]], bool] = lambda e: True, n: int = 1,
                   timeout: float = 10, since: int = 0) -> list[dict[str, Any]]:
        """Waits until n lines from index `since` on satisfy pred (given the parsed line); returns
        all such lines. Raises TimeoutError (with what did arrive) after `timeout` (times TIME_SCALE) or at EOF."""
        timeout *= TIME_SCALE
        deadline = time.monotonic() + timeout
        found: list[dict[str, Any]] = []
        scanned = since
        with self._cond:
            while True:
                found += [e for e in self.parsed[scanned:] if pred(e)]
                scanned = max(scanned, len(self.parsed))
                if len(found) >= n:
                    return found
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    why = "end of stream" if self.eof else f"{timeout:.1f} s"
                    tail = "\n".join(line[:300] for line in self.lines[-5:])
                    raise TimeoutError(f"{self.name}: {len(found)} of {n} lines after {why}; "
                                       f"{len(self.lines) - since} new lines, last ones:\n{tail}")
                self._cond.wait(min(left, 0.5))

    def wait_eof(self, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.eof, timeout * TIME_SCALE)


class Bridge(LineCollector):
    """The real hdb-bridge binary with a config written to a temp dir.

    stdout lines are collected (LineCollector); stderr goes to a file, read with log(). The daemon gets
    a NOTIFY_SOCKET of ours, so wait_ready() sees its sd_notify READY=1 (every table subscribed).
    config_file runs an existing config instead of config_text; capture=False leaves stdout and
    stderr on ours (the demo).

    Every bridge is checked when it stops (stop() or cleanup()): no known password (SECRETS, and those its
    config names) in its log, its stdout or /proc/PID/cmdline; under HDB_BRIDGE_VALGRIND=1 it runs under
    valgrind and its report must be clean.
    """

    def __init__(self, binary: str | Path, config_text: str = "", *, config_file: Path | None = None,
                 args: Iterable[str] = (), capture: bool = True, env: dict[str, str] | None = None) -> None:
        super().__init__("bridge stdout")
        self.tmp = Path(tempfile.mkdtemp(prefix="hdb-bridge-"))
        self.config = config_file or self.tmp / "hdb-bridge.yaml"
        if config_file is None:
            self.config.write_text(config_text)
        self.stderr_path = self.tmp / "stderr.log"
        self.notifications: list[str] = []
        self._notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._notify.bind(str(self.tmp / "notify.sock"))
        threading.Thread(target=self._read_notify, name="sd_notify", daemon=True).start()
        # Checkpoints go to a state dir of this run (systemd's STATE_DIRECTORY, which a config's
        # state_dir overrides): as root the default is /var/lib/hdb-bridge, shared and locked.
        (self.tmp / "state").mkdir()
        env = {**os.environ, "NOTIFY_SOCKET": str(self.tmp / "notify.sock"),
               "STATE_DIRECTORY": str(self.tmp / "state"), **(env or {})}
        self.secrets = secrets_in_config(self.config.read_text(errors="replace"))
        self._checked = False
        argv, self.vlog = bridge_command([str(binary), "--config", str(self.config), *args], self.tmp)
        self.started = time.monotonic()
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                _die_with_us(argv),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE if capture else None,
                stderr=err if capture else None, env=env, start_new_session=True)
        self.pid = self.proc.pid
        if capture:
            assert self.proc.stdout is not None
            self._start_reading(self.proc.stdout.read1)  # type: ignore[union-attr]
        else:
            self.eof = True

    def _read_notify(self) -> None:
        try:
            while data := self._notify.recv(4096):
                with self._cond:
                    self.notifications.append(data.decode(errors="replace"))
                    self._cond.notify_all()
        except OSError:
            pass

    def notified(self, text: str) -> bool:
        """True once a sd_notify datagram contained the line `text` (e.g. READY=1)."""
        with self._cond:
            return any(text in n.split("\n") for n in self.notifications)

    def wait_ready(self, timeout: float = 15) -> float:
        """Waits for READY=1 on NOTIFY_SOCKET; returns the seconds it took since the start."""
        timeout *= TIME_SCALE
        try:
            wait_for(lambda: self.notified("READY=1") or not self.alive(), timeout, "READY=1")
        except TimeoutError:
            pass
        if not self.notified("READY=1"):
            state = "running" if self.alive() else f"exited with {self.proc.returncode}"
            raise TimeoutError(f"hdb-bridge sent no READY=1 on NOTIFY_SOCKET within {timeout} s ({state}); "
                               f"notifications {self.notifications}\n--- log:\n{_tail(self.stderr_path, 30)}")
        return time.monotonic() - self.started

    def log(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")
        except OSError:
            return ""

    def alive(self) -> bool:
        return self.proc.poll() is None

    def vmrss_kib(self) -> int:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def under_asan(self) -> bool:
        return "libasan" in Path(f"/proc/{self.pid}/maps").read_text()

    def check_process_list(self) -> None:
        """No known password in /proc/PID/cmdline or comm (while it runs)."""
        for part in ("cmdline", "comm"):
            try:
                data = Path(f"/proc/{self.pid}/{part}").read_bytes()
            except OSError:
                continue
            assert_no_secrets(f"/proc/{self.pid}/{part} of hdb-bridge", data, self.secrets)

    def check_exited(self) -> None:
        """After the exit: no known password in the log or stdout; a clean valgrind report."""
        if self._checked or self.proc.poll() is None:
            return
        self._checked = True
        if self._thread:
            self._thread.join(5)
        assert_no_secrets("the hdb-bridge log (stderr)", self.log(), self.secrets)
        with self._cond:
            assert_no_secrets("hdb-bridge's stdout", "\n".join(self.lines), self.secrets)
        check_valgrind(self.vlog, self.proc.returncode)

    def wait_lines(self, pred: Callable[[dict[str, Any]], bool] = lambda e: True, n: int = 1,
                   timeout: float = 10, since: int = 0) -> list[dict[str, Any]]:
        try:
            return super().wait_lines(pred, n, timeout, since)
        except TimeoutError as e:
            state = "running" if self.alive() else f"exited with {self.proc.returncode}"
            raise TimeoutError(f"{e}\n--- hdb-bridge ({state}) log tail:\n{_tail(self.stderr_path, 30)}") from None

    def wait_log(self, text: str, timeout: float = 10) -> str:
        """Waits until the log contains text; returns the log."""
        wait_for(lambda: text in self.log(), timeout, f"{text!r} in the hdb-bridge log:\n{self.log()[-3000:]}")
        return self.log()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5) -> int:
        """Sends sig and returns the exit code; SIGKILLs and raises TimeoutError if it outlives timeout
        (times TIME_SCALE). Checks the output for passwords (and the valgrind report) once it exited."""
        timeout *= TIME_SCALE
        if self.proc.poll() is None:
            self.check_process_list()
            os.kill(self.pid, sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise TimeoutError(f"hdb-bridge did not exit within {timeout} s of signal {sig}") from None
        if self._thread:
            self._thread.join(5)
        self._drain_notify()
        self.check_exited()
        return self.proc.returncode

    def _drain_notify(self, timeout: float = 2) -> None:
        """Waits until the notify thread has read every datagram the bridge sent before it exited (e.g.
        STOPPING=1): on a loaded machine the thread may lag behind the exit."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                readable, _, _ = select.select([self._notify], [], [], 0)
            except (OSError, ValueError):
                return
            if not readable:
                with self._cond:  # the thread appends under the lock right after its recv
                    return
            time.sleep(0.01)

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(5)

    def cleanup(self) -> None:
        """Stops the bridge with SIGTERM (valgrind reports leaks only at a normal exit), SIGKILL if it hangs."""
        try:
            if self.proc.poll() is None:
                self.stop()
            else:
                self.check_exited()
        finally:
            if self.proc.stdout:
                self.proc.stdout.close()
            self._notify.close()
            shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> "Bridge":
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def _connect_unix(path: str | Path, timeout: float) -> socket.socket:
    def attempt() -> socket.socket | None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(path))
            return s
        except OSError:
            s.close()
            return None
    return wait_for(attempt, timeout, f"a Unix socket listening at {path}")


class UnixConsumer(LineCollector):
    """Connects to a Unix socket sink and collects its lines in a thread."""

    def __init__(self, path: str | Path, timeout: float = 10) -> None:
        super().__init__(f"unix consumer {path}")
        self.sock = _connect_unix(path, timeout)
        self._start_reading(lambda: self.sock.recv(65536))

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        if self._thread:
            self._thread.join(5)

    def __enter__(self) -> "UnixConsumer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StalledConsumer:
    """Connects to a Unix socket sink and never reads: the sink must cut it off, not wait for it."""

    def __init__(self, path: str | Path, timeout: float = 10) -> None:
        self.sock = _connect_unix(path, timeout)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)

    def disconnected(self) -> bool:
        """True once the sink closed its end (POLLHUP shows even with unread data queued)."""
        import select
        p = select.poll()
        p.register(self.sock, select.POLLHUP | select.POLLRDHUP)
        return any(ev & (select.POLLHUP | select.POLLRDHUP) for _, ev in p.poll(0))

    def drain(self, timeout: float = 10) -> bytes:
        """Reads what is queued until EOF (or timeout); returns it."""
        self.sock.settimeout(timeout)
        data = b""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and (chunk := self.sock.recv(65536)):
                data += chunk
        except (socket.timeout, OSError):
            pass
        return data

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "StalledConsumer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_SOURCE_STATS = re.compile(r"(?P<frames>\d+) messages, (?P<records>\d+) lines; dropped: (?P<malformed>\d+) malformed "
                   r"\((?P<oversized>\d+) over max_message_bytes\), (?P<duplicates>\d+) duplicates, "
                   r"(?P<ignored>\d+) ignored; (?P<connects>\d+) connects, (?P<drops>\d+) drops "
                   r"\((?P<timeouts>\d+) timeouts\), (?P<gaps>\d+) gaps")


def source_stats(log: str, source: str) -> dict[str, int]:
    """The counters a source (e.g. "server 'x'", "dev.t on server 'x'") logs when the bridge stops."""
    [line] = [x for x in log.splitlines() if f"{source}: " in x and "messages," in x]
    m = _SOURCE_STATS.search(line)
    assert m, line
    return {k: int(v) for k, v in m.groupdict().items()}


def start_module_harperdb(database: str, tables: list[str]) -> HarperDB4:
    """A test module's setUpModule: checks that the binary under test exists, then starts a HarperDB 4.7 with
    `tables` of `database` exported (describing the failure and stopping it if that fails). The caller stops it
    in tearDownModule."""
    binary = bridge_binary()
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"hdb-bridge binary not found at {binary} (set HDB_BRIDGE_BIN or build build/)")
    ensure_harperdb_installed()
    server = HarperDB4()
    server.start()
    try:
        server.ensure_tables(database, tables)
    except BaseException:
        print(server.describe_failure(), file=sys.stderr)
        server.stop()
        raise
    return server


def bridge_config(hdb: HarperDB4, tables: list[dict[str, Any]], sinks: list[dict[str, Any]], *,
                  server: str = "local", password: str | None = None, log_level: str = "info") -> str:
    """A hdb-bridge YAML config for one HarperDB 4 server (JSON scalars and flow maps are valid YAML)."""
    q = json.dumps
    lines = [
        f"log: {{level: {log_level}}}",
        "servers:",
        f"  {server}:",
        "    protocol: harperdb4",
        f"    url: {q(hdb.ws_url)}",
        f"    username: {q(hdb.username)}",
        f"    password: {q(hdb.password if password is None else password)}",
        "tables:",
        *(f"  - {q({'server': server, **t})}" for t in tables),
        "sinks:",
        *(f"  - {q(s)}" for s in sinks),
    ]
    return "\n".join(lines) + "\n"
