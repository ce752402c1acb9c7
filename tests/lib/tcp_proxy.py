"""A small TCP forwarder for fault-injection tests: put it between hdb-bridge and HarperDB, then cut,
stall, hold or refuse connections on purpose.

Standard library only. One thread runs a poll() loop over the listener and every connection; the test's
calls are queued to that thread and wait (bounded) until it has carried them out, so when cut() returns
every connection is closed.

    with TcpProxy("127.0.0.1", hdb.http_port) as proxy:
        url = f"ws://127.0.0.1:{proxy.port}"
        proxy.cut(refuse=True)   # close every connection, both sides; refuse new ones
        proxy.restore()          # accept and forward again
        proxy.stall()            # stop forwarding on the open connections without closing them
"""

from __future__ import annotations

import errno
import select
import socket
import threading
import time
from typing import Any, Callable

_CHUNK = 65536
_MAX_BUFFER = 1 << 20  # per direction; past it the source is not read until the destination takes some


class _Pair:
    """One client connection and its upstream connection."""

    def __init__(self, ident: int, client: socket.socket, upstream: socket.socket) -> None:
        self.id = ident
        self.client = client
        self.upstream = upstream
        self.to_upstream = bytearray()
        self.to_client = bytearray()
        self.stalled = False
        self.bytes_up = 0
        self.bytes_down = 0

    def close(self) -> None:
        for s in (self.client, self.upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()


class TcpProxy:
    """Forwards 127.0.0.1:port to target_host:target_port.

    - hold() / release(): stop / resume accepting; connections wait in the listen backlog meanwhile
      (a client's connect() succeeds, its first bytes wait), so a test can get ready before any data flows.
    - cut(refuse=...): close every open connection on both sides now; with refuse=True also close each new
      connection right after accepting it, until restore().
    - stall(): the open connections stop forwarding without closing: what either side sends is read and
      thrown away (a black hole, like a dead network path), so only a liveness check can notice.
      New connections are forwarded normally.
    - events: (monotonic time, text) of what happened, e.g. "close #3 by client (stalled)".
    """

    def __init__(self, target_host: str, target_port: int, host: str = "127.0.0.1", port: int = 0,
                 name: str = "proxy") -> None:
        self.target = (target_host, target_port)
        self.name = name
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((host, port))
        self._listener.listen(128)
        self._listener.setblocking(False)
        self.host, self.port = self._listener.getsockname()[:2]
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._commands: list[tuple[Callable[[], Any], threading.Event, list[Any]]] = []
        self._lock = threading.Lock()
        self._pairs: dict[int, _Pair] = {}
        self._next_id = 1
        self._held = False
        self._refusing = False
        self._running = True
        self.events: list[tuple[float, str]] = []
        self.accepted = 0
        self._thread = threading.Thread(target=self._loop, name=f"tcp-proxy-{self.port}", daemon=True)
        self._thread.start()

    # --- the test's side ------------------------------------------------------------------------
    def _call(self, fn: Callable[[], Any], timeout: float = 5) -> Any:
        done = threading.Event()
        result: list[Any] = []
        with self._lock:
            if not self._running:
                raise RuntimeError(f"{self.name} is closed")
            self._commands.append((fn, done, result))
        self._wake_w.send(b"x")
        if not done.wait(timeout):
            raise TimeoutError(f"{self.name}: the proxy thread did not answer within {timeout} s")
        return result[0] if result else None

    def hold(self) -> None:
        self._call(lambda: self._set("_held", True))

    def release(self) -> None:
        self._call(lambda: self._set("_held", False))

    def cut(self, refuse: bool = False) -> int:
        """Closes every open connection on both sides; returns how many. refuse=True: until restore(),
        every new connection is closed as soon as it is accepted."""
        def do() -> int:
            self._refusing = refuse
            n = len(self._pairs)
            for pair in list(self._pairs.values()):
                self._close(pair, "cut")
            return n
        return self._call(do)

    def restore(self) -> None:
        self._call(lambda: self._set("_refusing", False))

    def stall(self) -> list[int]:
        """Stalls every open connection (see the class doc); returns their ids."""
        def do() -> list[int]:
            for pair in self._pairs.values():
                pair.stalled = True
                pair.to_client.clear()
                pair.to_upstream.clear()
                self._event(f"stall #{pair.id}")
            return list(self._pairs)
        return self._call(do)

    def open_connections(self) -> list[int]:
        return self._call(lambda: [p.id for p in self._pairs.values() if not p.stalled])

    def events_since(self, t: float) -> list[tuple[float, str]]:
        with self._lock:
            return [e for e in self.events if e[0] >= t]

    def close(self) -> None:
        with self._lock:
            running = self._running
        if running:
            try:
                self._call(lambda: self._set("_running", False))
            except (TimeoutError, RuntimeError, OSError):
                pass
        self._thread.join(5)
        for pair in list(self._pairs.values()):
            pair.close()
        self._pairs.clear()
        for s in (self._listener, self._wake_r, self._wake_w):
            s.close()

    def __enter__(self) -> "TcpProxy":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the proxy thread -----------------------------------------------------------------------
    def _set(self, attr: str, value: Any) -> None:
        setattr(self, attr, value)

    def _event(self, text: str) -> None:
        with self._lock:
            self.events.append((time.monotonic(), text))

    def _close(self, pair: _Pair, why: str) -> None:
        if self._pairs.pop(pair.id, None) is None:
            return
        pair.close()
        self._event(f"close #{pair.id} {why}{' (stalled)' if pair.stalled else ''}")

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.ECONNABORTED, errno.EPROTO):
                    continue
                return
            self.accepted += 1
            ident = self._next_id
            self._next_id += 1
            if self._refusing:
                client.close()
                self._event(f"refuse #{ident}")
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError as e:
                client.close()
                self._event(f"upstream down #{ident}: {e}")
                continue
            for s in (client, upstream):
                s.setblocking(False)
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._pairs[ident] = _Pair(ident, client, upstream)
            self._event(f"open #{ident}")

    def _pump(self, pair: _Pair, src: socket.socket, buf: bytearray, side: str) -> None:
        """Reads what src has into buf (or discards it when stalled); closes the pair at EOF."""
        try:
            data = src.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(pair, f"by {side}")
            return
        if pair.stalled:
            return
        buf += data
        if side == "client":
            pair.bytes_up += len(data)
        else:
            pair.bytes_down += len(data)

    def _drain(self, pair: _Pair, dst: socket.socket, buf: bytearray, side: str) -> None:
        try:
            n = dst.send(buf)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(pair, f"by {side} (write failed)")
            return
        del buf[:n]

    def _loop(self) -> None:
        poller_events = select.POLLIN | select.POLLPRI
        while True:
            with self._lock:
                commands, self._commands = self._commands, []
            for fn, done, result in commands:
                try:
                    result.append(fn())
                finally:
                    done.set()
            if not self._running:
                for pair in list(self._pairs.values()):
                    self._close(pair, "proxy closing")
                return
            poller = select.poll()
            owners: dict[int, tuple[_Pair | None, str]] = {self._wake_r.fileno(): (None, "wake")}
            poller.register(self._wake_r, poller_events)
            if not self._held:
                poller.register(self._listener, poller_events)
                owners[self._listener.fileno()] = (None, "listener")
            for pair in self._pairs.values():
                for sock, side, inbuf, outbuf in ((pair.client, "client", pair.to_upstream, pair.to_client),
                                                  (pair.upstream, "upstream", pair.to_client, pair.to_upstream)):
                    mask = 0
                    if pair.stalled or len(inbuf) < _MAX_BUFFER:
                        mask |= select.POLLIN
                    if outbuf and not pair.stalled:
                        mask |= select.POLLOUT
                    poller.register(sock, mask)
                    owners[sock.fileno()] = (pair, side)
            for fd, ev in poller.poll(1000):
                pair, side = owners[fd]
                if side == "wake":
                    try:
                        while self._wake_r.recv(4096):
                            pass
                    except (BlockingIOError, InterruptedError):
                        pass
                    continue
                if side == "listener":
                    self._accept()
                    continue
                assert pair is not None
                if pair.id not in self._pairs:
                    continue  # closed earlier in this round
                src = pair.client if side == "client" else pair.upstream
                inbuf = pair.to_upstream if side == "client" else pair.to_client
                outbuf = pair.to_client if side == "client" else pair.to_upstream
                if ev & select.POLLOUT and pair.id in self._pairs:
                    self._drain(pair, src, outbuf, side)
                if ev & (select.POLLIN | select.POLLHUP | select.POLLERR) and pair.id in self._pairs:
                    self._pump(pair, src, inbuf, side)
                # Forward right away rather than waiting for the next round's POLLOUT.
                other = pair.upstream if side == "client" else pair.client
                if inbuf and not pair.stalled and pair.id in self._pairs:
                    self._drain(pair, other, inbuf, "upstream" if side == "client" else "client")
