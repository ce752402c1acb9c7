#!/usr/bin/env bash
# README command 1: install what is missing, build, start a local HarperDB 4.7 (127.0.0.1:9925/9926)
# with dev.animals, run hdb-bridge on config/demo.yaml and insert a few records. Ctrl-C stops it all.
# Extra arguments go to demo.py (e.g. --seconds 20 to stop by itself).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo"

bash packaging/scripts/deps.sh
bash packaging/scripts/harperdb4-install.sh >/dev/null
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo
cmake --build build -j2
# exec: Ctrl-C reaches demo.py alone, which stops what it started by PID.
exec python3 packaging/scripts/demo.py "$@"
