"""A scripted HarperDB 4 WebSocket server on 127.0.0.1 (Python stdlib): a real server socket speaking
RFC 6455 by hand, so a test can send what a real HarperDB never does (broken JSON, binary frames,
huge or trickled frames) and stall where it never stalls (before the upgrade, inside a TLS handshake).

Each accepted connection runs script(conn) in its own thread after the upgrade; a reader thread per
connection answers pings (HarperDB does) and notes the client's close. Every socket is closed by close().
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import ssl
import threading
import time
from typing import Any, Callable

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame_header(opcode: int, n: int, fin: bool = True) -> bytes:
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        return bytes([first, n])
    if n < 65536:
        return bytes([first, 126]) + n.to_bytes(2, "big")
    return bytes([first, 127]) + n.to_bytes(8, "big")


def change(n: int, *, local_time: float | None = None, table: str = "animals") -> dict[str, Any]:
    """A HarperDB 4 put frame for record n; localTime is now (a resuming bridge drops older ones)."""
    lt = local_time if local_time is not None else round(now_ms(), 3)
    return {"id": n, "localTime": lt, "value": {"id": n, "name": f"{table}-{n}"}, "version": lt - 5, "type": "put"}


class Hdb4Conn:
    """The server side of one upgraded connection."""

    def __init__(self, sock: socket.socket, request: str) -> None:
        self.sock = sock
        self.request = request  # the request line, e.g. "GET /dev/animals/?omitCurrent=true HTTP/1.1"
        self.closed = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        """Reads client frames: answers pings, stops at close or EOF."""
        buf = b""
        try:
            self.sock.settimeout(None)
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                buf += data
                while len(buf) >= 2:
                    n, off = buf[1] & 0x7F, 2
                    if n == 126:
                        if len(buf) < 4:
                            break
                        n, off = int.from_bytes(buf[2:4], "big"), 4
                    elif n == 127:
                        if len(buf) < 10:
                            break
                        n, off = int.from_bytes(buf[2:10], "big"), 10
                    masked = buf[1] & 0x80
                    total = off + (4 if masked else 0) + n
                    if len(buf) < total:
                        break
                    mask = buf[off:off + 4] if masked else b"\0\0\0\0"
                    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(buf[total - n:total]))
                    opcode, buf = buf[0] & 0x0F, buf[total:]
                    if opcode == 0x9:
                        self.send_frame(0xA, payload)
                    elif opcode == 0x8:
                        return
        except OSError:
            pass
        finally:
            self.closed.set()

    def send_raw(self, data: bytes) -> bool:
        """Sends bytes as they are; False once the client is gone."""
        try:
            with self._lock:
                self.sock.sendall(data)
            return True
        except OSError:
            self.closed.set()
            return False

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True) -> bool:
        return self.send_raw(frame_header(opcode, len(payload), fin) + payload)

    def send_text(self, text: str | bytes) -> bool:
        return self.send_frame(0x1, text.encode() if isinstance(text, str) else text)

    def send_json(self, value: Any) -> bool:
        return self.send_text(json.dumps(value))

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.send_frame(0x8, code.to_bytes(2, "big") + reason.encode())
        self.drop()

    def drop(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.closed.set()

    def wait_closed(self, timeout: float) -> bool:
        return self.closed.wait(timeout)


class FakeHdb4Server:
    """Listens on 127.0.0.1:0. script(conn) runs for every upgraded connection. upgrade=False: accept the
    TCP connection and never answer (an upgrade or, for a wss:// client, a TLS handshake that stalls)."""

    def __init__(self, script: Callable[[Hdb4Conn], None] | None = None, *, upgrade: bool = True) -> None:
        self.script = script
        self.upgrade = upgrade
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.connections: list[Hdb4Conn] = []
        self.errors: list[BaseException] = []
        self._socks: list[socket.socket] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, daemon=True)
        self._accepter.start()

    def url(self, scheme: str = "ws") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            self._socks.append(raw)
            if not self.upgrade:
                continue  # held open, never read, never answered
            t = threading.Thread(target=self._serve, args=(raw,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            raw.settimeout(10)
            buf = b""
            while b"\r\n\r\n" not in buf:
                data = raw.recv(65536)
                if not data:
                    return
                buf += data
            head = buf.split(b"\r\n\r\n", 1)[0].decode(errors="replace").split("\r\n")
            headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in head[1:])}
            accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + GUID).encode()).digest()).decode()
            raw.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
            conn = Hdb4Conn(raw, head[0])
            self.connections.append(conn)
            if self.script:
                self.script(conn)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            if not self._stop.is_set():
                self.errors.append(e)

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        for s in self._socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()
        for t in [self._accepter, *self._threads]:
            t.join(5)


def stream_changes(conn: Hdb4Conn, start: int, interval: float, stop: threading.Event, table: str = "good") -> None:
    """A healthy feed: one put every `interval` s until stop is set or the client leaves."""
    n = start
    while not stop.is_set() and not conn.closed.is_set():
        if not conn.send_json(change(n, table=table)):
            return
        n += 1
        stop.wait(interval)


def now_ms() -> float:
    return time.time() * 1000.0
