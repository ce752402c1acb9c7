"""The bones shared by the scripted WebSocket servers of the tests (hdb4_fake.py's FakeHdb4Server, hdb3.py's
FakeScServer): a real listening socket on 127.0.0.1, optional TLS, the HTTP upgrade answered by hand
(RFC 6455), frames written by hand, and a stall mode that accepts a connection and then answers nothing.

A subclass implements serve(sock, request_line, headers) for each upgraded connection; it runs in its own
thread and its exceptions are kept in `errors`. Every socket is closed by close().
"""

from __future__ import annotations

import base64
import hashlib
import socket
import ssl
import threading

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame_header(opcode: int, n: int, fin: bool = True) -> bytes:
    """The header of a server frame (unmasked) with an n-byte payload."""
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        return bytes([first, n])
    if n < 65536:
        return bytes([first, 126]) + n.to_bytes(2, "big")
    return bytes([first, 127]) + n.to_bytes(8, "big")


def answer_upgrade(sock: socket.socket, buf: bytes = b"") -> tuple[str, dict[str, str], bytes]:
    """Reads the client's upgrade request and answers 101; returns (request line, headers, bytes read past
    the request)."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("closed before the upgrade")
        buf += data
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode(errors="replace").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    accept = base64.b64encode(hashlib.sha1((headers["sec-websocket-key"] + GUID).encode()).digest()).decode()
    sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Accept: {accept}\r\n\r\n").encode())
    return lines[0], headers, rest


class WsServerConn:
    """Writing side of one server connection: raw bytes and frames, thread-safe; drop() ends it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._send_lock = threading.Lock()

    def _ended(self) -> None:
        """Called when the connection is known to be gone (subclasses record it)."""

    def send_raw(self, data: bytes) -> bool:
        """Sends bytes as they are; False once the client is gone."""
        try:
            with self._send_lock:
                self.sock.sendall(data)
            return True
        except OSError:
            self._ended()
            return False

    def send_frame(self, opcode: int, payload: bytes, fin: bool = True) -> bool:
        return self.send_raw(frame_header(opcode, len(payload), fin) + payload)

    def drop(self) -> None:
        """Ends the TCP connection without a close frame (what a crashed server does: 1006)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        self._ended()


class FakeWsServer:
    """Listens on 127.0.0.1:0 (TLS when `tls` is given). stall=True: accept each connection (and finish the
    TLS handshake, if any) and never read or answer anything after that: an upgrade that never completes
    or, for a wss:// client of a plain server, a TLS handshake that stalls."""

    def __init__(self, *, tls: ssl.SSLContext | None = None, stall: bool = False) -> None:
        self.tls = tls
        self.stall = stall
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.accepted = 0
        self.errors: list[BaseException] = []
        self._socks: list[socket.socket] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accepter = threading.Thread(target=self._accept, name=f"fake-ws-{self.port}", daemon=True)
        self._accepter.start()

    def url(self, scheme: str | None = None) -> str:
        return f"{scheme or ('wss' if self.tls else 'ws')}://127.0.0.1:{self.port}"

    def serve(self, sock: socket.socket, request_line: str, headers: dict[str, str], rest: bytes) -> None:
        raise NotImplementedError

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self.listener.accept()
            except (socket.timeout, OSError):
                continue
            self.accepted += 1
            self._socks.append(raw)
            if self.stall and not self.tls:
                continue  # held open, never read, never answered
            t = threading.Thread(target=self._serve, args=(raw,), daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, raw: socket.socket) -> None:
        try:
            raw.settimeout(10)
            sock: socket.socket = raw
            if self.tls:
                sock = self.tls.wrap_socket(raw, server_side=True)  # takes over raw's descriptor
                self._socks.append(sock)
            if self.stall:
                return  # TLS done; the upgrade request is never answered
            request_line, headers, rest = answer_upgrade(sock)
            self.serve(sock, request_line, headers, rest)
        except BaseException as e:  # noqa: BLE001 - reported by the test
            if not self._stop.is_set():
                self.errors.append(e)

    def close(self) -> None:
        self._stop.set()
        self.listener.close()
        for s in list(self._socks):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass
        for t in [self._accepter, *self._threads]:
            t.join(5)
