#!/bin/bash
# The benchmark suite (not part of the test command): builds hdb-bridge (Release flags, tests off) into
# build-bench/ and the bench tools into build-bench/tools/, installs the reference peer's `ws`, then runs
# every scenario and prints one table. docs/benchmarks.md has the scenarios and the last results.
#   bash tests/bench/run.sh [--quick] [--json FILE]
#   bash tests/bench/run.sh harperdb [--records N]    end to end with a real HarperDB 4.7 (tests/bench/hdb_e2e.py)
set -euo pipefail
cd "$(dirname "$0")/../.."
jobs=${BENCH_JOBS:-2}
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=RelWithDebInfo -DHDB_BRIDGE_TESTS=OFF >/dev/null
cmake --build build-bench -j"$jobs" --target hdb-bridge >/dev/null
cmake -S tests/bench -B build-bench/tools -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench/tools -j"$jobs" >/dev/null
bash tests/bench/install_ws.sh >/dev/null
echo "# $(date -u '+%Y-%m-%d %H:%M UTC')  nproc $(nproc)  $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "# load before: $(cut -d' ' -f1-3 /proc/loadavg)   node $(node --version)"
status=0
driver=tests/bench/run.py
if [ "${1:-}" = harperdb ]; then
  driver=tests/bench/hdb_e2e.py
  shift
fi
python3 "$driver" --bridge build-bench/daemon/hdb-bridge --tools build-bench/tools "$@" || status=$?
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
exit $status
