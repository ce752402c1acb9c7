"""The checks every hostile scenario ends with (test_hostile, test_hostile_hdb3): the healthy table's consumer
kept receiving in order, the bridge is alive, and its VmRSS came back near the baseline taken after a warm-up."""

from __future__ import annotations

import unittest

import hdb


class HealthyNeighbour:
    def __init__(self, case: unittest.TestCase, bridge: hdb.Bridge, consumer: hdb.UnixConsumer,
                 table: str = "good") -> None:
        self.case, self.bridge, self.consumer, self.table = case, bridge, consumer, table
        self.under_asan = bridge.under_asan()
        self.watch_memory = not hdb.VALGRIND  # under valgrind, VmRSS is valgrind's; its leak check stands in
        # ASan keeps freed memory in quarantine: allow it more headroom than glibc's malloc.
        self.tolerance = (48 if self.under_asan else 8) * 1024
        self.baseline = 0  # KiB; 0 until take_baseline()

    def ids(self) -> list[int]:
        return [e["id"] for e in self.consumer.envelopes() if e.get("table") == self.table]

    def take_baseline(self) -> None:
        self.baseline = self.bridge.vmrss_kib()

    def after(self, what: str) -> int:
        """Checks the neighbour after scenario `what`; returns the bridge's VmRSS in KiB."""
        before = len(self.ids())
        try:
            hdb.wait_for(lambda: len(self.ids()) >= before + 10, 10, f"healthy lines flowing after {what}")
        except TimeoutError as e:
            self.case.fail(f"{e}\n{self.bridge.log()[-3000:]}")
        ids = self.ids()
        # Each reconnect of the healthy feed starts again at 1; within a connection ids go up by 1.
        breaks = [(a, b) for a, b in zip(ids, ids[1:]) if b != a + 1 and b != 1]
        self.case.assertEqual(breaks, [], f"the healthy consumer's stream is intact after {what}")
        self.case.assertTrue(self.bridge.alive(), f"the bridge survived {what}\n{self.bridge.log()[-3000:]}")
        if not (self.baseline and self.watch_memory):
            return self.bridge.vmrss_kib()
        try:
            return hdb.wait_for(lambda: (r := self.bridge.vmrss_kib()) <= self.baseline + self.tolerance and r, 15,
                                f"VmRSS back near its baseline after {what}", interval=0.5)
        except TimeoutError:
            self.case.fail(f"VmRSS {self.bridge.vmrss_kib()} KiB after {what}, baseline {self.baseline} KiB")
