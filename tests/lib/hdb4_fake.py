"""A scripted HarperDB 4 WebSocket server on 127.0.0.1 (Python stdlib): a real server socket speaking
RFC 6455 by hand, so a test can send what a real HarperDB never does (broken JSON, binary frames,
huge or trickled frames) and stall where it never stalls (before the upgrade, inside a TLS handshake).

Each accepted connection runs script(conn) in its own thread after the upgrade; a reader thread per
connection answers pings (HarperDB does) and notes the client's close. Every socket is closed by close().
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ws_fake import FakeWsServer, WsServerConn, frame_header  # noqa: E402,F401 - frame_header: for the tests


def change(n: int, *, local_time: float | None = None, table: str = "animals") -> dict[str, Any]:
    """A HarperDB 4 put frame for record n; localTime is now (a resuming bridge drops older ones)."""
    lt = local_time if local_time is not None else round(now_ms(), 3)
    return {"id": n, "localTime": lt, "value": {"id": n, "name": f"{table}-{n}"}, "version": lt - 5, "type": "put"}


class Hdb4Conn(WsServerConn):
    """The server side of one upgraded connection."""

    def __init__(self, sock: socket.socket, request: str, rest: bytes = b"") -> None:
        super().__init__(sock)
        self.request = request  # the request line, e.g. "GET /dev/animals/?omitCurrent=true HTTP/1.1"
        self.closed = threading.Event()
        threading.Thread(target=self._read, args=(rest,), daemon=True).start()

    def _ended(self) -> None:
        self.closed.set()

    def _read(self, buf: bytes) -> None:
        """Reads client frames: answers pings, stops at close or EOF."""
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

    def send_text(self, text: str | bytes) -> bool:
        return self.send_frame(0x1, text.encode() if isinstance(text, str) else text)

    def send_json(self, value: Any) -> bool:
        return self.send_text(json.dumps(value))

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.send_frame(0x8, code.to_bytes(2, "big") + reason.encode())
        self.drop()

    def wait_closed(self, timeout: float) -> bool:
        return self.closed.wait(timeout)


class FakeHdb4Server(FakeWsServer):
    """Listens on 127.0.0.1:0. script(conn) runs for every upgraded connection. upgrade=False: accept the
    TCP connection and never answer (an upgrade or, for a wss:// client, a TLS handshake that stalls)."""

    def __init__(self, script: Callable[[Hdb4Conn], None] | None = None, *, upgrade: bool = True) -> None:
        self.script = script
        self.connections: list[Hdb4Conn] = []
        super().__init__(stall=not upgrade)

    def serve(self, sock: socket.socket, request_line: str, headers: dict[str, str], rest: bytes) -> None:
        conn = Hdb4Conn(sock, request_line, rest)
        self.connections.append(conn)
        if self.script:
            self.script(conn)


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
