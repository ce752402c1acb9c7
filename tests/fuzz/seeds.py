#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, cut from the captured sessions in ../shared/frames/ (found
relative to the repository root) and the shipped configs: seeds.py OUTDIR writes OUTDIR/<target>/."""

from __future__ import annotations

import hashlib
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FRAMES = REPO.parent / "shared" / "frames"


def json_tail(line: str) -> str | None:
    """The JSON value (or #1/#2) a capture line ends with, if any."""
    for m in re.finditer(r"[\[{]", line):
        text = line[m.start():].strip()
        try:
            json.loads(text)
            return text
        except ValueError:
            continue
    stripped = line.strip()
    return stripped[-2:] if stripped.endswith(("#1", "#2")) else None


def write(out: Path, target: str, text: str) -> None:
    d = out / target
    d.mkdir(parents=True, exist_ok=True)
    data = text.encode()
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def main() -> int:
    out = Path(sys.argv[1])
    if not FRAMES.is_dir():
        print(f"seeds.py: {FRAMES} not found", file=sys.stderr)
        return 1
    counts: dict[str, int] = {}

    def add(target: str, text: str) -> None:
        write(out, target, text)
        counts[target] = counts.get(target, 0) + 1

    for f in sorted(FRAMES.rglob("*")):
        if not f.is_file():
            continue
        hdb3 = "hdb3" in f.parts
        for line in f.read_text(errors="replace").splitlines():
            text = json_tail(line)
            if text is None:
                continue
            add("fuzz_json_pretty", text)
            if not hdb3:
                add("fuzz_hdb4_frame", text)
                continue
            add("fuzz_sc_packet", text)
            if text.startswith("{"):
                packet = json.loads(text)
                data = packet.get("data") if isinstance(packet, dict) else None
                if isinstance(data, dict) and isinstance(data.get("data"), dict):
                    # The mapper's first byte picks the primary key name ("id").
                    add("fuzz_hdb3_txn", "\0" + json.dumps(data["data"]))
                ack_data = packet.get("data") if isinstance(packet, dict) and "rid" in packet else None
                if isinstance(ack_data, dict) and ack_data.get("type") == "HDB_TRANSACTION":
                    add("fuzz_hdb3_txn", "\0" + json.dumps(ack_data))
    for f in sorted((REPO / "config").glob("*.yaml")):
        add("fuzz_config", f.read_text())
    # The unit tests' configs, good and broken: every raw string literal that looks like one.
    for f in sorted((REPO / "tests" / "unit").glob("test_config*.cpp")):
        for m in re.finditer(r'R"\((.*?)\)"', f.read_text(), re.S):
            if "servers" in m.group(1) or "sinks" in m.group(1):
                add("fuzz_config", m.group(1))
    # Ingest command lines: the unit tests' commands, valid and not.
    for m in re.finditer(r'R"\((\{.*?)\)"', (REPO / "tests" / "unit" / "test_write_command.cpp").read_text()):
        add("fuzz_write_command", m.group(1))
    for name, n in sorted(counts.items()):
        print(f"seeds: {name}: {n}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
