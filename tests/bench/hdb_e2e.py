#!/usr/bin/env python3
"""End to end with a real HarperDB 4.7 (tests/lib/hdb.py): does the bridge keep up with HarperDB's fastest
insert rate and with its catch-up replay, and what share of one core does it use meanwhile?

    hdb_e2e.py --bridge BIN --tools DIR [--records N]

1. live: the bridge follows dev.bench (one Unix consumer) while one client inserts N records in batches of
   500 as fast as HarperDB takes them; the consumer must get all N, in order.
2. catch-up: a second bridge with no checkpoint and `start: {history: 1h}` replays those N changes from
   HarperDB's history; the same checks.
Prints records/s and the bridge's CPU share (its CPU seconds over the wall time) of each phase as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))
import hdb  # noqa: E402
import run  # noqa: E402  (the throughput driver's helpers)

ID_BASE = 100000000000  # the consumer expects ids ID_BASE, ID_BASE + 1, ... (tests/bench/frames.h kIdBase)
BATCH = 500


def record(i: int) -> dict:
    """~300 bytes of JSON, like the feeder's small record."""
    return {"id": ID_BASE + i, "name": "Harper", "type": "dog", "breed": "Australian Shepherd", "age": 5,
            "tags": ["good", "herding"], "notes": "x" * 120}


def bridge_config(tmp: Path, server: hdb.HarperDB4, start: str) -> Path:
    # replay: a consumer that connects a few ms after the bridge still gets every line (the catch-up may
    # start before it); queue_bytes bounds that ring, so it must hold all N lines.
    cfg = tmp / "hdb-bridge.yaml"
    cfg.write_text("\n".join([
        "log: {level: warn}", f"state_dir: {tmp}/state", "servers:", "  local:", "    protocol: harperdb4",
        f"    url: {server.ws_url}", f"    username: {server.username}", f"    password: {server.password}",
        "tables:", f"  - {{server: local, database: dev, table: bench, start: {start}}}",
        "sinks:", f"  - {{name: bench, type: unix, path: {tmp}/bench.sock, tables: [dev.bench], queue_bytes: 64MiB, "
        "replay: 1000000}",
    ]) + "\n")
    return cfg


def phase(b: run.Bench, server: hdb.HarperDB4, records: int, start: str, insert: bool) -> dict:
    """live (insert=True): the clock runs while N records are inserted and delivered.
    catch-up: it runs from the bridge's start (connect, subscribe, replay) to the last line delivered.
    catch-up also reports the CPU from the consumer's first byte to its last line (the replay's own cost)."""
    tmp = Path(tempfile.mkdtemp(dir=b.tmp))
    t0 = time.monotonic()
    bridge = b.start([b.bridge, "--config", str(bridge_config(tmp, server, start))], stdout=None,
                     stderr=open(tmp / "bridge.log", "w"))
    hdb.wait_for(lambda: (tmp / "bench.sock").exists(), 20, "the bridge's socket", interval=0.005)
    consumer = b.start([str(b.tools / "bench-consumer"), "--path", str(tmp / "bench.sock"),
                        "--expect", str(records), "--idle", "30"])
    consumer.expect("ready", 20)
    cpu0 = 0.0
    if insert:
        time.sleep(1.0)  # connected and subscribed (the bridge logs nothing at warn level)
        cpu0, t0 = run.cpu_seconds(bridge.p.pid), time.monotonic()
        for i in range(0, records, BATCH):
            server.insert("dev", "bench", [record(j) for j in range(i, min(records, i + BATCH))])
    # live: the inserts above block this thread, so "first" is read late; the clock starts at cpu0 anyway.
    consumer.expect("first", 600)
    cpu_first = cpu0 if insert else run.cpu_seconds(bridge.p.pid)
    res = json.loads(consumer.expect("{", 600))
    wall = time.monotonic() - t0
    cpu_end = run.cpu_seconds(bridge.p.pid)
    cpu = cpu_end - cpu0
    # The lines themselves: CPU from the consumer's first byte to its last line, over that time.
    res.update({"lines_cpu_s": cpu_end - cpu_first,
                "lines_core_share": (cpu_end - cpu_first) / res["seconds"] if res["seconds"] else 0.0})
    res.update({"wall_s": wall, "rec_s": records / wall, "bridge_cpu_s": cpu, "bridge_core_share": cpu / wall,
                "peak_rss_mib": run.status_mib(bridge.p.pid, "VmHWM"),
                "ok": res["missing"] == 0 and res["out_of_order"] == 0})
    b.stop_all()
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bridge", required=True)
    ap.add_argument("--tools", required=True)
    ap.add_argument("--records", type=int, default=50_000)
    args = ap.parse_args()
    b = run.Bench(args)
    results = {}
    try:
        with hdb.HarperDB4() as server:
            server.ensure_table("dev", "bench")
            results["live"] = phase(b, server, args.records, "live", insert=True)
            results["catch_up"] = phase(b, server, args.records, "{history: 1h}", insert=False)
    finally:
        b.cleanup()
    for name, r in results.items():
        print(f"real HarperDB 4.7, {name:<8}: {r['lines']} records in {r['wall_s']:.2f} s = {r['rec_s']:,.0f} "
              f"records/s (consumer: {r['lines'] / r['seconds']:,.0f}/s from first to last line); bridge CPU {r['bridge_cpu_s']:.2f} s = {r['bridge_core_share']:.1%} of one core, "
              f"peak RSS {r['peak_rss_mib']:.1f} MiB; {'all lines' if r['ok'] else 'MISSING LINES'}")
        if name == "catch_up":
            print(f"  {'':<8}  first to last line only: bridge CPU {r['lines_cpu_s']:.2f} s = "
                  f"{r['lines_core_share']:.1%} of one core")
    print(json.dumps(results))
    return 0 if all(r["ok"] for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
