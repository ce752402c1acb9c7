#!/usr/bin/env python3
"""The README's first command, after deps and build (packaging/scripts/demo.sh): a fresh HarperDB 4.7 on
127.0.0.1:9925 (operations) and :9926 (HTTP) with dev.animals, hdb-bridge on config/demo.yaml in the
foreground, a few sample inserts written through the bridge's ingest socket. Ctrl-C or SIGTERM stops everything it started, by PID.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "lib"))
import hdb  # noqa: E402

OPS_PORT, HTTP_PORT = 9925, 9926  # config/demo.yaml points at 9926
# The demo instance's admin password: config/demo.yaml and the README's curl line use it.
DEMO_PASSWORD = "password"
SOCKET = Path("/run/hdb-bridge/animals.sock")  # config/demo.yaml's unix sink
ENTRY = Path("/run/hdb-bridge/entry.sock")  # config/demo.yaml's ingest sink
STATE_DIR = Path("/run/hdb-bridge/demo-state")  # config/demo.yaml's state_dir
SAMPLES = [
    {"id": 1, "name": "Harper", "type": "dog", "age": 5},
    {"id": 2, "name": "Penny", "type": "cat", "age": 3},
    {"id": 3, "name": "Polly", "type": "bird", "age": 1},
]


class Stop(Exception):
    """Raised in the main thread by SIGTERM/SIGINT."""


def on_signal(signum: int, _frame: object) -> None:
    raise Stop(signal.Signals(signum).name)


def ingest(command: dict) -> dict:
    """Writes one command to the bridge's ingest socket; returns its answer line."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(30)
        s.connect(str(ENTRY))
        s.sendall((json.dumps(command) + "\n").encode())
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = s.recv(4096)
            if not chunk:
                raise hdb.HdbError(f"{ENTRY} closed without answering")
            answer += chunk
    return json.loads(answer)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--binary", default=hdb.bridge_binary())
    ap.add_argument("--config", default=str(hdb.REPO / "config" / "demo.yaml"))
    ap.add_argument("--seconds", type=float, default=0, help="stop by itself after this long (0: run until Ctrl-C)")
    args = ap.parse_args()

    busy = [p for p in (OPS_PORT, HTTP_PORT) if hdb.port_in_use(p)]
    if busy:
        print(f"demo: port(s) {', '.join(map(str, busy))} on 127.0.0.1 are taken (another HarperDB?); "
              f"the demo needs {OPS_PORT} and {HTTP_PORT}: stop what uses them and run it again", file=sys.stderr)
        return 1
    try:
        # Each demo starts a fresh HarperDB: checkpoints of the last one point into a history
        # that no longer exists.
        shutil.rmtree(STATE_DIR, ignore_errors=True)
        SOCKET.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        print(f"demo: cannot create {SOCKET.parent} for the Unix socket sink: {e} (run as root)", file=sys.stderr)
        return 1

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server: hdb.HarperDB4 | None = None
    bridge: hdb.Bridge | None = None
    try:
        print(f"demo: starting HarperDB {hdb.HDB_VERSION} on 127.0.0.1:{OPS_PORT} (operations) "
              f"and :{HTTP_PORT} (HTTP/WebSocket)", file=sys.stderr)
        server = hdb.HarperDB4(ops_port=OPS_PORT, http_port=HTTP_PORT, password=DEMO_PASSWORD)
        server.start()
        server.ensure_table("dev", "animals")
        print(f"demo: HarperDB up in {server.timings['start']:.1f} s, dev.animals exported in "
              f"{server.timings['ensure_tables']:.1f} s; starting hdb-bridge --config {args.config}", file=sys.stderr)
        bridge = hdb.Bridge(args.binary, config_file=Path(args.config), capture=False)
        bridge.wait_ready(20)
        # The samples go in through the bridge's own write path.
        answer = ingest({"op": "insert", "database": "dev", "table": "animals", "records": SAMPLES, "ref": "samples"})
        print(f"demo: inserted the samples through {ENTRY}; it answered {json.dumps(answer)}", file=sys.stderr)
        if not answer.get("ok"):
            return 1
        time.sleep(0.3)  # let the sample lines print before the instructions
        curl_conf = server.tmp / "curl.conf"  # type: ignore[operator]
        curl_conf.write_text(f'user = "{server.username}:{server.password}"\n')
        curl_conf.chmod(0o600)
        print(f"""
demo: every change to dev.animals prints above as one JSON line. In another shell:
  insert:  curl -sK {curl_conf} http://127.0.0.1:{OPS_PORT}/ -H 'Content-Type: application/json' -d '{{"operation":"insert","database":"dev","table":"animals","records":[{{"id":4,"name":"Rex","type":"dog"}}]}}'
  or through the bridge:
           echo '{{"op":"insert","database":"dev","table":"animals","records":[{{"id":5,"name":"Kit","type":"cat"}}]}}' | socat -t 5 - UNIX-CONNECT:{ENTRY}
  tail:    socat - UNIX-CONNECT:{SOCKET}
demo: Ctrl-C stops hdb-bridge and HarperDB.
""", file=sys.stderr, flush=True)
        deadline = time.monotonic() + args.seconds if args.seconds else None
        while bridge.alive() and (deadline is None or time.monotonic() < deadline):
            time.sleep(0.2)
        if not bridge.alive():
            print(f"demo: hdb-bridge exited with {bridge.proc.returncode}", file=sys.stderr)
            return 1
        return 0
    except Stop as why:
        print(f"\ndemo: {why}: stopping", file=sys.stderr)
        return 0
    except (hdb.HdbError, TimeoutError, OSError) as e:
        print(f"demo: {e}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not interrupt the cleanup
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if bridge is not None:
            try:
                code = bridge.stop(signal.SIGTERM, 5)
                print(f"demo: hdb-bridge exited with {code}", file=sys.stderr)
            except TimeoutError as e:
                print(f"demo: {e}", file=sys.stderr)
            bridge.cleanup()
        if server is not None:
            server.stop()
            print("demo: HarperDB stopped", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
