#!/usr/bin/env python3
"""The HarperDB 4.7 component we ship (packaging/harperdb-component): what a WebSocket client sees.

No hdb-bridge here: a minimal WebSocket client checks the server side the daemon relies on, so a
HarperDB or component regression shows up as itself and not as a daemon failure.
"""

from __future__ import annotations

import faulthandler
import sys
import unittest
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import hdb  # noqa: E402

HDB: hdb.HarperDB4


def setUpModule() -> None:
    global HDB
    faulthandler.dump_traceback_later(240, exit=True)  # the whole module; pdeathsig kills the server
    hdb.ensure_harperdb_installed()
    HDB = hdb.HarperDB4()
    HDB.start()
    try:
        HDB.ensure_table("dev", "animals")
        HDB.insert("dev", "animals", [{"id": i, "name": f"a{i}"} for i in (3, 1, 2)])
    except BaseException:
        print(HDB.describe_failure(), file=sys.stderr)
        HDB.stop()
        raise


def tearDownModule() -> None:
    HDB.stop()
    faulthandler.cancel_dump_traceback_later()


def ws(query: str = "", path: str = "/dev/animals/", password: str | None = None) -> hdb.WsClient:
    return hdb.WsClient(f"{HDB.ws_url}{path}{query}", HDB.auth_header(password=password))


class Component(unittest.TestCase):
    def live_change(self, client: hdb.WsClient, id: int) -> dict[str, Any]:
        HDB.upsert("dev", "animals", [{"id": id, "name": f"live{id}"}])
        [m] = client.messages(0.5)
        self.assertEqual((m["id"], m["type"]), (id, "put"))
        return m

    def test_connect_sends_current_records_with_size(self) -> None:
        with ws() as c:
            msgs = c.messages(0.7)
        current = [m for m in msgs if m["id"] in (1, 2, 3)]
        self.assertEqual([m["id"] for m in current], [1, 2, 3], "ordered by key")
        for m in current:
            self.assertEqual(m["type"], "put")
            self.assertIn("size", m)
            self.assertIsInstance(m["localTime"], float)

    def test_omit_current(self) -> None:
        with ws("?omitCurrent=true") as c:
            self.assertEqual(c.messages(0.7), [])
            m = self.live_change(c, 10)
            self.assertNotIn("size", m)

    def test_start_time_replays_changes_after_it(self) -> None:
        with ws("?omitCurrent=true") as c:
            checkpoint = self.live_change(c, 20)["localTime"]
        HDB.update("dev", "animals", [{"id": 20, "name": "changed"}])
        HDB.delete("dev", "animals", [20])
        with ws(f"?startTime={checkpoint!r}") as c:
            replay = c.messages(0.7)
            self.assertEqual([(m["id"], m["type"]) for m in replay], [(20, "put"), (20, "delete")])
            self.assertEqual(replay[0]["value"]["name"], "changed")
            self.assertTrue(all(m["localTime"] > checkpoint for m in replay))
            self.live_change(c, 21)  # then live

    def test_previous_count(self) -> None:
        HDB.upsert("dev", "animals", [{"id": 30, "name": "p1"}])
        HDB.upsert("dev", "animals", [{"id": 31, "name": "p2"}])
        with ws("?previousCount=2") as c:
            self.assertEqual([m["id"] for m in c.messages(0.7)], [30, 31])

    def test_every_table_of_every_database_is_exported(self) -> None:
        self.assertEqual(HDB.rest_status("/shop/orders/"), 404)
        HDB.ensure_table("shop", "orders", primary_key="order_no")
        HDB.insert("shop", "orders", [{"order_no": "A-1", "total": 5}])
        with ws("", path="/shop/orders/") as c:
            [m] = c.messages(0.7)
        self.assertEqual((m["id"], m["value"]["total"]), ("A-1", 5))

    def test_wrong_password_closes_with_3000(self) -> None:
        with ws(password="wrong") as c:
            self.assertEqual(c.messages(2), [])
            self.assertEqual(c.close_code, 3000)
            self.assertIn("Must login", c.close_reason)


if __name__ == "__main__":
    unittest.main()
