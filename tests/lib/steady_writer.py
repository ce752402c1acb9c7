"""A writer thread for resume tests: inserts ids first..last in batches at a steady rate, and retries each
batch until HarperDB confirms it (an insert that committed before its answer was lost comes back as skipped:
still written). After an outage it goes on at the same rate (no burst to catch up). Works for HarperDB 4 and 3
alike: the caller gives the insert call."""

from __future__ import annotations

import http.client
import threading
import time
from typing import Any, Callable

import hdb

Insert = Callable[[list[dict[str, Any]]], Any]


class SteadyWriter:
    def __init__(self, name: str, insert: Insert, last: int, *, rate: float, first: int = 1, batch: int = 50,
                 record: Callable[[int], dict[str, Any]] = lambda i: {"id": i, "seq": i},
                 retry_pause: float = 0.1) -> None:
        self.table = name
        self.insert = insert
        self.first, self.last, self.batch = first, last, batch
        self.interval = batch / rate
        self.record = record
        self.retry_pause = retry_pause
        self.confirmed: list[int] = []
        self.batches: list[tuple[int, int, float]] = []  # first id, last id, wall ms when confirmed
        self.failed_attempts = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._run, name=f"writer-{name}", daemon=True)

    def start(self) -> "SteadyWriter":
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            next_at = time.monotonic()
            for start in range(self.first, self.last + 1, self.batch):
                if self._stop.is_set():
                    return
                self._insert(list(range(start, min(start + self.batch, self.last + 1))))
                next_at += self.interval
                delay = next_at - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    next_at = time.monotonic()
        except BaseException as e:  # noqa: BLE001 - reported by join()
            self.error = e
        finally:
            with self._cond:
                self._cond.notify_all()

    def _insert(self, ids: list[int]) -> None:
        deadline = time.monotonic() + 120
        records = [self.record(i) for i in ids]
        while True:
            try:
                answer = self.insert(records)
                done = set(answer.get("inserted_hashes", [])) | set(answer.get("skipped_hashes", []))
                if done != set(ids):
                    raise hdb.HdbError(f"insert answered {answer}")
                with self._cond:
                    self.confirmed.extend(ids)
                    self.batches.append((ids[0], ids[-1], time.time() * 1000))
                    self._cond.notify_all()
                return
            except (OSError, hdb.HdbError, http.client.HTTPException, ValueError) as e:
                self.failed_attempts += 1
                if time.monotonic() > deadline:
                    raise hdb.HdbError(f"{self.table}: ids {ids[0]}..{ids[-1]} not confirmed within 120 s: {e}")
                if self._stop.wait(self.retry_pause):
                    return

    def count(self) -> int:
        with self._cond:
            return len(self.confirmed)

    def wait_count(self, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.confirmed) < n:
                if self.error or not self._thread.is_alive() and self._thread.ident is not None:
                    raise AssertionError(f"writer stopped at {len(self.confirmed)} ids: {self.error!r}")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"writer: {len(self.confirmed)} of {n} ids confirmed after {timeout} s")
                self._cond.wait(min(left, 0.5))

    def join(self, timeout: float = 120) -> set[int]:
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._stop.set()
            raise TimeoutError(f"writer for {self.table} still running after {timeout} s")
        if self.error:
            raise AssertionError(f"writer for {self.table} failed: {self.error!r}")
        return set(self.confirmed)

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:
            self._thread.join(15)
